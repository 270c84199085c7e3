"""Ranking metrics for full ranking with the user's history masked. Pure numpy.

A target's rank counts the items scored strictly higher plus the tied items that come
earlier in catalogue order, so ties are broken the same way as a stable argsort.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.evaluation.bootstrap import percentile_interval, resampled_means


def target_rank(scores: np.ndarray, target: int, mask: np.ndarray | Sequence[int] = ()) -> int:
    """1-based rank of ``target`` among [N] ``scores`` after removing the ``mask`` rows."""
    scores = np.asarray(scores, dtype=np.float64)
    keep = np.ones(len(scores), dtype=bool)
    keep[np.asarray(mask, dtype=np.int64)] = False
    keep[target] = True
    value = scores[target]
    higher = np.count_nonzero(keep & (scores > value))
    tied_before = np.count_nonzero(keep[:target] & (scores[:target] == value))
    return int(higher + tied_before + 1)


def full_ranks(scores: np.ndarray, cases: Sequence, rng: np.random.Generator | None = None) -> np.ndarray:
    """[B] 1-based target ranks from [B, N] scores with each case's history masked (cases have
    ``.history`` rows and a ``.target`` row); ``target_rank`` for a batch, same tie rule. With
    ``rng``, the target sits at a random position among the items tied with it instead (for scores
    that tie in bulk, where the row-order rule would rank by item id)."""
    scores = np.array(scores, dtype=np.float64)  # copy: masking writes into it
    targets = np.array([case.target for case in cases], dtype=np.int64)
    for b, case in enumerate(cases):
        history = case.history[case.history != case.target]
        scores[b, history] = -np.inf
    values = scores[np.arange(len(cases)), targets][:, None]  # [B, 1]
    higher = np.count_nonzero(scores > values, axis=1)
    if rng is not None:
        return higher + rng.integers(0, np.count_nonzero(scores == values, axis=1)) + 1  # the target ties itself
    earlier = np.arange(scores.shape[1])[None, :] < targets[:, None]
    tied = np.count_nonzero((scores == values) & earlier, axis=1)
    return higher + tied + 1


def top_k(scores: np.ndarray, k: int, mask: np.ndarray | Sequence[int] = ()) -> np.ndarray:
    """Rows of the ``k`` best [N] ``scores`` with ``mask`` removed, ties in row order."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[np.asarray(mask, dtype=np.int64)] = -np.inf
    k = min(k, int(np.count_nonzero(np.isfinite(scores))))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    # Re-sort the partition stably so equal scores keep catalogue order.
    boundary = scores[candidates].min()
    candidates = np.flatnonzero(scores >= boundary)
    order = np.argsort(-scores[candidates], kind="stable")
    return candidates[order][:k].astype(np.int64)


def hit_rate(ranks: Sequence[int], k: int) -> float:
    ranks = np.asarray(ranks)
    return float(np.mean(ranks <= k)) if len(ranks) else 0.0


def ndcg_gains(ranks: Sequence[int], k: int) -> np.ndarray:
    """[U] per-user NDCG@k: one relevant item per user, so IDCG = 1 and the gain is
    1 / log2(rank + 1) within K, else 0."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)


def ndcg(ranks: Sequence[int], k: int) -> float:
    """Mean of ``ndcg_gains``; 0 for no users."""
    return float(np.mean(ndcg_gains(ranks, k))) if len(ranks) else 0.0


def paired_ndcg_difference(
    ranks: Sequence[int],
    reference: Sequence[int],
    k: int = 10,
    resamples: int = 2000,
    seed: int = 0,
    batch_elements: int = 1 << 24,
) -> dict[str, float]:
    """NDCG@k of ``ranks`` minus that of ``reference`` on the SAME users, with a paired bootstrap.

    The interval is ``evaluation.bootstrap``'s (users resampled ``resamples`` times, percentile
    95%, drawn in batches of at most ``batch_elements`` indices). ``wins`` / ``losses``: users
    whose gain is higher / lower than under the reference (the rest tie, e.g. targets outside the
    reranked list).
    """
    if len(ranks) != len(reference) or not len(ranks):
        raise ValueError(f"paired ranks need the same non-empty users: {len(ranks)} vs {len(reference)}")
    difference = ndcg_gains(ranks, k) - ndcg_gains(reference, k)  # [U]
    low, high = percentile_interval(resampled_means(difference, resamples, seed, batch_elements))
    return {
        "difference": float(difference.mean()),
        "ci_low": low,
        "ci_high": high,
        "wins": int((difference > 0).sum()),
        "losses": int((difference < 0).sum()),
        "users": len(difference),
    }


def mrr(ranks: Sequence[int], k: int) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0))) if len(ranks) else 0.0


def coverage(top_lists: Sequence[Sequence[int]], n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-K list."""
    shown = {int(item) for items in top_lists for item in list(items)[:k]}
    return len(shown) / n_items if n_items else 0.0


def popularity_percentiles(popularity: np.ndarray) -> np.ndarray:
    """Percentile (0..1] of each item's popularity; ties share the highest percentile."""
    popularity = np.asarray(popularity, dtype=np.float64)
    ordered = np.sort(popularity)
    return np.searchsorted(ordered, popularity, side="right") / max(len(popularity), 1)


def popularity_bias(top_lists: Sequence[Sequence[int]], popularity: np.ndarray, k: int) -> float:
    """Mean popularity percentile of the recommended top-K items (0.5 = unbiased catalogue mix)."""
    percentiles = popularity_percentiles(popularity)
    values = [percentiles[int(item)] for items in top_lists for item in list(items)[:k]]
    return float(np.mean(values)) if values else 0.0


def intra_list_diversity(top_lists: Sequence[Sequence[int]], embeddings: np.ndarray, k: int) -> float:
    """Mean pairwise cosine distance of each top-K list, averaged over lists with >= 2 items."""
    values = []
    for items in top_lists:
        rows = np.asarray(list(items)[:k], dtype=np.int64)
        if len(rows) < 2:
            continue
        vectors = embeddings[rows]
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        similarity = vectors @ vectors.T
        upper = similarity[np.triu_indices(len(rows), k=1)]
        values.append(float(np.mean(1.0 - upper)))
    return float(np.mean(values)) if values else 0.0


def ranking_report(ranks: Sequence[int], cutoffs: Sequence[int] = (1, 5, 10, 20)) -> dict[str, float]:
    """HR@K, NDCG@K and MRR@10 from target ranks, with the metric names used everywhere."""
    report: dict[str, float] = {}
    for k in cutoffs:
        report[f"HR@{k}"] = hit_rate(ranks, k)
    for k in cutoffs:
        if k > 1:
            report[f"NDCG@{k}"] = ndcg(ranks, k)
    report["MRR@10"] = mrr(ranks, 10)
    return report
