"""How long a person waits for a picked card's explanation (chat, ``recommender explain``, ``Recommender.explain``).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.explain_latency --users 6 --threads 2 --batch-sizes 8 32 \\
        --md bench/results/explain-latency.md

On a seeded sample of test users, with the served pipeline (adapter, prompt, first stage) and its top
pick as the picked card: the whole ``Recommender.explain`` (influences over orders, evidence, sentence,
gate) at the scorer's default batch size, and the influence measurement alone (``influence_table``: the
base scores and 1 + W + S + S*W variant prompts in one batch) at each ``--batch-sizes``, the variants
all measured in one process on an otherwise idle CPU. One explanation first, uncounted, warms the model.
Prints medians and the slowest user per setting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bench.explain import sample_users, served_candidates


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=6, help="test users sampled (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32], help="prompts per forward pass")
    parser.add_argument("--adapter", default="default", help="LoRA adapter folder, 'default' (shipped) or 'none'")
    parser.add_argument("--md", default=None, help="also write the table here")
    return parser


def _timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def measure(pipeline, users: list[str], batch_sizes: list[int]) -> list[tuple[str, list[float], int]]:
    """(setting, seconds per user, prompts per user) for the whole explanation and each batch size."""
    catalog = pipeline.catalog
    cases = []
    for user in users:
        history, candidates = served_candidates(pipeline, user, "test")
        top = candidates[int(pipeline.llm_scores([history], [candidates])[0].argmax())]
        cases.append((history, candidates, catalog.ids[int(top)]))
    default = pipeline.scorer.batch_size
    pipeline.explain([catalog.ids[r] for r in cases[0][0]], cases[0][2])  # warm-up, uncounted
    whole = [_timed(lambda c=c: pipeline.explain([catalog.ids[r] for r in c[0]], c[2]))[0] for c in cases]
    rows = [(f"whole explanation (batch {default})", whole, 0)]
    for size in batch_sizes:
        pipeline.scorer.batch_size = size
        timed = [_timed(lambda c=c: pipeline.influence_table(c[0], c[1])) for c in cases]
        prompts = statistics.median(1 + len(t.positions) * (1 + len(t.swaps)) + len(t.swaps) for _, t in timed)
        rows.append((f"influences only (batch {size})", [s for s, _ in timed], int(prompts)))
    pipeline.scorer.batch_size = default
    return rows


def render(rows, args, device: str) -> str:
    lines = [
        f"# Explanation latency ({args.users} test users, seed {args.seed}, {args.threads} torch threads, {device})",
        "",
        "| setting | prompts per user (median) | median s | slowest s |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds, prompts in rows:
        lines.append(f"| {name} | {prompts or ''} | {statistics.median(seconds):.2f} | {max(seconds):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from recommender.pipeline import Recommender

    torch.set_num_threads(args.threads)
    pipeline = Recommender.from_pretrained("ml-100k", adapter=args.adapter)
    users = [str(u) for u in sample_users(pipeline.split.eval_users, args.users, args.seed, "test")]
    report = render(measure(pipeline, users, args.batch_sizes), args, f"{os.cpu_count()}-core CPU")
    print(report, end="")
    if args.md:
        Path(args.md).write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
