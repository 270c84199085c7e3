"""Serving speed in one run: retrieval only, two-stage with LLM ranking, one chat turn,
batch-evaluation throughput and peak memory. Medians and p95 over repeats; ratios are
taken within this run only.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/speed.py --users 20
    HF_HUB_OFFLINE=1 .venv/bin/python bench/speed.py --users 20 --adapter none   # base model
    HF_HUB_OFFLINE=1 .venv/bin/python bench/speed.py --chat-only --turns 20      # the chat-turn rows alone

A chat turn is timed as the app runs it: to its first cards (parse + recommend; the reply has not
started), to its end (the streamed reply, gated), and, apart, the cards' influences measured when
a card is opened (W more LLM prompts, once per list).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="requests per measurement (one per user)")
    parser.add_argument("--turns", type=int, default=20, help="chat turns to time (each writes a reply)")
    parser.add_argument("--chat-only", action="store_true", help="time the chat turns alone")
    parser.add_argument("--batch-size", type=int, default=8, help="users per batched evaluation call")
    parser.add_argument("--adapter", default="default", help="'default' (shipped), 'none' or a folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return parser


def timed(call, repeats: list) -> list[float]:
    seconds = []
    for argument in repeats:
        start = time.perf_counter()
        call(argument)
        seconds.append(time.perf_counter() - start)
    return seconds


def row(name: str, seconds: list[float], baseline: float | None) -> str:
    median, p95 = float(np.median(seconds)), float(np.percentile(seconds, 95))
    ratio = f"{median / baseline:.1f}x" if baseline else "1.0x"
    return f"| {name} | {len(seconds)} | {median * 1000:.1f} | {p95 * 1000:.1f} | {ratio} |"


CHAT_MESSAGES = [
    "a funny 90s comedy", "no romance", "more like Fargo", "show me more", "something from the 80s",
    "sci-fi", "not too old", "a thriller, no horror", "something for the kids", "a heist with a twist",
]  # fmt: skip


def time_chat_turns(pipeline, users: list, turns: int, writer=None) -> dict[str, list[float]]:
    """Seconds to the first cards, to the end of each turn (the streamed, gated reply) and to the
    cards' influences when a card is opened, as the app runs them (influences on demand);
    conversations of 5 turns, alternating between dataset users and new people."""
    from recommender.chat.turn import explain_cards, open_session, run_turn

    times: dict[str, list[float]] = {"first cards": [], "full turn (cards + reply)": [], "card opened": []}
    session = None
    for n in range(turns):
        if n % 5 == 0:
            session = open_session(pipeline, None, users[n // 5 % len(users)] if n // 5 % 2 == 0 else None)[0]
        start, first = time.perf_counter(), None
        message = CHAT_MESSAGES[n % len(CHAT_MESSAGES)]
        for update in run_turn(pipeline, None, session, message, k=10, influences="on demand", writer=writer):
            if first is None and update.recommendations:
                first = time.perf_counter() - start
        times["full turn (cards + reply)"].append(time.perf_counter() - start)
        times["first cards"].append(first if first is not None else times["full turn (cards + reply)"][-1])
        if update.basis is not None:
            start = time.perf_counter()
            explain_cards(pipeline, update.recommendations, update.basis)
            times["card opened"].append(time.perf_counter() - start)
        session = update.session
    return times


def main(args: argparse.Namespace) -> int:
    import torch

    from recommender.evaluation.protocol import sample_users
    from recommender.pipeline import Recommender

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    llm = Recommender.from_pretrained("ml-100k", adapter=args.adapter)
    load_seconds = time.perf_counter() - started
    retrieval = Recommender(llm.dataset, llm.retriever, None, llm.config)
    users = sample_users(llm.split, args.users, args.seed)

    llm.recommend(user_id=users[0], k=10)  # warm-up: first forward pass allocates
    from recommender.ui.app import ChatServerConfig, reply_writer

    writer = reply_writer(llm, ChatServerConfig(adapter=args.adapter))  # as recommender chat serves it
    chat = time_chat_turns(llm, users, args.turns, writer)
    if args.chat_only:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"model: {llm.scorer.loaded.describe()}; {os.cpu_count()} cores, load average {load}")
        print("| chat | n | median ms | p95 ms |\n| --- | ---: | ---: | ---: |")
        for name, seconds in chat.items():
            if seconds:
                print(f"| {name} | {len(seconds)} | {np.median(seconds) * 1000:.1f} | "
                      f"{np.percentile(seconds, 95) * 1000:.1f} |")  # fmt: skip
        return 0
    retrieval_s = timed(lambda u: retrieval.recommend(user_id=u, k=10), users)
    two_stage_s = timed(lambda u: llm.recommend(user_id=u, k=10), users)
    cases = llm.split.cases("test", users)
    batches = [cases[i : i + args.batch_size] for i in range(0, len(cases), args.batch_size)]
    throughput = {}
    for name, pipeline in (("retrieval only", retrieval), ("two-stage LLM", llm)):
        start = time.perf_counter()
        for batch in batches:
            pipeline.full_scores_batch([case.history for case in batch])
        throughput[name] = len(cases) / (time.perf_counter() - start)
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"model: {llm.scorer.loaded.describe()}; load {load_seconds:.1f} s; users {len(users)} (seed {args.seed})")
    print()
    print("| request | n | median ms | p95 ms | median vs retrieval |")
    print("| --- | ---: | ---: | ---: | ---: |")
    base = float(np.median(retrieval_s))
    print(row("retrieval only (k=10)", retrieval_s, None))
    reranked = f"two-stage: hybrid top-{llm.config.llm_candidates} + LLM ({llm.config.template})"
    print(row(reranked, two_stage_s, base))
    for name, seconds in chat.items():
        if seconds:
            print(row(f"chat: {name}", seconds, base))
    print()
    print("| batch evaluation | users/s |")
    print("| --- | ---: |")
    for name, value in throughput.items():
        print(f"| {name} (batch {args.batch_size}) | {value:.2f} |")
    print(f"\npeak RSS: {peak_rss_gb:.2f} GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
