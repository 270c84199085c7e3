"""Counterfactual variants of a ranking example, for the influence term of the loss.

An explanation names a shown film as an influence only when removing it lowers the item's score by
more than two shown films trading places does (``recommender.explain``). A ranking loss alone never
asks for either. With ``data.counterfactual`` a share of the ranking examples carries two more
histories, rendered by the same prompt with the same candidates (``finetune.encoding.batch_loss``
reads them when ``train.influence_weight`` > 0):

- **removed**: the shown film most co-watched with the target (the first stage's co-occurrence
  similarity, the collaborative link an explanation states) is removed, so the next-older film
  enters the prompt exactly as the served drop-one ablation does; the loss wants the target's
  log-probability to fall by ``train.influence_margin``;
- **reordered**: one neutral swap of two shown films (the evidence digits unchanged, the pairs the
  served noise floor draws from, ``recommender.influence.neutral_swaps``); the loss wants the target's
  log-probability unchanged.

The co-occurrence similarity is built from the training events of the first stage that ranks the
example (never its target's own event), so the film it picks is what a person could be told.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.influence import neutral_swaps, swapped


@dataclass(frozen=True)
class Counterfactual:
    """The two variant histories of one example (catalogue rows, oldest first)."""

    removed: np.ndarray  # without the shown film most co-watched with the target
    reordered: np.ndarray  # two shown films traded places, evidence unchanged
    removed_row: int  # the film taken out


def linked_position(history: np.ndarray, shown: int, target: int, similarity) -> int | None:
    """Position in ``history`` of the shown film with the largest co-occurrence similarity to
    ``target`` (None when no shown film co-occurs with it)."""
    start = max(0, len(history) - shown)
    column = similarity[history[start:]][:, [target]]
    values = np.asarray(column.toarray() if hasattr(column, "toarray") else column, dtype=np.float64).ravel()
    if len(values) == 0 or values.max() <= 0:
        return None
    return start + int(np.argmax(values))


def counterfactual(history, target: int, candidates: np.ndarray, evidence, shown: int, rng) -> Counterfactual | None:
    """The removed and reordered histories of one example, or None when no shown film co-occurs
    with the target or no swap of two shown films leaves the evidence digits unchanged.

    Args:
        evidence: ``CowatchEvidence`` of the first stage that ranked the example (digits + similarity).
        shown: titles the prompt shows (``RankingPrompt.max_history``).
        rng: picks the swap among the neutral ones.
    """
    history = np.asarray(history, dtype=np.int64)
    position = linked_position(history, shown, target, evidence.similarity)
    if position is None:
        return None
    pairs = neutral_swaps(history, shown, lambda h: {"recent": evidence.recent(h, candidates)})
    if not pairs:
        return None
    pair = pairs[int(rng.integers(len(pairs)))]
    return Counterfactual(np.delete(history, position), swapped(history, pair), int(history[position]))
