"""The ``Recommender`` facade: retriever top-N, the LLM reranks them, the rest keep
retrieval order.

    from recommender.pipeline import Recommender
    rec = Recommender.from_pretrained()                 # ml-100k, SmolLM2 + shipped LoRA adapter
    rec.recommend(user_id="1", k=10)
    rec.recommend(history=["Toy Story", "Fargo"], query="something funny", k=5)

Rooms beside it: ``histories`` (users' histories, ids or titles to items), ``ratings`` (the rating
prompt: ``rec.ratings``), ``explain`` (influences and explanations: ``explain.Explainer``) and
``pretrained`` (adapter, tuned settings and first stage that ``from_pretrained`` assembles).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from recommender.calibration import calibrate_catalog
from recommender.data import Dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.explain import Explainer, Explanation, evidence_sources
from recommender.histories import Histories, shared_genre_reasons
from recommender.influence import InfluenceTable, listed_influencers, measure_influence, neutral_swaps
from recommender.llm.ranking_prompts import RankingRequest, ranking_prompt, score_requests
from recommender.llm.rating_prompt import RatingPrompt
from recommender.pipeline_config import MAX_LLM_CANDIDATES, PipelineConfig, tuned_settings
from recommender.pretrained import (
    base_model_writer,
    cold_content,
    first_stage,
    load_retriever,
    load_scorer,
    resolve_adapter,
    shipped_adapter,
)
from recommender.protocols import Candidates, Filters, Recommendation, RecommendationList
from recommender.ranking import mmr, rerank_block, stable_order, two_stage_full_scores
from recommender.ratings import NO_SCORER, Ratings

SCORE_MODES = ("rank", "pointwise")


class Recommender:
    """Two-stage recommender over a dataset.

    Args:
        dataset: catalogue + interactions; user histories come from its interactions.
        retriever: stage one (``HybridRetriever`` by default; any ``BaseRetriever``).
        scorer: stage two, an ``LLMScorer``; None serves retrieval only.
        config: how the stages combine.
    """

    def __init__(self, dataset: Dataset, retriever, scorer=None, config: PipelineConfig = PipelineConfig()):
        self.dataset = dataset
        self.catalog = dataset.catalog
        self.retriever = retriever
        self.scorer = scorer
        self.config = config
        self.split = LeaveOneOutSplit(dataset.interactions)
        self.histories = Histories(dataset, self.split)
        self.prompt = ranking_prompt(config.template, config.max_history)  # renders and reads every LLM call
        self._evidence = None  # built on first use by prompts that show evidence
        self._writer = None  # the base model that writes free text, loaded on first use (``text_writer``)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(
        cls,
        dataset: str | Dataset = "ml-100k",
        model: str | Path | None = None,
        adapter: str | Path | None = "default",
        quantize: str = "auto",
        device: str | None = None,
        config: PipelineConfig | None = None,
        retrieval_only: bool = False,
        sequential: bool | None = None,
        dtype: str = "auto",
        cold_items: bool = True,
    ) -> Recommender:
        """Load the data, the hybrid retriever and the LLM (with the shipped adapter by default).

        ``adapter="default"`` uses the adapter shipped for ml-100k when the default base model and
        ml-100k are in use, and no adapter otherwise; ``adapter=None`` or ``"none"`` turns it off.
        ``sequential`` puts the sequential model (trained once on the train split, then cached)
        into the hybrid first stage; None: as the adapter was trained (its metadata's
        ``first_stage``), and on when there is no adapter. ``dtype``: the scoring precision
        (``llm.loading.load_model``; "auto" picks what the hardware is fast at). ``cold_items``:
        films without a training event are scored through their content neighbours
        (``retrieval.cold.ColdItemBridge`` over sentence + base-LLM vectors, see ``cold_content``).
        """
        from recommender.data.loaders import load_dataset

        data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
        adapter_path = None if retrieval_only else resolve_adapter(adapter, data, model)
        retriever = load_retriever(
            data, adapter_path, model, device, retrieval_only=retrieval_only, sequential=sequential,
            cold_items=cold_items,
        )  # fmt: skip
        if retrieval_only:
            return cls(data, retriever, None, config or PipelineConfig())
        scorer = load_scorer(model, adapter_path, quantize, device, dtype)
        return cls(data, retriever, scorer, config or PipelineConfig(**tuned_settings(adapter_path)))

    # ------------------------------------------------------------------ histories

    def user_history(self, user_id: str | int) -> list[str]:
        """All known item ids of a dataset user, oldest first (``Histories.user``)."""
        return self.histories.user(user_id)

    def resolve_items(self, references: Sequence[str | int]) -> tuple[list[str], list[str]]:
        """Item ids for references given as ids or exact titles ("Fargo", "Fargo (1996)").

        Returns the ids found and the references that matched nothing (``Histories.resolve``).
        """
        return self.histories.resolve(references)

    def _rows(self, ids: Sequence[str]) -> np.ndarray:
        return self.histories.rows(ids)

    # ------------------------------------------------------------------ recommending

    def recommend(
        self,
        user_id: str | int | None = None,
        history: Sequence[str | int] | None = None,
        k: int = 10,
        query: str | None = None,
        filters: Filters | None = None,
        diversity: float = 0.0,
        influence_window: int = 0,
        calibration: float = 0.0,
    ) -> RecommendationList:
        """Top-``k`` items for a dataset user or an explicit history (ids or titles, oldest first).

        Args:
            query: free text blended into the retrieval profile ("a funny space adventure").
            influence_window: with W > 0, each LLM-reranked item gets the signed influence of the
                last W history items on its LLM score (drop-one ablation: W more prompts, one batch).
            filters: hard constraints applied before top-K; the user's seen items are excluded by default.
            diversity: 0..1, re-ranks the final list by maximal marginal relevance over item embeddings.
            calibration: 0..1, re-ranks the final list toward the genre mix of the history (Steck's
                calibrated re-ranking, ``recommender.calibration``); 0 leaves it unchanged. Not with diversity.
        """
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"diversity must be within [0, 1], got {diversity}.")
        if not 0.0 <= calibration <= 1.0 or (calibration > 0 and diversity > 0):
            raise ValueError(f"calibration must be within [0, 1] and not combined with diversity, got {calibration}.")
        ids, unknown = self.histories.of(user_id, history)
        pool_size = max(k, self.config.llm_candidates) * (2 if diversity > 0 or calibration > 0 else 1)
        candidates = self.retriever.retrieve(ids, pool_size, query=query, filters=filters)
        unknown += candidates.unknown_history
        if len(candidates) == 0:
            return RecommendationList([], candidates.reason or "no item passes the filters", unknown)
        order, final, llm = self._rerank(ids, candidates)
        influences = self._card_influences(ids, candidates.items, llm, influence_window)
        if diversity > 0:
            vectors = self._item_vectors()
            if vectors is not None:
                picked = mmr(final[order], vectors[candidates.items[order]], k, diversity)
                order = order[picked]
        if calibration > 0:
            rows = candidates.items[order]
            order = order[calibrate_catalog(self.catalog, self._rows(ids), rows, final[order], k, calibration)]
        version = self.prompt.version if self.scorer is not None else "retrieval-only"
        history_items = self.histories.items(ids)
        out = []
        for position in order[:k]:
            item = self.catalog.items[int(candidates.items[position])]
            out.append(
                Recommendation(
                    item_id=item.id,
                    title=item.title,
                    score=float(final[position]),
                    retrieval_score=float(candidates.scores[position]),
                    llm_score=None if np.isnan(llm[position]) else float(llm[position]),
                    template_version=version,
                    year=item.year,
                    genres=item.genres,
                    reasons=tuple(shared_genre_reasons(item, history_items)),
                    influences=influences.get(int(position), ()),
                )
            )
        return RecommendationList(out, candidates.reason, unknown)

    def _rerank(self, history_ids: list[str], candidates: Candidates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Order of the candidate positions, final scores and LLM scores (NaN where not reranked)."""
        n = len(candidates)
        llm = np.full(n, np.nan)
        final = np.asarray(candidates.scores, dtype=np.float64).copy()
        top = min(self.config.llm_candidates, n)
        if self.scorer is None or top < 2:
            return np.arange(n), final, llm
        scored = self.llm_scores([self._rows(history_ids)], [candidates.items[:top]])[0]
        llm[:top] = scored
        final = rerank_block(final, scored, self.config.llm_weight)
        return stable_order(final), final, llm

    # ------------------------------------------------------------------ influence

    def influence_window(self, window: int | None = None) -> int | None:
        """History items the served prompt shows, hence the items drop-one ablation can measure:
        ``window`` capped at the prompt's ``max_history`` (None: all). Ablating an item the prompt
        does not show changes nothing (ml-100k's adapter prompt shows 5: a window of 10 measured 5 zeros)."""
        shown = self.prompt.max_history
        if window is None:
            return shown
        return window if shown is None else min(window, shown)

    def influence_table(
        self,
        history_rows: np.ndarray,
        candidate_rows: np.ndarray,
        window: int | None = None,
        base: np.ndarray | None = None,
    ) -> InfluenceTable:
        """Drop-one influence of the shown history items on every candidate's LLM score and its threshold,
        measured on the served prompt (this pipeline's ranking prompt, evidence and adapter).

        influence(h, c) = log P(c | history) - log P(c | history without h), the candidates fixed;
        removing h lets the next-older item into the prompt, as it would be served to a person who
        never watched h. Each h is dropped in the served order and in each order where two shown items
        trade places with the prompt's evidence unchanged (``influence.neutral_swaps``); the mean over
        the orders is compared with a t-test threshold (``InfluenceTable.threshold``): all variants go to
        the scorer in one batch. ``window`` is capped by ``influence_window``; ``base`` reuses
        already computed full-history scores.
        """
        history_rows = np.asarray(history_rows, dtype=np.int64)
        candidate_rows = np.asarray(candidate_rows, dtype=np.int64)
        window = self.influence_window(window)
        shown = len(history_rows) if window is None else min(window, len(history_rows))
        return measure_influence(
            lambda histories: self.llm_scores(histories, [candidate_rows] * len(histories)),
            history_rows,
            window,
            self.neutral_swap_pairs(history_rows, candidate_rows, shown),
            base,
        )

    def neutral_swap_pairs(self, history_rows: np.ndarray, candidate_rows: np.ndarray, shown: int) -> list:
        """The pairs of the ``shown`` last positions whose exchange leaves this prompt's evidence unchanged."""

        def evidence_of(history: np.ndarray) -> dict:
            return self.ranking_requests([history], [candidate_rows])[0].evidence

        return neutral_swaps(history_rows, shown, evidence_of)

    def _card_influences(
        self, history_ids: list[str], candidate_rows: np.ndarray, llm: np.ndarray, window: int
    ) -> dict[int, tuple[tuple[str, float], ...]]:
        """Candidate position -> its measured influencers (history id, effect above its threshold), strongest first."""
        reranked = np.flatnonzero(~np.isnan(llm))
        if window <= 0 or self.scorer is None or not history_ids or len(reranked) < 2:
            return {}
        history_rows = self._rows(history_ids)
        table = self.influence_table(history_rows, candidate_rows[reranked], window, llm[reranked])
        listed = self._listed(table, history_rows, candidate_rows[reranked], history_ids)
        return {int(position): listed[column] for column, position in enumerate(reranked)}

    def influences(
        self,
        item_ids: Sequence[str],
        user_id: str | int | None = None,
        history: Sequence[str | int] | None = None,
        window: int = 5,
        query: str | None = None,
        filters: Filters | None = None,
    ) -> dict[str, tuple[tuple[str, float], ...]]:
        """Item id -> measured influencers (history id, effect above its threshold), strongest first,
        for items of the list ``recommend`` gives with the same arguments (the same LLM-reranked
        candidates, so the values equal what ``recommend(influence_window=window)`` puts on its cards).
        Items outside the reranked block get nothing; ``window`` is capped by ``influence_window``."""
        ids, _ = self.histories.of(user_id, history)
        if self.scorer is None or not ids or window <= 0:
            return {}
        candidates = self.retriever.retrieve(ids, self.config.llm_candidates, query=query, filters=filters)
        rows = candidates.items[: self.config.llm_candidates]
        if len(rows) < 2:
            return {}
        wanted = {self.catalog.index[i] for i in item_ids if i in self.catalog.index}
        history_rows = self._rows(ids)
        table = self.influence_table(history_rows, rows, window)
        listed = self._listed(table, history_rows, rows, ids)
        return {self.catalog.ids[row]: listed[column] for column, row in enumerate(rows) if int(row) in wanted}

    def _listed(self, table: InfluenceTable, history_rows: np.ndarray, candidate_rows: np.ndarray, ids: list[str]):
        """Per candidate column, the influencers its card lists: with ``config.pair_test`` the second only when
        it adds (``influence.listed_influencers``, one batch), as ``explain`` names them."""
        if not self.config.pair_test:
            return [table.influencers(column, ids) for column in range(len(candidate_rows))]
        scores = lambda histories: self.llm_scores(histories, [candidate_rows] * len(histories))  # noqa: E731
        return listed_influencers(scores, history_rows, table, ids)

    # ------------------------------------------------------------------ batch scoring

    def full_scores_batch(
        self, histories: Sequence[np.ndarray], allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two-stage catalogue scores for evaluation by full ranking.

        Args:
            histories: per user, catalogue rows oldest first; they are masked (never recommended).
            allowed: [B, N] bool, the items each user's list may hold (others at -inf before the
                first stage's top-N is taken), e.g. a shelf of new films; None: every item.

        Returns:
            [B, N] scores ordering the LLM-reranked top-N first, then the rest by retrieval,
            with history rows at -inf; and [B] the position (0 = label A) of the LLM's first
            place, -1 without an LLM.
        """
        scores = np.asarray(self.retriever.score_batch(list(histories)), dtype=np.float64).copy()  # [B, N]
        for row, history in zip(scores, histories):
            row[np.asarray(history, dtype=np.int64)] = -np.inf
        if allowed is not None:
            scores[~np.asarray(allowed, dtype=bool)] = -np.inf
        first_place = np.full(len(histories), -1, dtype=np.int64)
        top = min(self.config.llm_candidates, scores.shape[1])
        if self.scorer is None or top < 2:
            return scores, first_place
        tops = [stable_order(row)[:top] for row in scores]
        scored = self.llm_scores(list(histories), tops)
        for b, (rows, llm) in enumerate(zip(tops, scored)):
            first_place[b] = int(np.argmax(llm))
            reranked = rerank_block(scores[b, rows], llm, self.config.llm_weight)
            scores[b] = two_stage_full_scores(scores[b], rows, reranked)
        return scores, first_place

    def ranking_requests(
        self, histories: Sequence[np.ndarray], candidates: Sequence[np.ndarray]
    ) -> list[RankingRequest]:
        """What the ranking prompt renders for each user: items, plus the evidence it shows."""
        requests = []
        for history, rows in zip(histories, candidates):
            history = np.asarray(history, dtype=np.int64)
            rows = np.asarray(rows, dtype=np.int64)
            evidence = {}
            if "recent" in self.prompt.evidence:
                evidence["recent"] = self._evidence_source().recent(history, rows)
            requests.append(
                RankingRequest(
                    [self.catalog.items[r] for r in history], [self.catalog.items[r] for r in rows], evidence
                )
            )
        return requests

    def llm_scores(self, histories: Sequence[np.ndarray], candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        """LLM log-probabilities of each user's candidates, in the given (retrieval) order.

        Args:
            histories: per user, catalogue rows oldest first.
            candidates: per user, catalogue rows best first (at most 26); evidence prompts show
                them in this order, so pass the retriever's order.
        """
        scorer = self._require_scorer()
        requests = self.ranking_requests(histories, candidates)
        return score_requests(scorer, self.prompt, requests, self.config.permutations, self.config.seed)

    def _evidence_source(self):
        if self._evidence is None:
            from recommender.llm.evidence import CowatchEvidence

            self._evidence = CowatchEvidence.for_retriever(self.retriever, self.split)
        return self._evidence

    def _item_vectors(self) -> np.ndarray | None:
        text = getattr(self.retriever, "text", None)
        return getattr(text, "vectors", None)

    # ------------------------------------------------------------------ scoring API

    def _require_scorer(self):
        if self.scorer is None:
            raise ValueError(NO_SCORER)
        return self.scorer

    def text_writer(self):
        """What writes free text (explanations, chat replies): the scorer itself, or the same base model
        without a merged ranking adapter, loaded once (``pretrained.base_model_writer``)."""
        scorer = self._require_scorer()
        if getattr(getattr(scorer, "loaded", None), "adapter_path", None) is None:
            return scorer
        if self._writer is None:
            self._writer = base_model_writer(scorer)
        return self._writer

    def rank(self, history: Sequence[str | int], candidates: Sequence[str | int]) -> list[tuple[str, float]]:
        """Candidates (ids or titles) ordered by the LLM's one-pass ranking score, best first."""
        scores = self.score(history, candidates, mode="rank")
        ids, _ = self.resolve_items(candidates)
        return [(ids[i], float(scores[i])) for i in stable_order(scores)]

    def score(self, history: Sequence[str | int], candidates: Sequence[str | int], mode: str = "rank") -> np.ndarray:
        """[N] LLM scores of ``candidates``: ``rank`` (log-probability of each label in one pass)
        or ``pointwise`` (P(Yes) per candidate, shared prefix cached)."""
        if mode not in SCORE_MODES:
            raise ValueError(f"mode must be one of {SCORE_MODES}, got {mode!r}.")
        scorer = self._require_scorer()
        history_ids, _ = self.resolve_items(history)
        candidate_ids, unknown = self.resolve_items(candidates)
        if unknown:
            raise ValueError(f"unknown candidate(s): {', '.join(map(repr, unknown[:5]))}.")
        if not candidate_ids:
            raise ValueError("score needs at least one candidate.")
        past, items = self.histories.items(history_ids), self.histories.items(candidate_ids)
        if mode == "pointwise":
            return scorer.pointwise(past, items).scores
        # The same path as ``recommend``: the configured template (an adapter's own), so an adapter
        # trained on the evidence prompt is never asked a prompt it has not seen.
        return self.llm_scores([self._rows(history_ids)], [self._rows(candidate_ids)])[0]

    # ------------------------------------------------------------------ ratings (``recommender.ratings``)

    @cached_property
    def ratings(self) -> Ratings:
        """Rating predictions through the rating prompt, with this recommender's scorer."""
        return Ratings(self.histories, self.scorer)

    def predict_rating(
        self,
        history: Sequence[str | int] | None,
        item: str | int,
        ratings: Sequence[float] | None = None,
        *,
        user_id: str | int | None = None,
    ) -> float:
        """Expected rating (1..5) of ``item`` through the rating prompt (``Ratings.predict``)."""
        return self.ratings.predict(history, item, ratings, user_id=user_id)

    def rating_influences(
        self,
        item: str | int,
        history: Sequence[str | int] | None = None,
        ratings: Sequence[float] | None = None,
        *,
        user_id: str | int | None = None,
        window: int | None = 10,
    ) -> tuple[float, list[tuple[str, float, float]]]:
        """The predicted rating of ``item`` and the drop-one influence of each of the last ``window``
        rated history items on it (``Ratings.influences``)."""
        return self.ratings.influences(item, history, ratings, user_id=user_id, window=window)

    def rating_scores(
        self, histories: Sequence[np.ndarray], ratings: Sequence[np.ndarray], targets: Sequence[int]
    ) -> np.ndarray:
        """[B] expected ratings in one batched scorer call (``Ratings.scores``)."""
        return self.ratings.scores(histories, ratings, targets)

    @property
    def rating_prompt(self) -> RatingPrompt:
        """The rating prompt every rating call renders and reads (assign another to change it)."""
        return self.ratings.prompt

    @rating_prompt.setter
    def rating_prompt(self, prompt: RatingPrompt) -> None:
        self.ratings.prompt = prompt

    # ------------------------------------------------------------------ explanations (``recommender.explain``)

    def explain(
        self, history: Sequence[str | int], item: str | int, window: int | None = None, *, writer: Any = None, **options
    ) -> Explanation:
        """Why ``item`` fits ``history``: drop-one influences on the served prompt, their thresholds, the
        evidence and a sentence checked by the rubric (``explain.Explainer``, which says more).

        Args:
            writer: what writes the sentence (``explain.explain_item``'s generator); None: ``text_writer()``.
            options: ``decoding``, ``sources``, ``checker`` for ``explain.explain_item``.
        """
        writer = writer or self.text_writer()  # fails first without an LLM
        return Explainer(self, writer).explain(history, item, window, **options)

    @cached_property
    def evidence_sources(self):
        """What explanation links are read from (``explain.evidence_sources``): the catalogue, co-watching
        counts of the train split and the dataset's knowledge graph when it has one."""
        return evidence_sources(self.dataset, self.split)


__all__ = [
    "MAX_LLM_CANDIDATES",
    "SCORE_MODES",
    "PipelineConfig",
    "Recommender",
    "RecommendationList",
    "cold_content",
    "first_stage",
    "resolve_adapter",
    "shared_genre_reasons",
    "shipped_adapter",
    "tuned_settings",
]
