"""Explanations on ml-100k, measured on the SERVED prompt and scored by the rubric (issue 29).

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python -m bench.explain --users 200 --seed 0 --split test \\
        --out bench/results/explain-rubric.jsonl --md bench/results/explain-rubric.md
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.explain --users 20 --split valid ... # tuning, outside the test sample
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.explain --adapter none ...     # the base model, `rank` prompt

Per user (a seeded sample of the evaluation users; history = the test split's, all events but the
last): the pipeline's LLM candidates (``Recommender.from_pretrained``: the shipped adapter, its prompt
template, evidence and candidate count, unless ``--adapter`` says otherwise); the recommended item is
the LLM's top pick among them. ``Recommender.influence_table`` gives the drop-one effects of the items
the prompt shows, in the served order and in each neutral swap's, and each item's threshold (a t-test
over the orders, Bonferroni over the shown items): the numbers and the rule of the chat cards and
``recommender explain``.

- Rubric (``recommender.explanation_rubric``) on every shown explanation and on every raw generation:
  names a measured influence, states a supported link, false claims by kind, content words.
- Generated vs fallback share, and why the gate refused.
- Group influence (users with no single film above its threshold): up to ``--group-tests`` link groups,
  each against every other set of as many shown films and the swap floor (``explain.find_group``).
- Deletion test on the LISTED influences (those above their thresholds, at most the card's 2, or the
  measured group): the item's log-probability drop when they are removed together, against removing
  as many random shown items (one seeded draw per user); paired difference with a bootstrap 95%
  interval, and the share of users whose listed drop beats the random one. The same against every set
  of as many shown films (``bench.explain_deletion``): the draw's expectation, without its luck. Users
  with no listed influence have no such test.
- Latency: explanations are generated ``--gen-batch`` users at a time; per user, its own ablation and
  ranking time plus its share of the batch's generation.

Prints one markdown report (``--md`` also writes it); ``--out`` writes one JSON line per user and lets
a killed run resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench.explain_deletion import deletion_sets, random_draw
from bench.explain_report import render_report, row_threshold
from bench.user_rows import read_rows, shard, without

TEST_USERS = 200  # the test sample's size: validation users are drawn outside it


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200, help="evaluation users sampled (seeded)")
    parser.add_argument("--gen-batch", type=int, default=16, help="explanations generated per batch")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generated tokens after the prefilled prefix")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample and the random deletions")
    parser.add_argument(
        "--shard",
        default="0/1",
        metavar="K/N",
        help="every N-th user from the K-th (side by side; --regate the rows joined)",
    )
    parser.add_argument("--split", default="test", choices=("test", "valid"), help="whose history (valid: tuning)")
    parser.add_argument("--skip", nargs="*", default=[], metavar="JSONL", help="rows whose users are left out")
    parser.add_argument("--adapter", default="default", help="LoRA adapter folder, 'default' (shipped) or 'none'")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass")
    parser.add_argument(
        "--max-history", type=int, default=None,
        help="history titles the ranking prompt shows (default: the adapter's); changes the served prompt",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is several times faster on a shared, busy CPU)"
    )
    parser.add_argument(
        "--group-tests",
        type=int,
        default=None,
        help="link groups tested per user with no single influence (default: the served value; 0: none)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="answers written per explanation: greedy, then sampled (default: the served Decoding's)",
    )
    parser.add_argument(
        "--pair-test", action="store_true",
        help="name the second influence only when it lowers the score once the first is gone (config.pair_test)",
    )  # fmt: skip
    parser.add_argument("--out", default=None, help="write one JSON line per user here (resumes a killed run)")
    parser.add_argument("--md", default=None, help="also write the markdown report here")
    parser.add_argument(
        "--regate", default=None, metavar="JSONL",
        help="no model: re-apply the gate and the rubric to the generations stored in JSONL (after a rubric "
        "change), write the rows to --out and the report to --md",
    )  # fmt: skip
    parser.add_argument(
        "--against", default=None, metavar="JSONL",
        help="stored rows of another run (another adapter) on the same users: the report pairs this run with it",
    )  # fmt: skip
    return parser


def served_candidates(pipeline, user: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A user's history rows (oldest first) and the LLM's candidates for it: the retriever's top-N,
    in retrieval order, as the pipeline serves them."""
    history = np.asarray(pipeline.split.case(user, split).history, dtype=np.int64)
    found = pipeline.retriever.retrieve([pipeline.catalog.ids[r] for r in history], k=pipeline.config.llm_candidates)
    return history, np.asarray(found.items, dtype=np.int64)


