"""Loaders for the interaction formats people have: RecBole atomic files, MovieLens raw
files (100k ``u.data``/``u.item``, latest ``ratings.csv``/``movies.csv``, 1M ``.dat``),
and generic CSV or JSONL with a column mapping.

Every failure is a ``DataError`` whose message names the file, the line and the field.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from recommender.assets import find_ml100k
from recommender.data.catalog import Catalog, DataError, Interactions, Item, LoadReport, build_interactions
from recommender.data.columnar import ID, NUMBER, IdColumn, Layout, first_line, read_columns, split_header
from recommender.data.columnar import number as _number
from recommender.data.dataset import Dataset
from recommender.data.knowledge import load_knowledge
from recommender.data.users import load_users

MIN_EVAL_EVENTS = 3
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


@dataclass(frozen=True)
class ColumnMap:
    """Which columns of a generic file hold which field."""

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    rating: str | None = "rating"
    title: str = "title"
    year: str | None = "year"
    genres: str | None = "genres"
    genre_separator: str = "|"
    text: tuple[str, ...] = ()


# ---------------------------------------------------------------- low-level readers


def _lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) of non-blank lines; undecodable bytes name the line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the file is empty.")
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError as error:
            raise DataError(
                f"{path}, line {number}: undecodable bytes at column {error.start + 1} "
                f"(expected {encoding}; pass encoding= to read another)."
            ) from None
        if text.strip():
            yield number, text.lstrip("\ufeff") if number == 1 else text


def _split_rows(path: Path, separator: str, encoding: str) -> Iterator[tuple[int, list[str]]]:
    for number, text in _lines(path, encoding):
        yield number, text.split(separator)


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a headed CSV as dicts; the header is line 1."""
    lines = list(_lines(path, encoding))
    header_number, header_text = lines[0]
    header = next(csv.reader([header_text]))
    body = io.StringIO("\n".join(text for _, text in lines[1:]))
    for (number, _), values in zip(lines[1:], csv.reader(body)):
        if len(values) != len(header):
            raise DataError(f"{path}, line {number}: expected {len(header)} fields, found {len(values)}.")
        yield number, dict(zip(header, values))


def _jsonl_rows(path: Path, encoding: str) -> Iterator[tuple[int, dict]]:
    for number, text in _lines(path, encoding):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}, line {number}: expected a JSON object.")
        yield number, record


def _require_columns(path: Path, found: list[str] | set[str], needed: list[str]) -> None:
    missing = [name for name in needed if name not in found]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise DataError(f"{path}, line 1: missing column {names} (found: {', '.join(found)}).")


def _year(value: str | None) -> int | None:
    if value is None:
        return None
    match = re.search(r"(\d{4})", str(value))
    return int(match.group(1)) if match else None


