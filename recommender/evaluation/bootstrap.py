"""The one paired bootstrap every comparison in the project uses.

Users (or people, or cases) are resampled with replacement; the 95% interval is the 2.5th and
97.5th percentile of the resampled statistic (the percentile method, as scipy's
``stats.bootstrap(method="percentile")``; ``tests/test_metrics.py`` checks the two agree). Ours
rather than scipy's because it draws in bounded batches: at a million users scipy's vectorised
draw is a [resamples, users] matrix of 16 GB, ours at most ``batch_elements`` indices (128 MB).
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000


def resampled_means(
    values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0, batch_elements: int = 1 << 24
) -> np.ndarray:
    """[R] (or [R, C] for [U, C] values) means over users resampled with replacement.

    The draws are the same stream as one [R, U] index matrix, so the result does not depend on
    the batch size; values with several columns share each resample's users (paired)."""
    values = np.asarray(values, dtype=np.float64)
    users = len(values)
    if not users:
        raise ValueError("a bootstrap needs at least one user.")
    rng = np.random.default_rng(seed)
    step = max(1, min(resamples, batch_elements // users))
    means = np.empty((resamples, *values.shape[1:]))
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        means[start : start + rows] = values[rng.integers(0, users, (rows, users))].mean(axis=1)
    return means


def percentile_interval(draws: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap draws."""
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def paired_mean_difference(difference: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, float]:
    """Mean of per-user paired differences (a - b on the same users) with its 95% interval."""
    difference = np.asarray(difference, dtype=np.float64)
    low, high = percentile_interval(resampled_means(difference, resamples, seed))
    return {"difference": float(difference.mean()), "ci_low": low, "ci_high": high}
