"""Knowledge-graph retriever: items related through shared entities (director, writer, cast, ...).

Item-item relatedness is the cosine of IDF-weighted entity vectors: each (relation word,
entity) feature weighs ``log(n_linked / df)`` (an entity on many items says little: a shared
language counts far less than a shared director) times a prior per relation word
(``RELATION_WEIGHTS``); rows are L2-normalised over all their features. ``X @ X.T`` is computed
sparse, block of rows by block of rows, each block pruned to its best ``neighbours`` before the
next (as the co-occurrence is), so 100k items x 20 entities fits in memory. Features on a
single item are left out of the product (they only enter the norms: exact); features so common
that their pairs would exceed ``pair_budget`` are left out too (a lower bound of the cosine; none
on ML-100k).

Scores need no interactions: a new film with known director and cast gets scores from the
first day. ``score_batch`` sums the similarity rows of the last ``window`` history items,
the newest weighing 1 and each older one ``decay`` times the next.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from recommender.data import Catalog
from recommender.data.knowledge import KnowledgeGraph
from recommender.retrieval.base import (
    AUTO,
    AUTO_NEIGHBOURS,
    AUTO_PRUNE_ITEMS,
    BLOCK_ENTRIES,
    BaseRetriever,
)

# Priors per relation word (unknown words: 1.0); IDF does the rest. Who made a film says more
# about it than where it was made.
RELATION_WEIGHTS: Mapping[str, float] = {
    "sequel": 2.0, "prequel": 2.0, "series": 2.0, "director": 2.0, "writer": 1.5, "cast": 1.0, "producer": 1.0,
    "cinematographer": 1.0, "subject": 1.0, "studio": 0.5, "award": 0.5, "award nomination": 0.5, "genre": 0.5,
    "content rating": 0.25, "language": 0.25, "country": 0.25,
}  # fmt: skip
PAIR_BUDGET = 200_000_000  # sum of df^2 over the features multiplied: bounds the work of X @ X.T


class KnowledgeRetriever(BaseRetriever):
    """Recency-weighted sum of knowledge-graph similarity rows over the history.

    Args:
        knowledge: the dataset's graph (re-indexed to ``catalog`` when its rows differ).
        relation_weights: prior weight per relation word, on top of IDF (default ``RELATION_WEIGHTS``).
        neighbours: entries kept per similarity row ("auto": all up to ``AUTO_PRUNE_ITEMS``
            items, else ``AUTO_NEIGHBOURS``; None: all).
    """

    name = "knowledge"

    def __init__(
        self,
        catalog: Catalog,
        knowledge: KnowledgeGraph,
        relation_weights: Mapping[str, float] | None = None,
        window: int = 20,
        decay: float = 0.9,
        neighbours: int | str | None = AUTO,
        pair_budget: int = PAIR_BUDGET,
        block_entries: int = BLOCK_ENTRIES,
    ):
        super().__init__(catalog)
        if neighbours == AUTO:
            neighbours = None if len(catalog) <= AUTO_PRUNE_ITEMS else AUTO_NEIGHBOURS
        if neighbours is not None and (
            isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1
        ):
            raise ValueError(f"neighbours must be a positive integer, None or 'auto', got {neighbours!r}.")
        if window < 1 or not 0.0 < decay <= 1.0:
            raise ValueError(f"window must be at least 1 and decay in (0, 1], got {window} and {decay}.")
        self.knowledge = knowledge.aligned(catalog)
        self.relation_weights = dict(RELATION_WEIGHTS if relation_weights is None else relation_weights)
        self.window, self.decay, self.neighbours, self.pair_budget = window, decay, neighbours, pair_budget
        weights = feature_weights(self.knowledge, self.relation_weights)
        self.similarity = knowledge_similarity(self.knowledge.features, weights, neighbours, pair_budget, block_entries)

    def config(self) -> dict[str, object]:
        return {
            "graph": self.knowledge.fingerprint(),
            "relation_weights": sorted(self.relation_weights.items()),
            "window": self.window,
            "decay": self.decay,
            "neighbours": self.neighbours,
            "pair_budget": self.pair_budget,
        }

    def extended(self, catalog: Catalog) -> KnowledgeRetriever:
        """This retriever over ``catalog``, the old catalogue with items appended (an incremental
        update): the new items have no graph rows, so they score 0 and add nothing; no rebuild."""
        if len(catalog) < len(self.catalog) or catalog.ids[: len(self.catalog)] != self.catalog.ids:
            raise ValueError("extended() takes the old catalogue with items appended; rebuild for any other change.")
        refreshed = copy.copy(self)
        refreshed.catalog = catalog
        refreshed.knowledge = self.knowledge.aligned(catalog)
        refreshed.similarity = self.similarity.copy()
        refreshed.similarity.resize((len(catalog), len(catalog)))
        return refreshed

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        """[B, N]: one sparse product of the histories' recency weights with their similarity rows."""
        rows, columns, values = [], [], []
        for b, history in enumerate(histories):
            recent = np.asarray(history, dtype=np.int64)[-self.window :]
            rows.append(np.full(len(recent), b))
            columns.append(recent)
            values.append(self.decay ** np.arange(len(recent))[::-1])  # the newest weighs 1
        n = len(self.catalog)
        if not histories:
            return np.zeros((0, n))
        # Only the similarity rows the histories touch enter the product: multiplying by the whole
        # [N, N] matrix made scipy copy all of it to float64 on every call (35 ms of a 10k-user
        # request at 5,000 items, growing with the matrix; bench/results/retrieval_tail.md).
        touched, columns = np.unique(np.concatenate(columns), return_inverse=True)
        weights = sparse.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), columns.reshape(-1))), shape=(len(histories), len(touched))
        )  # a repeated item adds its weights
        return np.asarray((weights @ self.similarity[touched]).toarray(), dtype=np.float64)


