"""Exact top-K among allowed items: a masked argsort, and an inner-product index (numpy, or FAISS
for big catalogues). Pure numpy; FAISS is optional and imported only when a catalogue is that large."""

from __future__ import annotations

import numpy as np

from recommender.evaluation.metrics import top_k

FAISS_THRESHOLD = 200_000  # catalogues at least this large search with FAISS when it is installed


def masked_top_k(scores: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and scores of the ``k`` best allowed items of [N] ``scores``, ties in row order."""
    rows = top_k(scores, k, mask=np.flatnonzero(~allowed))
    return rows, np.asarray(scores, dtype=np.float64)[rows]


class VectorIndex:
    """Exact inner-product search over [N, D] vectors: numpy below ``threshold``, FAISS above.

    Both backends are exact (FAISS ``IndexFlatIP``), so they return the same top-K; FAISS
    wins by doing the top-K selection in C++ with a bitmap filter instead of a full argsort.
    """

    def __init__(self, vectors: np.ndarray, threshold: int = FAISS_THRESHOLD):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # [N, D]
        self.backend = "numpy"
        self._faiss = None
        if len(self.vectors) >= threshold and len(self.vectors) > 0:
            try:
                import faiss  # optional: pip install faiss-cpu
            except ImportError:
                faiss = None
            if faiss is not None:
                self._faiss = faiss
                self._index = faiss.IndexFlatIP(self.vectors.shape[1])
                self._index.add(self.vectors)
                self.backend = "faiss"

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows and inner products for one [D] query among ``allowed`` [N] rows."""
        if self._faiss is None:
            scores = self.vectors @ np.asarray(query, dtype=np.float32)  # [N]
            mask = allowed if allowed is not None else np.ones(len(scores), dtype=bool)
            return masked_top_k(scores, k, mask)
        params = None
        if allowed is not None and not allowed.all():
            bitmap = np.packbits(allowed, bitorder="little")
            params = self._faiss.SearchParameters(sel=self._faiss.IDSelectorBitmap(bitmap))
        k = min(k, len(self.vectors))
        distances, labels = self._index.search(np.asarray(query, dtype=np.float32)[None, :], k, params=params)
        keep = labels[0] >= 0  # FAISS pads with -1 when fewer than k rows pass
        return labels[0][keep].astype(np.int64), distances[0][keep].astype(np.float64)
