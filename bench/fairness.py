"""Fairness bench: per-group quality and item exposure of the retrieval rows, and the price of the
genre-calibration knob (Steck 2018) on the hybrid first stage, chosen on validation.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/fairness.py                          # the lambda trade-off
    HF_HUB_OFFLINE=1 .venv/bin/python bench/fairness.py --runs runs/eval-test    # report of saved runs

Trade-off (default): the hybrid first stage (pop + co-occurrence + embeddings, weights tuned on
validation, no sequential model: cheap) scores every evaluable user; its top ``--pool`` (40, what
``Recommender.recommend(calibration=...)`` re-ranks for k = 10) is re-ranked by
``recommender.calibration.calibrate`` for lambda in 0, 0.1, ..., 0.9. On VALIDATION targets the
chosen lambda is the largest whose NDCG@10 stays within ``--tolerance`` (5%, relative) of lambda = 0;
on TEST targets that lambda's NDCG@10 cost, miscalibration reduction and tail-exposure change get
paired 95% bootstrap intervals. Writes bench/results/fairness-lambda.{md,json,png}, and the per-group
and item-side report of pop, co-occurrence, embedding, hybrid and hybrid + calibration (test) as
bench/results/fairness.{md,json,png}.

--runs: folders written by ``recommender evaluate`` (ranks.json, and lists.npz for the item side);
their rows are merged (same users required) and reported into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from recommender.calibration import calibrate, genre_distribution, genre_matrix, user_miscalibration
from recommender.data.loaders import load_dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.bootstrap import paired_mean_difference
from recommender.evaluation.fairness import exposure, gini, popularity_buckets, user_tail_share
from recommender.evaluation.fairness_report import run_report
from recommender.evaluation.metrics import coverage, full_ranks, ndcg, paired_ndcg_difference, top_k

RESULTS = Path(__file__).parent / "results"
LAMBDAS = tuple(round(0.1 * i, 1) for i in range(10))


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="*", default=None, help="evaluate output folders to report")
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder of the written files")
    parser.add_argument("--pool", type=int, default=40, help="first-stage candidates the calibration re-ranks")
    parser.add_argument("--tolerance", type=float, default=0.05, help="relative NDCG@10 loss allowed on validation")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return parser


def score_users(scorer, cases, pool: int, batch: int = 64) -> dict[str, np.ndarray | list]:
    """Ranks, top-10 lists and the top-``pool`` rows and scores of one full-catalogue scorer."""
    ranks, tops, rows, scores = [], [], [], []
    for start in range(0, len(cases), batch):
        chunk = cases[start : start + batch]
        block = scorer.score_batch([case.history for case in chunk])  # [B, N]
        ranks.extend(full_ranks(block, chunk).tolist())
        for case, row in zip(chunk, block):
            best = top_k(row, pool, case.history)  # [P] retrieval order, history masked
            tops.append(best[:10])
            rows.append(best)
            scores.append(row[best])
    return {"ranks": np.array(ranks), "tops": tops, "pool_rows": rows, "pool_scores": scores}


def calibrated(scored: dict, histories: list[np.ndarray], genres: np.ndarray, lam: float) -> tuple[np.ndarray, list]:
    """Ranks and top-10 lists after calibrating each pool: the 10 picks first, then everything
    else in retrieval order (so a target outside the picks keeps its retrieval position, moved
    down by the picks that were below it)."""
    ranks, lists = [], []
    for rank, rows, scores, history in zip(scored["ranks"], scored["pool_rows"], scored["pool_scores"], histories):
        p = genre_distribution(genres[history])
        picked = calibrate(scores, genres[rows], p, 10, lam)  # positions = retrieval rank - 1
        hit = np.flatnonzero(picked == rank - 1)
        ranks.append(int(hit[0]) + 1 if len(hit) else int(rank + len(picked) - np.sum(picked < rank - 1)))
        lists.append(rows[picked])
    return np.array(ranks), lists


def summary(ranks, lists, histories, genres, buckets) -> dict:
    """Mean metrics plus the per-user arrays the paired intervals need."""
    kl = user_miscalibration(histories, lists, genres)
    tail = user_tail_share(lists, buckets)
    row = {"NDCG@10": ndcg(ranks, 10), "miscalibration": float(kl.mean()), "tail_share": float(tail.mean())}
    row["gini"] = gini(exposure(lists, len(buckets)))
    row["coverage@10"] = coverage(lists, len(buckets), 10)
    return {"row": row, "ranks": ranks, "lists": lists, "kl": kl, "tail": tail}


def choose(rows: dict[float, dict], tolerance: float) -> float:
    """The largest lambda whose validation NDCG@10 is within ``tolerance`` (relative) of lambda = 0."""
    floor = (1.0 - tolerance) * rows[0.0]["NDCG@10"]
    return max(lam for lam, row in rows.items() if row["NDCG@10"] >= floor)


def trade_off(args, split, retriever, genres, buckets) -> dict:
    """The lambda sweep on validation and test, the choice, and the test intervals."""
    users = split.eval_users
    sweeps, scored_by_split = {}, {}
    for split_name in ("valid", "test"):
        cases = split.cases(split_name, users)
        histories = [case.history for case in cases]
        scored = score_users(retriever, cases, args.pool)
        scored_by_split[split_name] = (scored, histories)
        sweeps[split_name] = {
            lam: summary(*calibrated(scored, histories, genres, lam), histories, genres, buckets) for lam in LAMBDAS
        }
    chosen = choose({lam: s["row"] for lam, s in sweeps["valid"].items()}, args.tolerance)
    base, best = sweeps["test"][0.0], sweeps["test"][chosen]
    paired = {
        "NDCG@10": paired_ndcg_difference(best["ranks"], base["ranks"], 10, seed=args.seed),
        "miscalibration": paired_mean_difference(best["kl"] - base["kl"], seed=args.seed),
        "tail_share": paired_mean_difference(best["tail"] - base["tail"], seed=args.seed),
    }
    return {"sweeps": sweeps, "chosen": chosen, "paired": paired, "scored": scored_by_split, "users": users}


def trade_off_markdown(result: dict, header: dict, tolerance: float) -> str:
    lines = [" · ".join(f"{k}: {v}" for k, v in header.items()), ""]
    columns = ["NDCG@10", "miscalibration", "tail_share", "gini", "coverage@10"]
    for split_name in ("valid", "test"):
        lines += [f"### {split_name}", "", "| lambda | " + " | ".join(columns) + " |", "| ---: |" + " ---: |" * 5]
        for lam, s in result["sweeps"][split_name].items():
            mark = " (chosen)" if lam == result["chosen"] else ""
            lines.append(f"| {lam:.1f}{mark} | " + " | ".join(f"{s['row'][c]:.4f}" for c in columns) + " |")
        lines.append("")
    lines += [
        f"Chosen on validation: lambda = {result['chosen']:.1f}, the largest whose NDCG@10 is within "
        f"{tolerance:.0%} (relative) of lambda = 0. On test, lambda {result['chosen']:.1f} minus lambda 0, same users "
        "(95% paired bootstrap, 2,000 resamples):",
        "",
        "| metric | difference | 95% interval |",
        "| --- | ---: | ---: |",
    ]
    for name, row in result["paired"].items():
        lines.append(f"| {name} | {row['difference']:+.4f} | [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] |")
    return "\n".join(lines) + "\n"


def plot_trade_off(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, other, label in zip(axes, ("miscalibration", "tail_share"), ("miscalibration KL(p || q~)", "tail share")):
        for split_name, style in (("valid", "o-"), ("test", "s--")):
            rows = [s["row"] for s in result["sweeps"][split_name].values()]
            axis.plot([r[other] for r in rows], [r["NDCG@10"] for r in rows], style, label=split_name)
            for lam, r in zip(LAMBDAS, rows):
                axis.annotate(f"{lam:.1f}", (r[other], r["NDCG@10"]), fontsize=6)
        chosen = result["sweeps"]["test"][result["chosen"]]["row"]
        axis.plot([chosen[other]], [chosen["NDCG@10"]], "r*", markersize=12, label="chosen (test)")
        axis.set_xlabel(label)
        axis.set_ylabel("NDCG@10")
        axis.legend(fontsize=7)
    figure.suptitle("Calibrated re-ranking of the hybrid top-40 over lambda (labels)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main_trade_off(args: argparse.Namespace) -> int:
    from recommender.retrieval.hybrid import build_default_retriever

    started = time.time()
    dataset = load_dataset("ml-100k")
    split = LeaveOneOutSplit(dataset.interactions)
    retriever = build_default_retriever(dataset, split)
    catalog = dataset.catalog
    genres = genre_matrix([item.genres for item in catalog.items], catalog.genre_vocabulary)
    buckets = popularity_buckets(split.item_popularity(len(catalog)))
    result = trade_off(args, split, retriever, genres, buckets)
    users = result["users"]
    header = {
        "dataset": dataset.name, "users": len(users), "first stage": "hybrid (pop + co-occurrence + embeddings)",
        "pool": args.pool, "lambdas": "0..0.9", "bootstrap seed": args.seed, "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - started),
    }  # fmt: skip
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "fairness-lambda.md").write_text(trade_off_markdown(result, header, args.tolerance))
    record = {
        "header": header,
        "chosen": result["chosen"],
        "paired": result["paired"],
        "sweeps": {s: {str(lam): v["row"] for lam, v in rows.items()} for s, rows in result["sweeps"].items()},
    }
    (args.output / "fairness-lambda.json").write_text(json.dumps(record, indent=1) + "\n")
    plot_trade_off(result, args.output / "fairness-lambda.png")
    # Per-group and item-side report on test: the retrieval rows and the chosen calibration.
    test_cases = split.cases("test", users)
    ranks, lists = {}, {}
    for name, component in retriever.components.items():
        scored = score_users(component, test_cases, 10)
        ranks[name], lists[name] = scored["ranks"], scored["tops"]
    scored, _ = result["scored"]["test"]
    ranks["hybrid"], lists["hybrid"] = scored["ranks"], scored["tops"]
    name = f"hybrid+calibration{result['chosen']:.1f}"
    chosen = result["sweeps"]["test"][result["chosen"]]
    ranks[name], lists[name] = chosen["ranks"], chosen["lists"]
    header = {**header, "split": "test", "seconds": round(time.time() - started)}
    run_report(args.output, dataset, split, "test", users, ranks, lists, {name: "hybrid"}, header, args.seed)
    print((args.output / "fairness-lambda.md").read_text())
    print(f"written to {args.output}/fairness-lambda.md/.json/.png and fairness.md/.json/.png")
    return 0


def main_runs(args: argparse.Namespace) -> int:
    """The fairness report of saved ``recommender evaluate`` runs (same users), merged."""
    ranks, lists, users, split_name = {}, {}, None, "test"
    for folder in args.runs:
        if not (folder / "ranks.json").is_file():
            raise SystemExit(f"{folder}: no ranks.json; give folders written by `recommender evaluate`.")
        record = json.loads((folder / "ranks.json").read_text())
        if users is not None and record["users"] != users:
            raise SystemExit(f"{folder}: other users than the first run; evaluate them on the same users.")
        users, split_name = record["users"], record.get("split", "test")
        for method, values in record["ranks"].items():
            ranks.setdefault(method, np.asarray(values))
        if (folder / "lists.npz").is_file():
            with np.load(folder / "lists.npz") as saved:
                for method in saved.files:
                    lists.setdefault(method, [row[row >= 0] for row in saved[method]])
    dataset = load_dataset("ml-100k")
    split = LeaveOneOutSplit(dataset.interactions)
    pairs = {m: "hybrid" for m in ranks if m.startswith("llm")}
    header = {"runs": ", ".join(map(str, args.runs)), "split": split_name, "users": len(users or [])}
    run_report(args.output, dataset, split, split_name, users or [], ranks, lists, pairs, header, args.seed)
    print((args.output / "fairness.md").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    return main_runs(args) if args.runs else main_trade_off(args)


if __name__ == "__main__":
    raise SystemExit(main())
