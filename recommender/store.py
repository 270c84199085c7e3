"""SQLite store for chat sessions, turns, items shown, feedback and each session's saved state.

The file runs in WAL mode, so readers never block the writer. Every write is one short
``BEGIN IMMEDIATE`` transaction on a short-lived connection with a busy timeout: concurrent
threads and processes queue for the write lock instead of failing, and a crash in the middle of
a turn rolls back that turn alone. Pure standard library.

    store = FeedbackStore("~/.cache/llm-recommender/feedback.sqlite")
    session = store.start_session(user_id="196")
    store.record_turn(session, "no horror", reply, shown=[("100", 0.9)], state=state.to_json(),
                      model="SmolLM2-135M-Instruct", template_version="rank@1")
    store.record_feedback(session, user_id="196", item_id="100", action="like", model=..., template_version=...)
    store.export_feedback("feedback.jsonl")   # recommender feedback export --output feedback.jsonl
    store.record_interactions("196", ["100"], source="chat:like", session_id=session)  # appended history

Schema changes are additive only (``CREATE ... IF NOT EXISTS``): opening a file written by an
older version adds the new tables and keeps every row.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

ACTIONS = ("like", "dislike", "seen")
LABELS = {"like": 1, "dislike": 0}
BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for the lock before giving up
SCHEMA_VERSION = 3  # 2: ``interactions`` (events appended with their source); 3: ``turn_history``; each additive
HISTORY_KEPT = 200  # most recent history items stored per turn: the longest any stage reads (the sequential model's)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    time REAL NOT NULL,
    message TEXT NOT NULL,
    reply TEXT NOT NULL,
    model TEXT,
    template_version TEXT
);
CREATE TABLE IF NOT EXISTS shown (
    turn_id INTEGER NOT NULL REFERENCES turns(id),
    rank INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    score REAL,
    PRIMARY KEY (turn_id, rank)
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT REFERENCES sessions(id),
    user_id TEXT,
    item_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ({", ".join(repr(a) for a in ACTIONS)})),
    time REAL NOT NULL,
    model TEXT,
    template_version TEXT
);
CREATE TABLE IF NOT EXISTS interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    time REAL NOT NULL,
    source TEXT NOT NULL,
    session_id TEXT REFERENCES sessions(id)
);
CREATE TABLE IF NOT EXISTS turn_history (
    turn_id INTEGER NOT NULL REFERENCES turns(id),
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (turn_id, position)
);
CREATE INDEX IF NOT EXISTS turns_session ON turns(session_id);
CREATE INDEX IF NOT EXISTS feedback_session ON feedback(session_id);
CREATE INDEX IF NOT EXISTS interactions_user ON interactions(user_id, id);
PRAGMA user_version = {SCHEMA_VERSION};
"""

# Each feedback row (in the order stored; "seen" only when asked) with the latest turn of its session at
# or before it that showed its item, then one row per item that turn listed: its shown items in rank
# order, then its history oldest first. Each part joins on a primary key (turn_id, ...).
_RECORDS = """
WITH matched AS (
    SELECT f.*, (
        SELECT t.id FROM turns t JOIN shown s ON s.turn_id = t.id
        WHERE t.session_id = f.session_id AND s.item_id = f.item_id AND t.time <= f.time
        ORDER BY t.id DESC LIMIT 1
    ) AS turn_id
    FROM feedback f WHERE ? OR f.action != 'seen'
)
SELECT id, 0 AS part, 0 AS position, NULL AS listed, user_id, item_id, action, time, model, template_version,
       session_id FROM matched
UNION ALL
SELECT m.id, 1, s.rank, s.item_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM matched m JOIN shown s ON s.turn_id = m.turn_id
UNION ALL
SELECT m.id, 2, h.position, h.item_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM matched m JOIN turn_history h ON h.turn_id = m.turn_id
ORDER BY id, part, position
"""


class StoreError(RuntimeError):
    """The store could not be opened or written; the message names the file."""


class _HasJson(Protocol):
    def to_json(self) -> str: ...


def default_db_path() -> Path:
    """``$RECOMMENDER_DB``, else ``~/.cache/llm-recommender/feedback.sqlite``."""
    env = os.environ.get("RECOMMENDER_DB")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "llm-recommender" / "feedback.sqlite"


def _state_text(state: str | _HasJson | None) -> str | None:
    return state if state is None or isinstance(state, str) else state.to_json()


