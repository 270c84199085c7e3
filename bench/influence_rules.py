"""Which rule calls a history film an influence? Rules compared on the same users and items (issue 29).

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python -m bench.influence_rules --users 40 --seed 0 --split valid \\
        --out bench/results/influence-rules.jsonl --md bench/results/influence-rules.md
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.influence_rules --adapter none ...  # the base model, the shipped prompt
    .venv/bin/python -m bench.influence_rules --from bench/results/influence-rules.jsonl --md ...  # no model

Per user (validation users drawn outside the explain bench's test sample, ``bench.explain.sample_users``):
the served pipeline's LLM candidates and the LLM's top pick, as ``bench.explain`` explains it. Measured:

- the served table (``Recommender.influence_table``): drop-one effects of the shown films on the
  item's log-probability in the served order, and the neutral swaps (two shown films trade places,
  prompt evidence unchanged); with ``--ablation empty`` the drops are scored again with a prompt one
  title shorter (no older film enters);
- the same drop-one effects in each swapped order (one more prompt per shown film and swap);
- retrieval scores of every variant and of every history film's removal, for the served blend
  (``ranking.blend``: ``llm_weight * z(LLM) + (1 - llm_weight) * z(retrieval)`` over the candidates),
  in which films the prompt does not show still move the retrieval half.

Rules (a film is an influence when its removal lowers the score by more than the threshold):

- ``LLM score, swap floor`` (served, with ``--ablation replace``): the served order's effect on the
  LLM's log-probability above the largest |change| under the swaps (at least 1e-3).
- ``served blend, swap floor, shown films``: the same on the served score (``ranking.blend`` of both
  halves); with ``--ablation empty`` this is the candidate ``bench.served_rule`` checks on fresh users.
- ``served blend, whole history``: the same on the blended score, every history film ablated.
- ``mean over orders, t 5%``: the mean effect over the served and the swapped orders, a one-sided
  t-test per film at 5%; ``... Bonferroni`` at 5% over the shown films; ``pooled t 2%``: one noise
  estimate pooled over the shown films (more degrees of freedom), at about the served rule's null rate.

Each rule's per-film null pass rate: its own test applied to the per-order effects centred on their
film's mean and given random signs (symmetric noise with no effect; 50 draws per user): the share of
films a rule would call an influence where there is none. A rule that finds more users only by
passing more of these is no more powerful, only less strict.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import stats

from bench.explain import sample_users, served_candidates, with_max_history
from bench.user_rows import emit, measured_rows, read_rows, shard, without
from recommender.influence import MIN_FLOOR

MIN_EFFECT = MIN_FLOOR  # below this the difference is arithmetic, whatever the rule
NULL_DRAWS = 50


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=40, help="users sampled (seeded)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample and the null draws")
    parser.add_argument("--split", default="valid", choices=("test", "valid"), help="whose history (valid: tuning)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--adapter", default="default",
        help="LoRA adapter folder, 'default' (shipped) or 'none' (the base model on the shipped adapter's prompt)",
    )  # fmt: skip
    parser.add_argument(
        "--ablation", default="replace", choices=("replace", "empty"),
        help="a removed shown film: 'replace' (served: the next-older film enters the prompt) or 'empty' (the "
        "prompt shows the other shown films only)",
    )  # fmt: skip
    parser.add_argument("--skip", nargs="*", default=[], metavar="JSONL", help="rows whose users are left out")
    parser.add_argument(
        "--shard",
        default="0/1",
        metavar="K/N",
        help="measure every N-th user from the K-th (parallel runs, one --out each)",
    )
    parser.add_argument("--out", default=None, help="one JSON line per user (resumes a killed run)")
    parser.add_argument("--md", default=None, help="also write the markdown report here")
    parser.add_argument("--from", dest="source", default=None, metavar="JSONL", help="report stored rows, no model")
    parser.add_argument(
        "--against", default=None, metavar="JSONL",
        help="stored rows of another run on the same users: each rule paired against that run's served rule",
    )  # fmt: skip
    return parser


def served_config(adapter: str, dataset):
    """The shipped adapter's prompt settings for the base model (so only the weights differ); None otherwise."""
    if adapter != "none":
        return None
    from recommender.pipeline_config import PipelineConfig, tuned_settings
    from recommender.pretrained import resolve_adapter

    return PipelineConfig(**tuned_settings(resolve_adapter("default", dataset, None)))


