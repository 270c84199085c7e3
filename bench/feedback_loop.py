"""The feedback loop, measured by simulation on ML-100k (seeded; retrieval-only first stage).

Each user's last K events are held out (the state is built without them: ``without_last_events``;
K = 8 reuses the cached first stage that fine-tuning's shadow examples built). They are replayed in
time order, one event per user per step, and after step j every user's event j + 1 is predicted:

- stale: the first stage and the history as built (nothing replayed reached it);
- online append: the same first stage, the history with the replayed events (what
  ``recommender.update.online_history`` gives the chat: appended per user, masked from then on);
- incremental update: the replayed events of ALL users went through ``Updater.update`` (popularity,
  co-occurrence, histories of the sequential model), the history as in online append.

NDCG@10 / HR@10 pooled over steps and users, paired bootstrap intervals
(``paired_ndcg_difference``), and the time of an incremental update of 1,000 interactions (median
of 5, through the persisted update path) beside a full rebuild (split + components + weight tuning;
the sequential model's retrain time is read from its cache record, not rerun).

    nice -n 10 python -m bench.feedback_loop                 # ~3 min on 2 shared cores
    nice -n 10 python -m bench.feedback_loop --steps 3 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def held_out_events(dataset, k: int):
    """[U, k] catalogue rows, timestamps and ratings (NaN without) of each user's last ``k`` events,
    in the split's order."""
    inter = dataset.interactions
    codes = inter.user_codes
    order = np.lexsort((np.arange(len(codes)), inter.timestamps, codes))
    ends = np.cumsum(np.bincount(codes, minlength=inter.n_users))
    picks = ends[:, None] - k + np.arange(k)[None, :]  # [U, k] positions in ``order``
    ratings = inter.ratings if inter.ratings is not None else np.full(len(codes), np.nan)
    return inter.user_ids, inter.items[order][picks], inter.timestamps[order][picks], ratings[order][picks]


def step_events(catalog, users, held, times, j: int):
    """Every user's held-out event ``j`` as new events, in time order (one replay step)."""
    from recommender.data.updates import NewEvents

    order = np.argsort(times[:, j], kind="stable")
    return NewEvents.of(users[order], [catalog.ids[r] for r in held[order, j]], times[order, j], source="replay")


