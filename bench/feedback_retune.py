"""The re-tuned-adapter row of the feedback-loop simulation (ML-100k, seeded).

The replay of ``bench.feedback_loop``: each user's last K = 8 events are held out and the first stage
is built without them; here the "before" adapter is too (the shipped recipe, run on that data). Events
1..K-1 are replayed in time order through the incremental update. Each replayed event that was on the
list the first stage showed at that moment becomes chat feedback on that list (thumbs up for a rating
of 4-5, down for 1-2, nothing for 3), with the history the list was made from. The adapter re-tuned on
that feedback (``finetune/configs/ml100k_feedback_cpu.yaml``) and the one before it then rerank the
updated first stage's top 20 for each user's last held-out event (history masked, online history).

    python -m bench.feedback_retune data       # the base dataset folder + the replayed feedback (JSONL)
    recommender finetune --config finetune/configs/ml100k_seq_cpu.yaml \\
        --set data.dataset=runs/feedback-sim/ml-100k-base --set output_dir=runs/feedback-sim/adapter-before
    recommender finetune --config finetune/configs/ml100k_feedback_cpu.yaml \\
        --set data.dataset=runs/feedback-sim/ml-100k-base --set train.init_adapter=runs/feedback-sim/adapter-before \\
        --set data.feedback=runs/feedback-sim/feedback.jsonl --set output_dir=runs/feedback-sim/adapter-retuned
    python -m bench.feedback_retune score --name before --adapter runs/feedback-sim/adapter-before --users 300
    python -m bench.feedback_retune score --name retuned --adapter runs/feedback-sim/adapter-retuned --users 300
    python -m bench.feedback_retune report
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.feedback_loop import RESULTS, held_out_events, ranks_of, step_events

FOLDER = Path("runs/feedback-sim")
SHOWN = 20  # the list the chat shows = the top-N the adapter reranks


@dataclass
class Replay:
    base: object  # Dataset without each user's last K events
    users: np.ndarray  # [U] user ids
    held: np.ndarray  # [U, K] catalogue rows of the held-out events, in time order
    ratings: np.ndarray  # [U, K]
    base_histories: list  # per user: the base sequence, before any replay
    histories: list  # per user: base sequence + the replayed events (online history after the replay)
    shown: list  # per replayed step j: [U, SHOWN] rows on screen when event j happened
    updater: object  # the incremental updater after the replay


def replay(k: int) -> Replay:
    """Replay events 1..K-1 of every user through the incremental update, keeping the lists shown."""
    from recommender.data.loaders import load_dataset
    from recommender.data.split import LeaveOneOutSplit, without_last_events
    from recommender.evaluation.metrics import top_k
    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig
    from recommender.update import Updater

    full = load_dataset("ml-100k")
    base = without_last_events(full, k)
    users, held, times, ratings = held_out_events(full, k)
    split = LeaveOneOutSplit(base.interactions)
    updater = Updater(base, build_default_retriever(base, split, sequential=SequentialConfig()), persist=False)
    base_histories = [np.asarray(split.sequences[u], dtype=np.int64) for u in users]
    histories, shown = base_histories, []
    for j in range(k - 1):
        scores = updater.retriever.score_batch(histories)
        shown.append(np.stack([top_k(row, SHOWN, h) for row, h in zip(scores, histories)]))
        updater.update(step_events(full.catalog, users, held, times, j))
        histories = [np.concatenate([h, held[u, j : j + 1]]) for u, h in enumerate(histories)]
    return Replay(base, users, held, ratings, base_histories, histories, shown, updater)


def write_base_folder(k: int, folder: Path) -> Path:
    """ML-100k without each user's last ``k`` events, in its own RecBole layout, so a fine-tuning
    recipe can point ``data.dataset`` at it (same fingerprint as ``without_last_events``)."""
    from recommender.data.loaders import find_ml100k, load_dataset
    from recommender.data.split import without_last_events

    source = Path(find_ml100k())
    full = load_dataset("ml-100k")
    base = without_last_events(full, k)
    kept = set(zip(*_event_keys(base)))
    lines = (source / "ml-100k.inter").read_text(encoding="utf-8").splitlines()
    keys = zip(*_event_keys(full))  # file order = the loader's row order
    folder.mkdir(parents=True, exist_ok=True)
    body = [line for line, key in zip(lines[1:], keys) if key in kept]
    (folder / f"{folder.name}.inter").write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    shutil.copy(source / "ml-100k.item", folder / f"{folder.name}.item")
    loaded = load_dataset(folder)
    if loaded.fingerprint() != base.fingerprint():
        raise RuntimeError(f"{folder}: the written data does not reload as ML-100k without the last {k} events.")
    return folder


def _event_keys(dataset):
    inter = dataset.interactions
    return inter.user_ids[inter.user_codes], inter.items, inter.timestamps


def feedback_records(run: Replay) -> list[dict]:
    """The replayed events that were on screen, as the chat store's feedback records."""
    ids = run.base.catalog.ids
    records = []
    for u, user in enumerate(run.users):
        for j, lists in enumerate(run.shown):
            item, rating, shown = int(run.held[u, j]), float(run.ratings[u, j]), lists[u]
            if item not in shown or rating == 3:
                continue
            history = np.concatenate([run.base_histories[u], run.held[u, :j]])
            records.append({
                "session_id": f"replay-{user}", "user_id": str(user), "item_id": ids[item],
                "label": int(rating >= 4), "action": "like" if rating >= 4 else "dislike", "step": j + 1,
                "shown": [ids[r] for r in shown], "history": [ids[r] for r in history],
            })  # fmt: skip
    return records


