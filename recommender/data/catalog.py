"""Catalogue and interaction containers, with the checks every loader shares.

Items and users keep their dataset ids as strings; arrays index items by their position
in the catalogue (``Catalog.index``), which is what retrievers and metrics work on. A whole
dataset (these plus its optional side files) is ``dataset.Dataset``; this module imports no
other module of ``data``, so every one of them may import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


class DataError(ValueError):
    """Bad input data; the message is one sentence naming the file, line and field."""


@dataclass(frozen=True)
class Item:
    """One catalogue entry."""

    id: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    text: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)

    def display_title(self) -> str:
        """Title with the year in brackets, as people write it: "Fargo (1996)"."""
        return f"{self.title} ({self.year})" if self.year else self.title


class Catalog:
    """Items in a fixed order; ``index[item_id]`` is the item's row in every array."""

    def __init__(self, items: Sequence[Item], source: str = "<memory>"):
        self.items: tuple[Item, ...] = tuple(items)
        self.index: dict[str, int] = {}
        for row, item in enumerate(self.items):
            if item.id in self.index:
                raise DataError(f"{source}: duplicate item id {item.id!r} in field 'item_id'.")
            self.index[item.id] = row
        self.ids: list[str] = [item.id for item in self.items]
        self.titles: list[str] = [item.title for item in self.items]
        # -1 marks an unknown year so year filters can work on one int array.
        self.years = np.array([item.year if item.year else -1 for item in self.items], dtype=np.int64)
        self.genre_vocabulary: tuple[str, ...] = tuple(sorted({genre for item in self.items for genre in item.genres}))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item_id: str | int) -> Item:
        return self.items[self.row(item_id)]

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self.index

    def row(self, item_id: str | int) -> int:
        """Row of an item id; raises ``KeyError`` naming the id when it is unknown."""
        try:
            return self.index[str(item_id)]
        except KeyError:
            raise KeyError(f"item id {item_id!r} is not in the catalogue") from None

    def genre_mask(self, genres: Iterable[str]) -> np.ndarray:
        """Boolean [N] mask of items having at least one of ``genres`` (case-insensitive)."""
        wanted = {genre.lower() for genre in genres}
        return np.array([any(genre.lower() in wanted for genre in item.genres) for item in self.items], dtype=bool)

    @cached_property
    def film_rows(self) -> np.ndarray:
        """[N] each row's film: the first row with the same title (case and spaces aside) and the same
        known year, else the row itself. MovieLens-100k lists 18 films twice under two ids ("Chasing Amy
        (1997)" is 246 and 268), and a person who watched one has watched the other."""
        first: dict[tuple[str, int], int] = {}
        rows = np.arange(len(self.items), dtype=np.int64)
        for row, item in enumerate(self.items):
            if item.year and item.title.strip():
                rows[row] = first.setdefault((" ".join(item.title.lower().split()), int(item.year)), row)
        return rows

    @cached_property
    def _listed_twice(self) -> np.ndarray:
        """Rows of the films listed under more than one id (none in most catalogues)."""
        films = self.film_rows
        return np.flatnonzero(np.bincount(films, minlength=len(films))[films] > 1)

    def with_twins(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` and every other row of their films (a row may come twice), for masking. Reads only the
        rows listed twice, not the whole catalogue: it runs on every request."""
        rows = np.asarray(rows, dtype=np.int64)
        twins = self._listed_twice
        if not len(twins) or not len(rows):
            return rows
        return np.concatenate([rows, twins[np.isin(self.film_rows[twins], self.film_rows[rows])]])

    def fingerprint(self) -> str:
        """Stable hash of ids, titles, years, genres and text: keys caches built from items."""
        digest = hashlib.sha256()
        for item in self.items:
            digest.update("\x1f".join([item.id, item.title, str(item.year), "|".join(item.genres), item.text]).encode())
            digest.update(b"\x1e")
        return digest.hexdigest()[:16]


def natural_order(ids: np.ndarray) -> np.ndarray:
    """Permutation that sorts string ids naturally: all-digit ids by value first ("9" before "10"),
    then the others as text; equal values ("01", "1") in text order. Vectorised (numpy.strings)."""
    ids = np.asarray(ids, dtype=str)
    digits = np.strings.isdigit(ids)
    stripped = np.where(digits, np.strings.lstrip(ids, "0"), ids)
    length = np.where(digits, np.strings.str_len(stripped), 0)
    # np.lexsort: the last key is the primary one.
    return np.lexsort((ids, stripped, length, ~digits))


def encode_users(users: np.ndarray | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """[E] user ids -> ([E] integer codes, [U] vocabulary of ids in natural order)."""
    vocabulary, codes = np.unique(np.asarray(users).astype(str), return_inverse=True)
    return canonical_users(codes.reshape(-1), vocabulary)


def canonical_users(codes: np.ndarray, vocabulary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vocabulary entries no event uses and put the rest in natural order, recoding ``codes``.

    The vocabulary is stored as fixed-width str sized to its longest id, which keeps
    ``Interactions.fingerprint`` equal to the one of the former per-event string array.
    """
    vocabulary = np.asarray(vocabulary, dtype=str)
    used = np.flatnonzero(np.bincount(codes, minlength=len(vocabulary)) > 0)
    kept = used[natural_order(vocabulary[used])]
    recode = np.full(len(vocabulary), -1, dtype=np.int64)
    recode[kept] = np.arange(len(kept))
    dtype = np.int32 if len(kept) < 2**31 else np.int64
    if np.array_equal(kept, np.arange(len(vocabulary))):
        codes = codes.astype(dtype, copy=False)
    else:
        codes = recode[codes].astype(dtype)
    vocabulary = vocabulary[kept]
    width = max(1, int(np.strings.str_len(vocabulary).max())) if len(vocabulary) else 1
    return codes, vocabulary.astype(f"<U{width}")


@dataclass(frozen=True, init=False)
class Interactions:
    """Events as parallel arrays: user code, item row in the catalogue, timestamp, rating.

    Users are integer codes into ``user_ids`` (the vocabulary, in natural order: "9" before
    "10"), not a string per event. Rows keep file order, which the leave-one-out split uses to
    break timestamp ties.
    """

    user_codes: np.ndarray  # [E] int32 rows of user_ids
    items: np.ndarray  # [E] int64 catalogue rows
    timestamps: np.ndarray  # [E] float64
    ratings: np.ndarray | None  # [E] float32, None when the data has none
    user_ids: np.ndarray  # [U] str user ids, natural order, every one with at least one event

    def __init__(
        self,
        users: np.ndarray | Sequence[str],
        items: np.ndarray,
        timestamps: np.ndarray,
        ratings: np.ndarray | None = None,
        user_ids: np.ndarray | Sequence[str] | None = None,
    ):
        """Args:
        users: [E] user ids (any values, taken as strings), or integer codes into ``user_ids``.
        user_ids: the vocabulary when ``users`` holds codes; unused ids are dropped and the
            rest put in natural order (codes are rewritten to match).
        """
        if user_ids is None:
            codes, vocabulary = encode_users(users)
        else:
            codes = np.asarray(users)
            if not np.issubdtype(codes.dtype, np.integer):
                raise TypeError(f"with user_ids, users must be integer codes, got dtype {codes.dtype}.")
            codes, vocabulary = canonical_users(codes, np.asarray(user_ids))
        object.__setattr__(self, "user_codes", codes)
        object.__setattr__(self, "items", np.asarray(items))
        object.__setattr__(self, "timestamps", np.asarray(timestamps))
        object.__setattr__(self, "ratings", None if ratings is None else np.asarray(ratings))
        object.__setattr__(self, "user_ids", vocabulary)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def users(self) -> np.ndarray:
        """[E] user id of every event (str). Built on each call: fine for small data; at scale
        use ``user_codes`` and ``user_ids``."""
        return self.user_ids[self.user_codes]

    def fingerprint(self) -> str:
        """Hash of users, items and timestamps, equal to the one of the former layout (one
        string per event), so cache keys and adapter metadata stay valid; hashed in chunks."""
        digest = hashlib.sha256()
        for start in range(0, len(self.user_codes), _FINGERPRINT_CHUNK):
            digest.update(self.user_ids[self.user_codes[start : start + _FINGERPRINT_CHUNK]].tobytes())
        for array in (self.items.astype(np.int64, copy=False), self.timestamps.astype(np.float64, copy=False)):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]


_FINGERPRINT_CHUNK = 1 << 22


@dataclass(frozen=True)
class LoadReport:
    """What a loader dropped or set aside, so nothing disappears silently."""

    unknown_item_events: int = 0
    short_history_users: int = 0
    notes: tuple[str, ...] = ()
    unknown_item_links: int = 0  # knowledge-graph links whose item is not in the catalogue
    absent_user_rows: int = 0  # user-attribute rows whose user has no interactions

    def lines(self) -> list[str]:
        out = []
        if self.unknown_item_events:
            out.append(f"dropped {self.unknown_item_events} interactions whose item is not in the catalogue")
        if self.short_history_users:
            out.append(f"{self.short_history_users} users have fewer than 3 events: kept for training, not evaluated")
        if self.unknown_item_links:
            out.append(f"dropped {self.unknown_item_links} knowledge-graph links whose item is not in the catalogue")
        if self.absent_user_rows:
            out.append(f"dropped {self.absent_user_rows} user-attribute rows of users without interactions")
        return out + list(self.notes)


def build_interactions(
    rows: Iterable[tuple[str, str, float, float | None]],
    catalog: Catalog,
    has_ratings: bool,
) -> tuple[Interactions, int]:
    """Map (user, item id, timestamp, rating) rows onto catalogue rows.

    Returns the interactions and the number of rows dropped because their item is unknown.
    """
    users: list[str] = []
    items: list[int] = []
    timestamps: list[float] = []
    ratings: list[float] = []
    dropped = 0
    for user, item_id, timestamp, rating in rows:
        row = catalog.index.get(item_id)
        if row is None:
            dropped += 1
            continue
        users.append(user)
        items.append(row)
        timestamps.append(timestamp)
        ratings.append(rating if rating is not None else np.nan)
    interactions = Interactions(
        users=np.array(users, dtype=object),
        items=np.array(items, dtype=np.int64),
        timestamps=np.array(timestamps, dtype=np.float64),
        ratings=np.array(ratings, dtype=np.float32) if has_ratings else None,
    )
    return interactions, dropped
