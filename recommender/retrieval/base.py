"""Candidate retrieval: popularity, item co-occurrence, sentence embeddings and their weighted sum.

Pure numpy (and scipy.sparse for the co-occurrence matrix). Models never load here: the
embedding retriever receives item vectors and an ``Encoder`` (recommender.retrieval.embeddings wraps
sentence-transformers), so every line of ranking math is tested with hand-written vectors.
The shared math sits beside it: the sparse co-occurrence similarity in ``item_similarity``, the
masked top-K and the inner-product index in ``vector_index`` (both re-exported here).

The sequential model (``recommender.retrieval.sequential``, torch) implements the same contract.
Every retriever shares one contract:
- ``score_batch(histories, queries) -> [B, N]`` full-catalogue scores (evaluation, blending);
- ``score_rows(history_rows, query) -> [N]`` the same for one user;
- ``retrieve(history_ids, k, query, filters) -> Candidates`` filtered top-K for serving;
- ``retrieve_batch(histories, k, queries, filters) -> list[Candidates]``.
Filters are applied as a mask before top-K, so K items come back whenever K pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.data import Catalog
from recommender.protocols import Candidates, Encoder, Filters
from recommender.ranking import standardise  # llm/evidence.py imports it from here too
from recommender.retrieval.item_similarity import (  # noqa: F401  (re-exported: knowledge, incremental, tests)
    BLOCK_ENTRIES,
    cooccurrence_similarity,
    keep_top_per_row,
    sequences_to_csr,
)
from recommender.retrieval.vector_index import FAISS_THRESHOLD, VectorIndex, masked_top_k

EXACT_COSINE_ITEMS = 20_000  # up to this many items, embedding scores in float64 (ML-100k's numbers unchanged)
_EMPTY_ROWS = np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------- filters and top-K


def check_k(k: object) -> int:
    """``k`` as an int; raises one clear ValueError sentence otherwise."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer (the number of candidates to return), got {k!r}.")
    return int(k)


def filter_mask(catalog: Catalog, filters: Filters | None, history_rows: np.ndarray) -> tuple[np.ndarray, str]:
    """Boolean [N] mask of the items that pass ``filters``, and a reason when none passes."""
    filters = filters or Filters()
    allowed = np.ones(len(catalog), dtype=bool)
    if len(catalog) == 0:
        return allowed, "the catalogue is empty"
    if filters.year_min is not None and filters.year_max is not None and filters.year_min > filters.year_max:
        return np.zeros(len(catalog), dtype=bool), (
            f"no item passes the filters: year_min {filters.year_min} is after year_max {filters.year_max}"
        )
    clash = {g.lower() for g in filters.include_genres} & {g.lower() for g in filters.exclude_genres}
    if clash and {g.lower() for g in filters.include_genres} <= clash:
        return np.zeros(len(catalog), dtype=bool), (
            f"no item passes the filters: genres {sorted(clash)} are both included and excluded"
        )
    if filters.include_genres:
        allowed &= catalog.genre_mask(filters.include_genres)
    if filters.exclude_genres:
        allowed &= ~catalog.genre_mask(filters.exclude_genres)
    # Items of unknown year (-1) fail any year bound: we cannot say they satisfy it.
    if filters.year_min is not None:
        allowed &= catalog.years >= filters.year_min
    if filters.year_max is not None:
        allowed &= (catalog.years <= filters.year_max) & (catalog.years >= 0)
    # Films, not ids: a catalogue may list one film twice; the evaluation masks the history's ids only.
    excluded = [catalog.index[i] for i in map(str, filters.exclude_items) if i in catalog.index]
    allowed[catalog.with_twins(np.asarray(excluded, dtype=np.int64))] = False
    if filters.exclude_seen:
        allowed[catalog.with_twins(history_rows)] = False
    reason = "" if allowed.any() else f"no item passes the filters ({_describe(filters)})"
    return allowed, reason


