"""The deletion test of ``bench.explain`` against EVERY set of as many shown films, not one random draw.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.explain_deletion --rows bench/results/explain-rubric-orders-200.jsonl \\
        --split test --out /tmp/sets.jsonl                      # adds set_drops to stored rows (same adapter)
    .venv/bin/python -m bench.explain_deletion --summary /tmp/sets.jsonl ...   # the table, no model

One seeded draw per user makes the share of users "whose listed drop beats the random one" a coin:
with 1 listed film of 5 shown, the draw removes that very film one time in 5 (a tie, counted as a
loss), so that share cannot exceed 80% even when every listed film is the strongest. Removing every
set of k shown films (C(5, k) <= 10 prompts) gives the test without the luck of the draw: the mean
drop over all sets is the exact expectation of the one-draw "random" drop, and the share of sets the
listed set beats is the expected one-draw verdict (``set_summary``); the report gives both, and the
same share with the listed set itself left out of the draw.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from bench.user_rows import measured_rows, read_rows
from recommender.influence import CARD_INFLUENCERS, split_measured


def deletion_sets(
    score: Callable[[list[np.ndarray]], list[float]],
    base: float,
    history: np.ndarray,
    positions: Sequence[int],
    listed: Sequence[int],
    random: Sequence[int],
) -> dict:
    """The item's drop (``base`` minus its score) with the ``listed`` positions removed together, with the
    ``random`` draw removed, and with every set of as many of the shown ``positions`` removed."""
    sets = [tuple(c) for c in itertools.combinations(sorted(int(p) for p in positions), len(listed))]
    scores = score([np.delete(history, list(c)) for c in sets])
    drops = {c: float(base - s) for c, s in zip(sets, scores)}
    return {
        "drop_listed": drops[tuple(sorted(int(p) for p in listed))],
        "drop_random": drops[tuple(sorted(int(p) for p in random))],
        "set_drops": [[list(c), d] for c, d in drops.items()],
    }


def set_summary(row: dict) -> dict[str, float]:
    """One user's deletion test over all sets: the listed drop minus the mean over all sets (the one
    draw's expectation), the share of all sets whose drop is strictly smaller (the one draw's expected
    verdict, a tie a loss), the share of the OTHER sets it beats (the draw never the listed set) and of
    the sets of unlisted films only (the named films against as many unnamed ones; NaN when none), and the
    largest share of draws any set could beat (``ceiling``: one draw in C(shown, k) is the listed set itself)."""
    listed = sorted(listed_positions(row))
    drops = {tuple(c): d for c, d in row["set_drops"]}
    mine = drops[tuple(listed)]
    others = [d for c, d in drops.items() if list(c) != listed]
    unnamed = [d for c, d in drops.items() if not set(c) & set(listed)]  # none of the listed films
    everything = list(drops.values())
    return {
        "difference": mine - float(np.mean(everything)),
        "beats_draw": float(np.mean([mine > d for d in everything])),
        "beats_other": float(np.mean([mine > d for d in others])) if others else float("nan"),
        "beats_unnamed": float(np.mean([mine > d for d in unnamed])) if unnamed else float("nan"),
        "ceiling": 1.0 - 1.0 / len(everything),
    }


def set_statistics(rows: Sequence[dict], seed: int = 0) -> dict[str, float] | None:
    """The deletion test over every set, across the users of ``rows`` that have ``set_drops`` (None when
    none has): listed minus the sets' mean with its paired bootstrap 95% interval, the shares of random
    draws, other sets and unlisted-only sets beaten (and the most a random draw could be), the share of
    users above the sets' mean, and the one seeded draw as run (listed minus random, share of users it favours)."""
    from recommender.evaluation.bootstrap import paired_mean_difference

    tested = [r for r in rows if r.get("set_drops")]
    if not tested:
        return None
    sets = [set_summary(r) for r in tested]
    difference = np.array([s["difference"] for s in sets])
    paired = paired_mean_difference(difference, seed=seed)
    unnamed = [s["beats_unnamed"] for s in sets if not np.isnan(s["beats_unnamed"])]
    one = np.array([r["drop_listed"] - r["drop_random"] for r in tested])
    return {
        "users": len(tested),
        "difference": float(difference.mean()),
        "ci_low": paired["ci_low"],
        "ci_high": paired["ci_high"],
        "beats_draw": float(np.mean([s["beats_draw"] for s in sets])),
        "ceiling": float(np.mean([s["ceiling"] for s in sets])),
        "beats_other": float(np.nanmean([s["beats_other"] for s in sets])),
        "beats_unnamed": float(np.mean(unnamed)) if unnamed else float("nan"),
        "unnamed_users": len(unnamed),
        "above_mean": float(np.mean(difference > 0)),
        "one_draw": float(one.mean()),
        "one_draw_favours": float(np.mean(one > 0)),
    }