def with_settings(pipeline, **settings):
    """The same pipeline (data, retriever, scorer) with other ``PipelineConfig`` settings."""
    from recommender.pipeline import Recommender

    return Recommender(pipeline.dataset, pipeline.retriever, pipeline.scorer, replace(pipeline.config, **settings))


def with_max_history(pipeline, titles: int):
    """The same pipeline (data, retriever, scorer, settings) with a prompt that shows ``titles`` history titles."""
    return with_settings(pipeline, max_history=titles)


def measure_user(pipeline, user: str, rng: np.random.Generator, split: str = "test", group_tests=None) -> dict:
    """Influences, thresholds, group influence (when no single film passes) and the deletion test of one
    user's recommended item (no generation)."""
    from recommender.explain import find_group, measure_pair
    from recommender.influence import pair_listed

    catalog = pipeline.catalog
    history, candidates = served_candidates(pipeline, user, split)
    t0 = time.perf_counter()
    base = pipeline.llm_scores([history], [candidates])[0]
    column = int(np.argmax(base))
    table = pipeline.influence_table(history, candidates, None, base)
    floor = float(table.floor[column])
    values, thresholds = table.values(column, len(history)), table.thresholds(column, len(history))
    ids = [catalog.ids[r] for r in history]
    listed = [ids.index(i) for i, _ in table.influencers(column, ids)]
    influence_s, t1 = time.perf_counter() - t0, time.perf_counter()

    def score(histories):
        return [float(s[column]) for s in pipeline.llm_scores(histories, [candidates] * len(histories))]

    item = catalog.items[int(candidates[column])]
    tests = {} if group_tests is None else {"tests": group_tests}
    group = find_group(score, pipeline.evidence_sources, np.asarray(history), item, table, column, float(base[column]),
                       **tests)  # fmt: skip
    group_s = time.perf_counter() - t1
    pair = None
    if pipeline.config.pair_test and len(listed) == 2:  # as ``Explainer.explain`` measures it
        pair = measure_pair(score, np.asarray(history), table, listed[0], listed[1])
        listed = pair_listed(listed, pair)
    listed = listed or (list(group.positions) if group is not None and group.measured else [])
    drops = {}
    if listed:
        random = random_draw(rng, table.positions, len(listed))
        drops = deletion_sets(score, float(base[column]), history, table.positions, listed, random)
        drops["listed"] = listed
    return {
        "user": user,
        "item": catalog.ids[int(candidates[column])],
        "history": history,
        "values": values,
        "thresholds": [None if not np.isfinite(t) else float(t) for t in thresholds],
        "floor": floor,  # the swap floor: the group test's bar
        "order_effects": table.orders[:, :, column].tolist(),  # [1 + S, W] served order first
        "swaps": len(table.swaps),
        "window": len(table.positions),
        "effects": table.effect[:, column].tolist(),
        "base_score": float(base[column]),
        "group": group,
        "pair": pair,
        "influence_s": influence_s,
        "group_s": group_s,
        **drops,
    }


def sample_users(eval_users, n: int, seed: int, split: str) -> list:
    """A seeded sample of ``n`` users; validation users (tuning) are drawn from outside the
    ``TEST_USERS`` that ``--split test`` draws with the same seed, so no choice is made on test users."""
    pool = list(eval_users)
    if split == "valid":
        test = set(np.random.default_rng(seed).choice(pool, size=min(TEST_USERS, len(pool)), replace=False).tolist())
        pool = [u for u in pool if u not in test]
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(pool, size=min(n, len(pool)), replace=False).tolist(), key=int)


