"""Two-stage validation: the retriever's top-N reranked by the LLM, the rest in retrieval order,
full ranking with the history masked; optionally a blend of LLM and retrieval scores.

The prompts do not depend on the model, so they are built once (``build_eval_set``) and
every evaluation only runs the scorer. Ranking math is numpy; the model hop is a
``protocols.Scorer`` (``recommender.llm.scoring.LLMScorer`` in training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.data import Catalog
from recommender.data.split import EvalCase
from recommender.evaluation.metrics import hit_rate, ndcg, target_rank, top_k
from recommender.llm.evidence import PrefixScorer, render_rank_evidence
from recommender.llm.prompting import render_rank

ALPHAS = tuple(round(a, 2) for a in np.linspace(0.0, 1.0, 11))  # LLM weight in the blend; 0 = retriever order


@dataclass(frozen=True)
class EvalItem:
    """One validation user: top-N candidates in retrieval order and the prompt ranking them."""

    user: str
    candidates: np.ndarray  # [K] catalogue rows, retrieval order
    retrieval: np.ndarray  # [K] retrieval scores of the candidates
    retrieval_rank: int  # 1-based full-ranking rank of the target by retrieval (history masked)
    messages: list[dict[str, str]]
    order: np.ndarray  # [K] prompt position of each candidate (identity unless shuffled)


def build_eval_set(
    catalog: Catalog,
    cases: Sequence[EvalCase],
    scorer: PrefixScorer,
    n_candidates: int,
    max_history: int,
    template: str = "rank_evidence",
    seed: int = 0,
) -> list[EvalItem]:
    """Prompts for ``cases`` (validation users), rendered exactly as at serving time."""
    rng = np.random.default_rng(seed)
    items = []
    for case in cases:
        scores, sims = scorer.scores(case.history)  # serving view: the history is the whole train sequence
        candidates = top_k(scores, n_candidates, mask=case.history)
        rank = target_rank(scores, case.target, mask=case.history)
        if template == "rank_evidence":
            order = np.arange(len(candidates))
            prompt = render_rank_evidence(catalog, case.history, candidates, sims, max_history)
        else:  # the serving "rank" template with shuffled candidates
            order = rng.permutation(len(candidates))
            shown = [catalog.items[int(candidates[i])] for i in order]
            prompt = render_rank([catalog.items[int(h)] for h in case.history], shown, max_history=max_history)
            order = np.argsort(order)  # candidate i sits at prompt position order[i]
        items.append(EvalItem(case.user, candidates, scores[candidates], rank, prompt.messages, order))
    return items


def _z(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return (values - values.mean()) / std if std > 1e-12 else np.zeros_like(values)


def two_stage_ranks(items: Sequence[EvalItem], llm_logits: Sequence[np.ndarray], alpha: float) -> np.ndarray:
    """[B] full-ranking target ranks: candidates ordered by alpha * z(LLM log-prob) + (1 - alpha)
    * z(retrieval score), ties kept in retrieval order; items outside the top-N keep their rank."""
    ranks = []
    for item, logits in zip(items, llm_logits):
        k = len(item.candidates)
        if item.retrieval_rank > k:
            ranks.append(item.retrieval_rank)
            continue
        logits = np.asarray(logits, dtype=np.float64)[item.order]  # [K] back in retrieval order
        logprob = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
        combined = alpha * _z(logprob) + (1.0 - alpha) * _z(np.asarray(item.retrieval, dtype=np.float64))
        ranks.append(target_rank(combined, item.retrieval_rank - 1))  # the target's index among the candidates
    return np.asarray(ranks)


def report(ranks: np.ndarray) -> dict[str, float]:
    return {"NDCG@10": ndcg(ranks, 10), "HR@10": hit_rate(ranks, 10)}


def evaluate_logits(items: Sequence[EvalItem], llm_logits: Sequence[np.ndarray], alpha: float | None = None) -> dict:
    """Metrics of the pure LLM rerank, the retriever order and the best blend (or ``alpha`` when given)."""
    pure = report(two_stage_ranks(items, llm_logits, 1.0))
    retrieval = report(np.asarray([item.retrieval_rank for item in items]))
    if alpha is None:
        scored = [(report(two_stage_ranks(items, llm_logits, a))["NDCG@10"], -a, a) for a in ALPHAS]
        alpha = max(scored)[2]  # ties prefer the smaller LLM weight
    blend = report(two_stage_ranks(items, llm_logits, alpha))
    return {
        "NDCG@10": pure["NDCG@10"],
        "HR@10": pure["HR@10"],
        "blend_NDCG@10": blend["NDCG@10"],
        "blend_HR@10": blend["HR@10"],
        "blend_alpha": float(alpha),
        "retriever_NDCG@10": retrieval["NDCG@10"],
        "retriever_HR@10": retrieval["HR@10"],
        "users": len(items),
    }
