"""Per-user bench rows in a JSON-lines file that a killed run resumes from, and the report they give.

rows = measured_rows(users, lambda user: {...}, "rows.jsonl")   # skips users already stored
emit(report, "report.md")                                        # print, and write when asked
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def read_rows(path: str | Path | None) -> list[dict]:
    """The rows stored at ``path`` (none when there is no such file)."""
    if not path or not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def measured_rows(users: Sequence[str], measure: Callable[[str], dict], out: str | Path | None) -> list[dict]:
    """The stored rows, then ``measure(user)`` for every user not stored yet, each appended to ``out``
    as it is measured (one line a user; progress and each row's ``seconds`` on stderr)."""
    rows = read_rows(out)
    done = {row["user"] for row in rows}
    for user in (u for u in users if u not in done):
        rows.append(measure(user))
        if out:
            with open(out, "a") as stream:
                stream.write(json.dumps(rows[-1]) + "\n")
        print(f"[{len(rows)}/{len(users)}] user {user}: {rows[-1]['seconds']:.1f}s", file=sys.stderr, flush=True)
    return rows


def without(users: Sequence[str], paths: Sequence[str | Path]) -> list[str]:
    """``users`` less those with rows in any of ``paths`` (a rule chosen on them is checked on others)."""
    stored = {row["user"] for path in paths for row in read_rows(path)}
    return [u for u in users if u not in stored]


def shard(users: Sequence[str], spec: str) -> list[str]:
    """Every N-th of ``users`` from the K-th, for ``spec`` "K/N" (runs side by side, one output each;
    their rows concatenated are the whole run's)."""
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise SystemExit(f"--shard must look like K/N (for example 0/2), got {spec!r}.") from None
    if not 0 <= k < n:
        raise SystemExit(f"--shard K/N needs 0 <= K < N, got {spec!r}.")
    return list(users)[k::n]


def emit(report: str, md: str | Path | None) -> int:
    """Print ``report`` and write it to ``md`` when given; 0, the exit status."""
    print(report)
    if md:
        Path(md).write_text(report)
    return 0
