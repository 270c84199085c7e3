"""New interactions and catalogue items for an incremental update: read, checked, appended.

Files are checked as any loader checks them (``recommender.data.loaders``): one ``DataError``
naming the file, line and field. Unlike a loader, an update refuses an event whose item is
unknown instead of dropping it: an update is small and written by hand or by a job, so a
wrong id is a mistake to fix, not noise to count. Pure numpy.

    items = read_new_items("new_items.csv", catalog)                   # item_id,title[,year,genres,text]
    events = read_new_events("new.csv", catalog, items)                # user_id,item_id,timestamp[,rating]
    dataset = extend_dataset(dataset, items, events)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from recommender.data.catalog import Catalog, DataError, Interactions, Item
from recommender.data.columnar import IdColumn, data_line
from recommender.data.columnar import number as _number
from recommender.data.dataset import Dataset
from recommender.data.loaders import ColumnMap, _read_events, _records, _require_columns, _year


@dataclass(frozen=True)
class NewEvents:
    """Appended events as parallel arrays; item ids are catalogue ids (strings), not rows."""

    users: np.ndarray  # [E] str
    items: np.ndarray  # [E] str
    timestamps: np.ndarray  # [E] float64
    ratings: np.ndarray | None = None  # [E] float32 (NaN: no rating), None when no event has one
    sources: np.ndarray | None = None  # [E] str: where each event came from ("file:new.csv", "chat:like")

    def __post_init__(self):
        n = len(self.users)
        for name in ("items", "timestamps", "ratings", "sources"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"NewEvents.{name} has {len(value)} entries for {n} users.")

    def __len__(self) -> int:
        return len(self.users)

    @classmethod
    def of(
        cls,
        users: Sequence[str],
        items: Sequence[str],
        timestamps: Sequence[float],
        ratings: Sequence[float] | None = None,
        source: str | Sequence[str] = "api",
    ) -> NewEvents:
        """Events from Python lists; one ``source`` for all or one per event."""
        n = len(users)
        sources = [source] * n if isinstance(source, str) else list(source)
        return cls(
            np.array([str(u) for u in users], dtype=str).reshape(n),
            np.array([str(i) for i in items], dtype=str).reshape(n),
            np.asarray(timestamps, dtype=np.float64).reshape(n),
            None if ratings is None else np.asarray(ratings, dtype=np.float32).reshape(n),
            np.array(sources, dtype=str).reshape(n),
        )

    @classmethod
    def empty(cls) -> NewEvents:
        return cls.of([], [], [])

    def concat(self, other: NewEvents) -> NewEvents:
        """These events followed by ``other``'s (ratings kept when either side has them)."""
        if not len(other):
            return self
        if not len(self):
            return other
        ratings = None
        if self.ratings is not None or other.ratings is not None:
            ratings = np.concatenate([_ratings_or_nan(self), _ratings_or_nan(other)])
        return NewEvents(
            np.concatenate([self.users, other.users]).astype(str),
            np.concatenate([self.items, other.items]).astype(str),
            np.concatenate([self.timestamps, other.timestamps]),
            ratings,
            np.concatenate([_sources(self), _sources(other)]).astype(str),
        )

    def select(self, rows: np.ndarray) -> NewEvents:
        pick = np.asarray(rows)
        return NewEvents(
            self.users[pick],
            self.items[pick],
            self.timestamps[pick],
            None if self.ratings is None else self.ratings[pick],
            None if self.sources is None else self.sources[pick],
        )


def _ratings_or_nan(events: NewEvents) -> np.ndarray:
    return events.ratings if events.ratings is not None else np.full(len(events), np.nan, dtype=np.float32)


def _sources(events: NewEvents) -> np.ndarray:
    return events.sources if events.sources is not None else np.full(len(events), "api")


# ---------------------------------------------------------------- reading files


def read_new_items(path: str | Path, catalog: Catalog, columns: ColumnMap = ColumnMap()) -> list[Item]:
    """Catalogue items of a CSV or JSONL file (``item_id``, ``title``, optional ``year``, ``genres``
    split on ``|``, ``text``), refused with the file, line and field when an id is empty, repeated
    or already in ``catalog``."""
    path = Path(path)
    columns = replace(columns, text=columns.text or ("text",))
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, record in _records(path, "utf-8"):
        if not items and not seen:
            _require_columns(path, list(record), [columns.item, columns.title])
        item_id = str(record.get(columns.item, "")).strip()
        if not item_id:
            raise DataError(f"{path}, line {number}: field {columns.item!r} is empty.")
        if item_id in catalog.index:
            raise DataError(
                f"{path}, line {number}: field {columns.item!r}: item {item_id!r} is already in the catalogue."
            )
        if item_id in seen:
            raise DataError(
                f"{path}, line {number}: field {columns.item!r}: item {item_id!r} repeats line {seen[item_id]}."
            )
        seen[item_id] = number
        title = str(record.get(columns.title, "")).strip()
        if not title:
            raise DataError(f"{path}, line {number}: field {columns.title!r} is empty.")
        raw = record.get(columns.genres) if columns.genres else None
        if isinstance(raw, list):
            genres = tuple(str(g) for g in raw)
        else:
            genres = tuple(g.strip() for g in str(raw or "").split(columns.genre_separator) if g.strip())
        text = " ".join(str(record.get(field) or "") for field in columns.text).strip()
        year = _year(record.get(columns.year)) if columns.year else None
        items.append(Item(id=item_id, title=title, year=year, genres=genres, text=text))
    return items