def command_data(args) -> int:
    folder = write_base_folder(args.held_out, args.folder / "ml-100k-base")
    run = replay(args.held_out)
    records = feedback_records(run)
    path = args.folder / "feedback.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    likes = sum(r["label"] for r in records)
    events = run.held.shape[0] * (run.held.shape[1] - 1)
    on_screen = sum(int(run.held[u, j] in lists[u]) for j, lists in enumerate(run.shown) for u in range(len(lists)))
    print(f"{folder}: {run.base.summary()}")
    print(f"{path}: {len(records)} feedback records ({likes} likes, {len(records) - likes} dislikes) from {events} "
          f"replayed events ({on_screen} on screen)")  # fmt: skip
    return 0


def command_score(args) -> int:
    from recommender.data.split import EvalCase, LeaveOneOutSplit
    from recommender.evaluation.protocol import rank_cases, sample_users
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer
    from recommender.pipeline import PipelineConfig, Recommender, tuned_settings

    run = replay(args.held_out)
    position = {str(u): i for i, u in enumerate(run.users)}
    picked = [position[u] for u in sample_users(LeaveOneOutSplit(run.base.interactions), args.users, args.seed)]
    histories = [run.histories[i] for i in picked]
    targets = run.held[picked, -1]
    cases = [EvalCase(str(run.users[i]), h, int(t)) for i, h, t in zip(picked, histories, targets)]
    settings = {"llm_candidates": SHOWN, "seed": args.seed, **tuned_settings(args.adapter)}
    scorer = LLMScorer(load_model(None, adapter=args.adapter, device="cpu"), batch_size=16)
    pipeline = Recommender(run.updater.dataset, run.updater.retriever, scorer, PipelineConfig(**settings))
    clock = time.perf_counter()
    result = rank_cases(pipeline.full_scores_batch, cases, 16, args.name, n_labels=SHOWN)
    first_stage = ranks_of(run.updater.retriever, histories, targets)
    out = {
        "name": args.name, "adapter": str(args.adapter), "settings": settings, "users": [c.user for c in cases],
        "ranks": result.ranks.tolist(), "first_stage_ranks": first_stage.tolist(),
        "seconds": round(time.perf_counter() - clock, 1), "held_out": args.held_out, "seed": args.seed,
        "sampled": args.users is not None and args.users < len(run.users),
    }  # fmt: skip
    path = args.folder / f"ranks-{args.name}.json"
    path.write_text(json.dumps(out))
    print(f"{path}: {len(cases)} users in {out['seconds']} s")
    return 0


