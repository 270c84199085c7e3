"""Retrieval benchmark: quality on ML-100k (full ranking, history masked) and query latency.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/retrieval.py
    HF_HUB_OFFLINE=1 .venv/bin/python bench/retrieval.py --synthetic-items 100000 --repeats 5
    HF_HUB_OFFLINE=1 .venv/bin/python bench/retrieval.py --sequential    # hybrid + the sequential model

Prints two markdown tables:
1. HR@10/20/50, NDCG@10 and candidate recall@100/200 on the ML-100k test split for the
   popularity, co-occurrence (ItemKNN, last 10 items), embedding and hybrid retrievers
   (hybrid weights tuned on the validation split only). HR@K = Recall@K here: one target each.
2. Median latency of one ``retrieve`` call (k=10) on ML-100k, and of one exact top-10 vector
   search on a synthetic catalogue of random unit vectors, numpy vs FAISS, without and with a
   filter that lets half the items through.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from recommender.data.loaders import load_dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.metrics import full_ranks, hit_rate, ndcg
from recommender.protocols import Filters
from recommender.retrieval.base import EmbeddingRetriever, VectorIndex
from recommender.retrieval.hybrid import build_default_retriever
from recommender.retrieval.sequential import SequentialConfig


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k", help="dataset name or folder (load_dataset)")
    parser.add_argument("--split", default="test", choices=("valid", "test"), help="split to evaluate")
    parser.add_argument("--cache-dir", default=None, help="embeddings / weights cache (default $RECOMMENDER_CACHE)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per latency figure (median)")
    parser.add_argument("--synthetic-items", type=int, default=1_000_000, help="rows of the synthetic catalogue")
    parser.add_argument("--dim", type=int, default=384, help="dimension of the synthetic vectors")
    parser.add_argument("--seed", type=int, default=0, help="seed for the synthetic vectors and queries")
    parser.add_argument(
        "--sequential", action="store_true", help="add the sequential model to the hybrid (trains once, then cached)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch and FAISS threads; 1 is steadiest on a shared 2-core machine"
    )
    return parser


def median_ms(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up: first calls pay for lazy loading and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def quality_table(hybrid, split: LeaveOneOutSplit, split_name: str) -> list[str]:
    cases = split.cases(split_name)
    histories = [case.history for case in cases]
    retrievers = {**hybrid.components, "hybrid": hybrid}
    lines = [
        "| retriever | HR@10 | HR@20 | HR@50 | NDCG@10 | recall@100 | recall@200 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, retriever in retrievers.items():
        ranks = full_ranks(retriever.score_batch(histories), cases)
        values = [hit_rate(ranks, 10), hit_rate(ranks, 20), hit_rate(ranks, 50), ndcg(ranks, 10)]
        values += [hit_rate(ranks, 100), hit_rate(ranks, 200)]
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return lines


def latency_rows(hybrid, dataset, split: LeaveOneOutSplit, repeats: int) -> list[str]:
    user = split.eval_users[0]
    history = [dataset.catalog.ids[row] for row in split.case(user, "test").history]
    text = hybrid.text
    faiss_text = EmbeddingRetriever(
        dataset.catalog, text.vectors, encoder=text.encoder, popularity=text.popularity, faiss_threshold=1
    )
    calls = {
        "pop": lambda: hybrid.components["pop"].retrieve(history, 10),
        "cooccurrence": lambda: hybrid.components["cooccurrence"].retrieve(history, 10),
        "embedding, numpy": lambda: text.retrieve(history, 10),
        "embedding, FAISS": lambda: faiss_text.retrieve(history, 10),
        "embedding + query (encodes the query)": lambda: text.retrieve(history, 10, query="a funny 90s comedy"),
        "hybrid": lambda: hybrid.retrieve(history, 10),
        "hybrid + query + genre filter": lambda: hybrid.retrieve(
            history, 10, query="a funny 90s comedy", filters=Filters(exclude_genres=("Horror",))
        ),
    }
    n = len(dataset.catalog)
    return [
        f"| {dataset.name} ({n:,} items) | {name} | {median_ms(call, repeats):.2f} |" for name, call in calls.items()
    ]


def synthetic_rows(n: int, dim: int, seed: int, repeats: int) -> list[str]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)  # [n, D]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((repeats + 1, dim), dtype=np.float32)
    allowed = rng.random(n) < 0.5
    rows = []
    indexes = {"numpy": VectorIndex(vectors, threshold=n + 1)}
    start = time.perf_counter()
    indexes["FAISS"] = VectorIndex(vectors, threshold=1)
    build_s = time.perf_counter() - start
    if indexes["FAISS"].backend != "faiss":
        del indexes["FAISS"]  # faiss-cpu not installed
    top = {}
    for name, index in indexes.items():
        for label, mask in (("no filter", None), ("50% filter", allowed)):
            it = iter(queries)
            ms = median_ms(lambda index=index, mask=mask, it=it: index.search(next(it), 10, mask), repeats)
            rows.append(f"| synthetic ({n:,} x {dim}) | vector top-10, {name}, {label} | {ms:.2f} |")
        top[name] = index.search(queries[0], 10, allowed)[0]
    if "FAISS" in top:
        same = np.array_equal(top["numpy"], top["FAISS"])
        label = f"FAISS IndexFlatIP build (once): {build_s:.2f} s; same filtered top-10 as numpy: {same}"
        rows.append(f"| synthetic ({n:,} x {dim}) | {label} | |")
    return rows


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(threads)


def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _set_threads(args.threads)
    dataset = load_dataset(args.dataset)
    split = LeaveOneOutSplit(dataset.interactions)
    start = time.perf_counter()
    sequential = SequentialConfig() if args.sequential else None
    hybrid = build_default_retriever(dataset, split, cache_dir=args.cache_dir, sequential=sequential)
    build_s = time.perf_counter() - start
    n_cases = len(split.cases(args.split))
    print(f"{dataset.summary()}; split={args.split}, {n_cases} users evaluated; seed={args.seed}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load}, threads={args.threads}; "
        f"build_default_retriever {build_s:.1f} s"
    )
    weights = ", ".join(f"{k}={v:g}" for k, v in hybrid.weights.items())
    print(f"hybrid weights (tuned on valid, HR@20): {weights}\n")
    print(f"Full ranking over all {len(dataset.catalog)} items, history masked, {args.split} split:\n")
    print("\n".join(quality_table(hybrid, split, args.split)))
    print(f"\nQuery latency, median of {args.repeats} calls, one user, k=10:\n")
    lines = ["| catalogue | call | ms |", "|---|---|---|"]
    lines += latency_rows(hybrid, dataset, split, args.repeats)
    if args.synthetic_items > 0:
        lines += synthetic_rows(args.synthetic_items, args.dim, args.seed, args.repeats)
    print("\n".join(lines))


if __name__ == "__main__":
    main(make_parser().parse_args())
