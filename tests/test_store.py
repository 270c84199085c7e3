"""The SQLite feedback store: round trips, WAL, concurrent writers, a crash mid-turn, export."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading

import pytest

from recommender.cli import main as cli_main
from recommender.protocols import Recommendation
from recommender.store import FeedbackStore, default_db_path


@pytest.fixture
def store(tmp_path):
    return FeedbackStore(tmp_path / "feedback.sqlite")


def rec(item_id: str, score: float) -> Recommendation:
    return Recommendation(item_id, f"Film {item_id}", score, score, None, "rank@1")


def test_wal_mode_is_on(store):
    assert store.journal_mode() == "wal"


def test_session_turn_state_round_trip(store):
    session = store.start_session(user_id="196", state='{"page": 0}')
    assert store.load_state(session) == '{"page": 0}'
    turn = store.record_turn(
        session, "no horror", "Here are 2 picks", shown=[rec("100", 0.9), ("50", 0.5), "12"],
        state='{"page": 1}', model="smollm2", template_version="rank@1",
    )  # fmt: skip
    (row,) = store.turns(session)
    assert row["id"] == turn and row["message"] == "no horror" and row["reply"] == "Here are 2 picks"
    assert row["shown"] == ["100", "50", "12"]
    assert (row["model"], row["template_version"]) == ("smollm2", "rank@1")
    assert store.load_state(session) == '{"page": 1}'
    assert store.session(session)["user_id"] == "196"


def test_state_survives_reopening(tmp_path):
    path = tmp_path / "f.sqlite"
    session = FeedbackStore(path).start_session(None)
    FeedbackStore(path).save_state(session, '{"query": "heist"}')
    assert FeedbackStore(path).load_state(session) == '{"query": "heist"}'


def test_unknown_session_and_bad_action_are_refused(store):
    with pytest.raises(KeyError, match="nope"):
        store.record_turn("nope", "hi", "hello")
    with pytest.raises(KeyError):
        store.load_state("nope")
    session = store.start_session("1")
    with pytest.raises(ValueError, match="not one of"):
        store.record_feedback(session, "1", "100", "love")
    with pytest.raises(ValueError, match="item_id"):
        store.record_feedback(session, "1", "", "like")
    assert store.counts()["feedback"] == 0


def test_crash_mid_turn_loses_only_that_turn(store):
    session = store.start_session("7", state="before")
    store.record_turn(session, "first", "ok", shown=[("1", 1.0)], state="after first")
    # The third shown entry is not a number: the turn row and two shown rows are already written
    # inside the transaction when it fails, and must all roll back.
    with pytest.raises(ValueError):
        store.record_turn(session, "second", "ok", shown=[("2", 1.0), ("3", 0.5), ("4", "oops")], state="bad")
    store.record_turn(session, "third", "ok", shown=[("5", 1.0)], state="after third")
    assert [t["message"] for t in store.turns(session)] == ["first", "third"]
    assert store.counts()["shown"] == 2
    assert store.load_state(session) == "after third"


def test_exception_inside_a_transaction_rolls_back(store):
    session = store.start_session("7")
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            sql = "INSERT INTO feedback (session_id, user_id, item_id, action, time) VALUES (?, '7', '1', 'like', 0)"
            conn.execute(sql, (session,))
            raise RuntimeError("the app died here")
    assert store.feedback() == []


def _write_many(path: str, worker: int, n: int) -> None:
    store = FeedbackStore(path)
    session = store.start_session(f"user{worker}")
    for i in range(n):
        store.record_feedback(session, f"user{worker}", f"{worker}-{i}", "like" if i % 2 else "dislike")


def test_eight_threads_lose_no_writes(store):
    threads = [threading.Thread(target=_write_many, args=(str(store.path), w, 50)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = store.feedback()
    assert len(rows) == 400
    assert len({row["item_id"] for row in rows}) == 400
    assert store.counts()["sessions"] == 8


def test_two_processes_lose_no_writes(store):
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_write_many, args=(str(store.path), w, 50)) for w in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len({row["item_id"] for row in store.feedback()}) == 100


def test_export_feedback_jsonl(store, tmp_path):
    session = store.start_session("196")
    store.record_feedback(session, "196", "100", "like", model="smollm2", template_version="rank@1", timestamp=10.0)
    store.record_feedback(session, "196", "50", "dislike", model="smollm2", template_version="rank@1", timestamp=11.0)
    store.record_feedback(session, "196", "12", "seen", timestamp=12.0)
    store.record_feedback(None, None, "7", "like", timestamp=13.0)  # anonymous person
    out = tmp_path / "out" / "feedback.jsonl"
    assert store.export_feedback(out) == 3
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {
        "user_id": "196", "item_id": "100", "label": 1, "action": "like", "timestamp": 10.0,
        "model": "smollm2", "template_version": "rank@1", "session_id": session, "shown": [],
    }  # fmt: skip
    assert [(line["item_id"], line["label"]) for line in lines] == [("100", 1), ("50", 0), ("7", 1)]
    assert lines[2]["user_id"] is None
    assert store.export_feedback(out, include_seen=True) == 4
    assert json.loads(out.read_text().splitlines()[2])["label"] == 1


def test_feedback_export_command(store, tmp_path, capsys):
    store.record_feedback(store.start_session("1"), "1", "100", "like")
    out = tmp_path / "f.jsonl"
    assert cli_main(["feedback", "export", "--db", str(store.path), "--output", str(out)]) == 0
    assert "wrote 1 feedback records" in capsys.readouterr().out
    assert json.loads(out.read_text())["item_id"] == "100"


def test_feedback_export_command_missing_db(tmp_path, capsys):
    assert cli_main(["feedback", "export", "--db", str(tmp_path / "none.sqlite"), "--output", "x.jsonl"]) == 2
    assert "no feedback store" in capsys.readouterr().err


def test_default_db_path_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOMMENDER_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("RECOMMENDER_DB")
    assert default_db_path().name == "feedback.sqlite"


def test_user_text_is_stored_verbatim(store):
    session = store.start_session("1")
    nasty = "'); DROP TABLE turns; -- <script>😀 שלום"
    store.record_turn(session, nasty, nasty)
    assert store.turns(session)[0]["message"] == nasty
    assert sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 1


def _records_row_by_row(store: FeedbackStore, include_seen: bool) -> list[dict]:
    """The records as the store built them before issue 30: three queries per feedback row."""
    records = []
    with sqlite3.connect(store.path) as conn:
        for user, item, action, when, model, version, session in conn.execute(
            "SELECT user_id, item_id, action, time, model, template_version, session_id FROM feedback ORDER BY id"
        ):
            if action == "seen" and not include_seen:
                continue
            turn = conn.execute(
                "SELECT t.id FROM turns t JOIN shown s ON s.turn_id = t.id WHERE t.session_id = ? "
                "AND s.item_id = ? AND t.time <= ? ORDER BY t.id DESC LIMIT 1",
                (session, item, when),
            ).fetchone()
            shown, history = [], []
            if turn is not None:
                shown = [r[0] for r in conn.execute("SELECT item_id FROM shown WHERE turn_id = ? ORDER BY rank", turn)]
                history = [
                    r[0]
                    for r in conn.execute("SELECT item_id FROM turn_history WHERE turn_id = ? ORDER BY position", turn)
                ]
            records.append({
                "user_id": user, "item_id": item, "label": {"like": 1, "dislike": 0}.get(action, 1), "action": action,
                "timestamp": when, "model": model, "template_version": version, "session_id": session, "shown": shown,
                **({"history": history} if history else {}),
            })  # fmt: skip
    return records


def test_feedback_records_come_from_one_query_and_match_the_row_by_row_build(store, monkeypatch):
    first, second = store.start_session("1"), store.start_session("2")
    store.record_turn(first, "a", "r", shown=["10", "11", "12"], history=["1", "2"])
    store.record_turn(first, "b", "r", shown=["12", "13"])  # no history: a turn stored before schema 3
    store.record_turn(first, "c", "r", shown=["11", "10"], history=["3"])
    store.record_turn(second, "d", "r", shown=[("10", 0.5), ("14", 0.4)], history=["9", "8", "7"])
    with sqlite3.connect(store.path) as conn:  # turn times 100, 200, 300, 400
        conn.execute("UPDATE turns SET time = id * 100")
    for session, user, item, action, when in [
        (first, "1", "10", "like", 150.0),  # first turn
        (first, "1", "12", "dislike", 250.0),  # second turn (latest that showed 12), no history
        (first, "1", "10", "seen", 350.0),  # third turn
        (first, "1", "13", "like", 50.0),  # before any turn: shown []
        (first, "1", "14", "like", 450.0),  # shown only in another session
        (second, "2", "10", "dislike", 400.0),  # at the turn's own time
        (None, None, "10", "like", 500.0),  # anonymous
    ]:
        store.record_feedback(session, user, item, action, timestamp=when)
    statements = []
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    for include_seen in (False, True):
        expected = _records_row_by_row(store, include_seen)
        monkeypatch.setattr(sqlite3, "connect", traced)
        statements.clear()
        assert store.feedback_records(include_seen) == expected
        monkeypatch.setattr(sqlite3, "connect", connect)
        assert sum(not s.lstrip().upper().startswith("PRAGMA") for s in statements) == 1
    assert [r["shown"] for r in expected] == [["10", "11", "12"], ["12", "13"], ["11", "10"], [], [], ["10", "14"], []]
    assert [r.get("history") for r in expected] == [["1", "2"], None, ["3"], None, None, ["9", "8", "7"], None]
