"""``recommender feedback export``: write the chat's stored feedback as JSONL for fine-tuning.

recommender feedback export --output feedback.jsonl
recommender feedback export --db ~/.cache/llm-recommender/feedback.sqlite --output f.jsonl --include-seen
recommender feedback stats
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recommender.store import FeedbackStore, default_db_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("feedback", help="export or count the feedback stored by the chat")
    actions = parser.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    db_help = f"SQLite store (default: $RECOMMENDER_DB or {default_db_path()})"

    export = actions.add_parser("export", help="write likes and dislikes as JSONL (one object per line)")
    export.add_argument("--db", type=Path, default=None, help=db_help)
    export.add_argument("--output", "-o", type=Path, required=True, help="JSONL file to write")
    export.add_argument(
        "--include-seen", action="store_true", help='also write "seen" marks, as implicit positives (label 1)'
    )
    export.set_defaults(run=run_export)

    stats = actions.add_parser("stats", help="count sessions, turns, shown items and feedback")
    stats.add_argument("--db", type=Path, default=None, help=db_help)
    stats.set_defaults(run=run_stats)


def _open(db: Path | None) -> FeedbackStore:
    path = db.expanduser() if db is not None else default_db_path()
    if not path.is_file():
        # Opening would create an empty store; a typo'd path should say so instead.
        raise FileNotFoundError(f"{path}: no feedback store here (the chat creates it on first use).")
    return FeedbackStore(path)


def run_export(args: argparse.Namespace) -> int:
    store = _open(args.db)
    written = store.export_feedback(args.output, include_seen=args.include_seen)
    print(f"wrote {written} feedback records to {args.output}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    store = _open(args.db)
    for table, count in store.counts().items():
        print(f"{table:9s} {count}")
    return 0