def measure_user(pipeline, user: str, split: str, ablation: str = "replace") -> dict:
    """Per-order drop-one effects of the shown films (LLM and blend) and the blend's whole-history effects.
    ``ablation`` 'empty' scores each removal with a prompt one title shorter, so no older film enters."""
    from recommender.influence import swapped
    from recommender.ranking import blend

    history, candidates = served_candidates(pipeline, user, split)
    started = time.perf_counter()
    base = pipeline.llm_scores([history], [candidates])[0]
    table = pipeline.influence_table(history, candidates, None, base)
    shown = table.positions
    orders = [swapped(history, pair) for pair in table.pairs]
    drops = [order[order != history[p]] for order in orders for p in shown]  # a film, wherever the swap put it
    if ablation == "empty":  # every removal scored again with a prompt one title shorter
        dropper = with_max_history(pipeline, len(shown) - 1)
        variants = [np.delete(history, p) for p in shown] + drops
        scored = (
            np.asarray(dropper.llm_scores(variants, [candidates] * len(variants)))
            if variants
            else np.zeros((0, len(base)))
        )
        served_effect, scored = base - scored[: len(shown)], scored[len(shown) :]
    else:  # the served table already dropped each film in every swapped order: its scores, read back
        served_effect = table.orders[0]
        scored = ((base - table.swaps)[:, None, :] - table.orders[1:]).reshape(-1, len(base))
    # LLM scores [K] of every variant, in one list: served, its drops, the swapped orders and their drops
    llm = [base, *(base - served_effect), *(base - table.swaps), *scored]
    n, s = len(shown), len(orders)
    whole = [np.delete(history, p) for p in range(len(history))]  # every film removed: the shown ones too
    retrieval = np.asarray(pipeline.retriever.score_batch([history, *orders, *drops, *whole]))[:, candidates]
    whole_retrieval = retrieval[1 + s + len(drops) :]
    retrieval = np.concatenate([retrieval[:1], whole_retrieval[shown], retrieval[1 : 1 + s + len(drops)]])  # as llm
    weight = pipeline.config.llm_weight
    served = np.array([blend(sc, r, weight) for sc, r in zip(llm, retrieval)])  # [V, K]
    llm = np.asarray(llm)
    column = int(np.argmax(base))

    def per_order(scores: np.ndarray) -> list[list[float]]:
        """[1 + S, W] drop-one effects on the item in the served and each swapped order."""
        rows = [scores[0, column] - scores[1 : 1 + n, column]]
        for k in range(s):
            order_score = scores[1 + n + k, column]
            rows.append(order_score - scores[1 + n + s + k * n : 1 + n + s + (k + 1) * n, column])
        return np.asarray(rows).tolist()

    whole_llm = np.tile(base, (len(history), 1))  # a film the prompt does not show leaves the prompt as it is
    whole_llm[shown] = base - served_effect
    whole_served = np.array([blend(sc, r, weight) for sc, r in zip(whole_llm, whole_retrieval)])
    return {
        "user": user,
        "ablation": ablation,
        "item": pipeline.catalog.ids[int(candidates[column])],
        "history_length": len(history),
        "shown": n,
        "swaps": s,
        "served_pick_same": bool(int(np.argmax(served[0])) == column),
        "llm_orders": per_order(llm),
        "blend_orders": per_order(served),
        "llm_swap_floor": float(np.abs(table.swaps[:, column]).max()) if s else None,
        "blend_swap_floor": float(np.abs(served[0, column] - served[1 + n : 1 + n + s, column]).max()) if s else None,
        "blend_whole": (served[0, column] - whole_served[:, column]).tolist(),
        "prompts": 1 + n + s + len(drops),
        "seconds": time.perf_counter() - started,
    }


