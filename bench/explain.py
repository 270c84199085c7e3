"""Faithfulness and grounding of explanations on ml-100k (issue 8).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.explain --users 100 --history 8 --candidates 20 --seed 0

Per user (a seeded sample of the evaluation users, test-split history = all events but the last):
the hybrid retriever's top ``--candidates`` items for the full history; the LLM sees the last
``--history`` items (all of them ablated) and its top pick among the candidates is the recommended
item. Drop-one influences (``recommender.explain``) come from the same batched call that ranks.

- Faithfulness by deletion: the recommended item's score (log-softmax over candidate labels) with
  the whole shown history, minus its score without the top-3 influencers, against the same without 3
  random shown items (one seeded draw per user); mean drops, their ratio (bootstrap 95% interval)
  and the share of users whose top-3 drop beats the random drop.
- Made-up titles: share of raw generations, and of final explanations, naming a film outside the
  history and the recommended item (``TitleChecker``); the share that took the generated path.
- Latency per explanation (median seconds): ablation + ranking, evidence, generation, checks.

Prints one markdown table; ``--out`` also writes one JSON line per user.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100, help="evaluation users sampled (seeded)")
    parser.add_argument("--history", type=int, default=8, help="last history items shown to the LLM, all ablated")
    parser.add_argument("--candidates", type=int, default=20, help="hybrid retriever candidates in the rank prompt")
    parser.add_argument("--max-new-tokens", type=int, default=60, help="generation cap of an explanation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample and the random deletions")
    parser.add_argument("--adapter", default=None, help="LoRA adapter folder (default: newest in finetune/adapters)")
    parser.add_argument("--base", action="store_true", help="use the base model even if an adapter exists")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass")
    parser.add_argument("--out", default=None, help="write one JSON line per user here")
    return parser


def find_adapter() -> Path | None:
    """The newest shipped LoRA adapter (a folder with recommender_adapter.json), or None."""
    root = Path(__file__).resolve().parent.parent / "finetune" / "adapters"
    found = sorted(root.glob("**/recommender_adapter.json"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    return found[-1].parent if found else None


def bootstrap_ratio(top: np.ndarray, rand: np.ndarray, seed: int, draws: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(top), size=(draws, len(top)))
    ratios = top[idx].mean(1) / rand[idx].mean(1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from recommender.explain import TitleChecker, explain_item, measure_influence, target_scores, top_influencers
    from recommender.hybrid import build_default_retriever
    from recommender.llm import load_model
    from recommender.loaders import load_dataset
    from recommender.scoring import LLMScorer
    from recommender.split import LeaveOneOutSplit

    dataset = load_dataset("ml-100k")
    catalog = dataset.catalog
    split = LeaveOneOutSplit(dataset.interactions)
    retriever = build_default_retriever(dataset, split)
    cooccurrence = retriever.components.get("cooccurrence")
    adapter = None if args.base else (Path(args.adapter) if args.adapter else find_adapter())
    loaded = load_model(adapter=adapter, device="cpu")
    scorer = LLMScorer(loaded, batch_size=args.batch_size)
    checker = TitleChecker(catalog)
    rng = np.random.default_rng(args.seed)
    users = sorted(rng.choice(split.eval_users, size=min(args.users, len(split.eval_users)), replace=False), key=int)
    out = open(args.out, "w") if args.out else None
    rows = []
    started = time.perf_counter()
    for n, user in enumerate(users, 1):
        case = split.case(str(user), "test")
        full = [catalog.items[r] for r in case.history]
        found = retriever.retrieve([item.id for item in full], k=args.candidates)
        candidates = [catalog.items[r] for r in found.items]
        history = full[-args.history :]
        t0 = time.perf_counter()
        report = measure_influence(scorer, history, candidates, None, None, max_history=None)
        t1 = time.perf_counter()
        item = catalog[report.target_id]
        explanation = explain_item(
            scorer, scorer, catalog, history, item, candidates,
            values=report.values, cooccurrence=cooccurrence, checker=checker, max_new_tokens=args.max_new_tokens,
        )  # fmt: skip
        t2 = time.perf_counter()
        top = top_influencers(report.values, 3, positive_only=False)
        shown = list(range(len(history)))
        random3 = sorted(rng.choice(shown, size=min(3, len(shown)), replace=False).tolist())
        variants = [[h for i, h in enumerate(history) if i not in set(drop)] for drop in (top, random3)]
        scores = target_scores(scorer, variants, candidates, item.id)
        final = checker.check(explanation.text, [h.id for h in history] + [item.id])
        row = {
            "user": str(user),
            "item": item.id,
            "target_in_candidates_rank": int(np.argmax(report.base_logits)),
            "base_score": report.base_score,
            "drop_top3": report.base_score - float(scores[0]),
            "drop_random3": report.base_score - float(scores[1]),
            "path": explanation.path,
            "reason": explanation.reason,
            "raw_invented": [list(x) for x in explanation.invented],
            "final_invented": [list(x) for x in final.invented],
            "latency_s": t2 - t0,
            "influence_s": t1 - t0,
            "generation_s": t2 - t1,
            "text": explanation.text,
            "raw": explanation.raw_generation,
        }
        rows.append(row)
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()
        print(
            f"[{n}/{len(users)}] user {user} item {item.id} {explanation.path} drop top3 {row['drop_top3']:.3f} "
            f"rand3 {row['drop_random3']:.3f} {row['latency_s']:.1f}s ({time.perf_counter() - started:.0f}s total)",
            file=sys.stderr,
            flush=True,
        )
    if out:
        out.close()
    top = np.array([r["drop_top3"] for r in rows])
    rand = np.array([r["drop_random3"] for r in rows])
    low, high = bootstrap_ratio(top, rand, args.seed)
    model = loaded.describe()
    print(f"\nExplanations on ml-100k, {len(rows)} users, seed {args.seed}, model {model}, CPU {os.cpu_count()} cores.")
    print(
        f"History: last {args.history} test-split items shown, all ablated; candidates: hybrid top {args.candidates}; "
        "recommended item: the LLM's top pick among them.\n"
    )
    print("| metric | value |\n|---|---|")
    table = [
        ("users / seed", f"{len(rows)} / {args.seed}"),
        ("mean score drop, top-3 influencers removed", f"{top.mean():.4f}"),
        ("mean score drop, 3 random history items removed", f"{rand.mean():.4f}"),
        ("ratio top-3 / random (bootstrap 95%)", f"{top.mean() / rand.mean():.2f} ({low:.2f}-{high:.2f})"),
        ("users where top-3 drop > random drop", f"{np.mean(top > rand):.1%}"),
        ("raw generations naming a made-up title", f"{np.mean([bool(r['raw_invented']) for r in rows]):.1%}"),
        ("final explanations naming a made-up title", f"{np.mean([bool(r['final_invented']) for r in rows]):.1%}"),
        ("explanations on the generated path", f"{np.mean([r['path'] == 'generated' for r in rows]):.1%}"),
        ("median latency per explanation (s)", f"{statistics.median(r['latency_s'] for r in rows):.2f}"),
        ("  of which ablation + ranking (median s)", f"{statistics.median(r['influence_s'] for r in rows):.2f}"),
        ("  of which generation + checks (median s)", f"{statistics.median(r['generation_s'] for r in rows):.2f}"),
    ]
    for name, value in table:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