def explain_staged(pipeline, writer, staged: list[dict], args, checker) -> list[dict]:
    """Generate the staged users' sentences in one batch, then gate them and score the rubric
    (``writer=None``: each row's ``stored_raw`` stands for the generation, see ``regate``)."""
    from recommender.explain import explain_item, explain_messages
    from recommender.explanation_evidence import because_prefix
    from recommender.explanation_generation import Decoding, generate_candidates
    from recommender.explanation_rubric import RubricContext, score_explanation

    catalog, sources = pipeline.catalog, pipeline.evidence_sources
    decoding = Decoding(
        max_new_tokens=args.max_new_tokens, **({"candidates": args.candidates} if args.candidates else {})
    )
    cases = []
    for row in staged:
        items = [catalog.items[int(r)] for r in row["history"]]
        preview = explain_item(None, catalog, items, catalog[row["item"]], row["values"], threshold=row_threshold(row),
                               sources=sources, checker=checker, group=row["group"],
                               pair=row.get("pair"))  # fmt: skip
        cases.append((items, preview))
    asked = [i for i, (_, preview) in enumerate(cases) if preview.evidence["influences"]]
    t0 = time.perf_counter()
    conversations = [explain_messages(cases[i][0], catalog[staged[i]["item"]], cases[i][1].evidence) for i in asked]
    prefixes = [because_prefix(cases[i][1].evidence) for i in asked]
    try:
        if writer is None:
            stored = [staged[i]["stored_raw"] for i in asked]
            raws: list = [[r] if r is not None else RuntimeError("no stored generation") for r in stored]
        else:
            raws = generate_candidates(writer, conversations, prefixes, decoding)
    except Exception as error:  # the explanations fall back; the bench records why
        raws = [error] * len(asked)
    generation = (time.perf_counter() - t0) / max(1, len(staged))
    answers = dict(zip(asked, raws))
    out = []
    for i, (row, (items, _)) in enumerate(zip(staged, cases)):
        written = answers.get(i)
        raw = written[0] if isinstance(written, list) else written  # the greedy answer

        def replay(messages, prefix, written=written):
            if isinstance(written, Exception):
                raise written
            return written

        explanation = explain_item(replay if i in answers else None, catalog, items, catalog[row["item"]],
                                   row["values"], threshold=row_threshold(row), sources=sources, checker=checker,
                                   group=row["group"], pair=row.get("pair"))  # fmt: skip
        context = RubricContext.from_evidence(explanation.evidence, items)
        raw_rubric = None
        if isinstance(raw, str):
            raw_rubric = score_explanation(raw, context, checker.check(raw, context.allowed_ids)).to_dict()
        record = {k: v for k, v in row.items() if k not in ("history", "values", "group", "pair")}
        record.update(
            history=[int(r) for r in row["history"]],
            values=[None if np.isnan(v) else float(v) for v in row["values"]],
            group=explanation.group, group_test=row["group"].to_dict() if row["group"] is not None else None,
            pair_test=row["pair"].to_dict() if row.get("pair") is not None else None,
            path=explanation.path, reason=explanation.reason, text=explanation.text,
            raw=raw if isinstance(raw, str) else None, rubric=explanation.rubric, raw_rubric=raw_rubric,
            shown_raw=explanation.raw_generation, candidate=_accepted(written, explanation),
            influences=[list(x) for x in explanation.influences], no_effect=[x[0] for x in explanation.no_effect],
            generation_s=generation, latency_s=row["influence_s"] + row["group_s"] + generation,
        )  # fmt: skip
        out.append(record)
    return out


def _accepted(written, explanation) -> int | None:
    """Which candidate answer was shown (0: the greedy one), None on the fallback path."""
    if explanation.path != "generated" or not isinstance(written, list):
        return None
    return written.index(explanation.raw_generation)


