"""Serving speed in one run, float32 beside the precision this machine chooses (issue 26):
retrieval only, the two-stage request, a bare forward of the same prompt, chat turns, batched
evaluation throughput, a step-by-step profile of one request and peak memory. Medians and p95
over repeats; ratios are taken within this run only; the header names the CPU and its flags.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/speed.py --users 20
    HF_HUB_OFFLINE=1 .venv/bin/python bench/speed.py --users 20 --dtype int8     # compare int8 instead
    HF_HUB_OFFLINE=1 .venv/bin/python bench/speed.py --users 20 --no-chat        # requests and batches only

A chat turn is timed as the app runs it: to its first cards (parse + recommend; the reply has not
started), to its end (the streamed reply, gated), and, apart, the cards' influences measured when
a card is opened (W more LLM prompts, once per list).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import time

import numpy as np


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="requests per measurement (one per user)")
    parser.add_argument("--turns", type=int, default=20, help="chat turns to time (each writes a reply)")
    parser.add_argument("--no-chat", action="store_true", help="skip the chat-turn rows")
    parser.add_argument("--repeats", type=int, default=5, help="bare forward passes timed")
    parser.add_argument(
        "--dtype", default="auto", choices=("auto", "bfloat16", "int8"),
        help="the precision compared with float32 (auto: what recommender chooses on this machine)",
    )  # fmt: skip
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


def bare_forward(pipeline, history: np.ndarray):
    """A callable that runs only the model on this user's served prompt (tokens prepared once)."""
    from recommender.llm.scoring import line_readouts, line_scores
    from recommender.ranking import stable_order

    scorer = pipeline.scorer
    scores = pipeline.retriever.score_batch([history])[0]
    scores[history] = -np.inf
    rows = stable_order(scores)[: pipeline.config.llm_candidates]
    rendered = pipeline.prompt.render(pipeline.ranking_requests([history], [rows])[0])
    ids, readouts = line_readouts(scorer.tokenizer, rendered.messages, len(rows))

    def forward(_):
        import torch

        with torch.inference_mode():
            line_scores(scorer.model, [ids], [readouts], scorer.yes_no_ids, scorer.pad_id)

    return forward, len(ids)


def profile_request(pipeline, history: np.ndarray, repeats: int = 5) -> dict[str, float]:
    """Median milliseconds of each step of one two-stage request, run step by step as ``recommend``
    runs them: retrieval, evidence + request building, prompt rendering, tokenization, forward and
    readout; "rest" is the whole request minus those (blending, cards, reasons)."""
    import torch

    from recommender.llm.scoring import line_readouts, line_scores
    from recommender.ranking import stable_order

    scorer, steps = pipeline.scorer, {}

    @contextlib.contextmanager
    def clock(name):
        start = time.perf_counter()
        yield
        steps.setdefault(name, []).append(time.perf_counter() - start)

    ids_of = [pipeline.catalog.ids[r] for r in history]
    for _ in range(repeats):
        with clock("retrieval"):
            scores = pipeline.retriever.score_batch([history])[0]
        scores[history] = -np.inf
        rows = stable_order(scores)[: pipeline.config.llm_candidates]
        with clock("evidence + request"):
            request = pipeline.ranking_requests([history], [rows])[0]
        with clock("prompt rendering"):
            rendered = pipeline.prompt.render(request)
        with clock("tokenization"):
            ids, readouts = line_readouts(scorer.tokenizer, rendered.messages, len(rows))
        with clock("forward + readout"), torch.inference_mode():
            line_scores(scorer.model, [ids], [readouts], scorer.yes_no_ids, scorer.pad_id)
        with clock("whole request"):
            pipeline.recommend(history=ids_of, k=10)
    medians = {name: float(np.median(seconds)) * 1000 for name, seconds in steps.items()}
    medians["rest (blend, cards)"] = max(0.0, medians["whole request"] - sum(
        v for k, v in medians.items() if k != "whole request"))  # fmt: skip
    return medians


