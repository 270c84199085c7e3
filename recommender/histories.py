"""Histories: what a user has watched, and references (ids or titles) turned into catalogue items.

    histories = Histories(dataset, LeaveOneOutSplit(dataset.interactions))
    histories.user("1")                        # item ids, oldest first
    histories.resolve(["Fargo", "50", "Nope"]) # (["100", "50"], ["Nope"])
    histories.rows(["1", "50"]), histories.items(["1", "50"])

Pure: the standard library, numpy and ``recommender.data``. The ``Recommender`` facade, its ratings
and its explanations all read histories through one ``Histories``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.data import Dataset, Item
from recommender.data.lookup import ItemLookup, unknown_user
from recommender.data.split import LeaveOneOutSplit


class Histories:
    """Dataset users' histories and item references of one dataset.

    Args:
        dataset: catalogue + interactions.
        split: the leave-one-out split of the interactions (its ``sequences`` are the histories).
    """

    def __init__(self, dataset: Dataset, split: LeaveOneOutSplit):
        self.dataset = dataset
        self.catalog = dataset.catalog
        self.split = split
        self._lookup = ItemLookup(self.catalog)

    def user(self, user_id: str | int) -> list[str]:
        """All known item ids of a dataset user, oldest first."""
        user = str(user_id)
        if user not in self.split.sequences:
            raise unknown_user(user, self.dataset.name, self.split.users)
        return [self.catalog.ids[row] for row in self.split.sequences[user]]

    def resolve(self, references: Sequence[str | int]) -> tuple[list[str], list[str]]:
        """Item ids for references given as ids or exact titles ("Fargo", "Fargo (1996)"): the ids
        found and the references that matched nothing (``data.lookup.ItemLookup``)."""
        return self._lookup.resolve(references)

    def of(self, user_id: str | int | None, history: Sequence[str | int] | None) -> tuple[list[str], int]:
        """Item ids of an explicit history (ids or titles), else of a dataset user, else none; and how
        many references of the explicit history matched nothing."""
        if history is not None:
            if isinstance(history, str):
                raise ValueError("history must be a list of item ids or titles, not one string.")
            ids, unknown = self.resolve(history)
            return ids, len(unknown)
        if user_id is not None:
            return self.user(user_id), 0
        return [], 0

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """[H] catalogue rows of item ids."""
        return np.array([self.catalog.index[i] for i in ids], dtype=np.int64)

    def items(self, ids: Sequence[str]) -> list[Item]:
        return [self.catalog[item_id] for item_id in ids]


def shared_genre_reasons(item: Item, history: Sequence[Item], limit: int = 2) -> list[str]:
    """Short data-grounded reasons: recent history items sharing genres with ``item``."""
    reasons = []
    for past in reversed(history):
        shared = [genre for genre in item.genres if genre in past.genres and genre != "unknown"]
        if shared:
            reasons.append(f"{', '.join(shared)} like {past.display_title()}")
        if len(reasons) == limit:
            break
    return reasons
