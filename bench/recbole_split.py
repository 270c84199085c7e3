"""Feed RecBole our leave-one-out split, and check from RecBole's own data that it took it.

RecBole orders each user's events by a float timestamp and breaks ties its own way, so a
naive run differs from our split for a few ML-100k users (see design.md, "Protocols").
Instead of emulating that, we write a temporary atomic dataset whose timestamp is each
event's rank within the user's sequence in OUR order (0, 1, 2, ...: strictly increasing,
exact in float32), and let RecBole split it with ``LS: valid_and_test`` / ``order: TO``.
``sequential_cases`` / ``general_cases`` then read back what RecBole will evaluate, and
``split_mismatches`` lists every user whose test item or history differs from ours.

Nothing here imports recbole at module import time; ``import_recbole`` applies the shims
RecBole 1.2.1 needs on numpy 2.x before importing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.data import Catalog
from recommender.data.split import LeaveOneOutSplit

INTER_HEADER = "user_id:token\titem_id:token\ttimestamp:float"


@dataclass(frozen=True)
class RecBoleCase:
    """What RecBole evaluates for one user, as dataset tokens (our user and item ids)."""

    user: str
    history: tuple[str, ...]  # oldest first when ``ordered``; sorted otherwise
    target: str
    ordered: bool = True


def import_recbole() -> None:
    """Re-add the numpy aliases RecBole 1.2.1 still uses, then import it (raises ImportError)."""
    for name, value in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if name not in np.__dict__:
            setattr(np, name, value)
    import recbole.data  # noqa: F401  (fails here, not mid-run, when a dependency is missing)


def write_atomic_split(split: LeaveOneOutSplit, catalog: Catalog, data_path: str | Path, name: str) -> Path:
    """Write ``<data_path>/<name>/<name>.inter`` with per-user rank timestamps in our order.

    Returns the path of the ``.inter`` file. Users keep their ids; items their catalogue ids.
    """
    folder = Path(data_path) / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.inter"
    lines = [INTER_HEADER]
    for user in split.users:
        for rank, row in enumerate(split.sequences[user]):
            lines.append(f"{user}\t{catalog.ids[int(row)]}\t{rank}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def split_config(data_path: str | Path, name: str) -> dict:
    """RecBole config entries that make it read the written file and keep our split."""
    return {
        "data_path": str(data_path),
        "dataset": name,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "normalize_all": False,  # ranks stay integers; nothing is rescaled
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "rm_dup_inter": None,
    }


def _tokens(dataset, field: str, ids) -> list[str]:
    return [str(token) for token in dataset.id2token(field, np.asarray(ids, dtype=np.int64))]


def sequential_cases(test_data) -> dict[str, RecBoleCase]:
    """Per-user test cases from a RecBole sequential full-sort test dataloader.

    Reads the batches the model is scored on: ``item_id`` is the target, the first
    ``item_length`` entries of ``item_id_list`` the (truncated) history.
    """
    dataset = test_data._dataset
    uid, iid = dataset.uid_field, dataset.iid_field
    list_field, length_field = iid + dataset.config["LIST_SUFFIX"], dataset.config["ITEM_LIST_LENGTH_FIELD"]
    cases: dict[str, RecBoleCase] = {}
    for batch in test_data:
        interaction = batch[0]
        users = _tokens(dataset, uid, interaction[uid].numpy())
        targets = _tokens(dataset, iid, interaction[iid].numpy())
        lists, lengths = interaction[list_field].numpy(), interaction[length_field].numpy()
        for user, target, items, length in zip(users, targets, lists, lengths):
            if user in cases:
                raise ValueError(f"RecBole's test data holds user {user} twice.")
            cases[user] = RecBoleCase(user, tuple(_tokens(dataset, iid, items[:length])), target)
    return cases


def _items_by_user(dataset) -> dict[str, list[str]]:
    users = _tokens(dataset, dataset.uid_field, dataset.inter_feat[dataset.uid_field].numpy())
    items = _tokens(dataset, dataset.iid_field, dataset.inter_feat[dataset.iid_field].numpy())
    grouped: dict[str, list[str]] = {}
    for user, item in zip(users, items):
        grouped.setdefault(user, []).append(item)
    return grouped


def general_cases(train_dataset, valid_dataset, test_dataset) -> dict[str, RecBoleCase]:
    """Per-user test cases of a general (non-sequential) RecBole split: history = train + valid items."""
    train, valid, test = (_items_by_user(d) for d in (train_dataset, valid_dataset, test_dataset))
    cases = {}
    for user, targets in test.items():
        if len(targets) != 1:
            raise ValueError(f"RecBole's test split holds {len(targets)} events for user {user}, expected 1.")
        history = tuple(sorted(train.get(user, []) + valid.get(user, [])))
        cases[user] = RecBoleCase(user, history, targets[0], ordered=False)
    return cases


def split_mismatches(
    split: LeaveOneOutSplit,
    catalog: Catalog,
    cases: Mapping[str, RecBoleCase],
    max_history: int | None = None,
) -> list[str]:
    """One line per evaluated user whose RecBole test item or history is not ours.

    Args:
        max_history: RecBole's ``MAX_ITEM_LIST_LENGTH``: ordered histories are compared with
            the last ``max_history`` items of ours (what the model sees); None compares all.
    """
    problems = []
    for user in split.eval_users:
        ours = split.case(user, "test")
        case = cases.get(user)
        if case is None:
            problems.append(f"user {user}: missing from RecBole's test data")
            continue
        target = catalog.ids[ours.target]
        history = [catalog.ids[int(row)] for row in ours.history]
        if case.ordered:
            history = history[-max_history:] if max_history else history
        else:
            history = sorted(history)
        if case.target != target:
            problems.append(f"user {user}: test item {case.target} in RecBole, {target} in ours")
        elif list(case.history) != history:
            problems.append(f"user {user}: history differs ({len(case.history)} vs {len(history)} items)")
    extra = sorted(set(cases) - set(split.eval_users))
    problems.extend(f"user {user}: in RecBole's test data but not evaluated by us" for user in extra)
    return problems


def catalog_columns(dataset, catalog: Catalog) -> np.ndarray:
    """[n_items] our catalogue row of each RecBole internal item id; -1 for padding or unknown."""
    tokens = dataset.field2id_token[dataset.iid_field]
    return np.array([catalog.index.get(str(token), -1) for token in tokens], dtype=np.int64)


def to_catalog_scores(scores: np.ndarray, columns: np.ndarray, n_items: int) -> np.ndarray:
    """[B, n_recbole] scores -> [B, n_items] in catalogue order; items RecBole lacks get -inf."""
    out = np.full((scores.shape[0], n_items), -np.inf, dtype=np.float64)
    known = columns >= 0
    out[:, columns[known]] = scores[:, known]
    return out