def ranks_of(retriever, histories, targets, batch: int = 256) -> np.ndarray:
    from recommender.data.split import EvalCase
    from recommender.evaluation.metrics import full_ranks

    out = []
    for start in range(0, len(histories), batch):
        chunk = histories[start : start + batch]
        cases = [EvalCase("", h, int(t)) for h, t in zip(chunk, targets[start : start + batch])]
        out.append(full_ranks(retriever.score_batch(chunk), cases))
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held-out", type=int, default=8, help="events held out per user (K)")
    parser.add_argument("--steps", type=int, default=None, help="replay steps (default K - 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed incremental updates of --timed events")
    parser.add_argument("--timed", type=int, default=1000, help="interactions per timed update")
    parser.add_argument("--no-sequential", action="store_true", help="first stage without the sequential model")
    parser.add_argument("--output", type=Path, default=RESULTS / "feedback_loop.md")
    args = parser.parse_args(argv)

    from recommender.data.loaders import load_dataset
    from recommender.data.split import LeaveOneOutSplit, without_last_events
    from recommender.data.updates import NewEvents
    from recommender.evaluation.metrics import hit_rate, ndcg, paired_ndcg_difference
    from recommender.retrieval.hybrid import build_components, build_default_retriever, tune_weights
    from recommender.retrieval.sequential import SequentialConfig
    from recommender.update import Updater

    k = args.held_out
    steps = args.steps or k - 1
    full = load_dataset("ml-100k")
    base = without_last_events(full, k)
    users, held, times, _ = held_out_events(full, k)
    base_split = LeaveOneOutSplit(base.interactions)
    sequential = None if args.no_sequential else SequentialConfig()
    retriever = build_default_retriever(base, base_split, sequential=sequential)
    first_stage = "+".join(retriever.components) + f" (weights {retriever.weights})"
    histories0 = [np.asarray(base_split.sequences[u], dtype=np.int64) for u in users]
    updater = Updater(base, retriever, persist=False)
    ranks = {"stale": [], "online": [], "incremental": []}
    per_step, update_seconds = [], []
    for j in range(steps):
        events = step_events(full.catalog, users, held, times, j)
        clock = time.perf_counter()
        updater.update(events)
        update_seconds.append(time.perf_counter() - clock)
        online = [np.concatenate([h, held[u, : j + 1]]) for u, h in enumerate(histories0)]
        targets = held[:, j + 1] if j + 1 < k else None
        row = {"step": j + 1}
        for name, stage, hist in (("stale", retriever, histories0), ("online", retriever, online),
                                  ("incremental", updater.retriever, online)):  # fmt: skip
            r = ranks_of(stage, hist, targets)
            ranks[name].append(r)
            row[name] = ndcg(r, 10)
        per_step.append(row)
        print(
            f"step {j + 1}: " + ", ".join(f"{n} {row[n]:.4f}" for n in ranks) + f"; update {update_seconds[-1]:.2f} s"
        )
    pooled = {name: np.concatenate(value) for name, value in ranks.items()}

    # Timing: 1,000 interactions (the first in time order) through the persisted path, from the base state.
    flat = np.argsort(times[:, :steps].ravel(), kind="stable")[: args.timed]
    u_idx, j_idx = np.unravel_index(flat, (len(users), steps))
    timed = NewEvents.of(users[u_idx], [full.catalog.ids[r] for r in held[u_idx, j_idx]], times[u_idx, j_idx],
                         source="timed")  # fmt: skip
    seconds = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            fresh = Updater(base, retriever, Path(folder) / "state")
            clock = time.perf_counter()
            report = fresh.update(timed)
            seconds.append(time.perf_counter() - clock)
    grown = fresh.dataset
    from recommender.retrieval.base import HybridRetriever

    # The catalogue did not change, so a rebuild finds the item embeddings in the cache, as in serving.
    clock = time.perf_counter()
    split = LeaveOneOutSplit(grown.interactions)
    parts = build_components(grown, split)
    hybrid = HybridRetriever(grown.catalog, parts, {"cooccurrence": 1.0}, text=parts["embedding"])
    tune_weights(hybrid, split)
    rebuild = time.perf_counter() - clock
    retrain = None
    if sequential is not None:
        info = getattr(retriever.components["sequential"], "info", {})
        retrain = info.get("train_seconds")

    lines = [
        "# Feedback loop: held-out events replayed through the update paths (ML-100k)",
        "",
        f"Command: `python -m bench.feedback_loop --held-out {k} --steps {steps} --repeats {args.repeats}`"
        f" ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}). "
        "First stage, retrieval only: "
        f"{first_stage}, built without each user's last {k} events. {len(users)} users x {steps} steps = "
        f"{len(pooled['stale'])} predictions of the next held-out event, history masked.",
        "",
        "| update path | NDCG@10 | HR@10 | vs stale: NDCG@10 difference [95% CI] | wins / losses |",
        "|---|---|---|---|---|",
    ]
    for name in ("stale", "online", "incremental"):
        r = pooled[name]
        cell = "-"
        if name != "stale":
            d = paired_ndcg_difference(r, pooled["stale"], 10, seed=0)
            cell = f"{d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | {d['wins']} / {d['losses']}"
        else:
            cell += " | -"
        lines.append(f"| {name} | {ndcg(r, 10):.4f} | {hit_rate(r, 10):.4f} | {cell} |")
    d = paired_ndcg_difference(pooled["incremental"], pooled["online"], 10, seed=0)
    lines += [
        "",
        f"Incremental update vs online append alone: NDCG@10 {d['difference']:+.4f} "
        f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] ({d['wins']} wins / {d['losses']} losses).",
        "Re-tuned adapter (an LLM stage, so a bench of its own): `bench/results/feedback_retune.md`, "
        "from `python -m bench.feedback_retune` on this same replay.",
        "",
        "Per step (NDCG@10 of the next held-out event):",
        "",
        "| step | stale | online | incremental | update seconds |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['step']} | {r['stale']:.4f} | {r['online']:.4f} | {r['incremental']:.4f} | {s:.2f} |"
        for r, s in zip(per_step, update_seconds)
    ]
    lines += [
        "",
        "| operation | seconds |",
        "|---|---|",
        f"| incremental update, {len(timed)} interactions, persisted (median of {args.repeats}) | "
        f"{statistics.median(seconds):.2f} (runs: {', '.join(f'{s:.2f}' for s in seconds)}) |",
        f"| full rebuild without the sequential model (split, popularity, co-occurrence, weight tuning; item "
        f"embeddings from the cache) | {rebuild:.1f} |",
    ]
    if retrain is not None:
        lines.append(f"| sequential model retrain (its cache record's train_seconds, not rerun) | {retrain:.0f} |")
    lines += ["", "Last timed update:", ""] + [f"- {line}" for line in report.lines()]
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
