"""Load test of the chat: N concurrent gradio_client sessions x T turns, each turn followed by a thumbs-up.

    .venv/bin/python bench/chat_load.py                      # serves a retrieval-only app in-process
    .venv/bin/python bench/chat_load.py --url http://127.0.0.1:7860 --db ~/.cache/llm-recommender/feedback.sqlite

Retrieval only by default (the real hybrid retriever, no LLM), so 100 turns finish in about a
minute on 2 CPU cores; the LLM path is the same code with a slower recommend step. Checks: no
call fails, and every thumbs-up is a row in SQLite. Prints latency median / p95 per endpoint.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MESSAGES = ["something like Toy Story but no animation", "a funny 90s comedy", "no horror", "show me more",
            "more like Fargo"]  # fmt: skip


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent client sessions (default 20)")
    parser.add_argument("--turns", type=int, default=5, help="turns per session (default 5)")
    parser.add_argument("--url", default=None, help="a running app; default: serve one in-process")
    parser.add_argument("--db", default=None, help="its SQLite store (with --url), to count feedback rows")
    parser.add_argument("--with-llm", action="store_true", help="in-process app with the default LLM (slow)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=2, help="events served at once (recommender chat's default)")
    return parser


def serve(db: Path, with_llm: bool, concurrency: int) -> tuple[str, object]:
    """The app as ``recommender chat`` serves it (with the LLM: the base model writes the replies)."""
    from recommender.pipeline import Recommender
    from recommender.store import FeedbackStore
    from recommender.ui.app import build_app
    from recommender.ui.server import ChatServerConfig, reply_writer

    pipeline = Recommender.from_pretrained(retrieval_only=not with_llm)
    writer = reply_writer(pipeline, ChatServerConfig()) if with_llm else None
    demo = build_app(pipeline, FeedbackStore(db), llm_reply=with_llm, writer=writer)
    demo.queue(default_concurrency_limit=concurrency)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo.local_url, demo


def session_worker(url: str, index: int, turns: int, k: int, timings: dict, errors: list, liked: list) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
        session_id = ""
        for turn in range(turns):
            start = time.perf_counter()
            out = client.predict(message=MESSAGES[turn % len(MESSAGES)], user_id=str(1 + index), k=k,
                                 session_id=session_id, api_name="/chat")  # fmt: skip
            timings["chat"].append(time.perf_counter() - start)
            session_id = out["session_id"]
            if not out["items"]:
                errors.append(f"session {index} turn {turn}: no items ({out['reply'][:80]!r})")
                continue
            item = out["items"][0]["item_id"]
            start = time.perf_counter()
            client.predict(session_id=session_id, item_id=item, action="like", api_name="/feedback")
            timings["feedback"].append(time.perf_counter() - start)
            liked.append((session_id, item))
    except Exception as error:  # noqa: BLE001 - counted and reported
        errors.append(f"session {index}: {type(error).__name__}: {error}")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    from recommender.store import FeedbackStore

    demo = None
    if args.url:
        url, db = args.url, Path(args.db).expanduser() if args.db else None
    else:
        db = Path(tempfile.mkdtemp()) / "load.sqlite"
        load_start = time.perf_counter()
        url, demo = serve(db, args.with_llm, args.concurrency)
        print(f"app served at {url} in {time.perf_counter() - load_start:.1f} s (store {db})")
    timings: dict[str, list[float]] = {"chat": [], "feedback": []}
    errors: list[str] = []
    liked: list[tuple[str, str]] = []
    threads = [
        threading.Thread(target=session_worker, args=(url, i, args.turns, args.k, timings, errors, liked))
        for i in range(args.sessions)
    ]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall

    stored = None
    if db is not None:
        rows = FeedbackStore(db).feedback()
        stored = sum(1 for r in rows if r["action"] == "like")
        missing = set(liked) - {(r["session_id"], r["item_id"]) for r in rows}
        if missing:
            errors.append(f"{len(missing)} thumbs-up not found in SQLite")
    mode = "LLM" if args.with_llm else "retrieval only"
    print(f"\n{args.sessions} sessions x {args.turns} turns, {mode}, wall {wall:.1f} s")
    print("| endpoint | calls | median s | p95 s | max s |")
    print("|---|---|---|---|---|")
    for name, values in timings.items():
        if values:
            median, high = statistics.median(values), p95(values)
            print(f"| /{name} | {len(values)} | {median:.3f} | {high:.3f} | {max(values):.3f} |")
    print(f"\nerrors: {len(errors)}; thumbs-up sent: {len(liked)}; like rows stored: {stored}")
    for line in errors[:10]:
        print("  " + line)
    if demo is not None:
        demo.close()
    expected = args.sessions * args.turns
    ok = not errors and len(liked) == expected and (stored is None or stored == expected)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
