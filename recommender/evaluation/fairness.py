"""Fairness of a ranking, pure numpy/scipy: quality by user group and exposure by item group.

User side: NDCG@10 and HR@10 per group of users (any attribute: gender, age band, occupation,
activity tercile, history length) with percentile-bootstrap 95% intervals, the gap of each group
to the rest of the users and the largest gap between groups, and, for a method and its own first
stage, the paired NDCG@10 difference within each group plus whether it widens the group's gap.
Groups under ``min_users`` people keep their point values but get no interval and are flagged.

Item side: exposure share of popularity buckets in the top-10 lists, the Gini index of item
exposure over the whole catalogue, catalogue coverage, the share of lists' slots in the tail, and
genre miscalibration (``recommender.calibration``), each per method. Markdown tables and the
plot are written by ``recommender.evaluation.fairness_report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

from recommender.calibration import user_miscalibration
from recommender.evaluation.metrics import coverage, ndcg_gains, paired_ndcg_difference

MIN_USERS = 20  # groups with fewer users are reported as too small for an interval
RESAMPLES = 2000
CUTOFF = 10
AGE_BANDS = ((0, "under 18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-49"), (50, "50-55"), (56, "56+"))
BUCKETS = ("head", "mid", "tail")


class Grouping(NamedTuple):
    """A partition of the evaluated users by one attribute."""

    attribute: str  # e.g. "gender"
    labels: np.ndarray  # [U] the group of each user, in the ranks' user order
    order: tuple[str, ...]  # groups in display order


def categorical(attribute: str, values: Sequence[str]) -> Grouping:
    """Groups by a categorical value (gender, occupation), the largest group first."""
    labels = np.asarray([str(v) for v in values], dtype=object)
    names, counts = np.unique(labels.astype(str), return_counts=True)
    order = tuple(str(n) for n, _ in sorted(zip(names, counts), key=lambda pair: (-pair[1], pair[0])))
    return Grouping(attribute, labels, order)


def age_bands(ages: Sequence[int | None]) -> Grouping:
    """MovieLens-1M's age bands (under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+); None: 'unknown'."""
    starts = np.array([start for start, _ in AGE_BANDS])
    known = np.array([age is not None for age in ages], dtype=bool)
    values = np.array([age if age is not None else 0 for age in ages], dtype=np.int64)
    index = np.searchsorted(starts, values, side="right") - 1
    labels = np.array([AGE_BANDS[i][1] if k else "unknown" for i, k in zip(index, known)], dtype=object)
    names = [name for _, name in AGE_BANDS] + ["unknown"]
    return Grouping("age", labels, tuple(name for name in names if name in set(labels)))


def activity_terciles(train_events: Sequence[int]) -> Grouping:
    """Low / mid / high activity by the 1/3 and 2/3 quantiles of per-user train-event counts
    (ties at a boundary go to the lower group); labels carry the event range."""
    counts = np.asarray(train_events, dtype=np.int64)
    low, high = np.quantile(counts, [1 / 3, 2 / 3], method="lower") if len(counts) else (0, 0)
    bins = np.where(counts <= low, 0, np.where(counts <= high, 1, 2))
    names = []
    for b, name in enumerate(("low", "mid", "high")):
        members = counts[bins == b]
        names.append(f"{name} ({members.min()}-{members.max()} events)" if len(members) else name)
    labels = np.array([names[b] for b in bins], dtype=object)
    return Grouping("activity tercile", labels, tuple(n for b, n in enumerate(names) if np.any(bins == b)))


def length_buckets(lengths: Sequence[int], edges: Sequence[int] = (20, 50, 100, 200)) -> Grouping:
    """History-length buckets: ``< e0``, ``e0-(e1-1)``, ..., ``>= e_last`` items."""
    names = [f"< {edges[0]}"] + [f"{a}-{b - 1}" for a, b in zip(edges, edges[1:])] + [f">= {edges[-1]}"]
    index = np.searchsorted(np.asarray(edges), np.asarray(lengths, dtype=np.int64), side="right")
    labels = np.array([names[i] for i in index], dtype=object)
    return Grouping("history length", labels, tuple(n for n in names if n in set(labels)))


