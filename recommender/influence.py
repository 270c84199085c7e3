"""Drop-one influence of history items on a score, and the noise floor it is measured against.

    table = measure_influence(score, history_rows, window=5, swaps=[(3, 4), (1, 2)])  # one batched call
    table.effect, table.floor, table.influencers(column, ids)     # [W, K], [K], measured only

``score`` maps histories to the [K] scores of one fixed candidate list (the served ranking prompt,
or a rating). ``influence(h) = score(H) - score(H without h)``: without h the next-older item enters
the prompt. The floor of a candidate is the largest change of its score under neutral swaps (two
shown items trade places, the prompt's evidence unchanged); an item is an influence only above it
(and ``MIN_FLOOR``). Pure numpy: ``recommender.explain`` builds the sentences on top, the pipeline
supplies the score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

NEUTRAL_SWAPS = 4  # neutral swaps measured per request (the noise floor)
MIN_FLOOR = 1e-3  # nats: float32 forward passes of two prompts differ by ~1e-6, never by this much
CARD_INFLUENCERS = 3  # influencers shown on a recommendation card

ScoreHistories = Callable[[list[np.ndarray]], list[np.ndarray]]


def drop_one_influence(
    score: ScoreHistories, history: np.ndarray, window: int | None, base: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Drop-one ablation of the last ``window`` history items (all when None), no floor (ratings).

    Returns:
        [W] ablated positions in ``history`` and [W, K] influences ``base - ablated``.
    """
    table = measure_influence(score, history, window, (), base)
    return table.positions, table.effect


@dataclass(frozen=True)
class InfluenceTable:
    """Drop-one effects on K candidates and the noise floor they are compared with."""

    positions: np.ndarray  # [W] ablated positions in the history
    effect: np.ndarray  # [W, K] score(H) - score(H without h)
    swaps: np.ndarray  # [S, K] score(H) - score(H with two shown items swapped)
    pairs: tuple[tuple[int, int], ...] = ()  # [S] the swapped positions

    @property
    def floor(self) -> np.ndarray:
        """[K] the largest |change| under the neutral swaps (at least ``MIN_FLOOR``); inf without swaps."""
        if len(self.swaps) == 0:
            return np.full(self.effect.shape[1], np.inf)
        return np.maximum(np.abs(self.swaps).max(axis=0), MIN_FLOOR)

    def values(self, column: int, n_history: int) -> np.ndarray:
        """[H] effect of each history item on candidate ``column``; NaN where not ablated."""
        values = np.full(n_history, np.nan)
        values[self.positions] = self.effect[:, column]
        return values

    def influencers(self, column: int, ids: Sequence[str], k: int = CARD_INFLUENCERS) -> tuple[tuple[str, float], ...]:
        """Up to ``k`` (history id, effect) that raised candidate ``column`` beyond its floor, strongest
        first; ``ids`` are the whole history's ids."""
        raised, _, _ = split_measured(self.values(column, len(ids)), float(self.floor[column]))
        return tuple((ids[p], value) for p, value in raised[:k])


def swap_pairs(n_history: int, window: int, neutral: Callable[[int, int], bool], limit: int = NEUTRAL_SWAPS):
    """Pairs of shown positions to swap for the noise floor: adjacent ones first (most recent first),
    then two apart, keeping those ``neutral(i, j)`` accepts (the prompt's evidence unchanged)."""
    start = max(0, n_history - window)
    pairs = []
    for gap in (1, 2):
        for j in range(n_history - 1, start + gap - 1, -1):
            if len(pairs) < limit and neutral(j - gap, j):
                pairs.append((j - gap, j))
    return pairs


def swapped(history: np.ndarray, pair: tuple[int, int]) -> np.ndarray:
    """A copy of ``history`` with the items at the two positions of ``pair`` trading places."""
    out = np.array(history, copy=True)
    out[list(pair)] = out[list(pair[::-1])]
    return out


def neutral_swaps(
    history: np.ndarray, window: int, evidence_of: Callable[[np.ndarray], dict], limit: int = NEUTRAL_SWAPS
) -> list[tuple[int, int]]:
    """``swap_pairs`` of ``history`` whose exchange leaves every evidence array the prompt shows
    (``evidence_of(history)``, name -> array) as it is: the served floor's and the training variants' swaps."""
    reference = evidence_of(history)

    def neutral(i: int, j: int) -> bool:
        changed = evidence_of(swapped(history, (i, j)))
        return all(np.array_equal(changed[name], reference[name]) for name in reference)

    return swap_pairs(len(history), window, neutral, limit)


def measure_influence(
    score: ScoreHistories,
    history: np.ndarray,
    window: int | None,
    swaps: Sequence[tuple[int, int]] = (),
    base: np.ndarray | None = None,
) -> InfluenceTable:
    """Drop-one ablation of the last ``window`` items and the neutral ``swaps``, in one ``score`` call.

    Args:
        score: histories -> per history, [K] scores of one fixed candidate list (the served prompt).
        history: [H] catalogue rows, oldest first.
        window: items ablated, the most recent ones (None: all).
        swaps: position pairs whose exchange leaves the prompt's meaning unchanged (the floor).
        base: [K] scores of the whole history when already computed (saves one prompt).
    """
    history = np.asarray(history, dtype=np.int64)
    if window is not None and window < 0:
        raise ValueError(f"window must be >= 0 or None, got {window}")
    start = 0 if window is None else max(0, len(history) - window)
    positions = np.arange(start, len(history), dtype=np.int64)
    variants = [np.delete(history, p) for p in positions] + [swapped(history, pair) for pair in swaps]
    if base is None:
        scored = score([history, *variants])
        base, scored = scored[0], scored[1:]
    else:
        scored = score(variants) if variants else []
    base = np.asarray(base, dtype=np.float64)
    changes = base[None, :] - np.array(scored, dtype=np.float64).reshape(len(variants), len(base))  # [W + S, K]
    pairs = tuple((int(i), int(j)) for i, j in swaps)
    return InfluenceTable(positions, changes[: len(positions)], changes[len(positions) :], pairs)


def split_measured(
    values: np.ndarray, floor: float
) -> tuple[list[tuple[int, float]], list[tuple[int, float]], list[tuple[int, float]]]:
    """(position, effect) lists: raised the score beyond ``floor`` (strongest first), lowered it beyond
    ``floor`` (strongest first), and no measurable effect (most recent first, never ranked)."""
    values = np.asarray(values, dtype=np.float64)
    measured = [int(i) for i in np.flatnonzero(np.isfinite(values))]
    raised = sorted((i for i in measured if values[i] > floor), key=lambda i: (-values[i], -i))
    lowered = sorted((i for i in measured if values[i] < -floor), key=lambda i: (values[i], -i))
    quiet = sorted((i for i in measured if abs(values[i]) <= floor), reverse=True)
    return ([(i, float(values[i])) for i in raised], [(i, float(values[i])) for i in lowered],
            [(i, float(values[i])) for i in quiet])  # fmt: skip
