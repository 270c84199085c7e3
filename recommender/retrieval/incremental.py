"""Refresh a built hybrid retriever after new interactions and items, without rebuilding it.

Each component gets a new object (the old one is never mutated, so a failed update leaves the
served retriever as it was):
- popularity: train-split counts recounted (a bincount);
- co-occurrence: ``refresh_cooccurrence``. Unpruned (catalogues up to 5,000 items, ML-100k): the
  co-count matrix C is recovered from the stored similarity (integers, so exactly), updated by
  the changed users' rows only, dC = D^T X + X^T D + D^T D (X: their old train items, D: the items
  their train set gained or lost), and divided by the new per-item user counts: equal to a full
  rebuild up to float rounding. Pruned (larger catalogues): the rows of items whose co-counts
  changed are recomputed from the new train split and pruned; the other rows keep their entries,
  rescaled for the columns whose user counts changed (the kept top-N of those rows is not revisited);
- embeddings: only the new items are encoded, the others' vectors are reused;
- sequential model: not retrained. New events reach it as history (it reads each user's latest
  items); new items have no row in it, so they are left out of its input and scored at its
  lowest score for the user (``FoldedSequential``); ``retrain_due`` says when to retrain.
The blend weights are kept (they were tuned on validation users of the data the models saw).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.data import Catalog, Item
from recommender.data.split import LeaveOneOutSplit
from recommender.protocols import Encoder
from recommender.retrieval.base import (
    BaseRetriever,
    CooccurrenceRetriever,
    EmbeddingRetriever,
    HybridRetriever,
    PopularityRetriever,
    cooccurrence_similarity,
    keep_top_per_row,
)

RETRAIN_EVENT_SHARE = 0.10  # retrain the sequential model once new events reach 10% of those it trained on
RETRAIN_ITEM_SHARE = 0.02  # ... or once 2% of the catalogue are items it has never seen


@dataclass(frozen=True)
class RefreshReport:
    """What an incremental refresh changed."""

    users: int  # users whose train sequence changed
    rows_touched: int  # co-occurrence rows whose co-counts changed
    new_items: int
    encoded_items: int  # items sent to the encoder (the new ones without stored vectors)
    exact_cooccurrence: bool  # True: equal to a full rebuild (unpruned); False: pruned, approximate


def train_sets(split: LeaveOneOutSplit, users: Sequence[str]) -> list[np.ndarray]:
    """Distinct train item rows of each user (empty for users the split does not know)."""
    return [np.unique(split.train(u)) if u in split.sequences else np.zeros(0, dtype=np.int64) for u in users]


def user_counts(split: LeaveOneOutSplit, n_items: int) -> np.ndarray:
    """[N] distinct train users per item (the co-occurrence diagonal)."""
    from scipy import sparse

    indptr, items = split.train_csr()
    x = sparse.csr_matrix((np.ones(len(items), dtype=np.float32), items, indptr), shape=(len(indptr) - 1, n_items))
    x.sum_duplicates()
    return np.diff(x.tocsc().indptr).astype(np.float64)


def _binary(rows: Sequence[np.ndarray], n_items: int, values: Sequence[np.ndarray] | None = None):
    from scipy import sparse

    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    cols = np.concatenate(list(rows)).astype(np.int64) if len(rows) else np.zeros(0, dtype=np.int64)
    data = np.concatenate(list(values)) if values is not None and len(rows) else np.ones(len(cols))
    return sparse.csr_matrix((data.astype(np.float64), cols, indptr), shape=(len(rows), n_items))


def refresh_cooccurrence(
    old: CooccurrenceRetriever,
    catalog: Catalog,
    old_split: LeaveOneOutSplit,
    new_split: LeaveOneOutSplit,
    users: Sequence[str],
) -> tuple[CooccurrenceRetriever, int, bool]:
    """The co-occurrence retriever of ``new_split``, from ``old``'s similarity and the train sets of
    ``users`` (every user whose events changed). Returns (retriever, rows touched, exact)."""
    from scipy import sparse

    n = len(catalog)
    before, after = train_sets(old_split, users), train_sets(new_split, users)
    gained = [np.setdiff1d(a, b, assume_unique=True) for a, b in zip(after, before)]
    lost = [np.setdiff1d(b, a, assume_unique=True) for a, b in zip(after, before)]
    delta = _binary(
        [np.concatenate([g, l_]) for g, l_ in zip(gained, lost)],
        n,
        [np.concatenate([np.ones(len(g)), -np.ones(len(l_))]) for g, l_ in zip(gained, lost)],
    )  # [U', N] D = X_new - X_old
    x_old = _binary(before, n)  # [U', N]
    change = (delta.T @ x_old + x_old.T @ delta + delta.T @ delta).tocsr()  # [N, N] dC
    change.eliminate_zeros()
    touched = np.flatnonzero(np.diff(change.indptr) > 0)
    counts_old = np.zeros(n)
    counts_old[: old.similarity.shape[0]] = user_counts(old_split, old.similarity.shape[0])
    counts = counts_old + np.asarray(delta.sum(axis=0)).ravel()  # [N]
    similarity = old.similarity.tocsr(copy=True)
    similarity.resize((n, n))
    if old.neighbours is None:
        co = _co_counts(similarity, counts_old, old.shrink) + change
        co.setdiag(0)
        co.eliminate_zeros()
        similarity = _normalise(co, counts, old.shrink)
        exact = True
    else:
        rows = np.union1d(touched, np.flatnonzero(counts != counts_old))
        similarity = _rescale_columns(similarity, counts_old, counts, old.shrink)
        indptr, items = new_split.train_csr()
        fresh = _rows_of(indptr, items, n, rows, old.shrink, old.neighbours)
        keep = np.ones(n)
        keep[rows] = 0.0
        similarity = (sparse.diags(keep) @ similarity + fresh).tocsr()
        similarity.eliminate_zeros()
        exact = False
    refreshed = copy.copy(old)  # same window / neighbours / shrink; a new object
    refreshed.catalog, refreshed.similarity = catalog, similarity
    return refreshed, len(touched), exact


def _co_counts(similarity, counts: np.ndarray, shrink: float):
    """Integer co-counts users(i, j) recovered from a shrunk cosine (exact: they are integers)."""
    co = similarity.tocoo()
    values = np.rint(co.data * (np.sqrt(counts[co.row] * counts[co.col]) + shrink))
    from scipy import sparse

    return sparse.csr_matrix((values, (co.row, co.col)), shape=similarity.shape)


def _normalise(co, counts: np.ndarray, shrink: float):
    """Shrunk cosine of [N, N] co-counts; the arithmetic of ``cooccurrence_similarity``."""
    from scipy import sparse

    co = co.tocsr()
    co.sort_indices()
    rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
    values = co.data.astype(np.float64) / (np.sqrt(counts[rows] * counts[co.indices]) + shrink)
    return sparse.csr_matrix((values, co.indices.copy(), co.indptr.copy()), shape=co.shape)


def _rescale_columns(similarity, counts_old: np.ndarray, counts: np.ndarray, shrink: float):
    """Entries (i, j) re-divided by the new count of column j (rows i keep their own count)."""
    similarity = similarity.tocsr(copy=True)
    rows = np.repeat(np.arange(similarity.shape[0]), np.diff(similarity.indptr))
    cols = similarity.indices
    old = np.sqrt(counts_old[rows] * counts_old[cols]) + shrink
    new = np.sqrt(counts_old[rows] * counts[cols]) + shrink
    similarity.data *= np.divide(old, new, out=np.zeros_like(old), where=new > 0)
    return similarity


def _rows_of(indptr: np.ndarray, items: np.ndarray, n: int, rows: np.ndarray, shrink: float, neighbours: int):
    """[N, N] with only ``rows`` filled: those rows of the pruned similarity of the train CSR."""
    from scipy import sparse

    full = cooccurrence_similarity(indptr, items, n, shrink, None) if len(rows) else sparse.csr_matrix((n, n))
    select = np.zeros(n)
    select[rows] = 1.0
    return keep_top_per_row(sparse.diags(select) @ full, neighbours)


class FoldedSequential(BaseRetriever):
    """A trained sequential retriever serving a grown catalogue without retraining: history items
    it has no row for are left out of its input, and items it has never seen get the user's lowest
    score (so its z-scores neither favour nor hide them; the text and co-occurrence parts can)."""

    name = "sequential"

    def __init__(self, catalog: Catalog, inner: BaseRetriever, known_items: int):
        super().__init__(catalog)
        self.inner, self.known_items = inner, known_items
        self.build_seconds = getattr(inner, "build_seconds", None)

    def config(self) -> dict[str, object]:
        return self.inner.config()

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        known = [np.asarray(h, dtype=np.int64)[np.asarray(h, dtype=np.int64) < self.known_items] for h in histories]
        scores = self.inner.score_batch(known)  # [B, known]
        out = np.empty((len(histories), len(self.catalog)))  # [B, N]
        out[:, : self.known_items] = scores
        out[:, self.known_items :] = scores.min(axis=1, keepdims=True) if scores.shape[1] else 0.0
        return out


def fold_sequential(old: BaseRetriever, catalog: Catalog) -> BaseRetriever:
    """``old`` unchanged when the catalogue did not grow, else wrapped in ``FoldedSequential``."""
    if isinstance(old, FoldedSequential):
        return FoldedSequential(catalog, old.inner, old.known_items)
    if len(old.catalog) == len(catalog):
        refreshed = copy.copy(old)
        refreshed.catalog = catalog
        return refreshed
    return FoldedSequential(catalog, old, len(old.catalog))


def extend_embeddings(
    old: EmbeddingRetriever,
    catalog: Catalog,
    popularity: np.ndarray,
    new_vectors: np.ndarray | None = None,
    encoder: Encoder | None = None,
) -> tuple[EmbeddingRetriever, np.ndarray]:
    """The embedding retriever over ``catalog``: old vectors reused, the items after them taken
    from ``new_vectors`` or encoded. Returns the retriever and the [M, D] vectors of the new items."""
    from recommender.retrieval.embeddings import render_item_text

    added: list[Item] = list(catalog.items[len(old.catalog) :])
    if new_vectors is None or len(new_vectors) != len(added):
        encoder = encoder or old.encoder
        if added and encoder is None:
            raise ValueError("new items need an encoder to be embedded; pass one (SentenceEncoder()).")
        texts = [render_item_text(item) for item in added]
        new_vectors = (
            np.asarray(encoder.encode(texts), dtype=np.float32) if added else np.zeros((0, old.vectors.shape[1]))
        )
    vectors = np.concatenate([old.vectors, np.asarray(new_vectors, dtype=np.float32)]) if added else old.vectors
    refreshed = EmbeddingRetriever(
        catalog,
        vectors,
        encoder=old.encoder or encoder,
        popularity=popularity,
        decay=old.decay,
        max_history=old.max_history,
        query_weight=old.query_weight,
    )
    return refreshed, np.asarray(new_vectors, dtype=np.float32)


def refresh_hybrid(
    hybrid: HybridRetriever,
    catalog: Catalog,
    old_split: LeaveOneOutSplit,
    new_split: LeaveOneOutSplit,
    users: Sequence[str],
    new_vectors: np.ndarray | None = None,
    encoder: Encoder | None = None,
) -> tuple[HybridRetriever, np.ndarray, RefreshReport]:
    """A new hybrid retriever for ``new_split`` over ``catalog`` (the old catalogue + appended items),
    refreshed from ``hybrid`` component by component; weights kept; its cold-item bridge carried
    over (``ColdItemBridge.refreshed``: films that gained events leave it, new unseen films join).

    Returns the retriever, the new items' vectors (to store) and what changed."""
    popularity = new_split.item_popularity(len(catalog))
    components: dict[str, BaseRetriever] = {}
    rows_touched, exact, text, vectors = 0, True, None, np.zeros((0, 0), dtype=np.float32)
    for name, old in hybrid.components.items():
        if isinstance(old, PopularityRetriever):
            components[name] = PopularityRetriever(catalog, popularity)
        elif isinstance(old, CooccurrenceRetriever):
            components[name], rows_touched, exact = refresh_cooccurrence(old, catalog, old_split, new_split, users)
        elif isinstance(old, EmbeddingRetriever):
            components[name], vectors = extend_embeddings(old, catalog, popularity, new_vectors, encoder)
        elif old.name == "sequential":
            components[name] = fold_sequential(old, catalog)
        else:
            raise ValueError(f"component {name!r} ({type(old).__name__}) cannot be refreshed incrementally; rebuild.")
    if hybrid.text is not None:
        text = next((c for c in components.values() if isinstance(c, EmbeddingRetriever)), None)
    refreshed = HybridRetriever(
        catalog, components, hybrid.weights, text=text,
        query_weight=hybrid.query_weight, cold_query_weight=hybrid.cold_query_weight,
    )  # fmt: skip
    if hybrid.cold_bridge is not None:
        content = text.vectors if text is not None else None
        refreshed.cold_bridge = hybrid.cold_bridge.refreshed(popularity > 0, len(hybrid.catalog), content)
    new_items = len(catalog) - len(hybrid.catalog)
    encoded = new_items if (new_vectors is None or len(new_vectors) != new_items) and text is not None else 0
    return refreshed, vectors, RefreshReport(len(users), rows_touched, new_items, encoded, exact)


