"""How cost grows with the size of the log (issue 16): synthetic RecBole files from
``bench/synthetic.py``, then load, split and (where asked) the retrievers, each size in fresh
processes so peak RSS is that size's own.

    python -m bench.scale --sizes 10k,100k                 # generate (once), load, split
    python -m bench.scale --report                         # table + plot from the stored results

Each size runs two child processes: ``generate`` (skipped when the files exist; its first
timing is kept) and ``pipeline`` (load, split, training CSR + popularity, then, for the sizes in
``--retrieval-sizes``, the served first stage: ``build_default_retriever`` with the sequential
model, timed per component plus weight tuning; ``retrieve(history, k=50)`` latency of the hybrid
over 200 test users (p50/p99); retrieval-only throughput of ``score_batch`` + top-50 over 2,048
test users in batches of 64). Results go to ``<root>/results.json``; the table to stdout, the plot
to ``bench/results/scale.png``. Retrieval cells of sizes not run read "n/a".

    python -m bench.scale --sizes 10k --retrieval-sizes 10k --sequential-epochs 3
    python -m bench.scale --sizes 1m --retrieval-sizes 1m --encoder hashing --llm-users 5   # + the LLM stage
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {  # users, items, events
    "10k": (10_000, 5_000, 500_000),
    "100k": (100_000, 10_000, 5_000_000),
    "1m": (1_000_000, 100_000, 50_000_000),
}
RESULTS = Path(__file__).parent / "results"
COLUMNS = [
    ("generate_s", "generate s"),
    ("generate_rss_gb", "generate peak GB"),
    ("load_s", "load s"),
    ("split_s", "split s"),
    ("train_csr_s", "train CSR + popularity s"),
    ("data_rss_gb", "load+split peak GB"),
    ("build_s", "first stage built s"),
    ("build_cooccurrence_s", "co-occurrence s"),
    ("build_embedding_s", "embedding s"),
    ("build_sequential_s", "sequential s"),
    ("build_knowledge_s", "knowledge graph s"),
    ("tune_s", "weight tuning s"),
    ("retrieve_p50_ms", "retrieve p50 ms"),
    ("retrieve_p99_ms", "retrieve p99 ms"),
    ("batch_users_per_s", "batch users/s"),
    ("two_stage_p50_ms", "two-stage (LLM) p50 ms"),
    ("pipeline_rss_gb", "pipeline peak GB"),
]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux


# ---------------------------------------------------------------- child stages


def stage_generate(size: str, folder: Path) -> dict:
    from bench.synthetic import SyntheticConfig, generate

    users, items, events = SIZES[size]
    result = generate(SyntheticConfig(users=users, items=items, events=events, seed=0), folder)
    return {"generate_s": result["seconds"], "generate_rss_gb": peak_rss_gb()}


def stage_pipeline(size: str, folder: Path, retrieval: bool, cache: Path, args: argparse.Namespace) -> dict:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from recommender import load_dataset
    from recommender.data.split import LeaveOneOutSplit

    out: dict[str, float | str] = {}
    start = time.perf_counter()
    dataset = load_dataset(folder)
    out["load_s"] = time.perf_counter() - start
    start = time.perf_counter()
    split = LeaveOneOutSplit(dataset.interactions)
    out["split_s"] = time.perf_counter() - start
    start = time.perf_counter()
    split.train_csr()
    split.item_popularity(len(dataset.catalog))
    out["train_csr_s"] = time.perf_counter() - start
    out["data_rss_gb"] = peak_rss_gb()
    if retrieval:
        out.update(
            _retrieval(dataset, split, cache, args.encoder, args.sequential_epochs, args.llm_users, args.knowledge)
        )
    out["pipeline_rss_gb"] = peak_rss_gb()
    return out


class HashingEncoder:
    """Stand-in text encoder for sizes where the sentence model cannot embed the catalogue in the
    time at hand: each word hashed (seeded) to a random 384-d direction, summed, normalised. Same
    shape and index as the real path; the text quality is not what is measured."""

    name = "hashing-384"
    dim = 384

    def encode(self, texts: list[str]) -> np.ndarray:
        import zlib

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for t, text in enumerate(texts):
            for word in text.lower().split():
                rng = np.random.default_rng(zlib.crc32(word.encode()))
                out[t] += rng.standard_normal(self.dim, dtype=np.float32)
        out[~out.any(axis=1)] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _retrieval(
    dataset, split, cache: Path, encoder: str, sequential_epochs: int | None, llm_users: int = 0, knowledge=False
) -> dict:
    """The served first stage: build the hybrid (every component + weight tuning on validation),
    then single-user ``retrieve`` latency and batched retrieval-only throughput."""
    from recommender.evaluation.metrics import top_k
    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig

    config = SequentialConfig() if sequential_epochs is None else SequentialConfig(max_epochs=sequential_epochs)
    text = HashingEncoder() if encoder == "hashing" else None
    start = time.perf_counter()
    hybrid = build_default_retriever(
        dataset, split, encoder=text, cache_dir=cache, sequential=config, knowledge=knowledge
    )
    out: dict[str, float | str] = {"build_s": time.perf_counter() - start}
    for name, component in hybrid.components.items():
        out[f"build_{name}_s"] = component.build_seconds
    out["tune_s"] = out["build_s"] - sum(c.build_seconds for c in hybrid.components.values())
    out["build_rss_gb"] = peak_rss_gb()
    out["weights"] = ",".join(f"{k}={v:g}" for k, v in hybrid.weights.items())
    out["cooccurrence_nnz"] = int(hybrid.components["cooccurrence"].similarity.nnz)
    out["encoder"] = encoder
    rng = np.random.default_rng(0)
    users = rng.choice(split.eval_users, size=min(200, len(split.eval_users)), replace=False).tolist()
    ids = dataset.catalog.ids
    histories = [[ids[row] for row in split.case(user, "test").history] for user in users]
    hybrid.retrieve(histories[0], k=50)  # warm-up
    latencies = []
    for history in histories:
        start = time.perf_counter()
        hybrid.retrieve(history, k=50)
        latencies.append(time.perf_counter() - start)
    out["retrieve_p50_ms"] = 1000 * float(np.percentile(latencies, 50))
    out["retrieve_p99_ms"] = 1000 * float(np.percentile(latencies, 99))
    batch_users = rng.choice(split.eval_users, size=min(2048, len(split.eval_users)), replace=False).tolist()
    cases = split.cases("test", batch_users)
    start = time.perf_counter()
    for first in range(0, len(cases), 64):
        chunk = cases[first : first + 64]
        scores = hybrid.score_batch([case.history for case in chunk])
        for case, row in zip(chunk, scores):
            top_k(row, 50, case.history)
    out["batch_users_per_s"] = len(cases) / (time.perf_counter() - start)
    out["components"] = ",".join(hybrid.components)
    if llm_users:
        try:
            out.update(_two_stage(dataset, hybrid, users[:llm_users]))
        except Exception as error:  # noqa: BLE001 - keep the retrieval timings of a long build
            out["two_stage_error"] = f"{type(error).__name__}: {error}"
    return out


def _two_stage(dataset, hybrid, users: list) -> dict:
    """The LLM stage serving users of this dataset: the default model (no adapter: the shipped one
    is for ML-100k) reranks the hybrid's top 20 with the ``rank`` prompt, as
    ``Recommender.recommend(user_id=...)`` does; median and worst seconds per user."""
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer
    from recommender.pipeline import PipelineConfig, Recommender

    pipeline = Recommender(dataset, hybrid, LLMScorer(load_model(None, adapter=None)), PipelineConfig())
    pipeline.recommend(user_id=users[0], k=10)  # warm-up: the first forward allocates
    seconds, reranked = [], 0
    for user in users:
        start = time.perf_counter()
        recs = pipeline.recommend(user_id=user, k=10)
        seconds.append(time.perf_counter() - start)
        reranked += sum(rec.llm_score is not None for rec in recs)
    return {
        "two_stage_users": len(users),
        "two_stage_p50_ms": 1000 * float(np.median(seconds)),
        "two_stage_max_ms": 1000 * float(np.max(seconds)),
        "two_stage_llm_ranked": reranked / len(users),
        "two_stage_rss_gb": peak_rss_gb(),
    }


# ---------------------------------------------------------------- driver, table, plot


def run_child(stage: str, size: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "bench.scale", "--stage", stage, "--sizes", size, "--root", str(args.root)]
    if stage == "pipeline" and size in args.retrieval_sizes.split(","):
        command += ["--with-retrieval", "--encoder", args.encoder]
        if args.sequential_epochs is not None:
            command += ["--sequential-epochs", str(args.sequential_epochs)]
        command += ["--llm-users", str(args.llm_users)] + (["--knowledge"] if args.knowledge else [])
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {f"{stage}_error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict) -> str:
    header = "| size (users x items x events) | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(COLUMNS) + 1)]
    for size in SIZES:
        if size not in results:
            continue
        users, items, events = SIZES[size]
        row = results[size]
        cells = []
        for key, _ in COLUMNS:
            value = row.get(key)
            cells.append("n/a" if value is None else f"{value:.2f}" if value < 10 else f"{value:.0f}")
        lines.append(f"| {size}: {users:,} x {items:,} x {events:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [s for s in SIZES if s in results]
    events = [SIZES[s][2] for s in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in COLUMNS:
        values = [results[s].get(key) for s in sizes]
        points = [(e, v) for e, v in zip(events, values) if v is not None]
        if not points:
            continue
        axis = right if key.endswith("_gb") else left
        axis.plot(*zip(*points), marker="o", label=label)
    for axis, ylabel in ((left, "seconds"), (right, "peak RSS, GB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("events")
        axis.set_ylabel(ylabel)
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    fig.suptitle("Cost vs size (synthetic logs, 2 shared CPU cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--retrieval-sizes", default="10k", help="sizes whose retrievers are built and timed")
    parser.add_argument("--root", type=Path, default=Path("runs/scale"), help="data and results.json (gitignored)")
    parser.add_argument("--report", action="store_true", help="only print the table and draw the plot")
    parser.add_argument(
        "--encoder", default="minilm", choices=("minilm", "hashing"),
        help="item text encoder: the default sentence model, or a hashing stand-in "
        "where it cannot embed the catalogue in time",
    )  # fmt: skip
    parser.add_argument(
        "--sequential-epochs", type=int, default=None,
        help="epoch cap of the sequential model (default: SequentialConfig(), whose scale caps apply above 50k users)",
    )  # fmt: skip
    parser.add_argument(
        "--llm-users", type=int, default=0,
        help="after the retrieval timings, serve this many test users through the two-stage pipeline (LLM on)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the pipeline child")
    parser.add_argument(
        "--knowledge", action="store_true", help="the first stage also holds the knowledge-graph retriever (.kg/.link)"
    )
    parser.add_argument("--stage", choices=["generate", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--with-retrieval", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(args: argparse.Namespace) -> None:
    if args.stage:  # a child: one stage of one size, JSON on the last stdout line
        size = args.sizes
        folder = args.root / f"synth-{size}"
        if args.stage == "generate":
            result = stage_generate(size, folder)
        else:
            result = stage_pipeline(size, folder, args.with_retrieval, args.root / "cache", args)
        print(json.dumps(result))
        return
    store = args.root / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    if not args.report:
        for size in args.sizes.split(","):
            row = results.get(size, {})
            folder = args.root / f"synth-{size}"
            if not (folder / f"{folder.name}.inter").exists() or "generate_s" not in row:
                row = {k: v for k, v in run_child("generate", size, args).items()}
            keep = {k: row[k] for k in ("generate_s", "generate_rss_gb") if k in row}
            row = {**keep, **run_child("pipeline", size, args)}
            results[size] = row
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(results, indent=1))
            print(size, json.dumps(row), flush=True)
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    plot(results, RESULTS / "scale.png")


if __name__ == "__main__":
    main(make_parser().parse_args())
