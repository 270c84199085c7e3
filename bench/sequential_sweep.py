"""Choose the sequential model's settings on VALIDATION users only: train each variant of
``SequentialConfig`` (cached like the served model, so the chosen one is reused), then report its
own validation NDCG@10 at the chosen epoch and the hybrid's (weights tuned on the same users).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.sequential_sweep run --out runs/seq-sweep.jsonl \
        --variant base: --variant batch32:batch_size=32 --variant h128:hidden=128,inner=512
    .venv/bin/python -m bench.sequential_sweep report runs/seq-sweep.jsonl

``run`` appends one JSON line per variant (two ``run`` processes with one thread each can share
a file); ``report`` prints the markdown table, best hybrid validation NDCG@10 first. Test users
are never scored here.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from recommender.data.loaders import load_dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.metrics import full_ranks, hit_rate, ndcg
from recommender.retrieval.hybrid import build_default_retriever
from recommender.retrieval.sequential import SequentialConfig

RARE = 20  # a validation target with at most this many train events counts as a rare item


def parse_variant(text: str) -> tuple[str, SequentialConfig]:
    """``name:key=value,key=value`` -> (name, SequentialConfig with those fields changed)."""
    name, _, settings = text.partition(":")
    defaults = {f.name: f.default for f in fields(SequentialConfig)}
    changes: dict[str, object] = {}
    for pair in filter(None, settings.split(",")):
        key, _, value = pair.partition("=")
        if key not in defaults:
            known = ", ".join(defaults)
            raise SystemExit(f"--variant {text!r}: SequentialConfig has no field {key!r} (fields: {known}).")
        default = defaults[key]  # its type says how to read the value (None: an automatic integer field)
        if isinstance(default, bool):
            changes[key] = value.lower() in ("1", "true", "yes")
        else:
            changes[key] = float(value) if isinstance(default, float) else int(value)
    return name or "base", replace(SequentialConfig(), **changes)


def run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    split = LeaveOneOutSplit(dataset.interactions)
    cases = split.cases("valid")
    histories = [case.history for case in cases]
    popularity = split.item_popularity(len(dataset.catalog))
    rare = np.array([popularity[case.target] <= RARE for case in cases])  # targets seen rarely in training
    default_key = SequentialConfig().key()
    for name, config in map(parse_variant, args.variant):
        start = time.perf_counter()
        hybrid = build_default_retriever(dataset, split, cache_dir=args.cache_dir, sequential=config)
        seconds = time.perf_counter() - start  # trains the variant (or loads it) and tunes the weights
        model = hybrid.components["sequential"]
        ranks = full_ranks(hybrid.score_batch(histories), cases)
        own = full_ranks(model.score_batch(histories), cases)
        info = model.info
        record = {
            "variant": name,
            "changes": {k: v for k, v in config.key().items() if v != default_key.get(k)},
            "valid_users": len(cases),
            "seq_NDCG@10": info["best_valid_NDCG@10"],
            "rare_users": int(rare.sum()),
            "seq_rare_HR@50": hit_rate(own[rare], 50),
            "hybrid_rare_HR@50": hit_rate(ranks[rare], 50),
            "best_epoch": info["best_epoch"],
            "epochs_run": info["epochs_run"],
            "train_seconds": info["train_seconds"],
            "this_run_seconds": round(seconds, 1),
            "hybrid_NDCG@10": ndcg(ranks, 10),
            "hybrid_HR@20": hit_rate(ranks, 20),
            "hybrid_HR@50": hit_rate(ranks, 50),
            "weights": {k: v for k, v in hybrid.weights.items() if v},
        }
        with open(args.out, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def report(args: argparse.Namespace) -> None:
    lines = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    latest = {r["variant"]: r for r in lines if "rare_users" in r}  # a variant run again: its last record
    records = sorted(latest.values(), key=lambda r: -r["hybrid_NDCG@10"])
    print(
        f"Validation only ({records[0]['valid_users']} users, each user's validation event, history masked); "
        f"hybrid weights tuned on the same users. Rare: the {records[0]['rare_users']} users whose validation "
        f"item has at most {RARE} train events.\n"
    )
    print(
        "| variant | changes | sequential NDCG@10 (best epoch) | epochs run | train s | hybrid NDCG@10 | "
        "hybrid HR@20 | hybrid HR@50 | rare HR@50 sequential / hybrid | hybrid weights |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    for r in records:
        changes = ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "defaults"
        weights = ", ".join(f"{k} {v:g}" for k, v in r["weights"].items())
        print(
            f"| {r['variant']} | {changes} | {r['seq_NDCG@10']:.4f} ({r['best_epoch']}) | {r['epochs_run']} | "
            f"{r['train_seconds']:.0f} | {r['hybrid_NDCG@10']:.4f} | {r['hybrid_HR@20']:.4f} | "
            f"{r['hybrid_HR@50']:.4f} | {r['seq_rare_HR@50']:.3f} / {r['hybrid_rare_HR@50']:.3f} | {weights} |"
        )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="train the variants and append their validation figures")
    go.add_argument("--dataset", default="ml-100k", help="dataset name or folder (load_dataset)")
    go.add_argument("--cache-dir", default=None, help="weights cache (default $RECOMMENDER_CACHE)")
    go.add_argument("--threads", type=int, default=1, help="torch threads")
    go.add_argument("--out", required=True, help="JSON-lines file the records are appended to")
    go.add_argument("--variant", action="append", required=True, help="name:field=value,... of SequentialConfig")
    show = sub.add_parser("report", help="markdown table of a results file")
    show.add_argument("results", help="JSON-lines file written by run")
    return parser


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    arguments = make_parser().parse_args()
    (run if arguments.command == "run" else report)(arguments)