def feature_weights(knowledge: KnowledgeGraph, relation_weights: Mapping[str, float]) -> np.ndarray:
    """[F] IDF over the items with any feature, times the prior of the feature's relation word."""
    features = knowledge.features
    df = np.bincount(features.indices, minlength=features.shape[1]).astype(np.float64)
    linked = max(int(np.count_nonzero(np.diff(features.indptr))), 1)
    idf = np.log(linked / np.maximum(df, 1.0))  # a feature every item has weighs 0
    words, codes = np.unique(knowledge.feature_relations, return_inverse=True)
    prior = np.array([relation_weights.get(word, 1.0) for word in words.tolist()], dtype=np.float64)
    return idf * prior[codes.reshape(-1)] if len(words) else idf


def knowledge_similarity(
    features: sparse.csr_matrix,
    weights: np.ndarray,
    neighbours: int | None,
    pair_budget: int = PAIR_BUDGET,
    block_entries: int = BLOCK_ENTRIES,
) -> sparse.csr_matrix:
    """[N, N] float32 cosine of weighted feature rows, zero diagonal, each row's best
    ``neighbours`` kept; built block of rows by block of rows (each block's products bounded by
    ``block_entries``) so memory stays at one block plus the pruned result."""
    n = features.shape[0]
    weighted = sparse.csr_matrix(features, dtype=np.float64, copy=True)
    weighted.data *= weights[weighted.indices]
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())  # [N] over ALL features
    df = np.bincount(features.indices, minlength=features.shape[1])
    used = _multiplied(df, weights, pair_budget)
    unit = sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ weighted[:, used]  # [N, K] rows over their norms
    unit = sparse.csr_matrix(unit, dtype=np.float32)
    unit.eliminate_zeros()
    transposed = unit.T.tocsr()  # [K, N]
    cost = np.asarray(
        unit.astype(bool).astype(np.float64) @ df[used].astype(np.float64)
    ).ravel()  # [N] products per row
    pieces = []
    start = 0
    while start < n:
        # The most rows whose products fit in one block (at least one row).
        stop = max(start + 1, int(np.searchsorted(np.cumsum(cost[start:]), block_entries, side="right")) + start)
        stop = min(stop, n)
        block = (unit[start:stop] @ transposed).tocsr()  # [b, N]
        rows = np.repeat(np.arange(start, stop), np.diff(block.indptr))
        block.data[block.indices == rows] = 0.0  # an item is not its own neighbour
        block.eliminate_zeros()
        pieces.append(block if neighbours is None else top_per_row(block, neighbours))
        start = stop
    if not pieces:
        return sparse.csr_matrix((n, n), dtype=np.float32)
    return sparse.vstack(pieces, format="csr").astype(np.float32)


def top_per_row(matrix: sparse.csr_matrix, neighbours: int) -> sparse.csr_matrix:
    """Each row's ``neighbours`` largest entries of a CSR matrix with values in [0, ~1] (cosines);
    entries stay in column order. ``base.keep_top_per_row`` for this case, 3-4x faster: one
    argsort of a float64 key (row * 4 - value) instead of a lexsort of three keys; ties between
    equal values of a row keep no particular (but a fixed) order."""
    lengths = np.diff(matrix.indptr)
    if not len(lengths) or lengths.max() <= neighbours:
        return matrix
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.float64), lengths)
    order = np.argsort(rows * 4.0 - matrix.data)  # row by row, best first (values never reach 4)
    rank = np.arange(len(order)) - np.repeat(matrix.indptr[:-1], lengths)
    kept = np.sort(order[rank < neighbours])
    indptr = np.concatenate([[0], np.cumsum(np.minimum(lengths, neighbours))])
    return sparse.csr_matrix((matrix.data[kept], matrix.indices[kept], indptr), shape=matrix.shape)


def _multiplied(df: np.ndarray, weights: np.ndarray, pair_budget: int) -> np.ndarray:
    """Feature columns that enter ``X @ X.T``: on at least two items, of non-zero weight, and the
    rarest first while the sum of df^2 stays within ``pair_budget`` (a df is taken whole or not)."""
    candidate = (df >= 2) & (weights > 0)
    values = np.sort(df[candidate])
    if not len(values):
        return np.flatnonzero(candidate)
    spent = np.cumsum(values.astype(np.float64) ** 2)
    fits = values[spent <= pair_budget]
    if len(fits) == len(values):
        return np.flatnonzero(candidate)
    limit = fits.max() if len(fits) else 0
    if len(fits) and fits.max() == values[len(fits)]:  # the cut falls inside a df value: drop that value whole
        limit = values[values < fits.max()].max(initial=0)
    return np.flatnonzero(candidate & (df <= limit))
