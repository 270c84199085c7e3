"""Drop-one influence of history items on a score, measured over orders, and the threshold it must exceed.

    table = measure_influence(score, history_rows, window=5, swaps=[(3, 4), (1, 2)])  # one batched call
    table.effect, table.threshold, table.influencers(column, ids)  # [W, K], [W, K], measured only

``score`` maps histories to the [K] scores of one fixed candidate list (the served ranking prompt,
or a rating). ``influence(h) = score(H) - score(H without h)``: without h the next-older item enters
the prompt. Neutral swaps (two shown items trade places, the prompt's evidence unchanged) give the
same history in other orders; each item is dropped in the served order and in every swapped one,
and its effect is the mean over those orders. It is an influence only when that mean exceeds its
threshold: a one-sided t-test over the orders at 5%, Bonferroni-corrected over the ablated items
(and at least ``MIN_FLOOR``). Chosen on validation users (bench/results/influence-rules*.md): the
per-order spread is what a single order hides, so one order against the largest swap change (the
``floor``, kept for the group test) passed 7% of pure-noise films with the counterfactual adapter,
this rule under 1%. Pure numpy and scipy: ``recommender.explain`` builds the sentences on top, the
pipeline supplies the score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from scipy import stats

NEUTRAL_SWAPS = 4  # neutral swaps per request: the other orders each effect is measured in
MIN_FLOOR = 1e-3  # nats: float32 forward passes of two prompts differ by ~1e-6, never by this much
# Influencers a card lists: the 2 its sentence names. Removing a third with them adds little (older films
# enter the prompt in their place), so on validation users 2 beat a random draw of as many shown films
# more often than 3 (75% vs 67%; docs/results.md, "How many films a card lists").
CARD_INFLUENCERS = 2
FALSE_PASS = 0.05  # one-sided level of the t-test over orders, shared by the ablated items (Bonferroni)

T = TypeVar("T")
ScoreHistories = Callable[[list[np.ndarray]], list[np.ndarray]]


def order_threshold(orders: np.ndarray, tests: int = 1) -> np.ndarray:
    """What the mean of ``orders`` (one effect per order on axis 0) must exceed: the one-sided t critical
    value at ``FALSE_PASS`` / ``tests`` (Bonferroni) times its standard error, at least ``MIN_FLOOR``; inf
    with fewer than two orders (no spread to measure)."""
    orders = np.asarray(orders, dtype=np.float64)
    m = len(orders)
    if m < 2:
        return np.full(orders.shape[1:], np.inf)
    error = orders.std(axis=0, ddof=1) / np.sqrt(m)
    return np.maximum(stats.t.ppf(1 - FALSE_PASS / tests, m - 1) * error, MIN_FLOOR)


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
    """Drop-one effects on K candidates, measured in the served order and in each neutral swap's."""

    positions: np.ndarray  # [W] ablated positions in the history (served order)
    orders: np.ndarray  # [1 + S, W, K] score(order) - score(order without h): served order first
    swaps: np.ndarray  # [S, K] score(H) - score(H with two shown items swapped)
    pairs: tuple[tuple[int, int], ...] = ()  # [S] the swapped positions

    @property
    def effect(self) -> np.ndarray:
        """[W, K] the drop-one effect averaged over the orders."""
        return self.orders.mean(axis=0)

    @property
    def threshold(self) -> np.ndarray:
        """[W, K] what an effect must exceed to be an influence: the one-sided t critical value at
        ``FALSE_PASS`` / W times the standard error over the orders (at least ``MIN_FLOOR``); inf
        without a swap (one order, no spread to measure)."""
        _, w, k = self.orders.shape
        return order_threshold(self.orders, w) if w else np.full((w, k), np.inf)

    @property
    def floor(self) -> np.ndarray:
        """[K] the largest |change| under the neutral swaps (at least ``MIN_FLOOR``); inf without swaps.
        The group test's bar (``explanation_evidence.group_influence``)."""
        if len(self.swaps) == 0:
            return np.full(self.orders.shape[2], np.inf)
        return np.maximum(np.abs(self.swaps).max(axis=0), MIN_FLOOR)

    def values(self, column: int, n_history: int) -> np.ndarray:
        """[H] effect of each history item on candidate ``column``; NaN where not ablated."""
        return self._by_position(self.effect[:, column], n_history)

    def thresholds(self, column: int, n_history: int) -> np.ndarray:
        """[H] each history item's threshold for candidate ``column``; NaN where not ablated."""
        return self._by_position(self.threshold[:, column], n_history)

    def _by_position(self, column_values: np.ndarray, n_history: int) -> np.ndarray:
        out = np.full(n_history, np.nan)
        out[self.positions] = column_values
        return out

    def influencers(self, column: int, ids: Sequence[str], k: int = CARD_INFLUENCERS) -> tuple[tuple[str, float], ...]:
        """Up to ``k`` (history id, effect) that raised candidate ``column`` beyond their thresholds,
        strongest first; ``ids`` are the whole history's ids."""
        n = len(ids)
        raised, _, _ = split_measured(self.values(column, n), self.thresholds(column, n))
        return tuple((ids[p], value) for p, value in raised[:k])


