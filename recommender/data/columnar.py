"""Columnar reading of delimited interaction files (pyarrow.csv), with the line-numbered checks
kept as the error path.

The happy path parses the file once in C (multi-threaded), dictionary-encodes id columns
(integer codes plus one string per distinct id) and checks numeric columns as arrays. Only when
pyarrow refuses the file or an array check fails is the file read again, to name the first bad
line: it is cut into blocks at line ends, each block parsed by pyarrow again, and only the first
block that fails is walked line by line in Python. A 50M-line file with one bad line is thus
never held twice, nor read line by line in Python on the happy path.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from recommender.data.catalog import DataError

ID, NUMBER = "id", "number"
LOCATE_BLOCK_BYTES = 64 << 20  # a block of the error-path scan: parsed by pyarrow, walked in Python only if bad


@dataclass(frozen=True)
class Layout:
    """Where the table sits in a file: delimiter, quoting, header and column names."""

    path: Path
    delimiter: str
    quoting: bool  # CSV double-quote rules (generic CSV); off for tab-separated atomic files
    n_columns: int
    header_line: int  # physical line number of the header; data starts after it
    encoding: str = "utf-8"


@dataclass(frozen=True)
class IdColumn:
    """A dictionary-encoded column: ``values[codes]`` are the strings of the file."""

    codes: np.ndarray  # [E] int32
    values: list[str]  # [distinct] the strings, in first-seen order per block


def number(value: object, path: Path, line: int, field: str) -> float:
    """``float(value)``, or a ``DataError`` naming the file, line and field (NaN is refused)."""
    try:
        parsed = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{path}, line {line}: field '{field}' must be a number, got {value!r}.") from None
    if parsed != parsed:  # NaN
        raise DataError(f"{path}, line {line}: field '{field}' must be a number, got {value!r}.")
    return parsed


def first_line(path: Path, encoding: str) -> tuple[int, str]:
    """(1-based number, text) of the first non-blank line, read without loading the file;
    raises for a missing file, an empty file or undecodable bytes on that line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    with path.open("rb") as handle:
        for number_, raw in enumerate(handle, start=1):
            text = _decode(raw.rstrip(b"\r\n"), path, number_, encoding)
            if text.strip():
                return number_, text.lstrip("\ufeff")
    raise DataError(f"{path}: the file is empty.")


def split_header(text: str, layout_delimiter: str, quoting: bool) -> list[str]:
    return next(csv.reader([text], delimiter=layout_delimiter)) if quoting else text.split(layout_delimiter)


def read_columns(layout: Layout, fields: Mapping[str, tuple[int, str]]) -> dict[str, IdColumn | np.ndarray]:
    """Read the columns named in ``fields`` (label -> (column position, ID or NUMBER)).

    Returns label -> ``IdColumn`` for ids and a [E] float64 array for numbers. Any parse error,
    empty or NaN number raises a ``DataError`` naming the first bad line and its field.
    """
    try:
        table = pacsv.read_csv(str(layout.path), **_options(layout, fields, skip_rows=layout.header_line))
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        _locate(layout, fields, str(error))
    if _bad_numbers(table, fields):
        _locate(layout, fields, "an empty or NaN number")
    out: dict[str, IdColumn | np.ndarray] = {}
    table = table.unify_dictionaries()
    for label, (_, kind) in fields.items():
        column = table.column(label)
        if kind == NUMBER:
            out[label] = column.to_numpy().astype(np.float64, copy=False)
        else:
            chunks = [chunk.indices.to_numpy(zero_copy_only=False) for chunk in column.chunks]
            codes = np.concatenate(chunks).astype(np.int32, copy=False) if chunks else np.zeros(0, np.int32)
            values = column.chunk(0).dictionary.to_pylist() if column.num_chunks else []
            out[label] = IdColumn(codes, values)
        del column
    return out


# ---------------------------------------------------------------- pyarrow options and checks


def _options(layout: Layout, fields: Mapping[str, tuple[int, str]], skip_rows: int) -> dict:
    names = [f"_c{position}" for position in range(layout.n_columns)]
    for label, (position, _) in fields.items():
        names[position] = label
    dictionary = pa.dictionary(pa.int32(), pa.string())
    return {
        "read_options": pacsv.ReadOptions(
            column_names=names, skip_rows=skip_rows, encoding=layout.encoding, block_size=16 << 20
        ),
        "parse_options": pacsv.ParseOptions(
            delimiter=layout.delimiter, quote_char='"' if layout.quoting else False, ignore_empty_lines=True
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types={label: dictionary if kind == ID else pa.float64() for label, (_, kind) in fields.items()},
            include_columns=list(fields),
            null_values=[""],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    }


def _bad_numbers(table: pa.Table, fields: Mapping[str, tuple[int, str]]) -> bool:
    for label, (_, kind) in fields.items():
        if kind != NUMBER:
            continue
        column = table.column(label)
        if column.null_count or any(np.isnan(chunk.to_numpy()).any() for chunk in column.chunks):
            return True
    return False


# ---------------------------------------------------------------- the error path


def _locate(layout: Layout, fields: Mapping[str, tuple[int, str]], reason: str) -> NoReturn:
    """Find and name the first bad line: blocks are re-parsed by pyarrow, and only the failing
    one is walked line by line. Never returns."""
    lines_before = 0
    with layout.path.open("rb") as handle:
        carry = b""
        while True:
            data = handle.read(LOCATE_BLOCK_BYTES)
            block = carry + data
            if not block:
                break
            cut = block.rfind(b"\n") + 1 if data else len(block)
            if cut == 0:  # one line longer than a block: read on
                carry = block
                continue
            body, carry = block[:cut], block[cut:]
            if not _block_parses(body, layout, fields, lines_before):
                _scan_block(body, layout, fields, lines_before)
            lines_before += body.count(b"\n")
    raise DataError(f"{layout.path}: could not be read as a table ({reason.strip()}).")


def _block_parses(body: bytes, layout: Layout, fields: Mapping[str, tuple[int, str]], lines_before: int) -> bool:
    skip = max(0, layout.header_line - lines_before)
    try:
        table = pacsv.read_csv(pa.BufferReader(body), **_options(layout, fields, skip_rows=skip))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return False
    return not _bad_numbers(table, fields)


def _scan_block(body: bytes, layout: Layout, fields: Mapping[str, tuple[int, str]], lines_before: int) -> None:
    """The former line-by-line checks, on one block: raise for the first bad line."""
    for offset, raw in enumerate(body.split(b"\n")):
        line = lines_before + offset + 1
        if line <= layout.header_line:
            continue
        text = _decode(raw.rstrip(b"\r"), layout.path, line, layout.encoding)
        if not text.strip():
            continue
        values = split_header(text, layout.delimiter, layout.quoting)
        if len(values) != layout.n_columns:
            _fail(layout.path, line, f"expected {layout.n_columns} fields, found {len(values)}.")
        for label, (position, kind) in fields.items():
            if kind == NUMBER:
                number(values[position], layout.path, line, label)


def _decode(raw: bytes, path: Path, line: int, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}, line {line}: undecodable bytes at column {error.start + 1} "
            f"(expected {encoding}; pass encoding= to read another)."
        ) from None


def _fail(path: Path, line: int, message: str) -> NoReturn:
    raise DataError(f"{path}, line {line}: {message}")


def data_line(path: Path, index: int) -> int:
    """Physical line of the ``index``-th data row (0-based) of a headed file, blank lines skipped
    as the columnar reader skips them. Only read on the error path."""
    seen = -1  # the header is the first non-blank line
    number = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                if seen == index:
                    return number
                seen += 1
    return number