def main(args: argparse.Namespace) -> int:
    import torch

    from recommender.evaluation.protocol import sample_users
    from recommender.llm.loading import load_model
    from recommender.llm.precision import choose_precision, detect_hardware
    from recommender.llm.scoring import LLMScorer
    from recommender.pipeline import Recommender

    if args.threads:
        torch.set_num_threads(args.threads)
    hardware = detect_hardware("cpu")
    chosen = choose_precision(args.dtype, hardware)
    started = time.perf_counter()
    base = Recommender.from_pretrained("ml-100k", adapter=args.adapter, dtype="float32")
    load_seconds = time.perf_counter() - started
    pipelines = {"float32": base}
    if chosen.name != "float32":
        loaded = load_model(adapter=base.scorer.loaded.adapter_path, dtype=chosen.name)
        pipelines[chosen.name] = Recommender(base.dataset, base.retriever, LLMScorer(loaded), base.config)
    retrieval = Recommender(base.dataset, base.retriever, None, base.config)
    users = sample_users(base.split, args.users, args.seed)
    histories = [base.split.case(u, "test").history for u in users]

    from recommender.ui.server import ChatServerConfig, reply_writer

    writer = reply_writer(base, ChatServerConfig(adapter=args.adapter))  # as recommender chat serves it
    retrieval_s = timed(lambda u: retrieval.recommend(user_id=u, k=10), users)
    table, throughput, profiles = {}, {}, {}
    for name, pipeline in pipelines.items():
        pipeline.recommend(user_id=users[0], k=10)  # warm-up: the first forward pass allocates
        table[f"two-stage request ({name})"] = timed(lambda u, p=pipeline: p.recommend(user_id=u, k=10), users)
        forward, tokens = bare_forward(pipeline, histories[0])
        table[f"bare forward, {tokens} tokens ({name})"] = timed(forward, range(args.repeats))
        if not args.no_chat:
            chat = time_chat_turns(pipeline, users, args.turns, writer)
            table[f"chat: first cards ({name})"] = chat["first cards"]
            table[f"chat: full turn, cards + reply ({name})"] = chat["full turn (cards + reply)"]
        start = time.perf_counter()
        for begin in range(0, len(histories), args.batch_size):
            pipeline.full_scores_batch(histories[begin : begin + args.batch_size])
        throughput[name] = len(histories) / (time.perf_counter() - start)
        profiles[name] = profile_request(pipeline, histories[0])
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    report(args, hardware, chosen, base, load_seconds, retrieval_s, table, throughput, profiles, peak_rss_gb)
    return 0


def report(args, hardware, chosen, base, load_seconds, retrieval_s, table, throughput, profiles, peak_rss_gb) -> None:
    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"CPU: {hardware.describe()}; {platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}, load average {load}")  # fmt: skip
    print(f"chosen precision: {chosen.name} ({chosen.reason})")
    print(f"model: {base.scorer.loaded.describe()}; load {load_seconds:.1f} s; users {args.users} (seed {args.seed})")
    print()
    print("| request | n | median ms | p95 ms | median vs retrieval |")
    print("| --- | ---: | ---: | ---: | ---: |")
    floor = float(np.median(retrieval_s))
    print(row("retrieval only (k=10)", retrieval_s, None))
    for name, seconds in table.items():
        print(row(name, seconds, floor))
    print()
    print(f"| batch evaluation (batch {args.batch_size}) | users/s | vs float32 |")
    print("| --- | ---: | ---: |")
    for name, value in throughput.items():
        print(f"| two-stage, {name} | {value:.2f} | {value / throughput['float32']:.2f}x |")
    print()
    names = list(profiles)
    print("| one request, step by step (median ms) | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for step in profiles[names[0]]:
        print(f"| {step} | " + " | ".join(f"{profiles[n][step]:.1f}" for n in names) + " |")
    print(f"\npeak RSS: {peak_rss_gb:.2f} GB (both models loaded)")


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
