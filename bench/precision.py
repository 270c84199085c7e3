"""Same rankings in every served precision: the two-stage pipeline scored in float32, bfloat16
and int8 on the same users, one run, with paired intervals against float32 and batched speed.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.precision --split valid            # all 943 validation users
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.precision --users 100 --precisions float32,bfloat16

Each precision loads the shipped adapter merged in float32 and then converted
(``recommender.llm.loading.apply_precision``), exactly as ``recommender`` serves it. The quality bound
of issue 26: NDCG@10 of a precision minus float32's, paired over users, with a 95% interval inside
+-0.003. Also reported: users whose top-10 list changes (order or membership), and users/s.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--users", type=int, default=None, help="seeded sample of users (default: all)")
    parser.add_argument("--precisions", default="float32,bfloat16,int8", help="comma-separated; float32 first")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--adapter", default="default", help="'default' (shipped), 'none' or a folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 is steadier on a shared machine)")
    parser.add_argument("--bound", type=float, default=0.003, help="the paired interval must lie inside +-bound")
    parser.add_argument("--output", default="bench/results/precision", help="writes <output>.md and .json")
    return parser


def list_changes(tops: list[np.ndarray], reference: list[np.ndarray]) -> tuple[float, float]:
    """Share of users whose top-10 differs from the reference in order, and in membership."""
    order = np.mean([not np.array_equal(a, b) for a, b in zip(tops, reference)]) if tops else 0.0
    members = np.mean([set(a.tolist()) != set(b.tolist()) for a, b in zip(tops, reference)]) if tops else 0.0
    return float(order), float(members)


def main(args: argparse.Namespace) -> int:
    import torch

    from recommender.evaluation import metrics
    from recommender.evaluation.protocol import rank_cases, sample_users
    from recommender.llm.loading import load_model
    from recommender.llm.precision import detect_hardware
    from recommender.llm.scoring import LLMScorer
    from recommender.pipeline import Recommender

    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if precisions[0] != "float32":
        raise SystemExit("--precisions must start with float32: the others are compared with it.")
    served = Recommender.from_pretrained("ml-100k", adapter=args.adapter, dtype="float32")
    users = sample_users(served.split, args.users, args.seed)
    cases = served.split.cases(args.split, users)
    results, rows = {}, []
    for precision in precisions:
        loaded = load_model(adapter=served.scorer.loaded.adapter_path, dtype=precision)
        pipeline = Recommender(served.dataset, served.retriever, LLMScorer(loaded, batch_size=args.batch_size),
                               served.config)  # fmt: skip
        pipeline.full_scores_batch([cases[0].history])  # warm-up: the first pass allocates
        start = time.perf_counter()
        results[precision] = rank_cases(pipeline.full_scores_batch, cases, args.batch_size, precision)
        seconds = time.perf_counter() - start
        result, reference = results[precision], results["float32"]
        paired = metrics.paired_ndcg_difference(result.ranks, reference.ranks, 10, seed=args.seed)
        order, members = list_changes(result.top_lists, reference.top_lists)
        inside = -args.bound <= paired["ci_low"] and paired["ci_high"] <= args.bound
        rows.append({
            "precision": precision, "reason": loaded.precision_reason, "ndcg@10": metrics.ndcg(result.ranks, 10),
            "hr@10": float(np.mean(result.ranks <= 10)), "paired": paired, "inside_bound": bool(inside),
            "top10_order_changed": order, "top10_members_changed": members,
            "users_per_s": len(cases) / seconds, "seconds": seconds,
        })  # fmt: skip
        print(f"{precision}: NDCG@10 {rows[-1]['ndcg@10']:.4f}, {rows[-1]['users_per_s']:.2f} users/s", flush=True)
    write(args, rows, len(cases), served.scorer.loaded.describe(), detect_hardware("cpu").describe())
    return 0


def write(args: argparse.Namespace, rows: list[dict], n_users: int, model: str, hardware: str) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    import torch

    lines = [
        f"<!-- HF_HUB_OFFLINE=1 .venv/bin/python -m bench.precision --split {args.split} --threads {args.threads}"
        f"{f' --users {args.users}' if args.users else ''} --precisions {args.precisions} ; "
        f"{time.strftime('%Y-%m-%d')} -->",
        f"CPU: {hardware}; {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, load average {load}",
        f"model: {model} (the float32 row); {args.split} users: {n_users} (seed {args.seed}); two-stage as served",
        "",
        f"| precision | NDCG@10 | HR@10 | vs float32 (paired, 95%) | inside +-{args.bound:.3f} | "
        "top-10 order changed | top-10 members changed | users/s | speed vs float32 |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    base = rows[0]["users_per_s"]
    for r in rows:
        p = r["paired"]
        diff = f"{p['difference']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}]"
        diff = "-" if r["precision"] == "float32" else diff
        lines.append(
            f"| {r['precision']} | {r['ndcg@10']:.4f} | {r['hr@10']:.4f} | {diff} | "
            f"{'-' if r['precision'] == 'float32' else ('yes' if r['inside_bound'] else 'NO')} | "
            f"{r['top10_order_changed']:.1%} | {r['top10_members_changed']:.1%} | {r['users_per_s']:.2f} | "
            f"{r['users_per_s'] / base:.2f}x |"
        )
    lines += ["", "why each was chosen or forced: " + "; ".join(f"{r['precision']}: {r['reason']}" for r in rows)]
    text = "\n".join(lines) + "\n"
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".md").write_text(text)
    output.with_suffix(".json").write_text(json.dumps({"users": n_users, "split": args.split, "rows": rows}, indent=1))
    print(text)


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
