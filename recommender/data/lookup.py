"""Find users and items from what people type, before anything slow loads.

The commands check ``--user`` and ``--item`` here, so a wrong id ends in one sentence in about a
second instead of after the model has loaded; the pipeline resolves titles with the same index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.data.catalog import Catalog, DataError
from recommender.data.dataset import Dataset


def fold_title(text: str) -> str:
    """Case and spacing folded: "  the  Matrix" and "The Matrix" are one key."""
    return " ".join(text.lower().split())


class ItemLookup:
    """Item ids for references given as ids or exact titles ("Fargo", "Fargo (1996)")."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._by_title = {fold_title(item.title): item.id for item in catalog.items}
        self._by_title.update({fold_title(item.display_title()): item.id for item in catalog.items})

    def resolve(self, references: Sequence[str | int]) -> tuple[list[str], list[str]]:
        """The ids found, and the references that matched nothing (empty ones dropped)."""
        found, unknown = [], []
        for reference in references:
            text = str(reference).strip()
            if text in self.catalog.index:
                found.append(text)
            elif fold_title(text) in self._by_title:
                found.append(self._by_title[fold_title(text)])
            elif text:
                unknown.append(text)
        return found, unknown

    def item(self, reference: str | int) -> str:
        """One item id, or a DataError saying the reference matched nothing."""
        found, _ = self.resolve([reference])
        if not found:
            raise DataError(f"item {str(reference)!r} matches no item id or exact title of the catalogue.")
        return found[0]


def check_user(dataset: Dataset, user_id: str | int) -> str:
    """The user id as the dataset spells it, or a DataError naming the valid range."""
    user = str(user_id).strip()
    known = dataset.interactions.user_ids
    if not np.isin(user, known):
        raise unknown_user(user, dataset.name, known)
    return user


def unknown_user(user: str, dataset_name: str, known: Sequence[str]) -> DataError:
    """The one sentence for a user id a dataset does not hold (``known``: its ids in natural order)."""
    first, last = (known[0], known[-1]) if len(known) else ("-", "-")
    return DataError(f"user id {user!r} is not in {dataset_name} ({len(known)} users, ids {first} to {last}).")
