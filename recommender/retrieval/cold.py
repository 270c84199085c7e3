"""Scores for items the logs have never seen, through their content neighbours among items they have.

    bridge = ColdItemBridge.build(content_vectors, seen=train_counts > 0)
    scores = bridge.fill(hybrid_scores)     # [B, N]: unseen columns replaced, seen ones untouched

A film with no events has zero co-occurrence and popularity and an untrained sequential row, so a
blend of those reads it as disliked. The bridge gives it instead the weighted mean of the user's
scores for its K nearest seen films in content space (cosine of the item vectors, weights the
positive cosines normalised to sum to one): a person whose first stage likes the films nearest to
a new one in what it is gets that new one ranked where those films would be. The scale is the
first stage's own, so a new film competes with old ones in the whole catalogue too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEIGHBOURS = 20  # fixed before any cold-start run; not tuned on test users


@dataclass(frozen=True)
class ColdItemBridge:
    """Unseen catalogue rows and, for each, its nearest seen rows and their weights."""

    cold_rows: np.ndarray  # [C] int64 rows with no training event
    neighbour_rows: np.ndarray  # [C, K] int64 seen rows, nearest first
    neighbour_weights: np.ndarray  # [C, K] float64, each row sums to 1 (or 0 when no neighbour is similar)

    @classmethod
    def build(
        cls, content: np.ndarray, seen: np.ndarray, neighbours: int = NEIGHBOURS, block: int = 4096
    ) -> ColdItemBridge:
        """Nearest seen neighbours of every unseen row by cosine of ``content`` ([N, D]; ``seen`` [N] bool).

        Blocks of unseen rows keep memory at block x seen floats for big catalogues."""
        content = np.asarray(content, dtype=np.float32)
        seen = np.asarray(seen, dtype=bool)
        if content.shape[0] != seen.shape[0]:
            raise ValueError(f"content has {content.shape[0]} rows but seen has {seen.shape[0]}.")
        unit = content / np.maximum(np.linalg.norm(content, axis=1, keepdims=True), 1e-12)
        cold, warm = np.flatnonzero(~seen), np.flatnonzero(seen)
        k = min(neighbours, len(warm))
        rows = np.zeros((len(cold), k), dtype=np.int64)
        weights = np.zeros((len(cold), k))
        for start in range(0, len(cold) if k else 0, block):
            part = cold[start : start + block]
            sims = unit[part] @ unit[warm].T  # [b, W]
            if k < len(warm):
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            else:
                top = np.tile(np.arange(k), (len(part), 1))
            order = np.take_along_axis(-sims, top, axis=1).argsort(axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)  # [b, k] nearest first
            positive = np.clip(np.take_along_axis(sims, top, axis=1), 0.0, None).astype(np.float64)
            total = positive.sum(axis=1, keepdims=True)
            rows[start : start + len(part)] = warm[top]
            normalised = np.divide(positive, total, out=np.zeros_like(positive), where=total > 0)
            weights[start : start + len(part)] = normalised
        return cls(cold.astype(np.int64), rows, weights)

    def __len__(self) -> int:
        return len(self.cold_rows)

    def refreshed(self, seen: np.ndarray, first_new: int, new_content: np.ndarray | None) -> ColdItemBridge:
        """The bridge after an incremental update (``seen`` [N'] over the extended catalogue): rows
        that have events now leave it, kept rows keep their neighbours (rows of a catalogue are never
        renumbered by an update), and rows from ``first_new`` on that are still unseen join it,
        bridged by ``new_content`` ([N', D]; the update has no LLM, so the sentence vectors alone).
        A new neighbour that gained events is not searched for old rows until a full rebuild."""
        seen = np.asarray(seen, dtype=bool)
        keep = ~seen[self.cold_rows]
        parts = [ColdItemBridge(self.cold_rows[keep], self.neighbour_rows[keep], self.neighbour_weights[keep])]
        if new_content is not None and (~seen[first_new:]).any():
            every = ColdItemBridge.build(new_content, seen)
            new = every.cold_rows >= first_new
            added = ColdItemBridge(every.cold_rows[new], every.neighbour_rows[new], every.neighbour_weights[new])
            width = min(added.neighbour_rows.shape[1], self.neighbour_rows.shape[1])
            # Equal widths unless one side has fewer seen films than NEIGHBOURS; fill() renormalises.
            parts = [ColdItemBridge(p.cold_rows, p.neighbour_rows[:, :width], p.neighbour_weights[:, :width])
                     for p in (parts[0], added)]  # fmt: skip
        return ColdItemBridge(
            np.concatenate([p.cold_rows for p in parts]),
            np.concatenate([p.neighbour_rows for p in parts]),
            np.concatenate([p.neighbour_weights for p in parts]),
        )

    def fill(self, scores: np.ndarray) -> np.ndarray:
        """[B, N] scores with every unseen column set to the weighted mean of its neighbours' scores
        in the same row (in place; also returned). A row's -inf (masked history) stays out of means."""
        if not len(self.cold_rows):
            return scores
        neighbour_scores = scores[:, self.neighbour_rows]  # [B, C, K]
        finite = np.isfinite(neighbour_scores)
        weights = np.where(finite, self.neighbour_weights[None], 0.0)  # [B, C, K]
        total = weights.sum(-1)  # [B, C]
        mean = np.where(finite, neighbour_scores, 0.0) * weights
        filled = np.divide(mean.sum(-1), total, out=np.zeros_like(total), where=total > 0)
        # With no similar seen neighbour, the lowest score of the row: unknown, not favoured.
        floor = np.nanmin(np.where(np.isfinite(scores), scores, np.nan), axis=1, keepdims=True)
        scores[:, self.cold_rows] = np.where(total > 0, filled, floor)
        return scores


__all__ = ["NEIGHBOURS", "ColdItemBridge"]
