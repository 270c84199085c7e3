"""Genre calibration (Steck, "Calibrated Recommendations", RecSys 2018). Pure numpy: no models.

A list is calibrated when its genre mix q matches the mix p of the person's history. Each film
spreads one unit of weight evenly over its genres (a comedy-drama is half comedy, half drama), so
p(g) = mean over history films of w(g | film), q(g) likewise over the list. Miscalibration is
KL(p || q~) with q~ = (1 - a) q + a p, a = 0.01: the small share of p keeps the divergence finite
when the list misses a genre the history has.

``calibrate`` is Steck's greedy re-ranking: it builds the list one pick at a time, each time adding
the candidate that maximises ``(1 - lam) * sum of relevance - lam * KL(p || q~(list))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.data import Catalog
from recommender.ranking import stable_order, standardise

ALPHA = 0.01  # Steck's smoothing of q toward p


def genre_matrix(genres: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """[N, G] genre weights of N items: 1 / (number of genres) on each of an item's genres in
    ``vocabulary`` order, a zero row for an item without one."""
    column = {genre: position for position, genre in enumerate(vocabulary)}
    matrix = np.zeros((len(genres), len(vocabulary)))
    for row, item_genres in enumerate(genres):
        known = [column[genre] for genre in dict.fromkeys(item_genres) if genre in column]
        if known:
            matrix[row, known] = 1.0 / len(known)
    return matrix


def genre_distribution(weights: np.ndarray) -> np.ndarray:
    """[G] genre mix of a set of items from their [M, G] ``genre_matrix`` rows: the summed
    weights, normalised to sum 1 (zeros for no items or items without genres)."""
    mass = np.asarray(weights, dtype=np.float64).reshape(-1, np.shape(weights)[-1]).sum(axis=0)
    total = mass.sum()
    return mass / total if total > 0 else mass


def miscalibration(p: np.ndarray, q: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """KL(p || (1 - alpha) q + alpha p) over the last axis; genres absent from p add nothing.

    Args:
        p: [G] the history's genre mix.
        q: [G] or [B, G] genre mixes of one or B lists.

    Returns:
        A scalar array, or [B] divergences; 0 where p has no mass (no history genres).
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be within (0, 1], got {alpha}.")
    p = np.asarray(p, dtype=np.float64)
    smoothed = (1.0 - alpha) * np.asarray(q, dtype=np.float64) + alpha * p
    present = p > 0
    terms = np.where(present, p * (np.log(np.where(present, p, 1.0)) - np.log(np.where(present, smoothed, 1.0))), 0.0)
    return terms.sum(axis=-1)


def user_miscalibration(
    histories: Sequence[np.ndarray], top_lists: Sequence[Sequence[int]], genres: np.ndarray, k: int = 10
) -> np.ndarray:
    """[U] KL(p || q~) between the genre mix of each history and of its top-k list; ``genres`` is
    the catalogue's [N, G] ``genre_matrix``."""
    out = np.empty(len(histories))
    for u, (history, items) in enumerate(zip(histories, top_lists)):
        p = genre_distribution(genres[np.asarray(history, dtype=np.int64)])
        q = genre_distribution(genres[np.asarray(list(items)[:k], dtype=np.int64)])
        out[u] = float(miscalibration(p, q))
    return out


def calibrate(
    relevance: np.ndarray, genres: np.ndarray, history_mix: np.ndarray, k: int, lam: float, alpha: float = ALPHA
) -> np.ndarray:
    """Steck's greedy calibrated re-ranking of N candidates into a list of ``k``.

    Each step adds the candidate maximising ``(1 - lam) * z(relevance) - lam * KL(p || q~)`` of the
    list with it (the relevance already in the list is the same for every candidate, so it drops
    out). Relevance is standardised over the candidates, as in ``ranking.mmr``, so one ``lam`` means
    the same for any retriever's score scale.

    Args:
        relevance: [N] scores, higher is better.
        genres: [N, G] the candidates' ``genre_matrix`` rows.
        history_mix: [G] p, the history's ``genre_distribution`` (all zeros: no calibration).
        lam: 0..1; 0 returns the relevance order unchanged, 1 calibrates alone.

    Returns:
        [min(k, N)] positions into the candidate list, in pick order.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"calibration must be within [0, 1], got {lam}.")
    relevance = np.asarray(relevance, dtype=np.float64)
    n = len(relevance)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if lam == 0.0 or not np.any(np.asarray(history_mix) > 0):
        return stable_order(relevance)[:k]
    genres = np.asarray(genres, dtype=np.float64)  # [N, G]
    z = standardise(relevance)
    mass = np.zeros(genres.shape[1])  # [G] genre weight of the list so far
    available = np.ones(n, dtype=bool)
    chosen: list[int] = []
    for _ in range(k):
        with_each = mass[None, :] + genres  # [N, G] the list's mass with each candidate added
        totals = with_each.sum(axis=1, keepdims=True)
        mixes = np.divide(with_each, totals, out=np.zeros_like(with_each), where=totals > 0)
        gain = (1.0 - lam) * z - lam * miscalibration(history_mix, mixes, alpha)  # [N]
        gain[~available] = -np.inf
        pick = int(np.argmax(gain))  # ties: the earlier candidate
        chosen.append(pick)
        available[pick] = False
        mass += genres[pick]
    return np.array(chosen, dtype=np.int64)


def calibrate_catalog(
    catalog: Catalog, history_rows: np.ndarray, candidate_rows: np.ndarray, relevance: np.ndarray, k: int, lam: float
) -> np.ndarray:
    """``calibrate`` for catalogue rows: p from the history films' genres, candidates' genres from
    the catalogue (only the rows involved are looked up, so it costs O(history + candidates))."""
    vocabulary = catalog.genre_vocabulary
    history = genre_matrix([catalog.items[int(row)].genres for row in history_rows], vocabulary)
    genres = genre_matrix([catalog.items[int(row)].genres for row in candidate_rows], vocabulary)
    return calibrate(relevance, genres, genre_distribution(history), k, lam)