# ---------------------------------------------------------------- rules (pure)


def served_order(orders: np.ndarray, floor: float) -> np.ndarray:
    return orders[0] > max(floor, MIN_EFFECT)


def mean_t(orders: np.ndarray, alpha: float) -> np.ndarray:
    m = len(orders)
    spread = orders.std(axis=0, ddof=1) / np.sqrt(m)
    return orders.mean(axis=0) > np.maximum(stats.t.ppf(1 - alpha, m - 1) * spread, MIN_EFFECT)


def pooled_t(orders: np.ndarray, alpha: float) -> np.ndarray:
    """``mean_t`` with one noise estimate pooled over the shown films (df = films x (orders - 1))."""
    m, films = orders.shape
    variance = ((orders - orders.mean(axis=0)) ** 2).sum() / (films * (m - 1))
    threshold = stats.t.ppf(1 - alpha, films * (m - 1)) * np.sqrt(variance / m)
    return orders.mean(axis=0) > max(threshold, MIN_EFFECT)


SERVED = "LLM score, swap floor (served)"
RULES = {
    SERVED: lambda row, orders, blend: served_order(orders, row["llm_swap_floor"]),
    "served blend, swap floor, shown films": lambda row, orders, blend: served_order(blend, row["blend_swap_floor"]),
    "mean over orders, t 5%": lambda row, orders, blend: mean_t(orders, 0.05),
    "mean over orders, t 5% Bonferroni": lambda row, orders, blend: mean_t(orders, 0.05 / orders.shape[1]),
    "mean over orders, pooled t 2%": lambda row, orders, blend: pooled_t(orders, 0.02),
}


WHOLE_HISTORY = "served blend, swap floor, whole history"


def found_by_rule(rows: list[dict]) -> dict[str, np.ndarray]:
    """Per rule, [U] whether the rule finds an influence for each user (no neutral swap: no floor, none)."""
    found = {name: [] for name in [*RULES, WHOLE_HISTORY]}
    for row in rows:
        measured = row["swaps"] > 0
        orders, blended = np.asarray(row["llm_orders"]), np.asarray(row["blend_orders"])
        for name, rule in RULES.items():
            found[name].append(measured and bool(rule(row, orders, blended).any()))
        whole = measured and np.asarray(row["blend_whole"]) > max(row["blend_swap_floor"] or 0.0, MIN_EFFECT)
        found[WHOLE_HISTORY].append(bool(np.any(whole)))
    return {name: np.asarray(values, dtype=bool) for name, values in found.items()}


def rule_table(rows: list[dict], seed: int) -> list[tuple[str, float, float, str]]:
    """(rule, share of users with an influence, per-film null pass rate, prompts per explanation)."""
    rng = np.random.default_rng(seed)
    null = {name: [] for name in RULES}
    for row in (r for r in rows if r["swaps"] > 0):
        orders, blended = np.asarray(row["llm_orders"]), np.asarray(row["blend_orders"])
        for _ in range(NULL_DRAWS):  # the same noise for every rule
            signs = rng.choice([-1.0, 1.0], size=orders.shape)
            noise = (orders - orders.mean(axis=0)) * signs
            noise_blend = (blended - blended.mean(axis=0)) * signs
            for name, rule in RULES.items():
                null[name].append(float(rule(row, noise, noise_blend).mean()))
    found = found_by_rule(rows)
    served_prompts = np.median([1 + r["shown"] + r["swaps"] for r in rows])
    all_prompts = np.median([r["prompts"] for r in rows])
    out = []
    for name, users in found.items():
        prompts = all_prompts if name.startswith("mean") else served_prompts
        rate = float(np.mean(null[name])) if name in null else float("nan")
        out.append((name, float(users.mean()) if len(users) else 0.0, rate, f"{prompts:.0f}"))
    return out