def retrain_due(trained_events: int, trained_items: int, new_events: int, new_items: int) -> str:
    """Why the sequential model should be retrained now, or "" when folding in is still fine."""
    reasons = []
    if trained_events and new_events >= RETRAIN_EVENT_SHARE * trained_events:
        reasons.append(f"{new_events} new events >= {RETRAIN_EVENT_SHARE:.0%} of the {trained_events} it trained on")
    if trained_items and new_items >= RETRAIN_ITEM_SHARE * trained_items:
        reasons.append(f"{new_items} new items >= {RETRAIN_ITEM_SHARE:.0%} of the {trained_items} it knows")
    return "; ".join(reasons)


def retrain_outlook(trained_events: int, trained_items: int, new_events: int, new_items: int) -> str:
    """One line on the sequential model: why its retrain is due (``retrain_due``), or how many more
    interactions or new items until it is."""
    due = retrain_due(trained_events, trained_items, new_events, new_items)
    if due:
        return f"sequential model: retrain due ({due}); until then it reads the new events only as history"
    events_left = math.ceil(RETRAIN_EVENT_SHARE * trained_events) - new_events
    items_left = math.ceil(RETRAIN_ITEM_SHARE * trained_items) - new_items
    return (
        f"sequential model: no retrain due; due after {events_left} more interactions "
        f"({RETRAIN_EVENT_SHARE:.0%} of the {trained_events} it trained on) or {items_left} more new items "
        f"({RETRAIN_ITEM_SHARE:.0%} of {trained_items})"
    )
