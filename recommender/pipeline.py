"""The ``Recommender`` facade: retriever top-N, the LLM reranks them, the rest keep
retrieval order.

    from recommender.pipeline import Recommender
    rec = Recommender.from_pretrained()                 # ml-100k, SmolLM2 + shipped LoRA adapter
    rec.recommend(user_id="1", k=10)
    rec.recommend(history=["Toy Story", "Fargo"], query="something funny", k=5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from recommender.calibration import calibrate_catalog
from recommender.data import Dataset, Item
from recommender.data.split import LeaveOneOutSplit
from recommender.explain import InfluenceTable, drop_one_influence, measure_influence, swap_pairs
from recommender.llm.ranking_prompts import RankingRequest, ranking_prompt, score_requests
from recommender.llm.rating_prompt import RatingPrompt, RatingRequest, RatingStatistics, check_ratings, rate_requests
from recommender.protocols import Candidates, Filters, Recommendation
from recommender.ranking import mmr, rerank_block, stable_order, two_stage_full_scores

SCORE_MODES = ("rank", "pointwise")
MAX_LLM_CANDIDATES = 26  # one label (A..Z) per candidate


@dataclass(frozen=True)
class PipelineConfig:
    """How the two stages combine; checked when built."""

    llm_candidates: int = field(default=20, metadata={"help": "retriever top-N that the LLM reranks (2..26)"})
    llm_weight: float = field(
        default=1.0, metadata={"help": "weight of the LLM in the final score: 1 = LLM alone, 0 = retrieval order"}
    )
    permutations: int = field(default=1, metadata={"help": "candidate shuffles averaged against position bias"})
    template: str = field(
        default="rank",
        metadata={"help": "ranking prompt: 'rank' (shuffle-robust, any model) or 'rank_evidence' (adapters')"},
    )
    max_history: int | None = field(
        default=None, metadata={"help": "most recent history items shown in a prompt (None: the prompt's default)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the candidate shuffles"})

    def __post_init__(self):
        if not isinstance(self.llm_candidates, int) or not 2 <= self.llm_candidates <= MAX_LLM_CANDIDATES:
            raise ValueError(
                f"llm_candidates must be an integer from 2 to {MAX_LLM_CANDIDATES}, got {self.llm_candidates!r}."
            )
        if not 0.0 <= float(self.llm_weight) <= 1.0:
            raise ValueError(f"llm_weight must be within [0, 1], got {self.llm_weight!r}.")
        if not isinstance(self.permutations, int) or self.permutations < 1:
            raise ValueError(f"permutations must be a positive integer, got {self.permutations!r}.")
        if self.max_history is not None and (not isinstance(self.max_history, int) or self.max_history < 0):
            raise ValueError(f"max_history must be a non-negative integer or None, got {self.max_history!r}.")
        ranking_prompt(self.template)  # an unknown template fails here, naming the known ones


class RecommendationList(list):
    """A list of ``Recommendation`` plus what the caller should know about it."""

    def __init__(self, items: Sequence[Recommendation] = (), reason: str = "", unknown_history: int = 0):
        super().__init__(items)
        self.reason = reason  # why the list is empty or short
        self.unknown_history = unknown_history  # history ids not in the catalogue, ignored


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
        self.prompt = ranking_prompt(config.template, config.max_history)  # renders and reads every LLM call
        self._evidence = None  # built on first use by prompts that show evidence
        self._writer = None  # the base model that writes free text, loaded on first use (``text_writer``)
        self._title_index = {_fold(item.title): item.id for item in self.catalog.items}
        self._title_index.update({_fold(item.display_title()): item.id for item in self.catalog.items})

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
        from recommender.retrieval.hybrid import build_default_retriever
        from recommender.retrieval.sequential import SequentialConfig

        data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
        adapter_path = None if retrieval_only else resolve_adapter(adapter, data, model)
        if sequential is None:
            sequential = first_stage(adapter_path) == "hybrid+sequential"
        retriever = build_default_retriever(data, sequential=SequentialConfig() if sequential else None)
        if cold_items:
            from recommender.retrieval.hybrid import attach_cold_bridge, unseen_items

            if unseen_items(retriever).any():  # the content vectors are only worth computing then
                content = cold_content(data, retriever, None if retrieval_only else model, device, retrieval_only)
                attach_cold_bridge(retriever, content)
        if retrieval_only:
            return cls(data, retriever, None, config or PipelineConfig())
        from recommender.llm.loading import load_model
        from recommender.llm.scoring import LLMScorer

        loaded = load_model(model, adapter=adapter_path, quantize=quantize, device=device, dtype=dtype)
        if config is None:
            config = PipelineConfig(**_tuned_settings(adapter_path))
        return cls(data, retriever, LLMScorer(loaded), config)

    # ------------------------------------------------------------------ histories

    def user_history(self, user_id: str | int) -> list[str]:
        """All known item ids of a dataset user, oldest first."""
        user = str(user_id)
        if user not in self.split.sequences:
            users = self.split.users
            raise ValueError(
                f"user id {user!r} is not in {self.dataset.name} ({len(users)} users, ids {users[0]} to {users[-1]})."
            )
        return [self.catalog.ids[row] for row in self.split.sequences[user]]

    def resolve_items(self, references: Sequence[str | int]) -> tuple[list[str], list[str]]:
        """Item ids for references given as ids or exact titles ("Fargo", "Fargo (1996)").

        Returns the ids found and the references that matched nothing.
        """
        found, unknown = [], []
        for reference in references:
            text = str(reference).strip()
            if text in self.catalog.index:
                found.append(text)
            elif _fold(text) in self._title_index:
                found.append(self._title_index[_fold(text)])
            elif text:
                unknown.append(text)
        return found, unknown

    def _history(self, user_id: str | int | None, history: Sequence[str | int] | None) -> tuple[list[str], int]:
        if history is not None:
            if isinstance(history, str):
                raise ValueError("history must be a list of item ids or titles, not one string.")
            ids, unknown = self.resolve_items(history)
            return ids, len(unknown)
        if user_id is not None:
            return self.user_history(user_id), 0
        return [], 0

    def _rows(self, ids: Sequence[str]) -> np.ndarray:
        return np.array([self.catalog.index[i] for i in ids], dtype=np.int64)

    def _items(self, ids: Sequence[str]) -> list[Item]:
        return [self.catalog[item_id] for item_id in ids]

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
        ids, unknown = self._history(user_id, history)
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
        history_items = self._items(ids)
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
        """Drop-one influence of the shown history items on every candidate's LLM score, and the noise
        floor, measured on the served prompt (this pipeline's ranking prompt, evidence and adapter).

        influence(h, c) = log P(c | history) - log P(c | history without h), the candidates fixed;
        removing h lets the next-older item into the prompt, as it would be served to a person who
        never watched h. The floor of c is the largest change of log P(c) when two shown items trade
        places with the prompt's evidence unchanged (``explain.swap_pairs``): all variants go to
        the scorer in one batch. ``window`` is capped by ``influence_window``; ``base`` reuses
        already computed full-history scores.
        """
        history_rows = np.asarray(history_rows, dtype=np.int64)
        candidate_rows = np.asarray(candidate_rows, dtype=np.int64)
        window = self.influence_window(window)
        shown = len(history_rows) if window is None else min(window, len(history_rows))
        reference = self.ranking_requests([history_rows], [candidate_rows])[0].evidence

        def neutral(i: int, j: int) -> bool:
            swapped = history_rows.copy()
            swapped[[i, j]] = swapped[[j, i]]
            evidence = self.ranking_requests([swapped], [candidate_rows])[0].evidence
            return all(np.array_equal(evidence[name], reference[name]) for name in reference)

        return measure_influence(
            lambda histories: self.llm_scores(histories, [candidate_rows] * len(histories)),
            history_rows,
            window,
            swap_pairs(len(history_rows), shown, neutral),
            base,
        )

    def _card_influences(
        self, history_ids: list[str], candidate_rows: np.ndarray, llm: np.ndarray, window: int
    ) -> dict[int, tuple[tuple[str, float], ...]]:
        """Candidate position -> its measured influencers (history id, effect above the floor), strongest first."""
        reranked = np.flatnonzero(~np.isnan(llm))
        if window <= 0 or self.scorer is None or not history_ids or len(reranked) < 2:
            return {}
        table = self.influence_table(self._rows(history_ids), candidate_rows[reranked], window, llm[reranked])
        return {int(position): table.influencers(column, history_ids) for column, position in enumerate(reranked)}

    def influences(
        self,
        item_ids: Sequence[str],
        user_id: str | int | None = None,
        history: Sequence[str | int] | None = None,
        window: int = 5,
        query: str | None = None,
        filters: Filters | None = None,
    ) -> dict[str, tuple[tuple[str, float], ...]]:
        """Item id -> measured influencers (history id, effect above the noise floor), strongest first,
        for items of the list ``recommend`` gives with the same arguments (the same LLM-reranked
        candidates, so the values equal what ``recommend(influence_window=window)`` puts on its cards).
        Items outside the reranked block get nothing; ``window`` is capped by ``influence_window``."""
        ids, _ = self._history(user_id, history)
        if self.scorer is None or not ids or window <= 0:
            return {}
        candidates = self.retriever.retrieve(ids, self.config.llm_candidates, query=query, filters=filters)
        rows = candidates.items[: self.config.llm_candidates]
        if len(rows) < 2:
            return {}
        wanted = {self.catalog.index[i] for i in item_ids if i in self.catalog.index}
        table = self.influence_table(self._rows(ids), rows, window)
        return {
            self.catalog.ids[row]: table.influencers(column, ids)
            for column, row in enumerate(rows)
            if int(row) in wanted
        }

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
            raise ValueError("this Recommender was built without an LLM (retrieval_only=True); load one to score.")
        return self.scorer

    def text_writer(self):
        """What writes free text (explanations, chat replies): the scorer itself, or, when a ranking
        adapter is merged into it, the same base model without the adapter, loaded once. The adapter
        learned to score candidate lines; its merged weights write degenerate text ("F F F F": 77 of
        100 explanations in bench/explain.py with the 12-layer adapter)."""
        scorer = self._require_scorer()
        loaded = getattr(scorer, "loaded", None)
        if loaded is None or loaded.adapter_path is None:
            return scorer
        if self._writer is None:
            from recommender.llm.loading import load_model
            from recommender.llm.scoring import LLMScorer

            # "fast": bf16 where the CPU computes it natively; generated tokens are memory-bound.
            base = load_model(
                loaded.source, adapter=None, quantize=loaded.quantization, device=loaded.device, dtype="fast"
            )
            self._writer = LLMScorer(base)
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
        past, items = self._items(history_ids), self._items(candidate_ids)
        if mode == "pointwise":
            return scorer.pointwise(past, items).scores
        # The same path as ``recommend``: the configured template (an adapter's own), so an adapter
        # trained on the evidence prompt is never asked a prompt it has not seen.
        return self.llm_scores([self._rows(history_ids)], [self._rows(candidate_ids)])[0]

    def predict_rating(
        self,
        history: Sequence[str | int] | None,
        item: str | int,
        ratings: Sequence[float] | None = None,
        *,
        user_id: str | int | None = None,
    ) -> float:
        """Expected rating (1..5) of ``item`` through the rating prompt (``llm.rating_prompt``), with
        the evidence a rating depends on: the user's mean and count, the item's mean and count in
        the train split, the user's ratings of the most similar items, the latest ratings.

        Args:
            history: item ids or titles, oldest first; unknown ones are ignored with their ratings.
            ratings: one rating from 1 to 5 per history entry (required with a non-empty history).
            user_id: instead of ``history`` and ``ratings``: a dataset user's rated events before
                their first event on ``item`` (all of them when they never met it).
        """
        self._require_scorer()
        target = self._rating_target(item)
        rows, values = self._rated_history(history, ratings, user_id, target)
        return float(self.rating_scores([rows], [values], [target])[0])

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
        rated history items on it (``explain.drop_one_influence``, on the served rating prompt):
        rating(H) - rating(H without h), the evidence recomputed without h, as for a user who never
        rated h. Arguments as ``predict_rating``.

        Returns:
            The rating and, oldest first, (item id, the user's rating of it, influence) per ablated item.
        """
        self._require_scorer()
        target = self._rating_target(item)
        rows, values = self._rated_history(history, ratings, user_id, target)
        base = self.rating_scores([rows], [values], [target])  # [1]

        def score(variants: list[np.ndarray]) -> list[np.ndarray]:
            # The "history" handed to drop_one_influence is positions, so ratings drop with their item.
            predicted = self.rating_scores(
                [rows[v] for v in variants], [values[v] for v in variants], [target] * len(variants)
            )
            return [np.array([value]) for value in predicted]

        positions, effect = drop_one_influence(score, np.arange(len(rows)), window, base)
        influences = [
            (self.catalog.ids[int(rows[p])], float(values[p]), float(effect[i, 0])) for i, p in enumerate(positions)
        ]
        return float(base[0]), influences

    def rating_scores(
        self, histories: Sequence[np.ndarray], ratings: Sequence[np.ndarray], targets: Sequence[int]
    ) -> np.ndarray:
        """[B] expected ratings, one batched scorer call: per user, catalogue rows oldest first, their
        ratings (checked to be 1..5) and the target row; evidence from the train split."""
        scorer = self._require_scorer()
        stats = self.rating_statistics
        requests = []
        for history, values, target in zip(histories, ratings, targets):
            if stats is not None:
                requests.append(stats.request(self.catalog, history, values, int(target)))
            else:  # a dataset without ratings: the given ratings alone
                rated = [(self.catalog.items[int(h)], float(v)) for h, v in zip(history, values)]
                requests.append(RatingRequest(rated, self.catalog.items[int(target)]))
        return rate_requests(scorer, self.rating_prompt, requests)

    @cached_property
    def rating_prompt(self) -> RatingPrompt:
        """The rating prompt every rating call renders and reads (assign another to change it)."""
        return RatingPrompt()

    @cached_property
    def rating_statistics(self) -> RatingStatistics | None:
        """Item means, counts and co-rating similarities of the train split (built on first use;
        None when the dataset has no ratings)."""
        if not self.split.ratings:
            return None
        return RatingStatistics.from_split(self.split, len(self.catalog))

    def _rating_target(self, item: str | int) -> int:
        found, unknown = self.resolve_items([item])
        if unknown or not found:
            raise ValueError(f"unknown item {item!r}: it matches no item id or exact title of {self.dataset.name}.")
        return self.catalog.index[found[0]]

    def _rated_history(
        self,
        history: Sequence[str | int] | None,
        ratings: Sequence[float] | None,
        user_id: str | int | None,
        target: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """[H] catalogue rows and [H] ratings of a rated history, checked, unknown entries left out."""
        if user_id is not None:
            if history is not None or ratings is not None:
                raise ValueError("pass either user_id or history with ratings, not both.")
            self.user_history(user_id)  # an unknown user fails here with one sentence
            user = str(user_id)
            if user not in self.split.ratings:
                raise ValueError(f"{self.dataset.name} has no ratings, so user {user!r} has no rated history.")
            sequence, values = self.split.sequences[user], self.split.ratings[user]
            met = np.flatnonzero(sequence == target)
            end = int(met[0]) if len(met) else len(sequence)
            return np.asarray(sequence[:end], dtype=np.int64), np.asarray(values[:end], dtype=np.float64)
        if isinstance(history, str) or isinstance(ratings, str):
            raise ValueError(
                "history and ratings must be lists (item ids or titles; numbers from 1 to 5), not strings."
            )
        history = list(history) if history is not None else []
        if ratings is None:
            if history:
                raise ValueError(
                    f"ratings are missing: give one rating from 1 to 5 for each of the {len(history)} history items."
                )
            ratings = []
        if not isinstance(ratings, (Sequence, np.ndarray)):
            raise ValueError(f"ratings must be a list of numbers from 1 to 5, got {type(ratings).__name__}.")
        if len(ratings) != len(history):
            raise ValueError(
                f"{len(ratings)} ratings for {len(history)} history items; give one rating per history item."
            )
        values = check_ratings(list(ratings))
        found = [self.resolve_items([reference])[0] for reference in history]
        keep = [i for i, ids in enumerate(found) if ids]
        rows = np.array([self.catalog.index[found[i][0]] for i in keep], dtype=np.int64)
        return rows, values[keep]

    def explain(self, history: Sequence[str | int], item: str | int, window: int | None = None, **options):
        """Why ``item`` fits ``history``: the drop-one effect of each shown history item on the item's
        LLM score in the served prompt, its noise floor (the same numbers and rule as the chat cards),
        the evidence, and a sentence checked by the rubric (``explain.Explanation``).

        The prompt's candidates are the retriever's top-N for this history, with ``item`` kept at
        its retrieval position (or in the last slot when it was not retrieved). ``window`` defaults to
        what the prompt shows (``influence_window``). The sentence is written by ``options["writer"]``
        when given, else by ``text_writer()``; other options go to ``explain.explain_item``.
        """
        from recommender.explain import explain_item

        writer = options.pop("writer", None) or self.text_writer()  # fails first without an LLM
        history_ids, _ = self.resolve_items(history)
        target, unknown = self.resolve_items([item])
        if unknown or not target:
            raise ValueError(f"unknown item {item!r}.")
        target_item = self.catalog[target[0]]
        rows = self._explain_candidates(history_ids, target_item)
        column = int(np.flatnonzero(rows == self.catalog.index[target_item.id])[0])
        values = np.full(len(history_ids), np.nan)
        base_score, floor, swaps = None, float("inf"), 0
        if history_ids:
            history_rows = self._rows(history_ids)
            base = self.llm_scores([history_rows], [rows])[0]
            table = self.influence_table(history_rows, rows, window, base)
            values = table.values(column, len(history_ids))
            base_score, floor, swaps = float(base[column]), float(table.floor[column]), len(table.swaps)
        options.setdefault("sources", self.evidence_sources)
        explanation = explain_item(
            writer, self.catalog, self._items(history_ids), target_item, values, floor=floor, **options
        )
        explanation.evidence.update(
            {"base_score": base_score, "window": self.influence_window(window), "neutral_swaps": swaps,
             "candidates": len(rows), "prompt": self.prompt.version}
        )  # fmt: skip
        return explanation

    @cached_property
    def evidence_sources(self):
        """What explanation links are read from: the catalogue, co-watching counts of the train split
        (the logs the retriever is fitted on) and the dataset's knowledge graph when it has one."""
        from recommender.explanation_evidence import CowatchCounts, EvidenceSources

        knowledge = getattr(self.dataset, "knowledge", None)
        if knowledge is not None and hasattr(knowledge, "aligned"):
            knowledge = knowledge.aligned(self.catalog)
        cowatch = CowatchCounts.from_split(self.split, len(self.catalog), self.dataset.name)
        return EvidenceSources(self.catalog, cowatch, knowledge)

    def _explain_candidates(self, history_ids: list[str], item: Item) -> np.ndarray:
        n = self.config.llm_candidates
        retrieved = self.retriever.retrieve(history_ids, n, filters=Filters(exclude_seen=True))
        rows = np.asarray(retrieved.items, dtype=np.int64)
        target = self.catalog.index[item.id]
        if target not in rows:
            rows = np.append(rows[: n - 1], target)
        return rows


def shared_genre_reasons(item: Item, history: Sequence[Item], limit: int = 2) -> list[str]:
    """Short data-grounded reasons: recent history items sharing genres with ``item``."""
    reasons = []
    for past in reversed(history):
        shared = [genre for genre in item.genres if genre in past.genres and genre != "unknown"]
        if shared:
            reasons.append(f"{', '.join(shared)} like {past.display_title()}")
        if len(reasons) == limit:
            break
    return reasons


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def cold_content(dataset: Dataset, retriever, model, device: str | None, text_only: bool = False) -> np.ndarray:
    """[N, D] item vectors the cold bridge searches: the sentence embeddings beside the base LLM's
    content vectors (``retrieval.llm_content``; cached per catalogue, so the base model loads only
    the first time), or the sentence embeddings alone with ``text_only``. On the cold-items shelf
    the two together scored above either alone (bench/results/cold-items.md)."""
    from recommender.llm.loading import load_model, resolve_model
    from recommender.retrieval.embeddings import item_embeddings
    from recommender.retrieval.llm_content import ITEM_TEMPLATE, HiddenStateEncoder, centred, unit_rows

    text = retriever.text.vectors
    if text_only:
        return unit_rows(text)
    _, base_name = resolve_model(model)
    encoder = HiddenStateEncoder(
        lambda: load_model(model, adapter=None, device=device), name=f"hidden-mean-{base_name}"
    )
    return unit_rows(text, centred(item_embeddings(dataset.catalog, encoder, template=ITEM_TEMPLATE)))


def resolve_adapter(adapter: str | Path | None, dataset: Dataset, model: str | Path | None) -> Path | None:
    """The adapter folder to load: ``"default"`` means the shipped one when it applies."""
    if adapter is None or str(adapter).lower() == "none":
        return None
    if str(adapter) == "default":
        shipped = shipped_adapter()
        return shipped if shipped is not None and model is None and dataset.name == "ml-100k" else None
    return Path(adapter)


def shipped_adapter() -> Path | None:
    """The LoRA adapter trained on ml-100k that ships with the package, if present."""
    import importlib.util

    # find_spec locates the package without importing it: serving never imports training code.
    spec = importlib.util.find_spec("recommender.finetune")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "adapters" / "ml100k-smollm2"
    return folder if (folder / "adapter_config.json").is_file() else None


def first_stage(adapter_path: Path | None) -> str:
    """The first stage an adapter was trained on: "hybrid+sequential" (the default without an
    adapter) or "hybrid" (adapters that predate the sequential model record nothing)."""
    if adapter_path is None:
        return "hybrid+sequential"
    from recommender.llm.loading import read_adapter_metadata

    return str(read_adapter_metadata(adapter_path).get("first_stage", "hybrid"))


def _tuned_settings(adapter_path: Path | None) -> dict:
    """Pipeline settings recorded with an adapter at training time: the prompt template, how
    many candidates and history items it saw, and the blend weight tuned on validation users."""
    if adapter_path is None:
        return {}
    from recommender.llm.loading import read_adapter_metadata
    from recommender.llm.ranking_prompts import PROMPTS

    meta = read_adapter_metadata(adapter_path)
    settings = {}
    if meta.get("template") in PROMPTS:
        settings["template"] = meta["template"]
    if isinstance(meta.get("rerank_candidates"), int):
        settings["llm_candidates"] = meta["rerank_candidates"]
    if isinstance(meta.get("max_history"), int):
        settings["max_history"] = meta["max_history"]
    weight = meta.get("llm_weight", meta.get("blend_alpha"))  # adapters before 2026-11-30 wrote blend_alpha
    if isinstance(weight, (int, float)):
        settings["llm_weight"] = float(weight)
    return settings