def paired_against(rows: list[dict], reference: list[dict], seed: int) -> dict[str, str]:
    """Per rule, its share minus the served rule's on ``reference`` rows of the same users (paired 95%
    bootstrap), with the users it gains and loses."""
    from recommender.evaluation.bootstrap import paired_mean_difference

    served = dict(zip((r["user"] for r in reference), found_by_rule(reference)[SERVED]))
    common = [i for i, row in enumerate(rows) if row["user"] in served]
    if not common:
        return {}
    before = np.array([served[rows[i]["user"]] for i in common])
    out = {}
    for name, users in found_by_rule(rows).items():
        after = users[common]
        result = paired_mean_difference(after.astype(float) - before, seed=seed)
        out[name] = (f"{result['difference']:+.1%} [{result['ci_low']:+.1%}, {result['ci_high']:+.1%}], "
                     f"+{int((after & ~before).sum())} / -{int((before & ~after).sum())}")  # fmt: skip
    return out


def render_report(rows: list[dict], args: argparse.Namespace, model: str, reference: list[dict] = ()) -> str:
    table = rule_table(rows, args.seed)
    paired = paired_against(rows, list(reference), args.seed) if reference else {}
    lines = [
        f"# Influence rules compared ({len(rows)} {args.split} users, seed {args.seed})",
        "",
        f"Model {model}. Removal of a shown film: {rows[0].get('ablation', 'replace') if rows else 'replace'} "
        "('replace', served: the next-older film enters the prompt; 'empty': the prompt shows one title less). "
        f"Item: the LLM's top pick among the served candidates (the served blend picks the "
        f"same item for {sum(r['served_pick_same'] for r in rows)} of {len(rows)}). Neutral swaps per user: "
        f"median {np.median([r['swaps'] for r in rows]):.0f}; shown films {np.median([r['shown'] for r in rows]):.0f}; "
        f"median {np.median([r['seconds'] for r in rows]):.1f} s per user for everything below.",
        "",
        "| rule | users with an influence | per-film null pass rate | LLM prompts per explanation |"
        + (f" minus the served rule on {args.against} (paired 95%), users + / - |" if paired else ""),
        "|---|---|---|---|" + ("---|" if paired else ""),
    ]
    for name, share, null, prompts in table:
        null_text = "n/a" if np.isnan(null) else f"{null:.3f}"
        lines.append(f"| {name} | {share:.1%} | {null_text} | {prompts} |" + (f" {paired[name]} |" if paired else ""))
    orders = [np.asarray(r["llm_orders"]) for r in rows if r["swaps"] > 0]
    spread = np.median([o.std(axis=0, ddof=1).mean() for o in orders]) if orders else float("nan")
    floors = [r["llm_swap_floor"] for r in rows if r["swaps"] > 0]
    lines += [
        "",
        f"Drop-one effect of a shown film across neutral orders: median standard deviation {spread:.4f} nats; "
        f"swap floor median {np.median(floors):.4f}; served-order effect median "
        f"{np.median([abs(x) for o in orders for x in o[0]]):.4f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.source:
        rows = read_rows(args.source)
        model = rows[0].get("model", "as stored") if rows else "none"
    else:
        import torch

        torch.set_num_threads(args.threads)
        from recommender.data.loaders import load_dataset
        from recommender.pipeline import Recommender

        dataset = load_dataset("ml-100k")
        config = served_config(args.adapter, dataset)
        pipeline = Recommender.from_pretrained(dataset, adapter=args.adapter, config=config)
        model = f"{pipeline.scorer.loaded.describe()}, prompt {pipeline.prompt.version}"
        users = [str(u) for u in sample_users(pipeline.split.eval_users, args.users, args.seed, args.split)]
        users = shard(without(users, args.skip), args.shard)
        rows = measured_rows(
            users, lambda user: {**measure_user(pipeline, user, args.split, args.ablation), "model": model}, args.out
        )
    return emit(render_report(rows, args, model, read_rows(args.against)), args.md)


if __name__ == "__main__":
    raise SystemExit(main())
