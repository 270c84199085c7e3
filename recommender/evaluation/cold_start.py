"""Cold-start protocols: new films and new people, built from a warm dataset by removing events.

    cold = choose_cold_items(dataset, share=0.1, seed=0)                 # [N] bool, or variant="newest"
    split = cold_item_split(dataset, cold)       # .train_dataset never holds a cold item's event
    split.shelf          # every event of a cold item: earlier warm history -> that item, among cold items
    split.catalogue      # test events whose target is cold, ranked among every item
    users = cold_user_split(dataset, share=0.2, seed=0, sizes=(0, 1, 3, 5))
    users.cases[3]       # the chosen people's test events with only their first 3 events as history

Every fitted component is built on ``train_dataset`` only, so no cold film's event and no cold
person's event reaches it (tested). Pure numpy: the methods that score these cases live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from recommender.data import Dataset
from recommender.data.catalog import Interactions
from recommender.data.split import EvalCase, LeaveOneOutSplit

COLD_VARIANTS = ("random", "newest")


@dataclass(frozen=True)
class ShelfCase:
    """One event of a cold item: the person's earlier warm events, the item, and the other cold
    items of this person (left out of the ranking: they are positives too)."""

    user: str
    history: np.ndarray  # [H] catalogue rows, oldest first, warm items only
    target: int
    exclude: np.ndarray  # [E] cold rows this person also has events for


@dataclass(frozen=True)
class ColdItemSplit:
    cold: np.ndarray  # [N] bool
    train_dataset: Dataset  # without any event of a cold item
    shelf: list[ShelfCase]
    catalogue: list[EvalCase]  # full-data test cases whose target is cold; warm history only
    params: dict = field(default_factory=dict)

    def shelf_allowed(self, case: ShelfCase) -> np.ndarray:
        """[N] bool: the cold items this case is ranked among (its own other cold items removed)."""
        allowed = self.cold.copy()
        allowed[case.exclude] = False
        allowed[case.target] = True
        return allowed


@dataclass(frozen=True)
class ColdUserSplit:
    users: list[str]  # the people treated as new: none of their events is in train_dataset
    train_dataset: Dataset
    cases: dict[int, list[EvalCase]]  # history size n -> cases (test target, first n events as history)
    params: dict = field(default_factory=dict)


def choose_cold_items(dataset: Dataset, share: float = 0.1, seed: int = 0, variant: str = "random") -> np.ndarray:
    """[N] bool: a seeded ``share`` of the items that have events ("random"), or the ``share`` whose
    first event is latest ("newest": the films a service added last)."""
    if variant not in COLD_VARIANTS:
        raise ValueError(f"cold variant must be one of {', '.join(COLD_VARIANTS)}, got {variant!r}.")
    if not 0.0 < share < 1.0:
        raise ValueError(f"cold share must be between 0 and 1 (exclusive), got {share!r}.")
    interactions, n = dataset.interactions, len(dataset.catalog)
    active = np.flatnonzero(np.bincount(interactions.items, minlength=n) > 0)
    size = max(1, round(share * len(active)))
    if variant == "random":
        picked = np.random.default_rng(seed).choice(active, size=size, replace=False)
    else:
        first = np.full(n, np.inf)
        np.minimum.at(first, interactions.items, interactions.timestamps.astype(np.float64))
        picked = active[np.argsort(-first[active], kind="stable")[:size]]
    cold = np.zeros(n, dtype=bool)
    cold[picked] = True
    return cold


def _kept(dataset: Dataset, keep: np.ndarray, suffix: str) -> Dataset:
    """The dataset with only the events where ``keep`` is true (catalogue unchanged)."""
    events = dataset.interactions
    ratings = events.ratings[keep] if events.ratings is not None else None
    kept = Interactions(events.user_codes[keep], events.items[keep], events.timestamps[keep], ratings,
                        user_ids=events.user_ids)  # fmt: skip
    return replace(dataset, name=f"{dataset.name}-{suffix}", interactions=kept)


def cold_item_split(dataset: Dataset, cold: np.ndarray, min_history: int = 1) -> ColdItemSplit:
    """The cold-items protocol for ``cold`` ([N] bool, see ``choose_cold_items``).

    Args:
        min_history: shelf events need at least this many earlier warm events.
    """
    cold = np.asarray(cold, dtype=bool)
    train = _kept(dataset, ~cold[dataset.interactions.items], "without-cold-items")
    full = LeaveOneOutSplit(dataset.interactions)
    shelf, catalogue = [], []
    for user in full.users:
        sequence = full.sequences[user]
        is_cold = cold[sequence]
        mine = np.unique(sequence[is_cold])
        for position in np.flatnonzero(is_cold):
            history = sequence[:position][~is_cold[:position]]
            if len(history) >= min_history:
                target = int(sequence[position])
                shelf.append(ShelfCase(user, history, target, mine[mine != target]))
        if len(sequence) < 3:  # no test event
            continue
        case = full.case(user, "test")
        if cold[case.target]:
            catalogue.append(EvalCase(user, case.history[~cold[case.history]], case.target, case.target_rating))
    params = {"cold items": int(cold.sum()), "shelf events": len(shelf), "catalogue cases": len(catalogue)}
    return ColdItemSplit(cold, train, shelf, catalogue, params)


def cold_user_split(
    dataset: Dataset, share: float = 0.2, seed: int = 0, sizes: tuple[int, ...] = (0, 1, 3, 5)
) -> ColdUserSplit:
    """The cold-users protocol: a seeded ``share`` of the evaluable users lose every event from the
    fitted data; each is scored on their test event with only their first n events as history."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"cold share must be between 0 and 1 (exclusive), got {share!r}.")
    full = LeaveOneOutSplit(dataset.interactions)
    # People with enough events that even the largest history size leaves the test event out of it.
    pool = [u for u in full.eval_users if len(full.sequences[u]) > max(sizes, default=0) + 1]
    size = max(1, round(share * len(pool)))
    picked = sorted(np.random.default_rng(seed).choice(len(pool), size=size, replace=False).tolist())
    users = [pool[i] for i in picked]
    codes = np.array([full.code(u) for u in users], dtype=np.int64)
    keep = ~np.isin(dataset.interactions.user_codes, codes)
    train = _kept(dataset, keep, "without-cold-users")
    cases = {}
    for n in sizes:
        cases[n] = [EvalCase(u, full.sequences[u][:n], full.case(u, "test").target, None) for u in users]
    return ColdUserSplit(users, train, cases, {"cold users": len(users), "share": share, "seed": seed})


__all__ = [
    "COLD_VARIANTS",
    "ColdItemSplit",
    "ColdUserSplit",
    "ShelfCase",
    "choose_cold_items",
    "cold_item_split",
    "cold_user_split",
]