def read_new_events(
    path: str | Path,
    catalog: Catalog,
    new_items: Sequence[Item] = (),
    columns: ColumnMap = ColumnMap(),
    source: str | None = None,
) -> NewEvents:
    """Events of a CSV (``user_id,item_id,timestamp[,rating]``) or JSONL file, checked by the
    loaders' readers; an item neither in ``catalog`` nor in ``new_items`` is refused with its line."""
    path = Path(path)
    source = source or f"file:{path.name}"
    known = set(catalog.index) | {item.id for item in new_items}
    if path.suffix.lower() in {".csv", ".tsv"}:
        names = {"user": columns.user, "item": columns.item, "timestamp": columns.timestamp, "rating": columns.rating}
        found, has_ratings = _read_events(path, "utf-8", ",", True, names)
        users, items = found["user"], found["item"]
        assert isinstance(users, IdColumn) and isinstance(items, IdColumn)
        item_values = np.array([str(v).strip() for v in items.values], dtype=str)
        event_items = item_values[items.codes] if len(items.codes) else np.zeros(0, dtype=str)
        event_users = np.array(users.values, dtype=str)[users.codes] if len(users.codes) else np.zeros(0, dtype=str)
        if not len(event_items):
            raise DataError(f"{path}: the file has a header but no interactions.")
        unknown = ~np.isin(event_items, np.array(sorted(known), dtype=str))
        if unknown.any():
            index = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"{path}, line {data_line(path, index)}: field {columns.item!r}: item {str(event_items[index])!r} is "
                "not in the catalogue (add it with --items first)."
            )
        empty_users = np.strings.str_len(np.strings.strip(event_users)) == 0
        if empty_users.any():
            index = int(np.flatnonzero(empty_users)[0])
            raise DataError(f"{path}, line {data_line(path, index)}: field {columns.user!r} is empty.")
        ratings = found["rating"].astype(np.float32) if has_ratings else None
        timestamps = np.asarray(found["timestamp"], dtype=np.float64)
        return NewEvents(event_users, event_items, timestamps, ratings, np.full(len(event_items), source))
    rows: list[tuple[str, str, float, float | None]] = []
    has_ratings = False
    for index, (number, record) in enumerate(_records(path, "utf-8")):
        if index == 0:
            _require_columns(path, list(record), [columns.user, columns.item, columns.timestamp])
            has_ratings = bool(columns.rating) and columns.rating in record
        user, item = str(record.get(columns.user, "")).strip(), str(record.get(columns.item, "")).strip()
        for field, value in ((columns.user, user), (columns.item, item)):
            if not value:
                raise DataError(f"{path}, line {number}: field {field!r} is empty.")
        if item not in known:
            raise DataError(
                f"{path}, line {number}: field {columns.item!r}: item {item!r} is not in the catalogue "
                "(add it with --items first)."
            )
        timestamp = _number(record.get(columns.timestamp), path, number, columns.timestamp)
        rating = _number(record.get(columns.rating), path, number, str(columns.rating)) if has_ratings else None
        rows.append((user, item, timestamp, rating))
    if not rows:
        raise DataError(f"{path}: the file holds no interactions.")
    users_, items_, times_, ratings_ = zip(*rows)
    return NewEvents.of(users_, items_, times_, ratings_ if has_ratings else None, source)


# ---------------------------------------------------------------- appending


def extend_catalog(catalog: Catalog, items: Sequence[Item]) -> Catalog:
    """The catalogue with ``items`` appended (existing rows unchanged, so arrays stay aligned)."""
    return Catalog(catalog.items + tuple(items), source="update") if items else catalog


def extend_dataset(dataset: Dataset, items: Sequence[Item], events: NewEvents) -> Dataset:
    """``dataset`` with ``items`` appended to its catalogue and ``events`` after its interactions.

    Existing item rows and event order are kept (the split breaks timestamp ties by file order,
    so appended events come after old ones at the same second). New users get new codes. Events
    without a rating get NaN when the dataset has ratings.
    """
    catalog = extend_catalog(dataset.catalog, items)
    if not len(events):
        return dataset if catalog is dataset.catalog else replace(dataset, catalog=catalog)
    old = dataset.interactions
    missing = [item for item in np.unique(events.items) if item not in catalog.index]
    if missing:
        raise DataError(f"update: item {str(missing[0])!r} is not in the catalogue (field 'item_id').")
    rows = np.fromiter((catalog.index[item] for item in events.items), dtype=np.int64, count=len(events))
    order = np.argsort(old.user_ids)
    sorted_ids = old.user_ids[order]
    position = np.clip(np.searchsorted(sorted_ids, events.users), 0, max(len(sorted_ids) - 1, 0))
    found = (sorted_ids[position] == events.users) if len(sorted_ids) else np.zeros(len(events), dtype=bool)
    fresh = np.unique(events.users[~found])
    vocabulary = np.concatenate([old.user_ids.astype(str), fresh.astype(str)])
    codes = np.where(found, order[position] if len(order) else 0, 0).astype(np.int64)
    codes[~found] = len(old.user_ids) + np.searchsorted(fresh, events.users[~found])
    ratings = None
    if old.ratings is not None:
        ratings = np.concatenate([old.ratings, _ratings_or_nan(events).astype(old.ratings.dtype)])
    interactions = Interactions(
        np.concatenate([old.user_codes.astype(np.int64), codes]),
        np.concatenate([old.items.astype(np.int64), rows]),
        np.concatenate([old.timestamps.astype(np.float64), events.timestamps]),
        ratings,
        user_ids=vocabulary,
    )
    return replace(dataset, catalog=catalog, interactions=interactions)
