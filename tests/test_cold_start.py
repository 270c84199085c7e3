"""Cold-start protocols (new films, new people), the cold-item bridge and the LLM content encoder."""

from __future__ import annotations

import numpy as np
import pytest
from test_update import HashEncoder, small_dataset

from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.cold_start import choose_cold_items, cold_item_split, cold_user_split
from recommender.retrieval.cold import ColdItemBridge


def test_the_cold_set_is_the_same_for_the_same_seed_and_a_share_of_the_active_items():
    dataset = small_dataset()
    first, again, other = (choose_cold_items(dataset, 0.2, seed) for seed in (0, 0, 1))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.sum() == round(0.2 * len(np.unique(dataset.interactions.items)))
    with pytest.raises(ValueError, match="cold share"):
        choose_cold_items(dataset, 1.5)
    with pytest.raises(ValueError, match="cold variant"):
        choose_cold_items(dataset, 0.1, variant="oldest")


def test_newest_items_are_those_whose_first_event_is_latest():
    dataset = small_dataset()
    cold = choose_cold_items(dataset, 0.1, variant="newest")
    events = dataset.interactions
    first = {int(i): events.timestamps[events.items == i].min() for i in np.unique(events.items)}
    assert min(first[i] for i in np.flatnonzero(cold)) >= max(first[i] for i in first if not cold[i])


def test_no_cold_item_event_reaches_the_fitted_components(tmp_path):
    from recommender.retrieval.hybrid import build_default_retriever

    dataset = small_dataset()
    cold = choose_cold_items(dataset, 0.2, seed=3)
    split = cold_item_split(dataset, cold)
    assert not cold[split.train_dataset.interactions.items].any()
    train = LeaveOneOutSplit(split.train_dataset.interactions)
    hybrid = build_default_retriever(split.train_dataset, train, encoder=HashEncoder(), cache_dir=tmp_path)
    assert not hybrid.components["pop"].counts[cold].any()
    indptr, items = train.train_csr()
    assert not cold[items].any()
    for case in split.shelf:  # earlier warm events only; the target is cold and allowed
        assert cold[case.target] and not cold[case.history].any()
        assert split.shelf_allowed(case)[case.target] and not split.shelf_allowed(case)[~cold].any()
        assert case.target not in case.exclude
    assert all(cold[c.target] and not cold[c.history].any() for c in split.catalogue)
    assert split.params["shelf events"] == len(split.shelf) > 0


def test_cold_users_leave_no_event_in_the_fitted_data_and_keep_their_first_n_events():
    dataset = small_dataset()
    split = cold_user_split(dataset, 0.25, seed=0, sizes=(0, 1, 3))
    kept_users = set(split.train_dataset.interactions.user_ids[np.unique(split.train_dataset.interactions.user_codes)])
    assert not kept_users & set(split.users)
    full = LeaveOneOutSplit(dataset.interactions)
    for n, cases in split.cases.items():
        assert [c.user for c in cases] == split.users
        assert all(np.array_equal(c.history, full.sequences[c.user][:n]) for c in cases)
        assert all(c.target == full.case(c.user, "test").target for c in cases)
    assert cold_user_split(dataset, 0.25, seed=0).users == split.users


def test_bridge_scores_a_cold_item_as_its_content_neighbours():
    content = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [1.0, 0.05]])  # row 3 is new, close to row 0
    seen = np.array([True, True, True, False])
    bridge = ColdItemBridge.build(content, seen, neighbours=2)
    assert bridge.cold_rows.tolist() == [3] and bridge.neighbour_rows[0, 0] == 0
    assert bridge.neighbour_weights.sum() == pytest.approx(1.0)
    scores = bridge.fill(np.array([[5.0, 1.0, 2.0, -9.0], [1.0, 5.0, 2.0, 0.0]]))
    assert 2.0 < scores[0, 3] <= 5.0 and 1.0 <= scores[1, 3] < 2.0  # follows row 0's score, not its own zero
    masked = bridge.fill(np.array([[-np.inf, 1.0, 2.0, 0.0]]))  # a history item stays out of the mean
    assert masked[0, 3] == pytest.approx(2.0)


def test_bridge_leaves_a_catalogue_without_cold_items_unchanged():
    bridge = ColdItemBridge.build(np.eye(3), np.ones(3, dtype=bool))
    scores = np.arange(6.0).reshape(2, 3)
    assert len(bridge) == 0 and np.array_equal(bridge.fill(scores.copy()), scores)


def test_llm_content_vectors_are_mean_hidden_states_and_cached(tiny_llama_dir, tmp_path):
    from recommender.llm.loading import load_model
    from recommender.retrieval.llm_content import LLMContentRetriever, llm_item_vectors

    dataset = small_dataset(n_items=12)
    loaded = load_model(tiny_llama_dir, device="cpu")
    vectors = llm_item_vectors(dataset.catalog, loaded, tmp_path)
    assert vectors.shape == (12, loaded.model.config.hidden_size) and np.isfinite(vectors).all()
    assert np.allclose(vectors.mean(axis=0), 0.0, atol=1e-5)  # centred
    assert np.allclose(llm_item_vectors(dataset.catalog, loaded, tmp_path), vectors)  # from the cache
    scores = LLMContentRetriever(dataset.catalog, vectors).score_batch([np.array([0, 1])])
    assert scores.shape == (1, 12) and np.isfinite(scores).all()


def _write_recbole(folder, dataset) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    items += [f"{i.id}\t{i.title}\t{i.year}\t{' '.join(i.genres)}" for i in dataset.catalog.items]
    (folder / f"{folder.name}.item").write_text("\n".join(items) + "\n")
    events = dataset.interactions
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    rows += [
        f"{events.user_ids[u]}\t{dataset.catalog.ids[i]}\t4\t{t}"
        for u, i, t in zip(events.user_codes, events.items, events.timestamps)
    ]
    (folder / f"{folder.name}.inter").write_text("\n".join(rows) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["cold-items", "cold-users"])
def test_cold_protocols_run_end_to_end_on_a_folder_without_a_knowledge_graph(
    protocol, tiny_llama_dir, tmp_path, monkeypatch
):
    import json

    from recommender.cli import main

    monkeypatch.setenv("RECOMMENDER_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "toy"
    _write_recbole(folder, small_dataset())
    output = tmp_path / "out"
    argv = ["evaluate", "--protocol", protocol, "--dataset", str(folder), "--model", str(tiny_llama_dir),
            "--adapter", "none", "--methods", "llm_zero_shot", "--cold-share", "0.2", "--shelf-sample", "8",
            "--cold-sizes", "0,1", "--output", str(output)]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((output / "metrics.json").read_text())
    assert record["header"]["protocol"] == protocol and record["header"]["seed"] == 0
    for table in record["tables"].values():
        assert {"pop", "embedding", "llm_content", "hybrid", "served"} <= set(table["metrics"])
        assert "knowledge" not in table["metrics"]
    assert any("llm_zero_shot" in t["metrics"] for t in record["tables"].values())
