"""Where the slow first-stage requests come from at scale (issue 26): every request's shape beside
its time, so the tail has a named cause.

    python -m bench.scale --sizes 1m --retrieval-sizes 1m --encoder hashing --threads 1 --knowledge  # builds, caches
    python -m bench.retrieval_tail --size 1m --requests 1000 --threads 1 --knowledge

Loads the synthetic log and the first stage ``bench.scale`` built and cached (same root, same cache,
so nothing is retrained), then times ``retrieve(history, k=50)`` for seeded test users, one at a
time, recording per request: wall and CPU milliseconds, history length, each component's own
``standardised_batch`` time, the blend + top-K rest, and the garbage collections that ran inside it
(``gc.callbacks``). Three passes over the same requests: as served, after ``gc.freeze()`` (the
long-lived objects of the build moved out of the collector's reach), and with the collector off,
so a collector pause shows as the difference. Prints p50/p95/p99 per pass, the slowest requests'
shapes, latency by history-length bucket, and writes ``bench/results/retrieval_tail.md``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


class CollectorWatch:
    """Counts and times garbage collections while armed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, float]] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.events.append((int(info["generation"]), 1000 * (time.perf_counter() - self._start)))

    def take(self) -> list[tuple[int, float]]:
        events, self.events = self.events, []
        return events


def time_requests(hybrid, histories: list[list[str]], rows: list[np.ndarray], watch: CollectorWatch) -> list[dict]:
    """One record per request: its wall/CPU ms, shape, per-component ms and collections."""
    records = []
    for history, history_rows in zip(histories, rows):
        watch.take()
        wall, cpu = time.perf_counter(), time.process_time()
        hybrid.retrieve(history, k=50)
        wall_ms, cpu_ms = 1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu)
        collections = watch.take()
        parts = {}
        for name, component in hybrid.components.items():  # the same work, component by component
            start = time.perf_counter()
            component.standardised_batch([history_rows])
            parts[name] = 1000 * (time.perf_counter() - start)
        records.append({
            "wall_ms": wall_ms, "cpu_ms": cpu_ms, "history": len(history_rows), "parts": parts,
            "gc": collections, "gc_ms": sum(ms for _, ms in collections),
        })  # fmt: skip
    return records


def percentiles(values: list[float]) -> str:
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return f"{p50:.1f} | {p95:.1f} | {p99:.1f} | {max(values):.1f}"


def report(passes: dict[str, list[dict]], header: str) -> str:
    columns = "wall p50 | p95 | p99 | max (ms) | CPU p99 ms | requests with a collection | collector ms (sum)"
    lines = [f"# First-stage latency tail (issue 26)\n\n{header}\n", f"| pass | {columns} |", "|---|" + "---:|" * 7]
    for name, records in passes.items():
        walls = [r["wall_ms"] for r in records]
        cpu99 = np.percentile([r["cpu_ms"] for r in records], 99)
        with_gc = [r for r in records if r["gc"]]
        lines.append(
            f"| {name} | {percentiles(walls)} | {cpu99:.1f} | {len(with_gc)} | {sum(r['gc_ms'] for r in with_gc):.1f} |"
        )
    served = passes["as served"]
    names = list(served[0]["parts"])
    lines += ["", "Slowest requests as served (per-component ms re-timed right after, alone):", "",
              "| wall ms | CPU ms | history length | collections (generation: ms) | " + " | ".join(names) + " |",
              "|---:|---:|---:|---|" + "---:|" * len(names)]  # fmt: skip
    for r in sorted(served, key=lambda r: -r["wall_ms"])[:10]:
        gcs = ", ".join(f"{g}: {ms:.1f}" for g, ms in r["gc"]) or "none"
        parts = " | ".join(f"{r['parts'][n]:.1f}" for n in names)
        lines.append(f"| {r['wall_ms']:.1f} | {r['cpu_ms']:.1f} | {r['history']} | {gcs} | {parts} |")
    lengths = np.array([r["history"] for r in served])
    edges = np.unique(np.percentile(lengths, [0, 25, 50, 75, 90, 100]).astype(int))
    lines += [
        "",
        "Wall ms by history length (as served):",
        "",
        "| history length | requests | p50 | p99 |",
        "|---|---:|---:|---:|",
    ]
    for low, high in zip(edges[:-1], edges[1:]):
        inside = [r["wall_ms"] for r in served if low <= r["history"] <= high]
        if inside:
            lines.append(
                f"| {low}-{high} | {len(inside)} | {np.percentile(inside, 50):.1f} | {np.percentile(inside, 99):.1f} |"
            )
    correlation = np.corrcoef(lengths, [r["wall_ms"] for r in served])[0, 1]
    lines.append(f"\nPearson correlation of wall ms with history length: {correlation:+.2f}")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from bench.scale import HashingEncoder
    from recommender.data.loaders import load_dataset
    from recommender.data.split import LeaveOneOutSplit
    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig

    folder = args.root / f"synth-{args.size}"
    dataset = load_dataset(folder)
    split = LeaveOneOutSplit(dataset.interactions)
    encoder = HashingEncoder() if args.encoder == "hashing" else None
    start = time.perf_counter()
    epochs = args.sequential_epochs
    sequential = SequentialConfig() if epochs is None else SequentialConfig(max_epochs=epochs)
    hybrid = build_default_retriever(
        dataset, split, encoder=encoder, cache_dir=args.root / "cache", sequential=sequential, knowledge=args.knowledge
    )
    built = time.perf_counter() - start
    rng = np.random.default_rng(args.seed)
    users = rng.choice(split.eval_users, size=min(args.requests, len(split.eval_users)), replace=False).tolist()
    ids = dataset.catalog.ids
    rows = [split.case(user, "test").history for user in users]
    histories = [[ids[row] for row in history] for history in rows]
    watch = CollectorWatch()
    for history in histories[:5]:
        hybrid.retrieve(history, k=50)  # warm-up
    passes = {"as served": time_requests(hybrid, histories, rows, watch)}
    tracked = len(gc.get_objects())  # before the freeze moves them out of the collector's view
    gc.collect()
    gc.freeze()
    passes["after gc.freeze()"] = time_requests(hybrid, histories, rows, watch)
    gc.disable()
    passes["collector off"] = time_requests(hybrid, histories, rows, watch)
    gc.enable()
    header = (
        f"`python -m bench.retrieval_tail --size {args.size} --requests {args.requests} --threads {args.threads}` "
        f"({time.strftime('%Y-%m-%d')}); synthetic {args.size} log from bench.scale (root {args.root}), "
        f"first stage loaded from its cache in {built:.0f} s ({', '.join(hybrid.components)}); "
        f"{len(users)} seeded test users (seed {args.seed}), `retrieve(history, k=50)` one at a time; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at the end; "
        f"objects the collector tracks after the build {tracked:,}."
    )
    text = report(passes, header)
    print(text)
    (RESULTS / "retrieval_tail.md").write_text(text)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1m", help="a size bench.scale generated and built (10k, 100k, 1m)")
    parser.add_argument("--root", type=Path, default=Path("runs/scale"), help="bench.scale's root")
    parser.add_argument("--requests", type=int, default=1000, help="seeded test users timed per pass")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--encoder", default="hashing", choices=("minilm", "hashing"), help="as bench.scale built it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--knowledge", action="store_true", help="as bench.scale --knowledge built it")
    parser.add_argument("--sequential-epochs", type=int, default=None, help="as bench.scale built it (its cache key)")
    return parser


if __name__ == "__main__":
    main(make_parser().parse_args())