class FeedbackStore:
    """Sessions, turns, shown items and feedback in one SQLite file; safe across threads and processes."""

    def __init__(self, path: str | Path | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.busy_timeout_ms = busy_timeout_ms
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connection() as conn:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode!r}).")
                conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"{self.path}: cannot open the feedback store ({error}).") from None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # A connection per operation: nothing is shared between threads or across a fork.
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on exit, rolled back on any exception."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def journal_mode(self) -> str:
        with self._connection() as conn:
            return conn.execute("PRAGMA journal_mode").fetchone()[0]

    # ------------------------------------------------------------ writes

    def start_session(
        self, user_id: str | None = None, state: str | _HasJson | None = None, session_id: str | None = None
    ) -> str:
        """Create a session (a new random id unless given) and return its id."""
        session = session_id or uuid.uuid4().hex
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO sessions (id, user_id, created, updated, state) VALUES (?, ?, ?, ?, ?)",
                (session, None if user_id is None else str(user_id), now, now, _state_text(state)),
            )
        return session

    def record_turn(
        self,
        session_id: str,
        message: str,
        reply: str,
        shown: Sequence[Any] = (),
        state: str | _HasJson | None = None,
        model: str | None = None,
        template_version: str | None = None,
        history: Sequence[str] = (),
    ) -> int:
        """Store one chat turn, the items it showed and the session's new state, all or nothing.

        Args:
            shown: the ranked items, best first: ``Recommendation`` objects, ``(item_id, score)`` pairs
                or plain item ids.
            history: the item ids the list was ranked from, oldest first (the last ``HISTORY_KEPT``
                are kept): fine-tuning on this turn's feedback renders the prompt the person saw.
            state: the conversation state after the turn (``ConversationState`` or its JSON).
        Returns:
            The turn's id.
        """
        now = time.time()
        with self.transaction() as conn:
            self._require_session(conn, session_id)
            cursor = conn.execute(
                "INSERT INTO turns (session_id, time, message, reply, model, template_version) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, now, str(message), str(reply), model, template_version),
            )
            turn_id = int(cursor.lastrowid)
            for rank, entry in enumerate(shown, start=1):
                item_id, score = _shown_entry(entry)
                conn.execute(
                    "INSERT INTO shown (turn_id, rank, item_id, score) VALUES (?, ?, ?, ?)",
                    (turn_id, rank, item_id, score),
                )
            kept = [str(item) for item in history][-HISTORY_KEPT:]
            conn.executemany(
                "INSERT INTO turn_history (turn_id, position, item_id) VALUES (?, ?, ?)",
                [(turn_id, position, item) for position, item in enumerate(kept)],
            )
            if state is not None:
                conn.execute(
                    "UPDATE sessions SET state = ?, updated = ? WHERE id = ?", (_state_text(state), now, session_id)
                )
        return turn_id

    def save_state(self, session_id: str, state: str | _HasJson) -> None:
        """Replace the session's saved conversation state."""
        with self.transaction() as conn:
            self._require_session(conn, session_id)
            conn.execute(
                "UPDATE sessions SET state = ?, updated = ? WHERE id = ?", (_state_text(state), time.time(), session_id)
            )

    def record_feedback(
        self,
        session_id: str | None,
        user_id: str | None,
        item_id: str,
        action: str,
        model: str | None = None,
        template_version: str | None = None,
        timestamp: float | None = None,
    ) -> int:
        """Store one like / dislike / seen on an item; returns the feedback id."""
        if action not in ACTIONS:
            raise ValueError(f"feedback action {action!r} is not one of {', '.join(ACTIONS)}.")
        if item_id is None or str(item_id).strip() == "":
            raise ValueError("feedback needs an item_id.")
        with self.transaction() as conn:
            if session_id is not None:
                self._require_session(conn, session_id)
            cursor = conn.execute(
                "INSERT INTO feedback (session_id, user_id, item_id, action, time, model, template_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, None if user_id is None else str(user_id), str(item_id), action,
                 time.time() if timestamp is None else float(timestamp), model, template_version),
            )  # fmt: skip
        return int(cursor.lastrowid)

    def record_interactions(
        self,
        user_id: str | int,
        item_ids: Sequence[str | int],
        source: str,
        session_id: str | None = None,
        timestamp: float | None = None,
    ) -> list[int]:
        """Append interactions of a known user (a like, a "seen", an imported event) with their
        ``source``, all in one transaction; returns their ids (increasing: the replay order)."""
        if user_id is None or str(user_id).strip() == "":
            raise ValueError("interactions need a user_id (anonymous sessions have no history to append to).")
        if not str(source or "").strip():
            raise ValueError("interactions need a source, e.g. 'chat:like'.")
        if isinstance(item_ids, str):
            raise ValueError("item_ids must be a list of item ids, not one string.")
        items = [str(i).strip() for i in item_ids]
        if any(not i for i in items):
            raise ValueError("every interaction needs an item_id.")
        now = time.time() if timestamp is None else float(timestamp)
        ids = []
        with self.transaction() as conn:
            if session_id is not None:
                self._require_session(conn, session_id)
            for item in items:
                cursor = conn.execute(
                    "INSERT INTO interactions (user_id, item_id, time, source, session_id) VALUES (?, ?, ?, ?, ?)",
                    (str(user_id), item, now, str(source), session_id),
                )
                ids.append(int(cursor.lastrowid))
        return ids

    @staticmethod
    def _require_session(conn: sqlite3.Connection, session_id: str) -> None:
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
            raise KeyError(f"session {session_id!r} is not in the store")

    # ------------------------------------------------------------ reads

    def load_state(self, session_id: str) -> str | None:
        """The session's saved state JSON (None when none was saved); ``KeyError`` for an unknown session."""
        with self._connection() as conn:
            row = conn.execute("SELECT state FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise KeyError(f"session {session_id!r} is not in the store")
        return row["state"]

    def session(self, session_id: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return dict(row) if row else None

    def turns(self, session_id: str) -> list[dict[str, Any]]:
        """The session's turns, oldest first, each with ``shown``: item ids in rank order."""
        with self._connection() as conn:
            rows = [
                dict(r) for r in conn.execute("SELECT * FROM turns WHERE session_id = ? ORDER BY id", (session_id,))
            ]
            for row in rows:
                shown = conn.execute("SELECT item_id FROM shown WHERE turn_id = ? ORDER BY rank", (row["id"],))
                row["shown"] = [r["item_id"] for r in shown]
        return rows

    def feedback(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """Feedback rows in the order they were stored, for one session or all."""
        query, args = "SELECT * FROM feedback ORDER BY id", ()
        if session_id is not None:
            query, args = "SELECT * FROM feedback WHERE session_id = ? ORDER BY id", (session_id,)
        with self._connection() as conn:
            return [dict(row) for row in conn.execute(query, args)]

    def appended_interactions(self, user_id: str | int | None = None, after_id: int = 0) -> list[dict[str, Any]]:
        """Appended interactions in the order they were stored, for one user or all, with an id above ``after_id``."""
        query, args = "SELECT * FROM interactions WHERE id > ?", [int(after_id)]
        if user_id is not None:
            query, args = query + " AND user_id = ?", args + [str(user_id)]
        with self._connection() as conn:
            return [dict(row) for row in conn.execute(query + " ORDER BY id", args)]

    def schema_version(self) -> int:
        with self._connection() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Rows per table, for status lines and tests."""
        with self._connection() as conn:
            tables = ("sessions", "turns", "shown", "feedback", "interactions", "turn_history")
            return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}

    def feedback_records(self, include_seen: bool = False) -> list[dict[str, Any]]:
        """Feedback as fine-tuning records: the export's fields plus ``session_id`` and ``shown``, the
        item ids of the session's latest turn at or before the feedback that showed the item (empty
        when none did), and that turn's ``history`` when it stored one (turns before schema 3 did not).

        One query (``_RECORDS``): a row per feedback, then a row per item its turn listed, grouped here.
        """
        records: dict[int, dict[str, Any]] = {}
        with self._connection() as conn:
            for row in conn.execute(_RECORDS, (int(include_seen),)):
                if row["part"] == 0:
                    records[row["id"]] = {
                        "user_id": row["user_id"], "item_id": row["item_id"], "label": LABELS.get(row["action"], 1),
                        "action": row["action"], "timestamp": row["time"], "model": row["model"],
                        "template_version": row["template_version"], "session_id": row["session_id"], "shown": [],
                    }  # fmt: skip
                elif row["part"] == 1:
                    records[row["id"]]["shown"].append(row["listed"])
                else:
                    records[row["id"]].setdefault("history", []).append(row["listed"])
        return list(records.values())

    def export_feedback(self, path: str | Path, include_seen: bool = False) -> int:
        """Write feedback as JSONL for fine-tuning; returns the number of lines written.

        One object per line: ``user_id``, ``item_id``, ``label`` (1 like, 0 dislike), ``action``,
        ``timestamp`` (Unix seconds), ``model``, ``template_version``, and what fine-tuning needs to
        rebuild the example: ``session_id``, ``shown`` (the list the item was shown in, best first;
        empty when none) and ``history`` when the turn stored it. "seen" rows are implicit positives
        (label 1) and are written only with ``include_seen``. The file is written to a temporary
        name and renamed, so a reader never sees half of it.
        """
        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        written = 0
        with open(temporary, "w", encoding="utf-8") as out:
            for record in self.feedback_records(include_seen):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
        os.replace(temporary, target)
        return written


def with_stored_interactions(history: Sequence[str], store: Any, user_id: str, catalog: Any) -> list[str]:
    """``history`` followed by the items stored for ``user_id`` that it does not hold yet, in the
    order they were stored; ids the catalogue does not know are left out.

    ``store`` is anything with ``appended_interactions(user_id=)`` (a ``FeedbackStore``); ``catalog``
    anything that answers ``item_id in catalog``. The chat calls it when a known user opens a session."""
    history = list(history)
    seen = set(history)
    for row in store.appended_interactions(user_id=user_id):
        item = str(row["item_id"])
        if item in catalog and item not in seen:
            history.append(item)
            seen.add(item)
    return history


def _shown_entry(entry: Any) -> tuple[str, float | None]:
    """(item id, score) from a Recommendation, a pair or a bare id."""
    if hasattr(entry, "item_id"):
        return str(entry.item_id), float(entry.score)
    if isinstance(entry, (tuple, list)):
        item_id, score = entry
        return str(item_id), None if score is None else float(score)
    return str(entry), None