def random_draw(rng: np.random.Generator, positions: Sequence[int], k: int) -> list[int]:
    """The deletion test's one seeded draw: ``k`` of the shown ``positions``, sorted (``bench.explain``
    draws it per user; a backfill redraws it from the same seed)."""
    return sorted(int(p) for p in rng.choice(positions, size=k, replace=False))


def listed_positions(row: dict, at_most: int | None = None) -> list[int]:
    """The positions a stored ``bench.explain`` row's deletion test removed: the single influences above
    their thresholds (strongest first, at most the card's or ``at_most``), else a measured group's."""
    if row.get("listed") is not None and at_most is None:
        return list(row["listed"])
    values = np.array([np.nan if v is None else v for v in row["values"]])
    thresholds = np.array([np.nan if t is None else t for t in row["thresholds"]])
    raised, _, _ = split_measured(values, thresholds)
    if raised:
        return [p for p, _ in raised[: at_most or CARD_INFLUENCERS]]
    test = row.get("group_test") or {}
    return list(test["positions"]) if test.get("measured") else []


def _served(pipeline, row: dict, split: str):
    """The stored user's history, served candidates, the top pick's column and base score, and a scorer of
    histories on that column; None when the top pick is no longer the stored item (another adapter or data)."""
    from bench.explain import served_candidates

    history, candidates = served_candidates(pipeline, row["user"], split)
    base = pipeline.llm_scores([history], [candidates])[0]
    column = int(np.argmax(base))
    if pipeline.catalog.ids[int(candidates[column])] != row["item"]:
        return None

    def score(histories):
        return [float(s[column]) for s in pipeline.llm_scores(histories, [candidates] * len(histories))]

    return history, candidates, float(base[column]), score


def backfill(pipeline, row: dict, split: str, seed: int, at_most: int | None = None) -> dict:
    """``row`` with ``set_drops``: its user's served candidates and top pick scored again (the pick must
    be the stored item), every set of as many shown films removed; the one draw is redrawn as the run drew it.
    ``at_most``: list at most that many single influences instead of the card's (the drops follow)."""
    listed = listed_positions(row, at_most)
    if not listed:
        return {**row, "seconds": 0.0}
    t0 = time.perf_counter()
    served = _served(pipeline, row, split)
    if served is None:
        raise SystemExit(f"user {row['user']}: the top pick is no longer item {row['item']} (another adapter?)")
    history, _, base, score = served
    positions = list(range(len(history) - row["window"], len(history)))
    random = random_draw(np.random.default_rng([seed, int(row["user"])]), positions, len(listed))
    found = deletion_sets(score, base, history, positions, listed, random)
    drops = found if at_most is not None else {"set_drops": found["set_drops"]}  # else the run's one draw stays
    return {**row, **drops, "listed": listed, "seconds": time.perf_counter() - t0}