def threshold_text(thresholds: Mapping[str, float] | None, item_id: str) -> str:
    """An item's threshold as the influence tables print it ("" when it has none: a group row, whose
    threshold is in its title, or nothing measured)."""
    value = (thresholds or {}).get(item_id)
    return f"{value:.4f}" if value is not None else ""


def swap_pairs(n_history: int, window: int, neutral: Callable[[int, int], bool], limit: int = NEUTRAL_SWAPS):
    """Pairs of shown positions to swap (the other orders): adjacent ones first (most recent first),
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


def moved(pair: tuple[int, int], position: int) -> int:
    """Where the item at ``position`` sits after the items at ``pair`` trade places."""
    i, j = pair
    return j if position == i else i if position == j else position


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
    """Drop-one ablation of the last ``window`` items in the served order and in each order the
    neutral ``swaps`` give, in one ``score`` call (1 + W + S + S*W histories).

    Args:
        score: histories -> per history, [K] scores of one fixed candidate list (the served prompt).
        history: [H] catalogue rows, oldest first.
        window: items ablated, the most recent ones (None: all).
        swaps: position pairs whose exchange leaves the prompt's meaning unchanged.
        base: [K] scores of the whole history when already computed (saves one prompt).
    """
    history = np.asarray(history, dtype=np.int64)
    if window is not None and window < 0:
        raise ValueError(f"window must be >= 0 or None, got {window}")
    start = 0 if window is None else max(0, len(history) - window)
    positions = np.arange(start, len(history), dtype=np.int64)
    orders = [swapped(history, pair) for pair in swaps]
    # an item leaves each order from wherever the swap put it; the next-older one enters, as served
    drops = [np.delete(history, p) for p in positions] + [
        np.delete(order, moved(pair, p)) for order, pair in zip(orders, swaps) for p in positions
    ]
    variants = [*orders, *drops]
    if base is None:
        scored = score([history, *variants])
        base, scored = scored[0], scored[1:]
    else:
        scored = score(variants) if variants else []
    base = np.asarray(base, dtype=np.float64)
    scored = np.array(scored, dtype=np.float64).reshape(len(variants), len(base))
    totals = np.concatenate([base[None, :], scored[: len(orders)]])  # [1 + S, K] each order's own score
    dropped = scored[len(orders) :].reshape(len(totals), len(positions), len(base))  # [1 + S, W, K]
    pairs = tuple((int(i), int(j)) for i, j in swaps)
    return InfluenceTable(positions, totals[:, None, :] - dropped, base[None, :] - totals[1:], pairs)


def split_measured(
    values: np.ndarray, threshold: float | np.ndarray
) -> tuple[list[tuple[int, float]], list[tuple[int, float]], list[tuple[int, float]]]:
    """(position, effect) lists: raised the score beyond its ``threshold`` (one for all, or [H] per
    item, NaN: none measured; strongest first), lowered it beyond it (strongest first), and no measurable effect (most
    recent first, never ranked)."""
    values = np.asarray(values, dtype=np.float64)
    bar = np.broadcast_to(np.asarray(threshold, dtype=np.float64), values.shape)
    bar = np.where(np.isnan(bar), np.inf, bar)  # no threshold measured: nothing passes it
    measured = [int(i) for i in np.flatnonzero(np.isfinite(values))]
    raised = sorted((i for i in measured if values[i] > bar[i]), key=lambda i: (-values[i], -i))
    lowered = sorted((i for i in measured if values[i] < -bar[i]), key=lambda i: (values[i], -i))
    quiet = sorted((i for i in measured if abs(values[i]) <= bar[i]), reverse=True)
    return ([(i, float(values[i])) for i in raised], [(i, float(values[i])) for i in lowered],
            [(i, float(values[i])) for i in quiet])  # fmt: skip


@dataclass(frozen=True)
class PairTest:
    """Does the second listed film still lower the score once the first is gone? ``score(H - a) - score(H - a
    - b)`` in the served order and in each neutral swap's; a sentence naming both claims the pair, so the
    second is named only when this mean passes ``order_threshold`` (docs/results.md, "The second film only
    when it adds")."""

    effect: float
    threshold: float
    orders: int

    @property
    def adds(self) -> bool:
        return self.effect > self.threshold

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"effect": self.effect, "threshold": self.threshold, "orders": self.orders, "adds": self.adds}


