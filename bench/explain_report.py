"""The markdown report of ``bench.explain`` from its stored rows (one per user), and a paired comparison
of two runs on the same users (``--against``): what the rubric found, the thresholds, the group test, the
deletion test, latency and examples.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import Counter

import numpy as np

from bench.explain_deletion import set_statistics
from recommender.evaluation.bootstrap import paired_mean_difference

EXAMPLES = 6  # explanations quoted in the report


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key} {value}" for key, value in counter.most_common()) or "none"


def reason_kind(reason: str) -> str:
    """ "rubric: watched_target" for "rubric: watched_target (...); ...", else the text before its colon."""
    if reason.startswith("rubric: "):
        return "rubric: " + reason[len("rubric: ") :].split(" (")[0].split(";")[0]
    return reason.split(":")[0]


def render_report(
    args: argparse.Namespace, rows: list[dict], model: str, shown: int | None, reference: list[dict] = ()
) -> str:
    """The markdown report: the rubric, the paths, the thresholds, the deletion test, latency, examples,
    and with ``reference`` rows (another run) the two paired on their common users."""
    lines = [
        f"# Explanations scored by the rubric ({len(rows)} {args.split} users, seed {args.seed})",
        "",
        f"Model {model}; CPU {os.cpu_count()} cores, {args.threads} torch thread(s). History: the {args.split} "
        "split's; candidates: the pipeline's LLM candidates; recommended item: the LLM's top pick; window: the "
        f"{shown} history items the served prompt shows; each shown film is dropped in the served order and in "
        "every neutral swap's (two shown films trade places, prompt evidence unchanged); its effect is the mean "
        "over the orders, an influence beyond its threshold (one-sided t 5%, Bonferroni over the shown films).",
        *_rubric_lines(rows),
        *_floor_lines(rows),
        *_group_lines(rows),
        *_deletion_lines(rows, args.seed),
        *paired_lines(rows, list(reference), args.seed),
        "",
        "## Latency",
        "",
        f"- median s per explanation (generation batched {args.gen_batch}): "
        f"{statistics.median(r['latency_s'] for r in rows):.2f}, of which ablation over orders + ranking "
        f"{statistics.median(r['influence_s'] for r in rows):.2f}",
        *_group_latency(rows),
        *_example_lines(rows),
    ]
    return "\n".join(lines) + "\n"


def _rubric_lines(rows: list[dict]) -> list[str]:
    n = len(rows)

    def share(test) -> str:
        hits = sum(1 for r in rows if test(r))
        return f"{hits / n:.1%} ({hits})"

    claims = Counter(kind for r in rows for kind, _ in r["rubric"]["false_claims"])
    raw_rows = [r for r in rows if r["raw_rubric"] is not None]
    raw_claims = Counter(kind for r in raw_rows for kind, _ in r["raw_rubric"]["false_claims"])
    reasons = Counter(reason_kind(r["reason"]) for r in rows if r["path"] == "fallback")
    links = Counter(x for r in rows for x in r["rubric"]["links"])
    return [
        "",
        "## Rubric on the shown explanations",
        "",
        "| metric | value |",
        "|---|---|",
        f"| users | {n} |",
        f"| users with a measured influence (raised the score beyond its threshold) | "
        f"{share(lambda r: bool(r['influences']) and r['influences'][0][2] > 0)} |",
        f"| of which a group influence (no single film above its threshold) | "
        f"{share(lambda r: bool(r.get('group')))} |",
        f"| names a measured influence | {share(lambda r: r['rubric']['names_influence'])} |",
        f"| states a supported link | {share(lambda r: r['rubric']['supported_link'])} |",
        f"| both | {share(lambda r: r['rubric']['names_influence'] and r['rubric']['supported_link'])} |",
        f"| passes the whole rubric | {share(lambda r: r['rubric']['passes'])} |",
        f"| false claims (any kind) | {sum(claims.values())} |",
        f"| mean content words | {np.mean([r['rubric']['content_words'] for r in rows]):.1f} |",
        f"| generated path | {share(lambda r: r['path'] == 'generated')} |",
        f"| fallback (built sentence) | {share(lambda r: r['path'] == 'fallback')} |",
        "",
        f"Links stated: {_counts(links)}; false claims by kind: {_counts(claims)}.",
        "",
        f"## Raw generations ({len(raw_rows)} asked: the users with a measured influence)",
        "",
        f"- pass the rubric: {sum(r['raw_rubric']['passes'] for r in raw_rows)}; "
        f"false claims by kind: {_counts(raw_claims)}",
        f"- why the fallback was shown (the greedy answer's refusal): {_counts(reasons)}",
        f"- shown generated sentence by candidate (0: greedy, then sampled): "
        f"{_counts(Counter(r.get('candidate') for r in rows if r['path'] == 'generated'))}",
    ]


def paired_lines(rows: list[dict], reference: list[dict], seed: int) -> list[str]:
    """This run minus ``reference`` on the users both hold: the share naming a measured influence and a
    supported link, and the deletion test (listed minus random) where both have one; paired bootstrap 95%."""
    before = {r["user"]: r for r in reference}
    common = [r for r in rows if r["user"] in before]
    if not common:
        return []

    def both(row: dict) -> float:
        return float(row["rubric"]["names_influence"] and row["rubric"]["supported_link"])

    def deletion(row: dict) -> float:
        return row["drop_listed"] - row["drop_random"]

    shares = np.array([both(r) - both(before[r["user"]]) for r in common])
    share = paired_mean_difference(shares, seed=seed)
    tested = [r for r in common if "drop_listed" in r and "drop_listed" in before[r["user"]]]
    lines = [
        "",
        f"## Paired with the reference run ({len(common)} common users)",
        "",
        f"- names a measured influence and a supported link: {np.mean([both(r) for r in common]):.1%} here, "
        f"{np.mean([both(before[r['user']]) for r in common]):.1%} there; paired {share['difference']:+.1%} "
        f"[{share['ci_low']:+.1%}, {share['ci_high']:+.1%}] (+{int((shares > 0).sum())} / -{int((shares < 0).sum())})",
    ]
    if tested:
        here = np.array([deletion(r) for r in tested])
        there = np.array([deletion(before[r["user"]]) for r in tested])
        paired = paired_mean_difference(here - there, seed=seed)
        lines.append(
            f"- deletion test, users with one in both runs ({len(tested)}): {here.mean():+.4f} here, "
            f"{there.mean():+.4f} there; paired {paired['difference']:+.4f} [{paired['ci_low']:+.4f}, "
            f"{paired['ci_high']:+.4f}]"
        )
    return lines


def row_threshold(row: dict) -> np.ndarray | float:
    """[H] each history item's threshold (NaN: not ablated or not measurable); rows of the bench before
    the order-measured rule carry one swap floor for all."""
    if "thresholds" not in row:
        return row["floor"]
    return np.array([np.nan if t is None else t for t in row["thresholds"]], dtype=np.float64)


def _bar(row: dict) -> str:
    if "thresholds" not in row:
        return f"floor {row['floor']:.4f}"
    shown = [t for t in row["thresholds"] if t is not None]
    return f"thresholds {min(shown):.4f}-{max(shown):.4f}" if shown else "no threshold"


def _floor_lines(rows: list[dict]) -> list[str]:
    """How big the effects are against what they are compared with."""
    pairs = []
    for r in rows:
        bar = np.broadcast_to(row_threshold(r), (len(r["values"]),))
        pairs += [(abs(v), b) for v, b in zip(r["values"], bar) if v is not None and np.isfinite(v)]
    effects, bars = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    finite = bars[np.isfinite(bars)]
    above = int(np.sum(effects > bars))
    return [
        "",
        "## Influence and its threshold",
        "",
        f"- threshold per shown film: median {np.median(finite):.4f}, 90th percentile {np.percentile(finite, 90):.4f} "
        f"(neutral swaps per user: median {statistics.median(r['swaps'] for r in rows)}; orders = swaps + 1)"
        if len(finite)
        else "- no threshold could be measured",
        f"- |drop-one effect| (mean over orders): median {np.median(effects):.4f}; {above} of {len(effects)} "
        f"effects ({above / max(1, len(effects)):.1%}) exceed their threshold",
    ]


def _group_lines(rows: list[dict]) -> list[str]:
    """How often a group was tested (no single film above its threshold, a link group to test) and passed."""
    tested = [r["group_test"] for r in rows if r.get("group_test")]
    if not tested:
        return []
    passed = [g for g in tested if g["measured"]]
    kinds = Counter(g["link"]["kind"] for g in passed)
    nulls = statistics.median(len(g["null"]) for g in tested)
    return [
        "",
        "## Group influences (users with no single film above its threshold)",
        "",
        f"- groups tested: {len(tested)} (median {nulls} null sets each: every other set of as many shown films); "
        f"measured (drop above every null set's drop and the swap floor): {len(passed)} ({_counts(kinds)})",
        f"- tested groups' drop: median {np.median([g['effect'] for g in tested]):+.4f}; their floor "
        f"(largest null drop or swap floor): median {np.median([g['threshold'] for g in tested]):.4f}",
    ]


def _group_latency(rows: list[dict]) -> list[str]:
    tested = [r["group_s"] for r in rows if r.get("group_test")]
    if not tested:
        return []
    return [f"- group test (users with no single influence, {len(tested)}): median {statistics.median(tested):.2f} s "
            f"added; mean over all users {np.mean([r.get('group_s', 0.0) for r in rows]):.2f} s"]  # fmt: skip


def _deletion_lines(rows: list[dict], seed: int) -> list[str]:
    tested = [r for r in rows if "drop_listed" in r]
    if not tested:
        return []
    lines = ["", f"## Deletion test on the listed influences ({len(tested)} users with at least one)", ""]
    groups = [r for r in tested if r.get("group")]
    parts = [("all listed", tested)]
    if groups:
        parts += [("single films", [r for r in tested if not r.get("group")]), ("groups", groups)]
    for name, part in parts:
        listed = np.array([r["drop_listed"] for r in part])
        random = np.array([r["drop_random"] for r in part])
        paired = paired_mean_difference(listed - random, seed=seed)
        lines.append(
            f"- {name} ({len(part)} users): removed {listed.mean():+.4f}, as many random shown films "
            f"{random.mean():+.4f}; paired {np.mean(listed - random):+.4f} [{paired['ci_low']:+.4f}, "
            f"{paired['ci_high']:+.4f}]; listed drop larger for {np.mean(listed > random):.0%}"
        )
    return [
        *lines,
        *_set_lines(tested, seed),
        "- before (issue 29: 100 users, window 6 of which 1 unshown, top 3 by value whatever its size, vs 3 random): "
        "+0.0874 [+0.0602, +0.1127], 80% of users",
    ]


def _set_lines(tested: list[dict], seed: int) -> list[str]:
    """The deletion test against every set of as many shown films (rows with ``set_drops``)."""
    found = set_statistics(tested, seed)
    if found is None:
        return []
    return [
        f"- against every set of as many shown films ({found['users']} users; the one draw's expectation): listed "
        f"minus their mean {found['difference']:+.4f} [{found['ci_low']:+.4f}, {found['ci_high']:+.4f}]; a random "
        f"draw beaten {found['beats_draw']:.1%} of the time (a draw of the listed films themselves a tie, counted "
        f"lost), a draw of any other set {found['beats_other']:.1%}, a draw of unlisted films only "
        f"{found['beats_unnamed']:.1%} ({found['unnamed_users']} users); listed drop above the mean of the sets "
        f"for {found['above_mean']:.0%} of users",
    ]


def _example_lines(rows: list[dict]) -> list[str]:
    lines = ["", "## Examples", ""]
    picks = {path: [r for r in rows if r["path"] == path][: EXAMPLES // 2] for path in ("generated", "fallback")}
    grouped = [r for r in rows if r.get("group") and all(r is not x for x in picks[r["path"]])][:2]
    for path in ("generated", "fallback"):
        for r in picks[path] + [r for r in grouped if r["path"] == path]:
            influences = ", ".join(f"{title} {value:+.3f}" for _, title, value in r["influences"]) or "none"
            lines.append(f"- user {r['user']}, item {r['item']} ({path}; {_bar(r)}; measured: "
                         f"{influences}): {r['text']}")  # fmt: skip
            if path == "fallback" and r["raw"]:
                lines.append(f"  - refused generation ({r['reason']}): {r['raw']}")
    return lines
