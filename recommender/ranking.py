"""Ranking math, in one place: standardising, log-softmax, the LLM/retrieval blend, the
two-stage merge, stable orders and MMR. Pure numpy: no models.

Stage one (retrieval) orders the whole catalogue; stage two (the LLM) reorders its top N.
Scores from the two stages live on different scales, so they are standardised within the
top N before blending.
"""

from __future__ import annotations

import numpy as np


def standardise(scores: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance copy of [N] scores, or of each row of [B, N] scores (z-scores
    along the last axis); constant rows give zeros."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    mean = scores.mean(axis=-1, keepdims=True)
    spread = scores.std(axis=-1, keepdims=True)
    return np.where(spread > 1e-12, (scores - mean) / np.maximum(spread, 1e-12), 0.0)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """log-softmax along the last axis of [..., N] scores (float64)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[-1] == 0:
        return scores
    return scores - np.logaddexp.reduce(scores, axis=-1, keepdims=True)


def blend(llm_scores: np.ndarray, retrieval_scores: np.ndarray, llm_weight: float) -> np.ndarray:
    """``llm_weight * z(llm) + (1 - llm_weight) * z(retrieval)`` over the same [N] candidates.

    ``llm_weight=1`` is the LLM alone, ``0`` keeps the retriever's order.
    """
    if not 0.0 <= llm_weight <= 1.0:
        raise ValueError(f"llm_weight must be within [0, 1], got {llm_weight}.")
    return llm_weight * standardise(llm_scores) + (1.0 - llm_weight) * standardise(retrieval_scores)


def stable_order(scores: np.ndarray) -> np.ndarray:
    """Indices of [N] ``scores`` from best to worst; ties keep their input order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def rerank_block(candidate_scores: np.ndarray, llm_scores: np.ndarray, llm_weight: float) -> np.ndarray:
    """[N] final scores of retrieval candidates (best first) whose first ``len(llm_scores)`` were
    reranked: the blended block first, then the rest in retrieval order, just below it."""
    candidate_scores = np.asarray(candidate_scores, dtype=np.float64)
    top = len(llm_scores)
    block = blend(llm_scores, candidate_scores[:top], llm_weight)
    rest = candidate_scores[top:]
    if len(rest):
        rest = rest - rest.max() + block.min() - 1.0
    return np.concatenate([block, rest])


def two_stage_full_scores(
    retrieval_scores: np.ndarray, reranked_rows: np.ndarray, reranked_scores: np.ndarray
) -> np.ndarray:
    """[N] catalogue scores whose order is: the reranked rows by their new scores, then
    every other row by its retrieval score. Feed it to ``metrics.target_rank``."""
    full = np.asarray(retrieval_scores, dtype=np.float64).copy()
    if len(reranked_rows) == 0:
        return full
    finite = full[np.isfinite(full)]
    ceiling = finite.max() if finite.size else 0.0
    # Shift the reranked block above everything else while keeping its internal order.
    shifted = standardise(reranked_scores) if len(reranked_rows) > 1 else np.zeros(1)
    full[np.asarray(reranked_rows, dtype=np.int64)] = ceiling + 1.0 + shifted - shifted.min()
    return full


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, diversity: float) -> np.ndarray:
    """Maximal marginal relevance: pick ``k`` of [N] candidates trading relevance for novelty.

    Args:
        relevance: [N] scores, higher is better (standardised inside).
        vectors: [N, D] item embeddings (normalised inside).
        diversity: 0 keeps the relevance order, 1 picks by novelty alone after the first.

    Returns:
        [min(k, N)] positions into the candidate list, in pick order.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be within [0, 1], got {diversity}.")
    n = len(relevance)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if diversity == 0.0:
        return stable_order(relevance)[:k]
    relevance = standardise(relevance)
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = units @ units.T  # [N, N]
    chosen = [int(stable_order(relevance)[0])]
    max_similarity = similarity[chosen[0]].copy()  # [N] closeness to the chosen set
    available = np.ones(n, dtype=bool)
    available[chosen[0]] = False
    while len(chosen) < k:
        gain = (1.0 - diversity) * relevance - diversity * max_similarity
        gain[~available] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        available[pick] = False
        max_similarity = np.maximum(max_similarity, similarity[pick])
    return np.array(chosen, dtype=np.int64)