def command_report(args) -> int:
    from recommender.evaluation.metrics import hit_rate, ndcg, paired_ndcg_difference

    runs = {name: json.loads((args.folder / f"ranks-{name}.json").read_text()) for name in ("before", "retuned")}
    if runs["before"]["users"] != runs["retuned"]["users"]:
        raise SystemExit("ranks-before.json and ranks-retuned.json were scored on different users; rerun one.")
    rows = {"first stage (updated, its own order)": np.array(runs["before"]["first_stage_ranks"])}
    rows.update({f"{name}: {run['adapter']}": np.array(run["ranks"]) for name, run in runs.items()})
    first, before, retuned = rows.values()
    meta = json.loads((Path(runs["retuned"]["adapter"]) / "recommender_adapter.json").read_text())
    best_step = (meta.get("best") or {}).get("step")
    metric = meta.get("config", {}).get("eval", {}).get("metric", "blend_NDCG@10")
    curve = [(e["step"], e[metric]) for e in meta.get("evaluations", [])]
    kept = max(curve, key=lambda point: point[1])[0] if curve else best_step  # step 0 = the adapter it started from
    n = len(before)
    sample = "all" if runs["before"].get("sampled") is False else f"seeded sample, seed {runs['before']['seed']}"
    lines = [
        "# Feedback loop: the re-tuned adapter (ML-100k, simulated chat feedback)",
        "",
        f"Commands: `python -m bench.feedback_retune` (data, score, report; see its docstring), "
        f"{time.strftime('%Y-%m-%d')}, 2 CPU cores. {n} test users ({sample}), "
        f"each one's last held-out event (K = {runs['before']['held_out']}) predicted after the other "
        f"{runs['before']['held_out'] - 1} were replayed; history masked; the LLM reranks the updated first "
        f"stage's top {SHOWN}. The re-tuned adapter saw {meta.get('feedback_examples')} feedback examples "
        f"(from {meta.get('init_adapter')}, {meta.get('steps')} steps, best at step {best_step}).",
        "",
        f"Validation ({metric}, the recipe's 200 selection users) by step: "
        + ", ".join(f"{step}: {value:.4f}" for step, value in curve)
        + (
            f". Step 0 is the adapter the re-tune started from and the best point, so the recipe keeps it: the "
            f"re-tune is rejected and serving is unchanged. The re-tuned row scores the weights of step {best_step}, "
            "the best re-tuned step, to show what the re-tune itself does."
            if kept == 0 and best_step != 0
            else f". The recipe keeps step {kept}."
        ),
        "",
        "| ranking | NDCG@10 | HR@10 |",
        "|---|---|---|",
        *(f"| {name} | {ndcg(r, 10):.4f} | {hit_rate(r, 10):.4f} |" for name, r in rows.items()),
        "",
        "| paired NDCG@10 difference | difference [95% CI] | wins / losses |",
        "|---|---|---|",
    ]
    for label, a, b in (("re-tuned minus before", retuned, before), ("re-tuned minus first stage", retuned, first),
                        ("before minus first stage", before, first)):  # fmt: skip
        d = paired_ndcg_difference(a, b, 10, seed=0)
        lines.append(f"| {label} | {d['difference']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] | "
                     f"{d['wins']} / {d['losses']} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / "feedback_retune.md").write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held-out", type=int, default=8, help="events held out per user (K)")
    parser.add_argument("--folder", type=Path, default=FOLDER, help="where the data, feedback and ranks go")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("data", help="write the base dataset folder and the replayed feedback")
    score = commands.add_parser("score", help="two-stage ranks of the last held-out event with one adapter")
    score.add_argument("--name", required=True, help="'before' or 'retuned'")
    score.add_argument("--adapter", type=Path, required=True)
    score.add_argument("--users", type=int, default=None, help="seeded sample of test users (default all)")
    score.add_argument("--seed", type=int, default=0)
    commands.add_parser("report", help="the table with paired intervals -> bench/results/feedback_retune.md")
    args = parser.parse_args(argv)
    return {"data": command_data, "score": command_score, "report": command_report}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
