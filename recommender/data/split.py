"""Leave-one-out split: per user, events in time order (ties keep file order);
last = test, second-to-last = validation, the rest = train.

Vectorised: one stable lexsort by (user code, timestamp, file order) and the group boundaries
of the sorted codes give every user's sequence as a slice of one array (CSR layout), so a
million users cost a sort, not a Python loop. ``sequences``, ``ratings`` and
``train_sequences()`` are read-only mapping views over those slices; ``train_csr()`` gives the
training events as two arrays for code that works at scale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

import numpy as np

from recommender.data.catalog import Interactions
from recommender.data.dataset import Dataset
from recommender.data.loaders import MIN_EVAL_EVENTS

SPLITS = ("valid", "test")


@dataclass(frozen=True)
class EvalCase:
    """One user to evaluate: the history the model may see and the item to find."""

    user: str
    history: np.ndarray  # [H] int64 catalogue rows, oldest first
    target: int
    target_rating: float | None = None


class SequenceView(Mapping[str, np.ndarray]):
    """user id -> that user's slice of one array, without a dict of a million arrays.

    Assigning ``view[user] = array`` overrides one user's sequence (tests use it to perturb a
    split); every accessor of the split reads through the override.
    """

    def __init__(self, split: LeaveOneOutSplit, get: Callable[[int], np.ndarray]):
        self._split, self._get = split, get
        self._overrides: dict[str, np.ndarray] = {}

    def __getitem__(self, user: str) -> np.ndarray:
        if user in self._overrides:
            return self._overrides[user]
        return self._get(self._split.code(user))

    def __setitem__(self, user: str, sequence: np.ndarray) -> None:
        self._split.code(user)  # only known users
        self._overrides[user] = np.asarray(sequence)

    def __contains__(self, user: object) -> bool:
        return isinstance(user, str) and user in self._split.user_index

    def __iter__(self) -> Iterator[str]:
        return iter(self._split.users)

    def __len__(self) -> int:
        return len(self._split.users)


class LeaveOneOutSplit:
    """Ordered per-user sequences and the train / validation / test views of them."""

    def __init__(self, interactions: Interactions):
        codes = interactions.user_codes
        # One stable sort: by user, then timestamp, then file order (the explicit last key).
        order = np.lexsort((np.arange(len(codes)), interactions.timestamps, codes))
        self.sequence_items = interactions.items[order]  # [E] catalogue rows, user by user, oldest first
        self._ratings = interactions.ratings[order] if interactions.ratings is not None else None
        del order
        counts = np.bincount(codes, minlength=interactions.n_users)  # [U]; user codes are in natural order
        self.indptr = np.concatenate([[0], np.cumsum(counts)])  # [U + 1] user u is items[indptr[u]:indptr[u+1]]
        self.user_ids = interactions.user_ids
        self.users: list[str] = self.user_ids.tolist()
        self.eval_users: list[str] = self.user_ids[counts >= MIN_EVAL_EVENTS].tolist()
        # Training events of user u end here: all but the last two, or all for short histories.
        self.train_ends = np.where(counts >= MIN_EVAL_EVENTS, self.indptr[1:] - 2, self.indptr[1:])  # [U]
        self._user_index: dict[str, int] | None = None
        self.sequences = SequenceView(self, lambda u: self.sequence_items[self.indptr[u] : self.indptr[u + 1]])
        ratings = self._ratings
        self.ratings: Mapping[str, np.ndarray] = (
            SequenceView(self, lambda u: ratings[self.indptr[u] : self.indptr[u + 1]]) if ratings is not None else {}
        )

    @property
    def user_index(self) -> dict[str, int]:
        """user id -> code (row of ``indptr``), built on first use."""
        if self._user_index is None:
            self._user_index = {user: code for code, user in enumerate(self.users)}
        return self._user_index

    def code(self, user: str) -> int:
        try:
            return self.user_index[user]
        except KeyError:
            raise KeyError(user) from None

    def train(self, user: str) -> np.ndarray:
        """Training events of a user: all but the last two, or all for short histories."""
        sequence = self.sequences[user]
        return sequence[:-2] if len(sequence) >= MIN_EVAL_EVENTS else sequence

    def train_sequences(self) -> dict[str, np.ndarray]:
        """user id -> training events (views into one array; about 0.2 kB per user). Code that
        works at scale should take ``train_csr()`` instead."""
        indptr, items = self.train_csr()
        return dict(zip(self.users, np.split(items, indptr[1:-1])))

    def train_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Training events as (indptr [U + 1], items [T]): user code u trained on
        ``items[indptr[u]:indptr[u + 1]]``, codes in ``self.users`` order."""
        lengths = self.train_ends - self.indptr[:-1]  # [U]
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        keep = np.ones(len(self.sequence_items), dtype=bool)
        ends = self.indptr[1:][lengths < np.diff(self.indptr)]  # users with a validation and a test event
        keep[ends - 1] = keep[ends - 2] = False
        items = self.sequence_items[keep]
        for user in self.sequences._overrides:  # rare: rebuild with the override
            u = self.code(user)
            items = np.concatenate([items[: indptr[u]], self.train(user), items[indptr[u + 1] :]])
            indptr[u + 1 :] += len(self.train(user)) - lengths[u]
        return indptr, items

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
        _, items = self.train_csr()
        return np.bincount(items, minlength=n_items).astype(np.float64)


def tuning_users(split: LeaveOneOutSplit, users: int, seed: int = 0) -> list[str]:
    """Validation users that tune something on the validation events (the hybrid's blend weights,
    the sequential model's epoch): all when at most ``users``, else a seeded sample in dataset order."""
    pool = split.eval_users
    if len(pool) <= users:
        return list(pool)
    picked = np.sort(np.random.default_rng(seed).choice(len(pool), size=users, replace=False))
    return [pool[i] for i in picked]


def without_last_events(dataset: Dataset, drop: int) -> Dataset:
    """The dataset with each user's last ``drop`` events (in split order) removed.

    A first stage built on it never saw those events, so its candidates for them are as
    uninformed as the real first stage's are for the validation and test events: fine-tuning
    examples built there carry no train/serve skew. Users left with no event disappear.
    """
    if drop < 0:
        raise ValueError(f"drop must be >= 0, got {drop}.")
    interactions = dataset.interactions
    codes = interactions.user_codes
    order = np.lexsort((np.arange(len(codes)), interactions.timestamps, codes))  # the split's order
    counts = np.bincount(codes, minlength=interactions.n_users)
    position = np.empty(len(codes), dtype=np.int64)
    position[order] = np.arange(len(codes)) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    keep = position < counts[codes] - drop  # [E] events before each user's last ``drop``
    ratings = interactions.ratings[keep] if interactions.ratings is not None else None
    kept = Interactions(codes[keep], interactions.items[keep], interactions.timestamps[keep], ratings,
                        user_ids=interactions.user_ids)  # fmt: skip
    return replace(dataset, name=f"{dataset.name}-without-last-{drop}", interactions=kept)
