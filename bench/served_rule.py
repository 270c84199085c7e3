"""A candidate influence rule against the served one, on fresh validation users (issue 29).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.served_rule --users 100 --seed 0 \\
        --skip bench/results/influence-rules.jsonl \\
        --out bench/results/served-rule.jsonl --md bench/results/served-rule.md

Per user (validation users outside the explain bench's test sample, less the users of ``--skip`` files,
so a rule chosen on those is checked on others): the LLM's top pick among the served candidates, and
whether any shown film raised it beyond its neutral-swap floor under

- the candidate (``bench.two_stage_score.TwoStageScore``: the two-stage blend, a removed film leaves the
  prompt one title shorter), and
- the served rule (``Recommender.influence_table``: the LLM's log-probability, the next-older film
  entering the prompt; the same swaps).

With ``--adapter PATH --against STORED.jsonl`` the candidate is the served rule itself on a pipeline
built with another LoRA adapter (its own top pick), paired with the stored rows' served rule on the same
users (``before``): only the served table is measured (about 10 prompts a user).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.served_rule --users 100 --seed 0 \\
        --skip bench/results/influence-rules.jsonl --adapter runs/ml100k-seq-wide-counterfactual-cpu \\
        --against bench/results/served-rule.jsonl --out bench/results/served-rule-counterfactual.jsonl

Reports each share and the paired difference (bootstrap 95%) with the users gained and lost. Only these
two rules are measured (about 20 prompts a user); ``bench.influence_rules`` compares more, with null rates.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.explain import sample_users, served_candidates
from bench.two_stage_score import TwoStageScore
from bench.user_rows import emit, measured_rows, read_rows, without


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100, help="validation users drawn before --skip removes some")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample and the bootstrap")
    parser.add_argument("--skip", nargs="*", default=[], metavar="JSONL", help="rows whose users are left out")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="one JSON line per user (resumes a killed run)")
    parser.add_argument("--md", default=None, help="also write the markdown report here")
    parser.add_argument("--adapter", default=None, help="candidate: the served rule with this LoRA adapter folder")
    parser.add_argument("--against", default=None, metavar="JSONL", help="with --adapter: stored rows, their 'before'")
    parser.add_argument("--from", dest="source", default=None, metavar="JSONL", help="report stored rows, no model")
    return parser


def measure_user(pipeline, user: str, before: bool | None = None) -> dict:
    """Whether the candidate rule and the served one find an influence on the user's top pick;
    ``before`` given (``--adapter``): only the served table of this pipeline, as the candidate."""
    from recommender.influence import measure_influence

    history, candidates = served_candidates(pipeline, user, "valid")
    started = time.perf_counter()
    base = pipeline.llm_scores([history], [candidates])[0]
    column = int(np.argmax(base))
    llm = pipeline.influence_table(history, candidates, None, base)  # served

    def found(table) -> bool:  # the served rule applied to either table (no swap: an infinite floor)
        return bool(table.influencers(column, range(len(history))))

    item = pipeline.catalog.ids[int(candidates[column])]
    if before is not None:
        seconds = time.perf_counter() - started
        return {"user": user, "item": item, "now": found(llm), "before": before, "seconds": seconds}
    score = TwoStageScore(pipeline, history, candidates)
    now = measure_influence(score, history, pipeline.influence_window(), llm.pairs, score.from_llm(base))
    return {"user": user, "now": found(now), "before": found(llm), "seconds": time.perf_counter() - started}


def candidate_name(args: argparse.Namespace) -> str:
    if getattr(args, "adapter", None):
        return f"the served rule with adapter {args.adapter} (its own top pick)"
    return "two-stage blend, the prompt one title shorter"


def render_report(rows: list[dict], args: argparse.Namespace, model: str) -> str:
    from recommender.evaluation.bootstrap import paired_mean_difference

    now, before = np.array([r["now"] for r in rows]), np.array([r["before"] for r in rows])
    result = paired_mean_difference(now.astype(float) - before, seed=args.seed)
    return "\n".join([
        f"# A candidate influence rule against the served one ({len(rows)} valid users, seed {args.seed})",
        "",
        f"Model {model}. Users: validation users outside the explain bench's test sample and outside "
        f"{', '.join(args.skip) or 'no file'}; item: the LLM's top pick; median "
        f"{np.median([r['seconds'] for r in rows]):.1f} s per user.",
        "",
        "| rule | users with an influence |",
        "|---|---:|",
        f"| candidate: {rows[0].get('candidate', candidate_name(args)) if rows else ''} | {now.mean():.1%} |",
        f"| served: LLM log-probability, the next-older film let in | {before.mean():.1%} |",
        f"| candidate minus served (paired 95%) | {result['difference']:+.1%} [{result['ci_low']:+.1%}, "
        f"{result['ci_high']:+.1%}]; users +{int((now & ~before).sum())} / -{int((before & ~now).sum())} |",
        "",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.source:
        rows = read_rows(args.source)
        return emit(render_report(rows, args, rows[0].get("model", "as stored") if rows else "none"), args.md)
    import torch

    torch.set_num_threads(args.threads)
    from recommender.pipeline import Recommender

    if args.adapter and not args.against:
        raise SystemExit("--adapter needs --against: the stored rows of the served adapter on the same users.")
    pipeline = Recommender.from_pretrained(adapter=args.adapter or "default")
    model = f"{pipeline.scorer.loaded.describe()}, prompt {pipeline.prompt.version}"
    users = without(
        [str(u) for u in sample_users(pipeline.split.eval_users, args.users, args.seed, "valid")], args.skip
    )
    reference = {row["user"]: row["before"] for row in read_rows(args.against)} if args.adapter else {}
    if args.adapter:
        users = [u for u in users if u in reference]

    def row(user: str) -> dict:
        return {**measure_user(pipeline, user, reference.get(user)), "model": model, "candidate": candidate_name(args)}

    rows = measured_rows(users, row, args.out)
    return emit(render_report(rows, args, model), args.md)


if __name__ == "__main__":
    raise SystemExit(main())
