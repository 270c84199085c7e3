"""How many history titles should the ranking prompt show? Ranking quality against measurable
influences, on validation users only (issue 29).

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python -m bench.prompt_titles \\
        --setups default:5 default:10 runs/ml100k-seq-wide-h10-cpu:10 --md bench/results/prompt-titles.md

For each setup, an adapter and the history titles its ranking prompt shows (``PipelineConfig.max_history``;
the adapter's other served settings kept):

- NDCG@10 of the served two-stage ranking (``Recommender.full_scores_batch``) on the adapter's
  selection users (its recipe's ``eval.users`` / ``eval.seed``: validation users whose validation
  events it never trained on), each setting paired against the first with a bootstrap interval;
- the share of ``--users`` validation users (``bench.explain.sample_users``, outside the explain
  bench's test sample) whose recommended film (the LLM's top pick) has a measured influence under the
  shipped rule (``Recommender.influence_table``: drop-one effect above the neutral-swap floor), the
  share of shown films that pass, and where they stand (1 = the most recent).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from bench.explain import sample_users, served_candidates, with_max_history
from recommender.evaluation import metrics


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--setups", type=parse_setup, nargs="+", default=[("default", 5), ("default", 10)], metavar="ADAPTER:TITLES",
        help="adapter folder (or 'default', the shipped one) and history titles shown; the first is the reference",
    )  # fmt: skip
    parser.add_argument("--users", type=int, default=40, help="validation users for the influence share")
    parser.add_argument("--seed", type=int, default=0, help="seed of the influence users and the bootstrap")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--md", default=None, help="also write the markdown report here")
    return parser


def ranking_ranks(pipeline, users: list[str]) -> np.ndarray:
    """[U] rank of each selection user's validation event under the served two-stage ranking."""
    from recommender.evaluation.protocol import rank_cases

    cases = [pipeline.split.case(user, "valid") for user in users]
    return rank_cases(pipeline.full_scores_batch, cases, 16, "selection users").ranks


def influence_share(pipeline, users: list[str]) -> dict:
    """Users whose top pick has a measured influence, shown films that pass, and their recency."""
    from recommender.influence import split_measured

    found, passing, recency = [], [], []
    for user in users:
        history, candidates = served_candidates(pipeline, user, "valid")
        base = pipeline.llm_scores([history], [candidates])[0]
        column = int(np.argmax(base))
        table = pipeline.influence_table(history, candidates, None, base)
        n = len(history)
        raised, _, _ = split_measured(table.values(column, n), table.thresholds(column, n))
        found.append(bool(raised))
        passing.append(len(raised) / len(table.positions) if len(table.positions) else 0.0)
        recency.extend(len(history) - position for position, _ in raised)
    return {"users": float(np.mean(found)), "films": float(np.mean(passing)), "recency": recency}


def parse_setup(text: str) -> tuple[str, int]:
    """'ADAPTER:TITLES' -> (adapter, titles); 'default:5' is the shipped adapter with 5 titles."""
    adapter, _, titles = text.rpartition(":")
    if not adapter or not titles.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected ADAPTER:TITLES, e.g. default:5")
    return adapter, int(titles)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from recommender.data.loaders import load_dataset
    from recommender.evaluation.protocol import sample_users as selection_sample
    from recommender.llm.loading import read_adapter_metadata
    from recommender.pipeline import Recommender
    from recommender.pretrained import resolve_adapter

    dataset = load_dataset("ml-100k")
    loaded: dict[str, Recommender] = {}
    selection, sampled, rows, ranks = None, None, [], []
    for adapter, titles in args.setups:
        if adapter not in loaded:
            loaded[adapter] = Recommender.from_pretrained(dataset, adapter=adapter)
        served = loaded[adapter]
        meta = read_adapter_metadata(resolve_adapter(adapter, served.dataset, None))
        settings = meta["config"]["eval"]
        users = selection_sample(served.split, settings["users"], settings["seed"])
        if selection is not None and users != selection:
            raise SystemExit(f"{adapter} was selected on other validation users than {args.setups[0][0]}")
        selection = users
        sampled = sampled or [str(u) for u in sample_users(served.split.eval_users, args.users, args.seed, "valid")]
        pipeline = with_max_history(served, titles)
        started = time.perf_counter()
        ranks.append(ranking_ranks(pipeline, selection))
        share = influence_share(pipeline, sampled)
        name = served.scorer.loaded.describe()  # base model, adapter, device and precision
        rows.append((name, meta.get("max_history"), titles, share, time.perf_counter() - started))
        print(f"{adapter}, {titles} titles: NDCG@10 {metrics.ndcg(ranks[-1], 10):.4f}, "
              f"influence {share['users']:.1%}", flush=True)  # fmt: skip
    lines = [
        f"# History titles in the ranking prompt (prompt {pipeline.prompt.version})",
        "",
        f"NDCG@10: the {len(selection)} selection users (validation events the adapters never trained on), "
        f"each row paired against the first (95% bootstrap, seed {args.seed}). Influence: {len(sampled)} "
        f"validation users (seed {args.seed}), the LLM's top pick, the shipped rule (drop-one effect above "
        "the neutral-swap floor).",
        "",
        "| adapter | trained with | titles shown | NDCG@10 | minus the first row | users with an influence | "
        "shown films passing | passing films by recency (1 = latest) | seconds |",
        "|---|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for (name, trained, titles, share, seconds), row_ranks in zip(rows, ranks):
        difference = _difference(row_ranks, ranks[0], args.seed) if row_ranks is not ranks[0] else ""
        counts = np.bincount(share["recency"], minlength=titles + 1)[1:].tolist() if share["recency"] else []
        lines.append(f"| {name} | {trained} | {titles} | {metrics.ndcg(row_ranks, 10):.4f} | {difference} | "
                     f"{share['users']:.1%} | {share['films']:.1%} | {counts} | {seconds:.0f} |")  # fmt: skip
    report = "\n".join(lines) + "\n"
    print(report)
    if args.md:
        Path(args.md).write_text(report)
    return 0


def _difference(ranks: np.ndarray, reference: np.ndarray, seed: int) -> str:
    result = metrics.paired_ndcg_difference(ranks, reference, 10, seed=seed)
    return f"{result['difference']:+.4f} [{result['ci_low']:+.4f}, {result['ci_high']:+.4f}]"


if __name__ == "__main__":
    raise SystemExit(main())
