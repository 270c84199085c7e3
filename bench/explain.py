"""Faithfulness and grounding of explanations on ml-100k, measured on the SERVED prompt.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.explain --users 100 --window 6 --seed 0 --out /tmp/explain.jsonl
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.explain --adapter none ...     # the base model, `rank` prompt

Per user (a seeded sample of the evaluation users, test-split history = all events but the last):
the pipeline's LLM candidates for the full history (``Recommender.from_pretrained``: the shipped
adapter, its prompt template, evidence and candidate count, unless ``--adapter`` says otherwise);
the recommended item is the LLM's top pick among them. Drop-one influences of the last
``--window`` history items come from ``Recommender.influence_table`` (the chat cards' numbers).

- Faithfulness by deletion: the recommended item's log-probability among the candidates with the
  whole history, minus it without the top-3 influencers, against the same without 3 random items of
  the window (one seeded draw per user); mean drops, their ratio (bootstrap 95% interval) and the
  share of users whose top-3 drop beats the random drop.
- Made-up titles: share of raw generations, and of final explanations, naming a film outside the
  history and the recommended item (``TitleChecker``); the share that took the generated path.
- Latency: explanations are generated ``--gen-batch`` users at a time (greedy, left padding); the
  per-explanation figure is the user's own ablation + ranking time plus its share of the batch's
  generation. ``--latency-users`` users are also run alone through ``Recommender.explain`` end to
  end (ablation, generation, checks) for a single-request median.

Prints one markdown table; ``--out`` writes one JSON line per user and lets a killed run resume.
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
    parser.add_argument("--window", type=int, default=6, help="most recent history items ablated")
    parser.add_argument("--gen-batch", type=int, default=16, help="explanations generated per batch")
    parser.add_argument("--latency-users", type=int, default=3, help="users also explained alone, for latency")
    parser.add_argument("--max-new-tokens", type=int, default=60, help="generation cap of an explanation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample and the random deletions")
    parser.add_argument("--adapter", default="default", help="LoRA adapter folder, 'default' (shipped) or 'none'")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is several times faster on a shared, busy CPU)"
    )
    parser.add_argument("--out", default=None, help="write one JSON line per user here")
    return parser


def bootstrap_ratio(top: np.ndarray, rand: np.ndarray, seed: int, draws: int = 2000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(top), size=(draws, len(top)))
    ratios = top[idx].mean(1) / rand[idx].mean(1)
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def generate_batch(scorer, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
    """Greedy replies to many conversations in one ``generate`` call (left padding)."""
    import torch

    sequences = [scorer.encode(messages) for messages in conversations]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), scorer.pad_id, dtype=torch.long)  # [B, T]
    mask = torch.zeros((len(sequences), width), dtype=torch.long)  # [B, T]
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence) :] = torch.tensor(sequence)
        mask[row, width - len(sequence) :] = 1
    with torch.inference_mode():
        out = scorer.model.generate(
            input_ids=ids.to(scorer.device), attention_mask=mask.to(scorer.device), max_new_tokens=max_new_tokens,
            do_sample=False, pad_token_id=scorer.pad_id, eos_token_id=scorer.tokenizer.eos_token_id,
        )  # fmt: skip
    return [scorer.tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from recommender.explain import TitleChecker, explain_item, explain_messages, top_influencers
    from recommender.pipeline import Recommender

    pipeline = Recommender.from_pretrained("ml-100k", adapter=args.adapter)
    pipeline.scorer.batch_size = args.batch_size
    catalog, split, scorer = pipeline.catalog, pipeline.split, pipeline.scorer
    writer = pipeline.text_writer()  # the base model when a ranking adapter is merged, as served
    cooccurrence = getattr(pipeline.retriever, "components", {}).get("cooccurrence")
    checker = TitleChecker(catalog)
    rng = np.random.default_rng(args.seed)
    users = sorted(rng.choice(split.eval_users, size=min(args.users, len(split.eval_users)), replace=False), key=int)
    draws = {str(u): np.random.default_rng([args.seed, int(u)]) for u in users}  # per-user random deletions
    rows: list[dict] = []
    if args.out and Path(args.out).is_file():
        rows = [json.loads(line) for line in Path(args.out).read_text().splitlines() if line.strip()]
    done = {row["user"] for row in rows}
    todo = [str(u) for u in users if str(u) not in done]
    out = open(args.out, "a") if args.out else None
    started = time.perf_counter()

    def case_of(user: str):
        history = split.case(user, "test").history
        found = pipeline.retriever.retrieve([catalog.ids[r] for r in history], k=pipeline.config.llm_candidates)
        return history, np.asarray(found.items, dtype=np.int64)

    for chunk_start in range(0, len(todo), args.gen_batch):
        chunk = todo[chunk_start : chunk_start + args.gen_batch]
        staged = []
        for user in chunk:
            history, candidates = case_of(user)
            t0 = time.perf_counter()
            base = pipeline.llm_scores([history], [candidates])[0]
            column = int(np.argmax(base))
            positions, effect = pipeline.influence_table(history, candidates, args.window, base)
            seconds = time.perf_counter() - t0
            values = np.full(len(history), np.nan)
            values[positions] = effect[:, column]
            item = catalog.items[int(candidates[column])]
            top = top_influencers(values, 3, positive_only=False)
            random3 = sorted(draws[user].choice(positions, size=min(3, len(positions)), replace=False).tolist())
            variants = [np.delete(history, top), np.delete(history, random3)]
            scores = [s[column] for s in pipeline.llm_scores(variants, [candidates] * 2)]
            history_items = [catalog.items[r] for r in history]
            staged.append((user, history_items, item, values, float(base[column]), seconds, scores))
        t0 = time.perf_counter()
        messages = []
        for _, history_items, item, values, *_ in staged:
            preview = explain_item(None, catalog, history_items, item, values, cooccurrence=cooccurrence)
            messages.append(explain_messages(history_items, item, preview.evidence))
        try:
            raws: list = generate_batch(writer, messages, args.max_new_tokens)
        except Exception as error:  # the explanations fall back; the bench records why
            raws = [error] * len(staged)
        generation = (time.perf_counter() - t0) / len(staged)
        for (user, history_items, item, values, base_score, seconds, scores), raw in zip(staged, raws):

            def replay(messages, max_new_tokens=0, raw=raw):
                if isinstance(raw, Exception):
                    raise raw
                return raw

            t1 = time.perf_counter()
            explanation = explain_item(
                replay, catalog, history_items, item, values, cooccurrence=cooccurrence, checker=checker
            )
            checks = time.perf_counter() - t1
            final = checker.check(explanation.text, [h.id for h in history_items] + [item.id])
            row = {
                "user": user,
                "item": item.id,
                "base_score": base_score,
                "drop_top3": base_score - float(scores[0]),
                "drop_random3": base_score - float(scores[1]),
                "path": explanation.path,
                "reason": explanation.reason,
                "raw_invented": [list(x) for x in explanation.invented],
                "final_invented": [list(x) for x in final.invented],
                "latency_s": seconds + generation + checks,
                "influence_s": seconds,
                "generation_s": generation,
                "text": explanation.text,
                "raw": explanation.raw_generation,
            }
            rows.append(row)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
        print(
            f"[{len(rows)}/{len(users)}] {time.perf_counter() - started:.0f}s; last: user {row['user']} "
            f"{row['path']} drop top3 {row['drop_top3']:.3f} rand3 {row['drop_random3']:.3f}",
            file=sys.stderr,
            flush=True,
        )
    if out:
        out.close()
    alone = []
    for user in [str(u) for u in users[: args.latency_users]]:
        history, _ = case_of(user)
        item_id = next(r["item"] for r in rows if r["user"] == user)
        t0 = time.perf_counter()
        pipeline.explain([catalog.ids[r] for r in history], item_id, window=args.window, checker=checker,
                         max_new_tokens=args.max_new_tokens)  # fmt: skip
        alone.append(time.perf_counter() - t0)
    print_table(args, rows, alone, f"{scorer.loaded.describe()}, prompt {pipeline.prompt.version}")
    return 0


def print_table(args: argparse.Namespace, rows: list[dict], alone: list[float], model: str) -> None:
    top = np.array([r["drop_top3"] for r in rows])
    rand = np.array([r["drop_random3"] for r in rows])
    low, high = bootstrap_ratio(top, rand, args.seed)
    print(
        f"\nExplanations on ml-100k, {len(rows)} users, seed {args.seed}, model {model}, CPU {os.cpu_count()} cores, "
        f"{args.threads} torch thread(s)."
    )
    print(
        f"History: the test-split history, its last {args.window} items ablated; candidates: the pipeline's LLM "
        "candidates; recommended item: the LLM's top pick among them; the served prompt.\n"
    )
    table = [
        ("users / seed", f"{len(rows)} / {args.seed}"),
        ("mean score drop, top-3 influencers removed", f"{top.mean():.4f}"),
        ("mean score drop, 3 random history items removed", f"{rand.mean():.4f}"),
        ("ratio top-3 / random (bootstrap 95%)", f"{top.mean() / rand.mean():.2f} ({low:.2f}-{high:.2f})"),
        ("users where top-3 drop > random drop", f"{np.mean(top > rand):.1%}"),
        ("raw generations naming a made-up title", f"{np.mean([bool(r['raw_invented']) for r in rows]):.1%}"),
        ("final explanations naming a made-up title", f"{np.mean([bool(r['final_invented']) for r in rows]):.1%}"),
        ("explanations on the generated path", f"{np.mean([r['path'] == 'generated' for r in rows]):.1%}"),
        (f"median s per explanation (generation batched {args.gen_batch})",
         f"{statistics.median(r['latency_s'] for r in rows):.2f}"),
        ("  of which ablation + ranking", f"{statistics.median(r['influence_s'] for r in rows):.2f}"),
        ("  of which generation (batch share)", f"{statistics.median(r['generation_s'] for r in rows):.2f}"),
    ]  # fmt: skip
    if alone:
        table.append((f"median s per explanation alone ({len(alone)} users)", f"{statistics.median(alone):.2f}"))
    print("| metric | value |\n|---|---|")
    for name, value in table:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    sys.exit(main())