def _title_and_year(raw: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995)."""
    match = _TITLE_YEAR.match(raw.strip())
    return (match.group(1), int(match.group(2))) if match else (raw.strip(), None)


def _finish(
    name: str,
    catalog: Catalog,
    rows: list[tuple[str, str, float, float | None]],
    has_ratings: bool,
    source: Path,
) -> Dataset:
    if not rows:
        raise DataError(f"{source}: the file has a header but no interactions.")
    interactions, dropped = build_interactions(rows, catalog, has_ratings)
    if len(interactions) == 0:
        raise DataError(f"{source}: none of the {dropped} interactions refers to an item in the catalogue.")
    counts = Counter(interactions.users.tolist())
    short = sum(1 for count in counts.values() if count < MIN_EVAL_EVENTS)
    report = LoadReport(unknown_item_events=dropped, short_history_users=short)
    return Dataset(name=name, catalog=catalog, interactions=interactions, report=report)


def _finish_columns(name: str, catalog: Catalog, columns: dict, source: Path) -> Dataset:
    """``_finish`` for columns from ``read_columns``: ids map to catalogue rows once per distinct
    id, events whose item is unknown are dropped and counted, users become integer codes."""
    users, items = columns["user"], columns["item"]
    assert isinstance(users, IdColumn) and isinstance(items, IdColumn)
    if not len(items.codes):
        raise DataError(f"{source}: the file has a header but no interactions.")
    rows_of = np.array([catalog.index.get(value, -1) for value in items.values], dtype=np.int64)
    rows = rows_of[items.codes]  # [E]
    keep = rows >= 0
    dropped = int(len(rows) - np.count_nonzero(keep))
    if dropped == len(rows):
        raise DataError(f"{source}: none of the {dropped} interactions refers to an item in the catalogue.")
    ratings = columns.get("rating")

    def kept(array: np.ndarray) -> np.ndarray:
        return array if not dropped else array[keep]

    interactions = Interactions(
        kept(users.codes),
        kept(rows),
        kept(columns["timestamp"]),
        None if ratings is None else kept(ratings).astype(np.float32),
        user_ids=np.array(users.values, dtype=str),
    )
    short = int(np.count_nonzero(np.bincount(interactions.user_codes) < MIN_EVAL_EVENTS))
    report = LoadReport(unknown_item_events=dropped, short_history_users=short)
    return Dataset(name=name, catalog=catalog, interactions=interactions, report=report)


def _read_events(
    path: Path, encoding: str, delimiter: str, quoting: bool, names: Mapping[str, str | None]
) -> tuple[dict, bool]:
    """Columnar read of an interactions file with a header; ``names`` maps user / item /
    timestamp / rating to header names (rating optional). Returns the columns and has_ratings."""
    header_line, text = first_line(path, encoding)
    header = split_header(text, delimiter, quoting)
    return _read_with_header(path, encoding, delimiter, quoting, header_line, header, names)


def _read_with_header(
    path: Path,
    encoding: str,
    delimiter: str,
    quoting: bool,
    header_line: int,
    header: list[str],
    names: Mapping[str, str | None],
) -> tuple[dict, bool]:
    position = {name: index for index, name in enumerate(header)}
    _require_columns(path, header, [names["user"], names["item"], names["timestamp"]])  # type: ignore[list-item]
    has_ratings = bool(names.get("rating")) and names["rating"] in position
    wanted = {"user": ID, "item": ID, "timestamp": NUMBER} | ({"rating": NUMBER} if has_ratings else {})
    layout = Layout(path, delimiter, quoting, len(header), header_line, encoding)
    # Error messages name the field as the file's header does ('rating', 'timestamp').
    fields = {label: (position[names[label]], kind) for label, kind in wanted.items()}  # type: ignore[index]
    columns = read_columns(layout, {_label(names, label): spec for label, spec in fields.items()})
    return {label: columns[_label(names, label)] for label in wanted}, has_ratings


def _label(names: Mapping[str, str | None], label: str) -> str:
    return str(names[label]) if label in ("timestamp", "rating") else f"{label}:{names[label]}"


# ---------------------------------------------------------------- RecBole atomic files


def _atomic_header(path: Path, header: list[str]) -> dict[str, int]:
    """'item_id:token' -> {'item_id': column}; every header field needs a type."""
    columns = {}
    for position, field in enumerate(header):
        name, _, kind = field.partition(":")
        if not kind:
            raise DataError(f"{path}, line 1: header field {field!r} lacks a ':type' suffix (e.g. 'item_id:token').")
        columns[name.strip()] = position
    return columns


def _first_present(columns: Mapping[str, int], names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in columns), None)


def load_recbole(folder: str | Path, name: str | None = None, encoding: str = "utf-8") -> Dataset:
    """Load ``<name>.inter`` and ``<name>.item`` from a RecBole atomic-file folder, plus the
    knowledge graph (``<name>.kg`` and ``<name>.link``) and user attributes (``<name>.user``)
    when the folder has them (``Dataset.knowledge`` / ``Dataset.users``, else None)."""
    folder = Path(folder)
    name = name or folder.name
    item_path, inter_path = folder / f"{name}.item", folder / f"{name}.inter"
    rows = _split_rows(item_path, "\t", encoding)
    _, header = next(rows)
    columns = _atomic_header(item_path, header)
    title_field = _first_present(columns, ("movie_title", "title", "name", "item_name"))
    _require_columns(item_path, list(columns), ["item_id", title_field or "title"])
    year_field = _first_present(columns, ("release_year", "year"))
    genre_field = _first_present(columns, ("class", "genre", "genres", "categories"))
    extra = [f for f in columns if f not in {"item_id", title_field, year_field, genre_field}]
    items = []
    for number, values in rows:
        if len(values) < len(columns):
            values = values + [""] * (len(columns) - len(values))
        item_id = values[columns["item_id"]].strip()
        if not item_id:
            raise DataError(f"{item_path}, line {number}: field 'item_id' is empty.")
        items.append(
            Item(
                id=item_id,
                title=values[columns[title_field]].strip(),
                year=_year(values[columns[year_field]]) if year_field else None,
                genres=tuple(values[columns[genre_field]].split()) if genre_field else (),
                attributes={f: values[columns[f]] for f in extra},
            )
        )
    catalog = Catalog(items, source=str(item_path))

    header_line, text = first_line(inter_path, encoding)
    header = text.split("\t")
    columns = _atomic_header(inter_path, header)
    names = {"user": "user_id", "item": "item_id", "timestamp": "timestamp", "rating": "rating"}
    plain = [field.partition(":")[0].strip() for field in header]
    events, _ = _read_with_header(inter_path, encoding, "\t", False, header_line, plain, names)
    return _with_side_files(_finish_columns(name, catalog, events, inter_path), folder, name, encoding)


def _with_side_files(dataset: Dataset, folder: Path, name: str, encoding: str) -> Dataset:
    """``dataset`` with the optional ``.kg`` + ``.link`` and ``.user`` files of its folder; their
    dropped rows are counted in the report. Without them the dataset is returned unchanged."""
    kg, link, user = (folder / f"{name}{suffix}" for suffix in (".kg", ".link", ".user"))
    knowledge = users = None
    notes = list(dataset.report.notes)
    if kg.is_file() and link.is_file():
        knowledge = load_knowledge(dataset.catalog, kg, link, encoding)
    elif kg.is_file() or link.is_file():
        found, lacking = (kg, link) if kg.is_file() else (link, kg)
        notes.append(f"{found.name} found without {lacking.name}: no knowledge graph loaded")
    if user.is_file():
        users = load_users(user, dataset.interactions, encoding=encoding)
    if knowledge is None and users is None and len(notes) == len(dataset.report.notes):
        return dataset
    report = replace(
        dataset.report,
        notes=tuple(notes),
        unknown_item_links=knowledge.unknown_item_links if knowledge is not None else 0,
        absent_user_rows=users.absent_users if users is not None else 0,
    )
    return replace(dataset, report=report, knowledge=knowledge, users=users)


# ---------------------------------------------------------------- MovieLens raw files


def load_movielens_100k_raw(folder: str | Path) -> Dataset:
    """``u.data`` (user, item, rating, timestamp; tabs) and ``u.item`` (pipes, latin-1)."""
    folder = Path(folder)
    item_path = folder / "u.item"
    items = []
    for number, values in _split_rows(item_path, "|", "latin-1"):
        if len(values) < 5 + len(ML100K_GENRES):
            raise DataError(
                f"{item_path}, line {number}: expected {5 + len(ML100K_GENRES)} fields, found {len(values)}."
            )
        flags = values[5 : 5 + len(ML100K_GENRES)]
        title, year = _title_and_year(values[1])
        genres = tuple(g for g, flag in zip(ML100K_GENRES, flags) if flag.strip() == "1")
        items.append(Item(id=values[0].strip(), title=title, year=year or _year(values[2]), genres=genres))
    catalog = Catalog(items, source=str(item_path))
    data_path = folder / "u.data"
    events = []
    for number, values in _split_rows(data_path, "\t", "latin-1"):
        if len(values) < 4:
            raise DataError(f"{data_path}, line {number}: expected 4 fields, found {len(values)}.")
        rating = _number(values[2], data_path, number, "rating")
        timestamp = _number(values[3], data_path, number, "timestamp")
        events.append((values[0].strip(), values[1].strip(), timestamp, rating))
    return _finish(folder.name or "ml-100k", catalog, events, True, data_path)


def _movies_from_rows(rows, path: Path, id_field: str, title_field: str, genre_field: str) -> Catalog:
    items = []
    for number, record in rows:
        title, year = _title_and_year(record[title_field])
        genres = tuple(g for g in record[genre_field].split("|") if g and g != "(no genres listed)")
        item_id = record[id_field].strip()
        if not item_id:
            raise DataError(f"{path}, line {number}: field '{id_field}' is empty.")
        items.append(Item(id=item_id, title=title, year=year, genres=genres))
    return Catalog(items, source=str(path))


def load_movielens_csv(folder: str | Path) -> Dataset:
    """MovieLens 'latest' layout: ``ratings.csv`` + ``movies.csv`` with headers."""
    folder = Path(folder)
    movies_path, ratings_path = folder / "movies.csv", folder / "ratings.csv"
    rows = list(_csv_rows(movies_path, "utf-8"))
    _require_columns(movies_path, list(rows[0][1]) if rows else [], ["movieId", "title", "genres"])
    catalog = _movies_from_rows(rows, movies_path, "movieId", "title", "genres")
    names = {"user": "userId", "item": "movieId", "timestamp": "timestamp", "rating": "rating"}
    header_line, text = first_line(ratings_path, "utf-8")
    _require_columns(ratings_path, split_header(text, ",", True), list(names.values()))
    events, _ = _read_events(ratings_path, "utf-8", ",", True, names)
    return _finish_columns(folder.name, catalog, events, ratings_path)


def load_movielens_dat(folder: str | Path) -> Dataset:
    """MovieLens 1M layout: ``ratings.dat`` + ``movies.dat``, '::'-separated, latin-1."""
    folder = Path(folder)
    movies_path, ratings_path = folder / "movies.dat", folder / "ratings.dat"
    movie_rows = []
    for number, values in _split_rows(movies_path, "::", "latin-1"):
        if len(values) != 3:
            raise DataError(f"{movies_path}, line {number}: expected 3 '::'-separated fields, found {len(values)}.")
        movie_rows.append((number, dict(zip(("id", "title", "genres"), values))))
    catalog = _movies_from_rows(movie_rows, movies_path, "id", "title", "genres")
    events = []
    for number, values in _split_rows(ratings_path, "::", "latin-1"):
        if len(values) != 4:
            raise DataError(f"{ratings_path}, line {number}: expected 4 '::'-separated fields, found {len(values)}.")
        rating = _number(values[2], ratings_path, number, "rating")
        timestamp = _number(values[3], ratings_path, number, "timestamp")
        events.append((values[0], values[1], timestamp, rating))
    return _finish(folder.name, catalog, events, True, ratings_path)


# ---------------------------------------------------------------- generic CSV / JSONL


def _records(path: Path, encoding: str) -> Iterator[tuple[int, Mapping]]:
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return _jsonl_rows(path, encoding)
    if path.suffix.lower() in {".csv", ".tsv"}:
        return _csv_rows(path, encoding)
    raise DataError(f"{path}: unsupported file type {path.suffix!r} (use .csv or .jsonl).")


def _field(record: Mapping, field: str, path: Path, number: int) -> object:
    if field not in record:
        raise DataError(f"{path}, line {number}: missing field {field!r}.")
    return record[field]


def load_generic(
    interactions_path: str | Path,
    catalog_path: str | Path,
    columns: ColumnMap = ColumnMap(),
    encoding: str = "utf-8",
    name: str | None = None,
) -> Dataset:
    """Interactions and catalogue from CSV or JSONL files, fields named by ``columns``."""
    catalog_path, interactions_path = Path(catalog_path), Path(interactions_path)
    items = []
    for number, record in _records(catalog_path, encoding):
        if number == 1 or not items:
            _require_columns(catalog_path, list(record), [columns.item, columns.title])
        genres: tuple[str, ...] = ()
        if columns.genres and record.get(columns.genres) not in (None, ""):
            raw = record[columns.genres]
            genres = (
                tuple(raw)
                if isinstance(raw, list)
                else tuple(g.strip() for g in str(raw).split(columns.genre_separator) if g.strip())
            )
        text = " ".join(str(record.get(field, "")) for field in columns.text).strip()
        item_id = str(_field(record, columns.item, catalog_path, number)).strip()
        if not item_id:
            raise DataError(f"{catalog_path}, line {number}: field {columns.item!r} is empty.")
        year = _year(record.get(columns.year)) if columns.year else None
        items.append(Item(id=item_id, title=str(record[columns.title]), year=year, genres=genres, text=text))
    catalog = Catalog(items, source=str(catalog_path))

    name = name or interactions_path.stem
    if interactions_path.suffix.lower() in {".csv", ".tsv"}:
        names = {"user": columns.user, "item": columns.item, "timestamp": columns.timestamp, "rating": columns.rating}
        # Like the former csv.reader path, .tsv files are read with commas too.
        found, _ = _read_events(interactions_path, encoding, ",", True, names)
        return _finish_columns(name, catalog, found, interactions_path)
    needed = [columns.user, columns.item, columns.timestamp]
    events = []
    has_ratings = False
    for index, (number, record) in enumerate(_records(interactions_path, encoding)):
        if index == 0:
            _require_columns(interactions_path, list(record), needed)
            has_ratings = bool(columns.rating) and columns.rating in record
        user = str(_field(record, columns.user, interactions_path, number))
        item = str(_field(record, columns.item, interactions_path, number))
        timestamp = _number(_field(record, columns.timestamp, interactions_path, number),
                            interactions_path, number, columns.timestamp)  # fmt: skip
        rating = None
        if has_ratings:
            value = _field(record, columns.rating, interactions_path, number)
            rating = _number(value, interactions_path, number, columns.rating)
        events.append((user, item, timestamp, rating))
    return _finish(name, catalog, events, has_ratings, interactions_path)


# ---------------------------------------------------------------- entry point

_BUILTIN = {"ml-100k"}


def load_dataset(name_or_path: str | Path) -> Dataset:
    """Load the built-in ``"ml-100k"`` or a folder in any MovieLens or RecBole layout."""
    if str(name_or_path) in _BUILTIN:
        folder = find_ml100k()
        if folder is None:
            raise DataError("ml-100k is not installed: run `pip install --no-deps recbole==1.2.1`.")
        return load_recbole(folder, "ml-100k")
    folder = Path(name_or_path)
    if not folder.is_dir():
        known = ", ".join(sorted(_BUILTIN))
        raise DataError(f"{folder}: not a built-in dataset ({known}) nor a folder.")
    if (folder / "u.data").exists():
        return load_movielens_100k_raw(folder)
    if (folder / "ratings.dat").exists():
        return load_movielens_dat(folder)
    if (folder / "ratings.csv").exists():
        return load_movielens_csv(folder)
    inter_files = sorted(folder.glob("*.inter"))
    if inter_files:
        return load_recbole(folder, inter_files[0].stem)
    raise DataError(
        f"{folder}: no known layout (expected u.data, ratings.dat, ratings.csv or <name>.inter); "
        "for other CSV or JSONL files use load_generic with a ColumnMap."
    )
