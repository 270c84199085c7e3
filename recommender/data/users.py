"""User attributes (age, gender, occupation, ...) for group reports and new-user profiles.

From RecBole's ``<name>.user`` (``user_id:token, age:float, gender:token, occupation:token,
zip_code:token``, tab-separated) or a generic CSV whose columns a ``UserColumnMap`` names. Checked
like every other file: one ``DataError`` sentence naming the file, line and field. Rows of users
who have no interactions are dropped and counted. Pure numpy / pyarrow.

    users = load_users("ml-100k.user", dataset.interactions)
    users.value("1", "occupation")        # 'technician'
    age_band(users.value("1", "age"))     # '<25'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from recommender.data.catalog import DataError, Interactions
from recommender.data.columnar import data_line
from recommender.data.knowledge import read_id_table

AGE_BANDS = ((25, "<25"), (35, "25-34"), (45, "35-44"))  # (upper bound, label); older: "45+"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class UserColumnMap:
    """Which columns of a user file hold what."""

    user: str = field(default="user_id", metadata={"help": "column of the user id"})
    numeric: tuple[str, ...] = field(
        default=("age",), metadata={"help": "columns read as numbers (RecBole ':float' columns are too)"}
    )
    keep: tuple[str, ...] = field(default=(), metadata={"help": "attribute columns to keep; empty: all of them"})


def age_band(age: float | None) -> str:
    """ "<25", "25-34", "35-44", "45+", or "unknown" for a missing age."""
    if age is None or (isinstance(age, float) and math.isnan(age)):
        return UNKNOWN
    for upper, label in AGE_BANDS:
        if age < upper:
            return label
    return "45+"


@dataclass(frozen=True, eq=False)
class UserAttributes:
    """Attribute columns of the users who have interactions, in file order.

    ``data[column]`` is a [U] array aligned with ``user_ids``: float64 (NaN when missing) for
    numeric columns, str ('' when missing) for the others.
    """

    user_ids: np.ndarray  # [U] str
    columns: tuple[str, ...]
    data: Mapping[str, np.ndarray]
    numeric: frozenset[str] = frozenset()
    absent_users: int = 0  # rows dropped: the user has no interactions
    missing_users: int = 0  # users with interactions but no row

    def __len__(self) -> int:
        return len(self.user_ids)

    def __contains__(self, user_id: object) -> bool:
        return str(user_id) in self._index

    @cached_property
    def _index(self) -> dict[str, int]:
        # Built on first use: a million users cost a dict only when someone asks.
        return {user_id: row for row, user_id in enumerate(self.user_ids.tolist())}

    def value(self, user_id: str, column: str) -> str | float | None:
        """The user's value in ``column``; None when the user has no row or the value is missing."""
        if column not in self.data:
            raise KeyError(f"no user attribute {column!r}; known: {', '.join(self.columns)}")
        row = self._index.get(str(user_id))
        if row is None:
            return None
        value = self.data[column][row]
        if column in self.numeric:
            return None if math.isnan(value) else float(value)
        return str(value) or None

    def column(self, column: str) -> dict[str, str | float]:
        """user id -> value of ``column``, users with a missing value left out."""
        return {user: value for user in self.user_ids.tolist() if (value := self.value(user, column)) is not None}

    def age_bands(self, column: str = "age") -> np.ndarray:
        """[U] ``age_band`` of every user (str)."""
        return np.array([age_band(age) for age in self.data[column].tolist()], dtype=str)


def load_users(
    path: str | Path, interactions: Interactions, columns: UserColumnMap = UserColumnMap(), encoding: str = "utf-8"
) -> UserAttributes:
    """Read and check a user file; rows of users without interactions are dropped and counted."""
    path = Path(path)
    table, header = read_id_table(path, {"user": (columns.user,)}, encoding, every=True)
    names = [name for name, _ in header]
    attributes = tuple(name for name in names if name != columns.user and (not columns.keep or name in columns.keep))
    unknown = [name for name in columns.keep if name not in names]
    if unknown:
        raise DataError(f"{path}, line 1: missing column {unknown[0]!r} (found: {', '.join(names)}).")
    numeric = frozenset(
        name for name, kind in header if name in attributes and (kind == "float" or name in columns.numeric)
    )
    users = table["user"]
    codes = users.codes
    _, first = np.unique(codes, return_index=True)
    if len(first) < len(codes):
        row = int(np.setdiff1d(np.arange(len(codes)), first)[0])
        duplicate = users.values[codes[row]]
        raise DataError(
            f"{path}, line {data_line(path, row)}: duplicate user id {duplicate!r} in field {columns.user!r}."
        )
    known = np.isin(np.array(users.values, dtype=str), interactions.user_ids)[codes]  # [R] rows whose user has events
    data = {}
    for name in attributes:
        column = table[name]
        values = np.array(column.values, dtype=str)
        if name in numeric:
            values = _numbers(values, column.codes, path, name)
        data[name] = values[column.codes][known]
    user_ids = np.array(users.values, dtype=str)[codes][known]
    return UserAttributes(
        user_ids=user_ids,
        columns=attributes,
        data=data,
        numeric=numeric,
        absent_users=int(len(known) - np.count_nonzero(known)),
        missing_users=int(interactions.n_users - len(user_ids)),
    )


def _numbers(values: np.ndarray, codes: np.ndarray, path: Path, name: str) -> np.ndarray:
    """Distinct strings -> float64 (blank: NaN, a missing value); a non-number names its first line."""
    out = np.full(len(values), np.nan)
    for index, text in enumerate(values.tolist()):
        if not text.strip():
            continue
        try:
            out[index] = float(text)
        except ValueError:
            row = int(np.flatnonzero(codes == index)[0])
            raise DataError(
                f"{path}, line {data_line(path, row)}: field {name!r} must be a number, got {text!r}."
            ) from None
    return out