def pair_histories(history: np.ndarray, pairs: Sequence[tuple[int, int]], first: int, second: int) -> list[np.ndarray]:
    """2 (1 + S) histories for ``pair_test``: each order (served, then each swap of ``pairs``) without the
    ``first`` position's film, then each without both films."""
    history = np.asarray(history, dtype=np.int64)
    orders = [(history, first, second)] + [(swapped(history, p), moved(p, first), moved(p, second)) for p in pairs]
    return [np.delete(o, a) for o, a, _ in orders] + [np.delete(o, [a, b]) for o, a, b in orders]


def pair_test(scores: Sequence[float]) -> PairTest:
    """``PairTest`` from the scores of ``pair_histories`` (without the first, then without both, per order)."""
    scores = np.asarray(scores, dtype=np.float64)
    half = len(scores) // 2
    adds = scores[:half] - scores[half:]  # [1 + S]
    return PairTest(float(adds.mean()), float(order_threshold(adds)), half)


def pair_listed(listed: Sequence[T], test: PairTest | None) -> list[T]:
    """What a card and its sentence name of the two strongest influences (ids, positions or (id, effect)): the
    second only when ``test`` says it adds."""
    return list(listed[:1] if test is not None and not test.adds else listed)


def measure_pair(
    score: Callable[[list[np.ndarray]], list[float]],
    history: np.ndarray,
    table: InfluenceTable,
    first: int,
    second: int,
) -> PairTest:
    """``pair_test`` of the films at history positions ``first`` and ``second`` (the two strongest influences),
    in the orders ``table`` was measured in; ``score`` maps histories to the explained candidate's score."""
    return pair_test(score(pair_histories(history, table.pairs, first, second)))


def listed_influencers(
    score: ScoreHistories, history: np.ndarray, table: InfluenceTable, ids: Sequence[str]
) -> list[tuple[tuple[str, float], ...]]:
    """Per candidate column of ``table``, the influencers a card lists under the pair test: the strongest
    two, the second only when ``pair_test`` says it adds; every column's pair histories in one ``score`` call
    (``score`` maps histories to [K] scores, as ``measure_influence``'s)."""
    n = len(ids)
    columns = table.orders.shape[2]
    firsts = [split_measured(table.values(c, n), table.thresholds(c, n))[0][:CARD_INFLUENCERS] for c in range(columns)]
    tested = [c for c in range(columns) if len(firsts[c]) == 2]
    made = [pair_histories(history, table.pairs, firsts[c][0][0], firsts[c][1][0]) for c in tested]
    scored = score([h for histories in made for h in histories]) if made else []
    listed, at = [tuple((ids[p], value) for p, value in first) for first in firsts], 0  # as ``table.influencers``
    for c, histories in zip(tested, made):
        test = pair_test([float(s[c]) for s in scored[at : at + len(histories)]])
        listed[c], at = tuple(pair_listed(listed[c], test)), at + len(histories)
    return listed