def second_film_adds(pipeline, row: dict, split: str, seed: int) -> dict:
    """``row`` listing its second influence only when removing it still lowers the score once the first is
    gone (``influence.measure_pair``: the pair claim measured as a pair); the listing's set drops."""
    from recommender.influence import pair_histories, pair_listed, pair_test

    listed = listed_positions(row, 2)
    served = _served(pipeline, row, split) if listed else None
    if served is None:
        return {**row, "set_drops": None, "seconds": 0.0, "skipped": "no listed film or another top pick"}
    t0 = time.perf_counter()
    history, candidates, base, score = served
    second = None
    if len(listed) == 2 and not (row.get("group_test") or {}).get("measured"):
        pairs = pipeline.neutral_swap_pairs(history, candidates, row["window"])
        test = pair_test(score(pair_histories(history, pairs, *listed)))
        second = {"effect": test.effect, "threshold": test.threshold, "orders": test.orders}
        listed = pair_listed(listed, test)
    positions = list(range(len(history) - row["window"], len(history)))
    random = random_draw(np.random.default_rng([seed, int(row["user"])]), positions, len(listed))
    found = deletion_sets(score, base, history, positions, listed, random)
    return {**row, **found, "listed": listed, "second": second, "seconds": time.perf_counter() - t0}


def summary_table(paths: Sequence[str], seed: int = 0, by_listed: bool = False) -> str:
    """One markdown row per file of rows with ``set_drops`` (per file and number of listed films with
    ``by_listed``): the one-draw test as run and the test over every set (``set_statistics``)."""
    lines = [
        "| rows | users tested | one draw: listed minus random, users | listed minus every set's mean [95%] "
        "| random draw beaten (a tie lost; at most) | another set beaten | a set of unlisted films beaten (users) "
        "| listed above the sets' mean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path in paths:
        rows = [r for r in read_rows(path) if r.get("set_drops")]
        groups = {path: rows}
        if by_listed:
            counts = sorted({len(listed_positions(r)) for r in rows})
            groups = {f"{path} ({k} listed)": [r for r in rows if len(listed_positions(r)) == k] for k in counts}
        for label, chosen in groups.items():
            found = set_statistics(chosen, seed)
            if found is not None:
                lines.append(_summary_line(label, found))
    return "\n".join(lines) + "\n"


def _summary_line(label: str, found: dict[str, float]) -> str:
    unnamed = f"{found['beats_unnamed']:.1%} ({found['unnamed_users']})" if found["unnamed_users"] else "-"
    return (
        f"| {label} | {found['users']} | {found['one_draw']:+.4f}, {found['one_draw_favours']:.0%} "
        f"| {found['difference']:+.4f} [{found['ci_low']:+.4f}, {found['ci_high']:+.4f}] "
        f"| {found['beats_draw']:.1%} ({found['ceiling']:.0%}) | {found['beats_other']:.1%} | {unnamed} "
        f"| {found['above_mean']:.0%} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", nargs="+", metavar="JSONL", help="no model: the table of stored set_drops rows")
    parser.add_argument("--by-listed", action="store_true", help="with --summary: a row per number of listed films")
    parser.add_argument("--rows", help="stored bench.explain rows (JSON lines)")
    parser.add_argument("--adapter", default="default", help="the adapter those rows were measured with")
    parser.add_argument("--split", default="test", choices=("test", "valid"))
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (its random draws)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--at-most", type=int, default=None, help="list at most this many single influences")
    parser.add_argument("--out", help="the rows with set_drops (resumes a killed run)")
    parser.add_argument(
        "--second-adds", action="store_true",
        help="list the second influence only when it lowers the score once the first is removed (second_film_adds)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.summary:
        print(summary_table(args.summary, args.seed, args.by_listed), end="")
        return 0
    if not (args.rows and args.out):
        parser.error("--rows and --out are needed to measure (or --summary to read stored rows)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from recommender.pipeline import Recommender

    torch.set_num_threads(args.threads)
    pipeline = Recommender.from_pretrained("ml-100k", adapter=args.adapter)
    rows = {row["user"]: row for row in read_rows(args.rows)}
    if args.second_adds:
        measure = lambda u: second_film_adds(pipeline, rows[u], args.split, args.seed)  # noqa: E731
    else:
        measure = lambda u: backfill(pipeline, rows[u], args.split, args.seed, args.at_most)  # noqa: E731
    measured_rows(list(rows), measure, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
