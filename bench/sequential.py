"""Sequential retriever benchmark: training cost, validation curve, test quality beside the
hybrids, and retrieval latency.

    HF_HUB_OFFLINE=1 nice -n 5 .venv/bin/python bench/sequential.py            # trains once, then loads
    HF_HUB_OFFLINE=1 .venv/bin/python bench/sequential.py --retrain --threads 2

Prints markdown: the training record (seconds, best epoch, epochs run, the machine's load),
the validation curve, then on ALL test users with the history masked NDCG@10, HR@10/20/50 and
recall@100 for the sequential model, the old hybrid (pop + co-occurrence + embedding) and the
new hybrid (+ sequential; weights tuned on validation users only), and the median latency per
user of ``score_batch`` for the sequential model alone and the hybrids, one user and batched.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from recommender.data.loaders import load_dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.metrics import full_ranks, hit_rate, ndcg
from recommender.retrieval.hybrid import build_default_retriever
from recommender.retrieval.sequential import SequentialConfig, load_or_train

REFERENCE = {  # issue 15: RecTools SASRec on our split (validation-selected epoch), all 943 test users, masked
    "external SASRec (RecTools, issue 15)": (0.0873, 0.181, 0.279, 0.461, None),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k", help="dataset name or folder (load_dataset)")
    parser.add_argument("--cache-dir", default=None, help="weights cache (default $RECOMMENDER_CACHE)")
    parser.add_argument("--retrain", action="store_true", help="train even when cached weights exist")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 1 is fastest on a shared 2-core machine")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per latency figure (median)")
    return parser


def metrics_row(name: str, scores: np.ndarray, cases) -> str:
    ranks = full_ranks(scores, cases)
    values = [ndcg(ranks, 10), hit_rate(ranks, 10), hit_rate(ranks, 20), hit_rate(ranks, 50), hit_rate(ranks, 100)]
    return f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |"


def median_ms(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(args: argparse.Namespace) -> None:
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    split = LeaveOneOutSplit(dataset.interactions)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{dataset.summary()}; machine: {platform.machine()}, {os.cpu_count()} cores, load average {load}")
    start = time.perf_counter()
    model = load_or_train(dataset, split, SequentialConfig(), args.cache_dir, retrain=args.retrain)
    print(f"load_or_train: {time.perf_counter() - start:.1f} s this run (cached weights load in this time)\n")
    info = model.info
    print(
        f"Training (recorded when trained): {info['train_seconds']:.0f} s wall, "
        f"{info.get('cpu_seconds', float('nan')):.0f} s CPU, {info['epochs_run']} epochs, "
        f"best epoch {info['best_epoch']} (validation NDCG@10 {info['best_valid_NDCG@10']:.4f}), "
        f"{info['steps']} steps, {info['processes']} process(es), precision {info['mixed_precision']}; "
        f"config {model.config()}\n"
    )
    print("| epoch | train loss | valid NDCG@10 | valid HR@10 | valid HR@20 | seconds |\n|---|---|---|---|---|---|")
    for row in info["curve"]:
        print(
            f"| {row['epoch']} | {row['loss']:.3f} | {row['NDCG@10']:.4f} | {row['HR@10']:.4f} | "
            f"{row['HR@20']:.4f} | {row['seconds']:.0f} |"
        )
    old = build_default_retriever(dataset, split, cache_dir=args.cache_dir)
    start = time.perf_counter()
    new = build_default_retriever(dataset, split, cache_dir=args.cache_dir, sequential=SequentialConfig())
    print(f"\nnew hybrid built (weights tuned on validation users, or loaded): {time.perf_counter() - start:.1f} s")
    for name, hybrid in (("old hybrid", old), ("new hybrid", new)):
        print(f"{name} weights: " + ", ".join(f"{k}={v:g}" for k, v in hybrid.weights.items() if v))
    cases = split.cases("test")
    histories = [case.history for case in cases]
    print(f"\nTest split, all {len(cases)} users, full ranking over {len(dataset.catalog)} items, history masked:\n")
    print("| retriever | NDCG@10 | HR@10 | HR@20 | HR@50 | recall@100 |\n|---|---|---|---|---|---|")
    for name, values in REFERENCE.items():
        print(f"| {name} | " + " | ".join("—" if v is None else f"{v:.4f}" for v in values) + " |")
    print(metrics_row("sequential", model.score_batch(histories), cases))
    print(metrics_row("old hybrid (pop + co-occurrence + embedding)", old.score_batch(histories), cases))
    print(metrics_row("new hybrid (+ sequential)", new.score_batch(histories), cases))
    print(f"\nRetrieval latency per user, median of {args.repeats} calls, torch threads {args.threads}:\n")
    print("| scorer | one user (ms) | batch of all test users (ms per user) |\n|---|---|---|")
    one = [histories[0]]
    for name, scorer in (("sequential", model), ("old hybrid", old), ("new hybrid", new)):
        single = median_ms(lambda scorer=scorer: scorer.score_batch(one), args.repeats)
        batched = median_ms(lambda scorer=scorer: scorer.score_batch(histories), max(3, args.repeats // 5))
        print(f"| {name} | {single:.2f} | {batched / len(histories):.2f} |")


if __name__ == "__main__":
    main(make_parser().parse_args())
