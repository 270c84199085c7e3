"""Paired per-user comparison of `recommender evaluate` rows with the external SASRec (same users, same split).

Reads the per-user ranks that `recommender evaluate` writes (``ranks.json``) and those the external run
kept (``bench/results/external_sasrec.json``, history masked); prints and writes NDCG@10 differences with
paired bootstrap intervals (``paired_ndcg_difference``) and hit rates side by side.

    recommender evaluate --split test --methods sequential,hybrid --first-stage hybrid+sequential \\
        --output runs/eval-test-retrieval
    python -m bench.paired_vs_external runs/eval-test-retrieval/ranks.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ranks", type=Path, nargs="+", help="ranks.json files written by `recommender evaluate`")
    parser.add_argument("--external", type=Path, default=RESULTS / "external_sasrec.json")
    parser.add_argument("--output", type=Path, default=RESULTS / "paired_vs_external.md")
    args = parser.parse_args(argv)
    from recommender.evaluation.metrics import hit_rate, ndcg, paired_ndcg_difference

    runs = [json.loads(path.read_text()) for path in args.ranks]
    users = runs[0]["users"]
    if any(run["users"] != users for run in runs):
        raise SystemExit("the ranks.json files were written for different users; evaluate them on the same split.")
    ours: dict[str, list] = {}
    for run in runs:
        for method, ranks in run["ranks"].items():
            ours.setdefault(method, ranks)  # a row in two files: the first file's
    external = json.loads(args.external.read_text())
    missing = [u for u in users if u not in external["ranks_masked"]]
    if missing:
        raise SystemExit(f"{args.external}: no rank for {len(missing)} of our users (first: {missing[0]}); same split?")
    theirs = np.array([external["ranks_masked"][u] for u in users])
    command = " ".join(map(str, args.ranks))
    lines = [
        f"# `recommender evaluate` rows against the external SASRec ({external['library']}), paired per user",
        "",
        f"`python -m bench.paired_vs_external {command}` ({time.strftime('%Y-%m-%d')}): {len(theirs)} test users, "
        f"history masked, the external run's seed {external['seed']}, best epoch {external['best_epoch']}; "
        "differences are ours minus the external SASRec, 95% paired bootstrap intervals (2,000 resamples, seed 0).",
        "",
        "| row | NDCG@10 | HR@10 | HR@20 | HR@50 | NDCG@10 minus external [95% CI] | users better / worse |",
        "|---|---:|---:|---:|---:|---|---:|",
        f"| external SASRec | {ndcg(theirs, 10):.4f} | {hit_rate(theirs, 10):.4f} | {hit_rate(theirs, 20):.4f} | "
        f"{hit_rate(theirs, 50):.4f} | | |",
    ]
    for method, ranks in ours.items():
        r = np.asarray(ranks)
        d = paired_ndcg_difference(r, theirs, 10, seed=0)
        lines.append(
            f"| {method} | {ndcg(r, 10):.4f} | {hit_rate(r, 10):.4f} | {hit_rate(r, 20):.4f} | {hit_rate(r, 50):.4f} | "
            f"{d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | {d['wins']} / {d['losses']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