def _describe(filters: Filters) -> str:
    parts = []
    if filters.include_genres:
        parts.append("genres " + ", ".join(filters.include_genres))
    if filters.exclude_genres:
        parts.append("not " + ", ".join(filters.exclude_genres))
    if filters.year_min is not None or filters.year_max is not None:
        parts.append(f"years {filters.year_min or '…'}-{filters.year_max or '…'}")
    if filters.exclude_items:
        parts.append(f"{len(filters.exclude_items)} excluded items")
    if filters.exclude_seen:
        parts.append("unseen items only")
    return "; ".join(parts) or "no constraints"


# ---------------------------------------------------------------- the shared contract


def standardise_rows(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores of [B, N] scores (constant rows become 0) so retrievers can be blended;
    ``recommender.ranking.standardise`` applied to each user's row."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.stack([standardise(row) for row in scores]) if len(scores) else scores


# "less violent": each avoided word moves items down by this many standard deviations of their text's
# similarity to it (the word's z-score), after the list's own scores are z-scored. Chosen on 200
# validation users (bench/avoid.py): "violent" takes the share of Action/Crime/Horror/War/Thriller films in
# the top 10 from 0.59 to 0.48, NDCG@10 of the held-out film from 0.114 to 0.092 (1.0: 0.38, 0.058).
AVOID_WEIGHT = 0.5


class BaseRetriever:
    """Filtering, top-K and id handling shared by every retriever; subclasses score."""

    name = "base"
    build_seconds: float | None = None  # set by ``hybrid.build_components``

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def config(self) -> dict[str, object]:
        """Settings that change the scores; part of cache keys for anything tuned on them."""
        return {}

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        """[B, N] scores for each history of catalogue rows (oldest first)."""
        raise NotImplementedError

    def standardised_batch(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """[B, N] per-user z-scores of ``score_batch`` without a query: what the hybrid blends."""
        return standardise_rows(self.score_batch(histories))

    def avoid_scores(self, words: Sequence[str]) -> np.ndarray | None:
        """[N] how close each item's text is to ``words`` (z-scored, averaged over the words); None for a
        retriever that reads no text, which then leaves ``Filters.avoid`` unused."""
        return None

    def score_rows(self, history_rows: np.ndarray, query: str | None = None) -> np.ndarray:
        """[N] full-catalogue scores for one history of catalogue rows (oldest first)."""
        return self.score_batch([np.asarray(history_rows, dtype=np.int64)], [query])[0]

    def rows_of(self, history: Sequence[str]) -> tuple[np.ndarray, int]:
        """Catalogue rows of known history ids (order kept) and the number of unknown ids."""
        if isinstance(history, str):
            raise ValueError("history must be a sequence of item ids, not a single string.")
        rows = [self.catalog.index.get(str(item_id)) for item_id in history]
        known = np.array([r for r in rows if r is not None], dtype=np.int64)
        return known, len(rows) - len(known)

    def retrieve(
        self, history: Sequence[str], k: int, query: str | None = None, filters: Filters | None = None
    ) -> Candidates:
        """Top-``k`` candidates for a history of item ids (oldest first); unknown ids are ignored."""
        return self.retrieve_batch([history], k, [query], filters)[0]

    def retrieve_batch(
        self,
        histories: Sequence[Sequence[str]],
        k: int,
        queries: Sequence[str | None] | None = None,
        filters: Filters | None = None,
    ) -> list[Candidates]:
        """``retrieve`` for many users at once; one filter set for all of them."""
        k = check_k(k)
        queries = _queries(queries, len(histories))
        converted = [self.rows_of(history) for history in histories]
        if len(self.catalog) == 0:
            return [Candidates(_EMPTY_ROWS, np.zeros(0), "the catalogue is empty", unknown) for _, unknown in converted]
        scores = self.score_batch([rows for rows, _ in converted], queries)  # [B, N]
        away = self.avoid_scores(filters.avoid) if filters is not None and filters.avoid else None
        if away is not None:
            scores = standardise_rows(scores) - AVOID_WEIGHT * away
        out = []
        for (rows, unknown), row_scores in zip(converted, scores):
            allowed, reason = filter_mask(self.catalog, filters, rows)
            items, values = masked_top_k(row_scores, k, allowed)
            if not reason and len(items) < k:
                reason = f"only {len(items)} items pass the filters"
            out.append(Candidates(items, values, reason, unknown))
        return out


def _queries(queries: Sequence[str | None] | None, n: int) -> list[str | None]:
    if queries is None:
        return [None] * n
    if len(queries) != n:
        raise ValueError(f"got {len(queries)} queries for {n} histories; pass one query (or None) per history.")
    # A blank query means "no query", so a user typing only spaces gets history-based results.
    return [q if q and q.strip() else None for q in queries]


# ---------------------------------------------------------------- popularity


class PopularityRetriever(BaseRetriever):
    """Most-interacted items of the train split; ignores history and query."""

    name = "pop"

    def __init__(self, catalog: Catalog, counts: np.ndarray):
        super().__init__(catalog)
        self.counts = np.asarray(counts, dtype=np.float64)  # [N]
        if self.counts.shape != (len(catalog),):
            raise ValueError(f"popularity counts have shape {self.counts.shape}, expected ({len(catalog)},).")

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        return np.tile(np.log1p(self.counts), (len(histories), 1))  # [B, N]

    def standardised_batch(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """The same z-scored row for every user, computed once: a read-only [B, N] view, no copies."""
        if getattr(self, "_standardised", None) is None:
            self._standardised = standardise(np.log1p(self.counts))  # [N]
        return np.broadcast_to(self._standardised, (len(histories), len(self.catalog)))


# ---------------------------------------------------------------- co-occurrence (ItemKNN)

AUTO = "auto"
AUTO_PRUNE_ITEMS = 5_000  # neighbours="auto": catalogues larger than this keep AUTO_NEIGHBOURS per row
AUTO_NEIGHBOURS = 200  # ML-100k (1,682 items) stays unpruned, so its scores are exactly the former ones


class CooccurrenceRetriever(BaseRetriever):
    """Item-item cosine similarity of co-occurrence in users' train sequences, summed over
    the last ``window`` history items (ItemKNN), from the train split only.

    Sparse [N, N]: only co-occurring pairs are stored, built block of item rows by block of item
    rows from the training CSR (``split.train_csr()``), each block pruned before the next is
    computed, so memory is bounded by ``block_entries`` plus the pruned result.
    ``neighbours`` keeps each row's best entries ("auto": none pruned up to ``AUTO_PRUNE_ITEMS``
    items, e.g. ML-100k test HR@10 0.158 as in design.md, else ``AUTO_NEIGHBOURS``; None: keep all);
    ``shrink`` adds to the cosine denominator to damp pairs seen by few users.

    Args:
        train_sequences: catalogue rows per user (dict or list); or pass ``csr=(indptr, items)``.
    """

    name = "cooccurrence"

    def __init__(
        self,
        catalog: Catalog,
        train_sequences: dict[str, np.ndarray] | Sequence[np.ndarray] | None = None,
        window: int = 10,
        neighbours: int | str | None = AUTO,
        shrink: float = 0.0,
        csr: tuple[np.ndarray, np.ndarray] | None = None,
        block_entries: int = BLOCK_ENTRIES,
    ):
        super().__init__(catalog)
        if (train_sequences is None) == (csr is None):
            raise ValueError("pass exactly one of train_sequences and csr=(indptr, items).")
        if neighbours == AUTO:
            neighbours = None if len(catalog) <= AUTO_PRUNE_ITEMS else AUTO_NEIGHBOURS
        if neighbours is not None and (
            isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1
        ):
            raise ValueError(f"neighbours must be a positive integer, None or 'auto', got {neighbours!r}.")
        indptr, items = csr if csr is not None else sequences_to_csr(train_sequences)
        self.window, self.neighbours, self.shrink = window, neighbours, shrink
        self.similarity = cooccurrence_similarity(indptr, items, len(catalog), shrink, neighbours, block_entries)

    def config(self) -> dict[str, object]:
        return {"window": self.window, "neighbours": self.neighbours, "shrink": self.shrink}

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        out = np.zeros((len(histories), len(self.catalog)))  # [B, N]
        for b, rows in enumerate(histories):
            recent = np.asarray(rows, dtype=np.int64)[-self.window :]
            if len(recent):
                out[b] = np.asarray(self.similarity[recent].sum(axis=0)).ravel()
        return out


# ---------------------------------------------------------------- sentence embeddings


class EmbeddingRetriever(BaseRetriever):
    """Cosine similarity between item vectors and a user profile built from text embeddings.

    The profile is the recency-weighted mean of the history's item vectors (the newest item
    weighs 1, the one before ``decay``, …); a query's vector is blended in with weight
    ``query_weight``; a query alone works (cold start); with neither, popularity order.
    """

    name = "embedding"

    def __init__(
        self,
        catalog: Catalog,
        item_vectors: np.ndarray,
        encoder: Encoder | None = None,
        popularity: np.ndarray | None = None,
        decay: float = 0.9,
        max_history: int = 50,
        query_weight: float = 0.5,
        faiss_threshold: int = FAISS_THRESHOLD,
    ):
        super().__init__(catalog)
        vectors = np.asarray(item_vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(catalog):
            raise ValueError(f"item_vectors has shape {vectors.shape}, expected ({len(catalog)}, D).")
        self.index = VectorIndex(vectors, threshold=faiss_threshold)
        self.encoder = encoder
        self.popularity = np.zeros(len(catalog)) if popularity is None else np.asarray(popularity, np.float64)
        self.decay, self.max_history, self.query_weight = decay, max_history, query_weight

    def config(self) -> dict[str, object]:
        return {"decay": self.decay, "max_history": self.max_history, "query_weight": self.query_weight}

    @property
    def vectors(self) -> np.ndarray:
        return self.index.vectors

    def avoid_scores(self, words: Sequence[str]) -> np.ndarray | None:
        if self.encoder is None:
            return None
        vectors = np.asarray(self.encoder.encode(list(words)), dtype=np.float32)  # [W, D]
        return np.mean([standardise(self.vectors @ _unit(vector)) for vector in vectors], axis=0)

    def encode_query(self, query: str) -> np.ndarray:
        if self.encoder is None:
            raise ValueError("this retriever has no encoder, so it cannot take a free-text query.")
        return np.asarray(self.encoder.encode([query]), dtype=np.float32)[0]  # [D]

    def profile(self, history_rows: np.ndarray, query: str | None = None) -> np.ndarray | None:
        """[D] unit profile vector, or None when there is neither history nor query."""
        rows = np.asarray(history_rows, dtype=np.int64)[-self.max_history :]
        parts = []
        if len(rows):
            weights = self.decay ** np.arange(len(rows))[::-1]  # [H], newest last gets 1
            parts.append((_unit(weights @ self.vectors[rows]), 1.0 - self.query_weight if query else 1.0))
        if query:
            parts.append((_unit(self.encode_query(query)), self.query_weight if len(rows) else 1.0))
        if not parts:
            return None
        return _unit(sum(weight * vector for vector, weight in parts))

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        queries = _queries(queries, len(histories))
        out = np.empty((len(histories), len(self.catalog)))  # [B, N]
        profiles = [self.profile(rows, query) for rows, query in zip(histories, queries)]
        if len(self.catalog) > EXACT_COSINE_ITEMS:  # big catalogues: one float32 [B, D] x [D, N] product
            present = [b for b, profile in enumerate(profiles) if profile is not None]
            if present:
                out[present] = np.stack([profiles[b] for b in present]).astype(np.float32) @ self.vectors.T
            done = set(present)
            profiles = [np.zeros(0) if b in done else None for b in range(len(profiles))]  # empty: scored
        for b, profile in enumerate(profiles):
            if profile is None:
                out[b] = np.log1p(self.popularity)
            elif len(profile):
                out[b] = self._cosines(profile)
        return out

    def _cosines(self, profile: np.ndarray) -> np.ndarray:
        """[N] item vectors . profile in float64, the former arithmetic of small catalogues (numpy promoted
        the float32 vectors on every call; a float64 copy made once gives the same numbers). Big catalogues
        (``score_batch``) take one float32 matrix product per batch instead of converting the table."""
        if getattr(self, "_vectors64", None) is None:
            self._vectors64 = self.vectors.astype(np.float64)
        return self._vectors64 @ profile

    def retrieve(
        self, history: Sequence[str], k: int, query: str | None = None, filters: Filters | None = None
    ) -> Candidates:
        """Top-``k`` by cosine to the profile, through the vector index (FAISS when large)."""
        if filters is not None and filters.avoid and self.encoder is not None:
            return super().retrieve(history, k, query, filters)  # the index cannot move items down
        k = check_k(k)
        rows, unknown = self.rows_of(history)
        query = _queries([query], 1)[0]
        if len(self.catalog) == 0:
            return Candidates(_EMPTY_ROWS, np.zeros(0), "the catalogue is empty", unknown)
        allowed, reason = filter_mask(self.catalog, filters, rows)
        if reason:
            return Candidates(_EMPTY_ROWS, np.zeros(0), reason, unknown)
        profile = self.profile(rows, query)
        if profile is None:
            items, scores = masked_top_k(np.log1p(self.popularity), k, allowed)
            reason = "no history and no query: most popular items"
        else:
            items, scores = self.index.search(profile, k, allowed)
        if not reason and len(items) < k:
            reason = f"only {len(items)} items pass the filters"
        return Candidates(items, scores, reason, unknown)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


# ---------------------------------------------------------------- hybrid


class HybridRetriever(BaseRetriever):
    """Weighted sum of per-user standardised (z-scored) component scores.

    Components score the history only; a free-text query is scored once by ``text`` (the
    embedding retriever) and blended in with ``query_weight``, or ``cold_query_weight`` when
    the history is empty, so "no horror, something funny" moves the list even for warm users.
    """

    name = "hybrid"

    def __init__(
        self,
        catalog: Catalog,
        components: dict[str, BaseRetriever],
        weights: dict[str, float],
        text: EmbeddingRetriever | None = None,
        query_weight: float = 0.5,
        cold_query_weight: float = 0.9,
    ):
        super().__init__(catalog)
        unknown = set(weights) - set(components)
        if unknown:
            raise ValueError(f"weights name unknown components {sorted(unknown)}; known: {sorted(components)}.")
        self.components, self.weights, self.text = components, dict(weights), text
        self.query_weight, self.cold_query_weight = query_weight, cold_query_weight
        # Set by ``hybrid.attach_cold_bridge``: scores items without training events through their
        # content neighbours (``retrieval.cold.ColdItemBridge``) instead of reading them as disliked.
        self.cold_bridge = None

    def avoid_scores(self, words: Sequence[str]) -> np.ndarray | None:
        return self.text.avoid_scores(words) if self.text is not None else None

    def component_scores(self, histories: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Standardised [B, N] history scores of every component, for blending or tuning."""
        return {name: r.standardised_batch(histories) for name, r in self.components.items()}

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        queries = _queries(queries, len(histories))
        # Components the tuned blend weighs 0 are not computed: their scores would be multiplied away.
        parts = {name: r.standardised_batch(histories) for name, r in self.components.items() if self.weights.get(name)}
        out = weighted_sum(parts, self.weights, len(histories), len(self.catalog))  # [B, N]
        if self.cold_bridge is not None:
            self.cold_bridge.fill(out)
        for b, (rows, query) in enumerate(zip(histories, queries)):
            if query is None:
                continue
            if self.text is None:
                raise ValueError("this hybrid retriever has no text component, so it cannot take a free-text query.")
            weight = self.query_weight if len(rows) else self.cold_query_weight
            query_scores = standardise(self.text.vectors @ _unit(self.text.encode_query(query)))
            out[b] = (1.0 - weight) * out[b] + weight * query_scores
        return out


def weighted_sum(parts: dict[str, np.ndarray], weights: dict[str, float], batch: int, n: int) -> np.ndarray:
    """Sum of ``weights[name] * parts[name]`` over [B, N] score arrays."""
    out = np.zeros((batch, n))
    for name, weight in weights.items():
        if weight:
            out += weight * parts[name]
    return out
