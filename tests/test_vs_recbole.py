"""Our leave-one-out split, fed to RecBole, comes back unchanged: a tiny dataset with
same-second events, checked from RecBole's own test dataloader. Skipped without recbole."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recommender.data import Catalog, Item, build_interactions
from recommender.data.split import LeaveOneOutSplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import recbole_split  # noqa: E402

try:
    recbole_split.import_recbole()
except ImportError as error:  # importorskip below reports it with the reason
    _IMPORT_ERROR = f"recbole 1.2.1 or one of its dependencies cannot be imported ({error})"
else:
    _IMPORT_ERROR = "recbole cannot be imported"
pytest.importorskip("recbole.data", reason=_IMPORT_ERROR)
# RecBole 1.2.1 warns about pandas copy-on-write and non-writable arrays; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore")

# Same-second events everywhere: user 1's last three share a timestamp, user 3's whole
# history does; file order decides (stable sort), which RecBole cannot know by itself.
EVENTS = [
    ("1", "a", 100, None), ("1", "b", 100, None), ("1", "c", 50, None), ("1", "d", 100, None),
    ("2", "e", 10, None), ("2", "a", 30, None), ("2", "b", 20, None), ("2", "c", 30, None),
    ("3", "f", 7, None), ("3", "e", 7, None), ("3", "d", 7, None), ("3", "c", 7, None), ("3", "b", 7, None),
    ("10", "c", 5, None), ("10", "a", 5, None), ("10", "f", 6, None),
    ("1", "e", 100, None), ("2", "d", 30, None),
]  # fmt: skip


def _recbole_test_data(tmp_path, split, catalog, model_name: str, max_len: int = 50):
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import Pop
    from recbole.model.sequential_recommender import SASRec

    recbole_split.write_atomic_split(split, catalog, tmp_path, "tiny")
    config_dict = recbole_split.split_config(tmp_path, "tiny") | {
        "use_gpu": False,
        "MAX_ITEM_LIST_LENGTH": max_len,
        "checkpoint_dir": str(tmp_path / "saved"),
        "show_progress": False,
        "state": "ERROR",
        "train_neg_sample_args": None,
    }
    model = SASRec if model_name == "SASRec" else Pop
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config also parses the command line
    try:
        config = Config(model=model, dataset="tiny", config_dict=config_dict)
    finally:
        sys.argv = argv
    dataset = create_dataset(config)
    return dataset, data_preparation(config, dataset)


@pytest.fixture()
def tiny():
    items = [Item(id=name, title=name.upper()) for name in "abcdef"]
    catalog = Catalog(items)
    interactions, dropped = build_interactions(EVENTS, catalog, has_ratings=False)
    assert dropped == 0
    return catalog, LeaveOneOutSplit(interactions)


def test_sequential_split_matches_ours(tmp_path, tiny):
    catalog, split = tiny
    _, (_, _, test_data) = _recbole_test_data(tmp_path, split, catalog, "SASRec")
    cases = recbole_split.sequential_cases(test_data)
    assert recbole_split.split_mismatches(split, catalog, cases, max_history=50) == []
    # The tie rule really decided something: user 1's test item is the last same-second event in file order.
    assert cases["1"].target == "e" and cases["1"].history == ("c", "a", "b", "d")
    assert cases["3"].target == "b"


def test_history_is_truncated_like_recbole(tmp_path, tiny):
    catalog, split = tiny
    _, (_, _, test_data) = _recbole_test_data(tmp_path, split, catalog, "SASRec", max_len=2)
    cases = recbole_split.sequential_cases(test_data)
    assert recbole_split.split_mismatches(split, catalog, cases, max_history=2) == []
    assert len(recbole_split.split_mismatches(split, catalog, cases, max_history=None)) == 3  # users 1, 2, 3


def test_general_split_matches_ours(tmp_path, tiny):
    catalog, split = tiny
    dataset, (train_data, valid_data, test_data) = _recbole_test_data(tmp_path, split, catalog, "Pop")
    cases = recbole_split.general_cases(train_data.dataset, valid_data.dataset, test_data.dataset)
    assert recbole_split.split_mismatches(split, catalog, cases) == []
    columns = recbole_split.catalog_columns(dataset, catalog)
    assert sorted(columns[columns >= 0].tolist()) == list(range(len(catalog)))


def test_check_catches_a_different_order(tmp_path, tiny):
    catalog, split = tiny
    _, (_, _, test_data) = _recbole_test_data(tmp_path, split, catalog, "SASRec")
    cases = recbole_split.sequential_cases(test_data)
    # Swap user 2's last two events in our split: the check must notice.
    split.sequences["2"] = split.sequences["2"][[0, 1, 2, 4, 3]]
    problems = recbole_split.split_mismatches(split, catalog, cases, max_history=50)
    assert len(problems) == 1 and problems[0].startswith("user 2: test item")


def test_bench_runs_end_to_end_on_a_tiny_dataset(tmp_path, tiny):
    """The whole bench (train, check, score, table) on the tiny data: 1 epoch, seconds."""
    from bench import vs_recbole

    # RecBole's evaluator needs at least 20 items (topk 20): a filler user brings 20 more.
    catalog = [f"i{n:02d}" for n in range(20)] + list(tiny[0].ids)
    events = EVENTS + [("99", item, n, None) for n, item in enumerate(catalog[:20])]
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "tiny.item").write_text(
        "item_id:token\tmovie_title:token_seq\n" + "".join(f"{i}\t{i.upper()}\n" for i in catalog)
    )
    (folder / "tiny.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\n" + "".join(f"{u}\t{i}\t{t}\n" for u, i, t, _ in events)
    )
    ours = tmp_path / "metrics.json"
    ours.write_text('{"ItemKNN": {"HR@10": 0.5, "NDCG@10": 0.25}}')
    out = tmp_path / "report.md"
    args = vs_recbole.make_parser().parse_args(
        ["--dataset", str(folder), "--epochs", "1", "--out", str(out), "--ours", str(ours)]
    )
    assert vs_recbole.main(args) == 0
    report = out.read_text()
    assert "**split mismatches (RecBole vs ours, test item + history, every user)**: 0 " in report
    for row in ("| SASRec | unmasked", "| SASRec | history masked", "| Pop (RecBole evaluator) |", "| ours: ItemKNN |"):
        assert row in report