def regate(args: argparse.Namespace) -> int:
    """The stored rows' measurements and greedy generations through today's gate and rubric: what a
    rerun would show (generation is greedy, so it would write the same text), without the model."""
    from recommender.data.loaders import load_dataset
    from recommender.data.split import LeaveOneOutSplit
    from recommender.explain import TitleChecker, evidence_sources
    from recommender.explanation_evidence import GroupInfluence
    from recommender.influence import PairTest

    dataset = load_dataset("ml-100k")
    checker = TitleChecker(dataset.catalog)

    sources = evidence_sources(dataset, LeaveOneOutSplit(dataset.interactions))
    stored = SimpleNamespace(catalog=dataset.catalog, evidence_sources=sources)  # what explain_staged reads

    rows = [json.loads(line) for line in Path(args.regate).read_text().splitlines() if line.strip()]
    staged = []
    for row in rows:
        test = row.get("group_test")
        group = None if test is None else GroupInfluence(
            tuple(test["positions"]), test["link"], test["effect"], tuple(test["null"]), test["floor"]
        )  # fmt: skip
        values = np.array([np.nan if v is None else v for v in row["values"]])
        pair = PairTest(**{k: v for k, v in row["pair_test"].items() if k != "adds"}) if row.get("pair_test") else None
        staged.append({**row, "values": values, "group": group, "pair": pair, "stored_raw": row.get("raw")})
    out = [explain_staged(stored, None, [r], args, checker)[0] for r in staged]
    for record, row in zip(out, rows):  # the measured timings stay those of the run
        record.update(generation_s=row["generation_s"], latency_s=row["latency_s"])
        record.pop("stored_raw", None)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in out))
    report = render_report(args, out, f"(re-gated from {args.regate}, no model loaded)", rows[0]["window"],
                           read_rows(args.against) if args.against else ())  # fmt: skip
    print(report)
    if args.md:
        Path(args.md).write_text(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.regate:
        return regate(args)
    import torch

    torch.set_num_threads(args.threads)
    from recommender.explain import TitleChecker
    from recommender.pipeline import Recommender

    pipeline = Recommender.from_pretrained("ml-100k", adapter=args.adapter)
    if args.max_history is not None:
        pipeline = with_max_history(pipeline, args.max_history)
    if args.pair_test:
        pipeline = with_settings(pipeline, pair_test=True)
    pipeline.scorer.batch_size = args.batch_size
    writer = pipeline.text_writer()  # the base model when a ranking adapter is merged, as served
    checker = TitleChecker(pipeline.catalog)
    split = pipeline.split
    users = shard(without(sample_users(split.eval_users, args.users, args.seed, args.split), args.skip), args.shard)
    if not users:
        raise SystemExit(f"no user left of the {args.users} drawn after --skip and --shard: draw more with --users.")
    rows = read_rows(args.out)
    if any("group_test" not in row for row in rows):  # a run of the bench before group influences
        raise SystemExit(f"{args.out} was written by an older bench (no group test): remove it or pass another --out")
    done = {row["user"] for row in rows}
    todo = [str(u) for u in users if str(u) not in done]
    out = open(args.out, "a") if args.out else None
    started = time.perf_counter()
    for chunk_start in range(0, len(todo), args.gen_batch):
        chunk = todo[chunk_start : chunk_start + args.gen_batch]
        staged = [measure_user(pipeline, u, np.random.default_rng([args.seed, int(u)]), args.split, args.group_tests)
                  for u in chunk]  # fmt: skip
        for record in explain_staged(pipeline, writer, staged, args, checker):
            rows.append(record)
            if out:
                out.write(json.dumps(record) + "\n")
                out.flush()
        print(f"[{len(rows)}/{len(users)}] {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    if out:
        out.close()
    model = f"{pipeline.scorer.loaded.describe()}, prompt {pipeline.prompt.version}"
    report = render_report(args, rows, model, pipeline.prompt.max_history,
                           read_rows(args.against) if args.against else ())  # fmt: skip
    print(report)
    if args.md:
        Path(args.md).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
