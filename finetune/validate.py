"""Two-stage validation: the retriever's top-N reranked by the LLM, the rest in retrieval order,
full ranking with the history masked; optionally a blend of LLM and retrieval scores.

The prompts do not depend on the model, so they are built once (``build_eval_set``) and
every evaluation only runs the scorer. Ranking math is numpy; the model hop is a
``protocols.Scorer`` (``recommender.llm.scoring.LLMScorer`` in training).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recommender.data import Catalog
from recommender.data.split import EvalCase
from recommender.evaluation.metrics import hit_rate, ndcg, target_rank, top_k
from recommender.llm.prompting import RankPrompt
from recommender.llm.ranking_prompts import RankingPrompt, RankingRequest
from recommender.ranking import blend, log_softmax

LLM_WEIGHTS = tuple(round(a, 2) for a in np.linspace(0.0, 1.0, 11))  # LLM weight in the blend; 0 = retriever order


@dataclass(frozen=True)
class EvalItem:
    """One validation user: top-N candidates in retrieval order and the prompt ranking them."""

    user: str
    candidates: np.ndarray  # [K] catalogue rows, retrieval order
    retrieval: np.ndarray  # [K] retrieval scores of the candidates
    retrieval_rank: int  # 1-based full-ranking rank of the target by retrieval (history masked)
    prompt: RankPrompt
    order: np.ndarray  # [K] prompt position of each candidate (identity unless shuffled)


def build_eval_set(
    catalog: Catalog,
    cases: Sequence[EvalCase],
    retrieval_scores: Callable[[np.ndarray], np.ndarray],
    evidence: Callable[[np.ndarray, np.ndarray], dict],
    prompt: RankingPrompt,
    n_candidates: int,
    seed: int = 0,
) -> list[EvalItem]:
    """Prompts for ``cases`` (validation users), rendered by the serving prompt object.

    Args:
        retrieval_scores: history rows -> [N] stage-one scores (the candidates are its top-N).
        evidence: (history rows, candidate rows) -> the evidence arrays the prompt shows.
    """
    rng = np.random.default_rng(seed)
    items = []
    for case in cases:
        scores = retrieval_scores(case.history)
        candidates = top_k(scores, n_candidates, mask=case.history)
        rank = target_rank(scores, case.target, mask=case.history)
        order = rng.permutation(len(candidates)) if prompt.shuffle else np.arange(len(candidates))
        shown = candidates[order]
        extra = evidence(case.history, shown) if prompt.evidence else {}
        rendered = prompt.render(
            RankingRequest([catalog.items[int(h)] for h in case.history], [catalog.items[int(c)] for c in shown], extra)
        )
        position = np.argsort(order)  # candidate i sits at prompt position position[i]
        items.append(EvalItem(case.user, candidates, scores[candidates], rank, rendered, position))
    return items


def two_stage_ranks(items: Sequence[EvalItem], llm_logits: Sequence[np.ndarray], llm_weight: float) -> np.ndarray:
    """[B] full-ranking target ranks: candidates ordered by w * z(LLM log-prob) + (1 - w)
    * z(retrieval score), ties kept in retrieval order; items outside the top-N keep their rank."""
    ranks = []
    for item, logits in zip(items, llm_logits):
        k = len(item.candidates)
        if item.retrieval_rank > k:
            ranks.append(item.retrieval_rank)
            continue
        logits = np.asarray(logits, dtype=np.float64)[item.order]  # [K] back in retrieval order
        combined = blend(log_softmax(logits), item.retrieval, llm_weight)
        ranks.append(target_rank(combined, item.retrieval_rank - 1))  # the target's index among the candidates
    return np.asarray(ranks)


def report(ranks: np.ndarray) -> dict[str, float]:
    return {"NDCG@10": ndcg(ranks, 10), "HR@10": hit_rate(ranks, 10)}


def evaluate_logits(
    items: Sequence[EvalItem], llm_logits: Sequence[np.ndarray], llm_weight: float | None = None
) -> dict:
    """Metrics of the pure LLM rerank, the retriever order and the best blend (or ``llm_weight``)."""
    pure = report(two_stage_ranks(items, llm_logits, 1.0))
    retrieval = report(np.asarray([item.retrieval_rank for item in items]))
    if llm_weight is None:
        scored = [(report(two_stage_ranks(items, llm_logits, w))["NDCG@10"], -w, w) for w in LLM_WEIGHTS]
        llm_weight = max(scored)[2]  # ties prefer the smaller LLM weight
    blended = report(two_stage_ranks(items, llm_logits, llm_weight))
    return {
        "NDCG@10": pure["NDCG@10"],
        "HR@10": pure["HR@10"],
        "blend_NDCG@10": blended["NDCG@10"],
        "blend_HR@10": blended["HR@10"],
        "llm_weight": float(llm_weight),
        "retriever_NDCG@10": retrieval["NDCG@10"],
        "retriever_HR@10": retrieval["HR@10"],
        "users": len(items),
    }