def _mean_interval(samples: Sequence[np.ndarray], statistic, seed: int, resamples: int) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of ``statistic`` over independently resampled ``samples``."""
    result = stats.bootstrap(
        tuple(samples),
        statistic,
        n_resamples=resamples,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _spread(*groups: np.ndarray, axis: int = -1) -> np.ndarray:
    means = np.stack([np.mean(g, axis=axis) for g in groups])
    return means.max(axis=0) - means.min(axis=0)


def group_quality(
    ranks: np.ndarray,
    grouping: Grouping,
    k: int = CUTOFF,
    min_users: int = MIN_USERS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[dict]:
    """One row per group: users, ``too_small``, NDCG@k and HR@k with 95% intervals, and the
    NDCG@k gap to the rest of the users (group minus rest, independent bootstrap); intervals are
    None for groups under ``min_users`` users (or whose rest is)."""
    gains, hits = ndcg_gains(ranks, k), (np.asarray(ranks) <= k).astype(np.float64)  # [U], [U]
    rows = []
    for group in grouping.order:
        inside = grouping.labels == group
        small, rest_small = int(inside.sum()) < min_users, int((~inside).sum()) < min_users
        row = {"group": group, "users": int(inside.sum()), "too_small": small}
        row["ndcg"], row["hr"] = float(gains[inside].mean()), float(hits[inside].mean())
        row["gap"] = float(gains[inside].mean() - gains[~inside].mean()) if (~inside).any() else 0.0
        row["ndcg_ci"] = None if small else _mean_interval([gains[inside]], _mean, seed, resamples)
        row["hr_ci"] = None if small else _mean_interval([hits[inside]], _mean, seed, resamples)
        row["gap_ci"] = (
            None
            if small or rest_small
            else _mean_interval([gains[inside], gains[~inside]], _difference, seed, resamples)
        )
        rows.append(row)
    return rows


def largest_gap(
    ranks: np.ndarray,
    grouping: Grouping,
    k: int = CUTOFF,
    min_users: int = MIN_USERS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict | None:
    """Best minus worst group NDCG@k among groups of at least ``min_users`` users (None with fewer
    than two such groups).

    ``ci``: bootstrap interval of the difference between those two groups, fixed on the data; they
    were picked for being far apart, so it leans away from 0. ``p``: permutation test of the spread
    (max minus min of the group means) against no difference between any groups, the honest answer
    to "is there a gap at all" when there are many groups.
    """
    gains = ndcg_gains(ranks, k)
    groups = [g for g in grouping.order if int((grouping.labels == g).sum()) >= min_users]
    if len(groups) < 2:
        return None
    samples = [gains[grouping.labels == g] for g in groups]
    means = [float(s.mean()) for s in samples]
    best, worst = int(np.argmax(means)), int(np.argmin(means))
    interval = _mean_interval([samples[best], samples[worst]], _difference, seed, resamples)
    test = stats.permutation_test(
        samples, _spread, permutation_type="independent", vectorized=True, n_resamples=resamples,
        alternative="greater", rng=np.random.default_rng(seed),
    )  # fmt: skip
    gap = {"best": groups[best], "worst": groups[worst], "gap": means[best] - means[worst], "ci": interval}
    return {**gap, "p": float(test.pvalue), "groups": len(groups)}


def paired_by_group(
    ranks: np.ndarray,
    reference: np.ndarray,
    grouping: Grouping,
    k: int = CUTOFF,
    min_users: int = MIN_USERS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[dict]:
    """Per group, NDCG@k of ``ranks`` minus ``reference`` on the same users (paired bootstrap,
    ``metrics.paired_ndcg_difference``), and ``gap_change``: that difference in the group minus in
    the rest, i.e. how much the method moves the group's gap to the others (negative: widens a
    gap the group is below on); ``p``: a sign-flip permutation test of the group's difference (None
    for groups under ``min_users``; ``adjust_over_groups`` adds the multiplicity-adjusted ``q``)."""
    delta = ndcg_gains(ranks, k) - ndcg_gains(reference, k)  # [U] per-user paired differences
    rows = []
    for group in grouping.order:
        inside = grouping.labels == group
        small, rest_small = int(inside.sum()) < min_users, int((~inside).sum()) < min_users
        paired = paired_ndcg_difference(np.asarray(ranks)[inside], np.asarray(reference)[inside], k, resamples, seed)
        row = {"group": group, "users": int(inside.sum()), "too_small": small, "difference": paired["difference"]}
        row["ci"] = None if small else (paired["ci_low"], paired["ci_high"])
        row["wins"], row["losses"] = paired["wins"], paired["losses"]
        row["gap_change"] = float(delta[inside].mean() - delta[~inside].mean()) if (~inside).any() else 0.0
        rest = [delta[inside], delta[~inside]]
        row["gap_change_ci"] = None if small or rest_small else _mean_interval(rest, _difference, seed, resamples)
        row["p"] = None if small else _sign_flip_p(delta[inside], seed, resamples)
        rows.append(row)
    return rows


def _sign_flip_p(differences: np.ndarray, seed: int, resamples: int) -> float:
    """Two-sided p of a paired mean difference against none (a sign-flip permutation test)."""
    if not np.any(differences):
        return 1.0
    test = stats.permutation_test(
        (differences,), _mean, permutation_type="samples", vectorized=True, n_resamples=resamples, random_state=seed
    )
    return float(test.pvalue)


def adjust_over_groups(rows: Sequence[dict]) -> None:
    """Adds ``q`` to each row with a ``p``: Benjamini-Hochberg over all those rows (every group of every
    attribute for one method pair), because one interval in twenty excludes zero by chance alone."""
    tested = [r for r in rows if r.get("p") is not None]
    if tested:
        for row, q in zip(tested, stats.false_discovery_control([r["p"] for r in tested])):
            row["q"] = float(q)


# ---------------------------------------------------------------------------------- item side


def popularity_buckets(popularity: np.ndarray, head: float = 0.2, tail: float = 0.2) -> np.ndarray:
    """[N] 'head' / 'mid' / 'tail' by train interactions (Abdollahpouri et al. 2019, "The
    unfairness of popularity bias"): head = the most popular items that together hold the first
    ``head`` share of interactions, tail = the least popular items that together hold at most
    ``tail`` of them (items never interacted with included), mid = the rest. Ties: catalogue order."""
    popularity = np.asarray(popularity, dtype=np.float64)
    order = np.argsort(-popularity, kind="stable")  # most popular first
    total = max(popularity.sum(), 1e-12)
    before = (np.cumsum(popularity[order]) - popularity[order]) / total  # share held by more popular items
    from_bottom = np.cumsum(popularity[order][::-1])[::-1] / total  # share of this item and less popular ones
    labels = np.full(len(popularity), "mid", dtype=object)
    labels[order[from_bottom <= tail + 1e-12]] = "tail"
    labels[order[before < head]] = "head"
    return labels


def exposure(top_lists: Sequence[Sequence[int]], n_items: int, k: int = CUTOFF) -> np.ndarray:
    """[N] how many top-k lists show each item."""
    shown = [int(item) for items in top_lists for item in list(items)[:k]]
    return np.bincount(np.asarray(shown, dtype=np.int64), minlength=n_items).astype(np.float64)


def exposure_shares(top_lists: Sequence[Sequence[int]], buckets: np.ndarray, k: int = CUTOFF) -> dict[str, float]:
    """Share of all top-k slots taken by each popularity bucket (sums to 1 over ``BUCKETS``)."""
    shown = [buckets[int(item)] for items in top_lists for item in list(items)[:k]]
    total = max(len(shown), 1)
    return {bucket: sum(1 for s in shown if s == bucket) / total for bucket in BUCKETS}


def gini(values: np.ndarray) -> float:
    """Gini index of non-negative [N] values: 0 when all are equal, (N - 1) / N when one holds all."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return 0.0
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / (n * total))


def user_tail_share(top_lists: Sequence[Sequence[int]], buckets: np.ndarray, k: int = CUTOFF) -> np.ndarray:
    """[U] share of each top-k list taken by tail items."""
    return np.array(
        [np.mean([buckets[int(i)] == "tail" for i in list(items)[:k]]) if len(items) else 0.0 for items in top_lists]
    )


def item_side(
    top_lists: Sequence[Sequence[int]],
    histories: Sequence[np.ndarray],
    buckets: np.ndarray,
    genres: np.ndarray,
    k: int = CUTOFF,
) -> dict[str, float]:
    """Exposure shares per bucket, Gini of exposure, coverage@k and mean miscalibration of one method."""
    n_items = len(buckets)
    row = {f"{bucket}_share": share for bucket, share in exposure_shares(top_lists, buckets, k).items()}
    row["gini"] = gini(exposure(top_lists, n_items, k))
    row["coverage"] = coverage(top_lists, n_items, k)
    row["miscalibration"] = float(np.mean(user_miscalibration(histories, top_lists, genres, k)))
    return row
