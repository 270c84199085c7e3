"""``recommender chat``: serve the Gradio chat (``ui/app.py``, served by ``ui/server.py``) on 127.0.0.1:7860.

recommender chat                          # SmolLM2-135M + shipped adapter, ml-100k
recommender chat --retrieval-only --port 7861 --db /tmp/feedback.sqlite

This module owns the command line and builds the server's ``ChatServerConfig``
(``recommender.ui.server``) from it. The ui never imports this module (commands sit above ui); gradio
and the app are imported only inside the functions that serve, so ``recommender --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from recommender.commands.recommend import add_model_arguments

if TYPE_CHECKING:
    from recommender.ui.server import ChatServerConfig


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the chat server (``recommender chat``)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--db", default=None, help="feedback SQLite file (default $RECOMMENDER_DB or ~/.cache/...)")
    parser.add_argument("-k", type=int, default=10, help="cards per answer (default 10)")
    parser.add_argument("--retrieval-only", action="store_true", help="no LLM: retrieval ranking, templated replies")
    parser.add_argument("--no-llm-reply", action="store_true", help="the LLM ranks, but replies are templated")
    parser.add_argument("--concurrency", type=int, default=2, help="events served at once (default 2)")
    parser.add_argument(
        "--reply-model", default="base", choices=("base", "ranker"),
        help="who writes replies: the base model without the ranking adapter (default) or the ranking model",
    )  # fmt: skip
    add_model_arguments(parser)


def make_parser() -> argparse.ArgumentParser:
    """The chat server's own parser, the options of ``recommender chat`` alone."""
    parser = argparse.ArgumentParser(prog="recommender chat", description="Serve the Gradio recommender chat.")
    add_chat_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> ChatServerConfig:
    """The server config for parsed ``add_chat_arguments`` options; ``ValueError`` names a bad value."""
    from recommender.ui.server import ChatServerConfig

    return ChatServerConfig(
        host=args.host, port=args.port, db=args.db, k=args.k, llm_reply=not args.no_llm_reply,
        retrieval_only=args.retrieval_only, concurrency=args.concurrency, dataset=args.dataset, model=args.model,
        adapter=args.adapter, quantize=args.quantize, device=args.device, reply_model=args.reply_model,
        dtype=args.dtype,
    )  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("chat", help="serve the Gradio recommender chat (feedback kept in SQLite)")
    add_chat_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recommender.ui.server import serve  # gradio is imported only when the chat is served

    serve(config_from_args(args))
    return 0
