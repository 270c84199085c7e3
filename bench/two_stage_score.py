"""A candidate influence score, measured by ``bench.served_rule`` and not served: a film's two-stage
score among its candidates (issue 29).

    score = TwoStageScore(recommender, history_rows, candidate_rows)
    score([history, np.delete(history, p), swapped])   # [V, K] two-stage scores, the prompts in one batch each
    score.from_llm(llm)                                 # [K] the same from already computed LLM scores

The served ranking orders the LLM's candidates by ``ranking.blend``: ``llm_weight * z(LLM) +
(1 - llm_weight) * z(retrieval)`` over the candidates. Here a history that lacks ``k`` of the full
history's films is scored as the person's history without them: the retrieval half sees every other
film, the prompt shows the other shown films and ``k`` titles fewer, so no older film takes a freed
place. On the 40 validation users it was chosen on (``bench.influence_rules --ablation empty``) it
found an influence for 70.0% of users against 57.5% for the served rule (the LLM's log-probability,
the next-older film let in); on 97 fresh validation users 55.7% against 56.7%, so it is not served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.explain import with_max_history
from recommender.ranking import blend


class TwoStageScore:
    """histories -> [V, K] two-stage scores of one fixed candidate list, for sub-histories of one history.

    Args:
        recommender: a ``Recommender`` (its ``prompt``, ``retriever``, ``config`` and what
            ``bench.explain.with_max_history`` copies: dataset and scorer).
        history_rows: [H] the full history, oldest first; the histories scored lack some of its films
            (their count sets the prompt's size) or reorder them.
        candidate_rows: [K] the candidates, in the retriever's order.
    """

    def __init__(self, recommender: Any, history_rows: np.ndarray, candidate_rows: np.ndarray):
        self.recommender = recommender
        self.history = np.asarray(history_rows, dtype=np.int64)
        self.rows = np.asarray(candidate_rows, dtype=np.int64)

    def __call__(self, histories: Sequence[np.ndarray]) -> list[np.ndarray]:
        histories = [np.asarray(h, dtype=np.int64) for h in histories]
        llm: list[np.ndarray | None] = [None] * len(histories)
        for titles, members in self._by_prompt_size(histories).items():
            for i, scores in zip(members, self._llm([histories[i] for i in members], titles)):
                llm[i] = scores
        retrieval = self._retrieval(histories)
        weight = self.recommender.config.llm_weight
        return [blend(scores, row, weight) for scores, row in zip(llm, retrieval)]

    def from_llm(self, llm: np.ndarray) -> np.ndarray:
        """[K] the full history's two-stage scores from its [K] LLM scores (saves one prompt)."""
        return blend(np.asarray(llm, dtype=np.float64), self._retrieval([self.history])[0],
                     self.recommender.config.llm_weight)  # fmt: skip

    def _by_prompt_size(self, histories: list[np.ndarray]) -> dict[int | None, list[int]]:
        """History titles each prompt shows -> the histories scored with it: ``k`` removed films, ``k`` fewer."""
        shown = self.recommender.prompt.max_history
        sizes: dict[int | None, list[int]] = {}
        for i, history in enumerate(histories):
            removed = max(0, len(self.history) - len(history))
            sizes.setdefault(None if shown is None else max(0, shown - removed), []).append(i)
        return sizes

    def _llm(self, histories: list[np.ndarray], titles: int | None) -> list[np.ndarray]:
        pipeline = with_max_history(self.recommender, titles)  # the same scorer and evidence, a shorter prompt
        return pipeline.llm_scores(histories, [self.rows] * len(histories))

    def _retrieval(self, histories: list[np.ndarray]) -> np.ndarray:
        """[V, K] the first stage's scores of the candidates for each history."""
        return np.asarray(self.recommender.retriever.score_batch(list(histories)), dtype=np.float64)[:, self.rows]
