"""Sparse item-item co-occurrence similarity from a training CSR (the math of ItemKNN).

Users are rows of a binary [U, N] matrix; the similarity is its shrunk cosine, computed in blocks of
item rows, each pruned before the next, so memory stays bounded on logs of millions of events.
Pure numpy and scipy.sparse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLOCK_ENTRIES = 20_000_000  # co-occurrence entries (upper bound) computed at once before pruning
_EMPTY_ROWS = np.zeros(0, dtype=np.int64)


def sequences_to_csr(sequences: dict[str, np.ndarray] | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(indptr [U + 1], items [T]) of per-user row sequences, the layout of ``split.train_csr()``."""
    sequences = list(sequences.values()) if isinstance(sequences, dict) else list(sequences)
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if sequences else _EMPTY_ROWS
    return indptr, items


def cooccurrence_similarity(
    indptr: np.ndarray,
    items: np.ndarray,
    n: int,
    shrink: float = 0.0,
    neighbours: int | None = None,
    block_entries: int = BLOCK_ENTRIES,
):
    """Sparse [N, N] shrunk cosine of item co-occurrence: ``users(i, j) / (sqrt(users(i) users(j)) + shrink)``,
    zero diagonal, each row pruned to its ``neighbours`` largest entries (None: all).

    Users are counted once per item (repeated events count once). Rows are computed in blocks
    whose worst-case size (sum over the block's items of their users' history lengths, capped at
    N per row) stays under ``block_entries``.
    """
    from scipy import sparse

    index = np.int32 if max(len(items), n) < 2**31 else np.int64  # int32 indices: half the memory, faster products
    indptr = np.asarray(indptr, dtype=index)
    items = np.asarray(items, dtype=index)
    n_users = len(indptr) - 1
    x = sparse.csr_matrix((np.ones(len(items), dtype=np.float32), items, indptr), shape=(n_users, n))
    x.sum_duplicates()
    x.data[:] = 1.0  # [U, N] binary
    xt = x.T.tocsr()  # [N, U]
    counts = np.diff(xt.indptr).astype(np.float64)  # [N] users per item (the diagonal of X^T X)
    work = np.minimum(xt @ np.diff(x.indptr).astype(np.float64), n)  # [N] bound on each row's entries
    pieces, start = [], 0
    cumulative = np.cumsum(work)
    while start < n:
        base = cumulative[start - 1] if start else 0.0
        stop = max(int(np.searchsorted(cumulative, base + block_entries, side="right")), start + 1)
        stop = min(stop, n)
        co = (xt[start:stop] @ x).tocsr()  # [b, N] users who had both items (float32: exact below 2^24)
        co.sort_indices()
        rows = np.repeat(np.arange(start, stop), np.diff(co.indptr))
        keep = co.indices != rows  # zero diagonal
        cols = co.indices[keep].astype(np.int64)
        rows = rows[keep]
        values = co.data[keep].astype(np.float64) / (np.sqrt(counts[rows] * counts[cols]) + shrink)
        block = sparse.csr_matrix((values, cols, _indptr_of(rows - start, stop - start)), shape=(stop - start, n))
        pieces.append(block if neighbours is None else keep_top_per_row(block, neighbours))
        start = stop
    if not pieces:
        return sparse.csr_matrix((n, n))
    return sparse.vstack(pieces, format="csr")


def _indptr_of(rows: np.ndarray, n_rows: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])


def keep_top_per_row(matrix, neighbours: int):
    """CSR copy of ``matrix`` with each row's ``neighbours`` largest entries; ties keep the lower
    column. Vectorised: one lexsort of (row, -value, column) for the whole matrix, no Python loop."""
    from scipy import sparse

    matrix = sparse.csr_matrix(matrix)
    lengths = np.diff(matrix.indptr)
    if not len(lengths) or lengths.max() <= neighbours:
        return matrix.copy()
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    order = np.lexsort((matrix.indices, -matrix.data, rows))  # row by row, best first
    rank = np.arange(len(order)) - matrix.indptr[rows]  # rows[order] == rows: the sort keeps rows grouped
    kept = np.sort(order[rank < neighbours])  # positions, in the original within-row order
    indptr = np.concatenate([[0], np.cumsum(np.minimum(lengths, neighbours))])
    return sparse.csr_matrix((matrix.data[kept], matrix.indices[kept], indptr), shape=matrix.shape)
