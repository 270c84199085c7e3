"""Scoring latency of the real default LLM: one-pass ranking vs pointwise yes/no, naive vs cached prefix.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/scoring.py --repeats 5

For one ML-100k user (last ``--history`` items as history, ``--candidates`` unseen popular items as
candidates) it times, as medians over ``--repeats`` calls after one warm-up each:
1. ``rank``: all candidates lettered in ONE prompt, one forward pass;
2. ``pointwise`` naive: one full prompt per candidate (batched, ``--batch-size`` per pass);
3. ``pointwise`` cached: the shared system + history prefix run once, its KV cache reused for all
   candidate suffixes (``--suffix-batch-size`` short suffixes per pass).
It prints a markdown table with the ratios measured in this one run, the largest |cached - naive|
difference of P(Yes), and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="HF folder / id / .gguf (default: embedded SmolLM2-135M)")
    parser.add_argument("--dataset", default="ml-100k", help="dataset name or folder (load_dataset)")
    parser.add_argument("--candidates", type=int, default=20, help="candidates per user")
    parser.add_argument("--history", type=int, default=20, help="history items in the prompt")
    parser.add_argument("--batch-size", type=int, default=8, help="full prompts per forward pass")
    parser.add_argument("--suffix-batch-size", type=int, default=32, help="candidate suffixes per cached pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure (median)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    return parser


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection are not what we measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(args: argparse.Namespace) -> None:
    import torch  # here, not at the top: --help answers without loading torch

    from recommender.data.loaders import load_dataset
    from recommender.llm.loading import load_model
    from recommender.llm.prompting import render_rank
    from recommender.llm.ranking_prompts import RankingRequest, ranking_prompt, score_requests
    from recommender.llm.scoring import LLMScorer

    dataset = load_dataset(args.dataset)
    catalog, inter = dataset.catalog, dataset.interactions
    # The user with the most events; history = their last items in file order after a stable time sort.
    users, counts = np.unique(inter.users, return_counts=True)
    user = users[np.argmax(counts)]
    rows = np.flatnonzero(inter.users == user)
    rows = rows[np.argsort(inter.timestamps[rows], kind="stable")]
    history = [catalog.items[r] for r in inter.items[rows][-args.history :]]
    seen = set(inter.items[rows].tolist())
    popular = np.argsort(-np.bincount(inter.items, minlength=len(catalog)), kind="stable")
    candidates = [catalog.items[r] for r in popular if r not in seen][: args.candidates]

    loaded = load_model(args.model, device=args.device)
    scorer = LLMScorer(loaded, batch_size=args.batch_size, suffix_batch_size=args.suffix_batch_size)
    prompt_tokens = len(scorer.encode(render_rank(history, candidates).messages))
    naive = scorer.pointwise(history, candidates, cache_prefix=False).scores
    cached = scorer.pointwise(history, candidates, cache_prefix=True).scores
    max_diff = float(np.abs(naive - cached).max())

    rank_prompt, request = ranking_prompt("rank"), [RankingRequest(history, candidates)]
    t_rank = median_seconds(lambda: score_requests(scorer, rank_prompt, request), args.repeats)
    t_naive = median_seconds(lambda: scorer.pointwise(history, candidates, cache_prefix=False), args.repeats)
    t_cached = median_seconds(lambda: scorer.pointwise(history, candidates, cache_prefix=True), args.repeats)

    n = len(candidates)
    print(f"## Scoring latency: {loaded.describe()}, {n} candidates, {len(history)} history items\n")
    print("| method | forward passes | median ms | vs one-pass rank | vs naive pointwise |")
    print("|---|---|---|---|---|")
    passes_naive = -(-n // args.batch_size)
    passes_cached = -(-n // args.suffix_batch_size)
    rows_out = [
        ("rank, one pass (all candidates lettered)", "1", t_rank),
        (f"pointwise naive (batch {args.batch_size})", str(passes_naive), t_naive),
        (f"pointwise cached prefix (suffix batch {args.suffix_batch_size})", f"1 + {passes_cached}", t_cached),
    ]
    for name, passes, seconds in rows_out:
        print(f"| {name} | {passes} | {seconds * 1000:.0f} | {seconds / t_rank:.2f}x | {seconds / t_naive:.2f}x |")
    print(
        f"\nnaive / cached pointwise: {t_naive / t_cached:.2f}x faster with the cached prefix; "
        f"naive / rank: {t_naive / t_rank:.2f}x; cached / rank: {t_cached / t_rank:.2f}x."
    )
    print(f"ranking prompt: {prompt_tokens} tokens; max |P(Yes) cached - naive| = {max_diff:.2e}.")
    print(
        f"Machine: {platform.machine()} {platform.processor() or platform.platform()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {loaded.device}; "
        f"medians of {args.repeats} calls after one warm-up."
    )


if __name__ == "__main__":
    main(make_parser().parse_args())
