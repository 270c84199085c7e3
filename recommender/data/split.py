"""Leave-one-out split: per user, events in time order (ties keep file order);
last = test, second-to-last = validation, the rest = train."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.data.catalog import Interactions
from recommender.data.loaders import MIN_EVAL_EVENTS

SPLITS = ("valid", "test")


@dataclass(frozen=True)
class EvalCase:
    """One user to evaluate: the history the model may see and the item to find."""

    user: str
    history: np.ndarray  # [H] int64 catalogue rows, oldest first
    target: int
    target_rating: float | None = None


class LeaveOneOutSplit:
    """Ordered per-user sequences and the train / validation / test views of them."""

    def __init__(self, interactions: Interactions):
        # A stable sort by (user, timestamp) keeps file order among equal timestamps.
        order = np.lexsort((interactions.timestamps, interactions.users.astype(str)))
        users = interactions.users[order]
        items = interactions.items[order]
        ratings = interactions.ratings[order] if interactions.ratings is not None else None
        boundaries = np.flatnonzero(users[1:] != users[:-1]) + 1
        starts = np.concatenate([[0], boundaries])
        ends = np.concatenate([boundaries, [len(users)]])
        self.sequences: dict[str, np.ndarray] = {}
        self.ratings: dict[str, np.ndarray] = {}
        for start, end in zip(starts, ends):
            user = str(users[start])
            self.sequences[user] = items[start:end]
            if ratings is not None:
                self.ratings[user] = ratings[start:end]
        self.users: list[str] = sorted(self.sequences, key=_natural_key)
        self.eval_users: list[str] = [u for u in self.users if len(self.sequences[u]) >= MIN_EVAL_EVENTS]

    def train(self, user: str) -> np.ndarray:
        """Training events of a user: all but the last two, or all for short histories."""
        sequence = self.sequences[user]
        return sequence[:-2] if len(sequence) >= MIN_EVAL_EVENTS else sequence

    def train_sequences(self) -> dict[str, np.ndarray]:
        return {user: self.train(user) for user in self.users}

    def case(self, user: str, split: str) -> EvalCase:
        """History and target of ``user`` for ``split`` ('valid' or 'test')."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        sequence = self.sequences[user]
        position = len(sequence) - (2 if split == "valid" else 1)
        rating = float(self.ratings[user][position]) if user in self.ratings else None
        return EvalCase(user, sequence[:position], int(sequence[position]), rating)

    def cases(self, split: str, users: list[str] | None = None) -> list[EvalCase]:
        return [self.case(user, split) for user in (users if users is not None else self.eval_users)]

    def item_popularity(self, n_items: int) -> np.ndarray:
        """Training-event counts per item, [N]; never counts validation or test events."""
        counts = np.zeros(n_items, dtype=np.float64)
        for user in self.users:
            np.add.at(counts, self.train(user), 1.0)
        return counts


def _natural_key(user: str) -> tuple[int, int | str]:
    return (0, int(user)) if user.isdigit() else (1, user)
