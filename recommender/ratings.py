"""Ratings: the expected rating (1..5) of an item for a rated history, through the rating prompt.

    ratings = Ratings(histories, scorer)               # what ``Recommender.ratings`` holds
    ratings.predict(["Toy Story", "Fargo"], "Heat", [5, 3])
    ratings.predict(None, "50", user_id="1")          # a dataset user's rated events before item 50
    ratings.influences("50", user_id="1", window=10)  # drop-one effect of each rated item
    ratings.scores(histories, values, targets)        # [B], one batched scorer call (evaluation)

The prompt (``llm.rating_prompt.RatingPrompt``) shows the evidence a rating depends on: the user's
mean and count, the item's mean and count in the train split, the user's ratings of the most
similar items, the latest ratings. The ``Recommender`` facade keeps ``predict_rating``,
``rating_influences`` and ``rating_scores`` as one-line delegations to this object.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from recommender.histories import Histories
from recommender.influence import drop_one_influence
from recommender.llm.rating_prompt import RatingPrompt, RatingRequest, RatingStatistics, check_ratings, rate_requests

NO_SCORER = "this Recommender was built without an LLM (retrieval_only=True); load one to score."


class Ratings:
    """Rating predictions and their drop-one influences for one dataset and one scorer.

    Args:
        histories: the dataset's histories (item references, users' rated events).
        scorer: an ``LLMScorer`` (anything with ``rating_logits``); None raises on the first call.
    """

    def __init__(self, histories: Histories, scorer: Any = None):
        self.histories = histories
        self.catalog = histories.catalog
        self.split = histories.split
        self.scorer = scorer

    @cached_property
    def prompt(self) -> RatingPrompt:
        """The rating prompt every rating call renders and reads (assign another to change it)."""
        return RatingPrompt()

    @cached_property
    def statistics(self) -> RatingStatistics | None:
        """Item means, counts and co-rating similarities of the train split (built on first use;
        None when the dataset has no ratings)."""
        if not self.split.ratings:
            return None
        return RatingStatistics.from_split(self.split, len(self.catalog))

    def predict(
        self,
        history: Sequence[str | int] | None,
        item: str | int,
        ratings: Sequence[float] | None = None,
        *,
        user_id: str | int | None = None,
    ) -> float:
        """Expected rating (1..5) of ``item``.

        Args:
            history: item ids or titles, oldest first; unknown ones are ignored with their ratings.
            ratings: one rating from 1 to 5 per history entry (required with a non-empty history).
            user_id: instead of ``history`` and ``ratings``: a dataset user's rated events before
                their first event on ``item`` (all of them when they never met it).
        """
        self._require_scorer()
        target = self._target(item)
        rows, values = self._rated_history(history, ratings, user_id, target)
        return float(self.scores([rows], [values], [target])[0])

    def influences(
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
        rated h. Arguments as ``predict``.

        Returns:
            The rating and, oldest first, (item id, the user's rating of it, influence) per ablated item.
        """
        self._require_scorer()
        target = self._target(item)
        rows, values = self._rated_history(history, ratings, user_id, target)
        base = self.scores([rows], [values], [target])  # [1]

        def score(variants: list[np.ndarray]) -> list[np.ndarray]:
            # The "history" handed to drop_one_influence is positions, so ratings drop with their item.
            predicted = self.scores(
                [rows[v] for v in variants], [values[v] for v in variants], [target] * len(variants)
            )
            return [np.array([value]) for value in predicted]

        positions, effect = drop_one_influence(score, np.arange(len(rows)), window, base)
        influences = [
            (self.catalog.ids[int(rows[p])], float(values[p]), float(effect[i, 0])) for i, p in enumerate(positions)
        ]
        return float(base[0]), influences

    def scores(
        self, histories: Sequence[np.ndarray], ratings: Sequence[np.ndarray], targets: Sequence[int]
    ) -> np.ndarray:
        """[B] expected ratings, one batched scorer call: per user, catalogue rows oldest first, their
        ratings (checked to be 1..5) and the target row; evidence from the train split."""
        scorer = self._require_scorer()
        stats = self.statistics
        requests = []
        for history, values, target in zip(histories, ratings, targets):
            if stats is not None:
                requests.append(stats.request(self.catalog, history, values, int(target)))
            else:  # a dataset without ratings: the given ratings alone
                rated = [(self.catalog.items[int(h)], float(v)) for h, v in zip(history, values)]
                requests.append(RatingRequest(rated, self.catalog.items[int(target)]))
        return rate_requests(scorer, self.prompt, requests)

    def _require_scorer(self) -> Any:
        if self.scorer is None:
            raise ValueError(NO_SCORER)
        return self.scorer

    def _target(self, item: str | int) -> int:
        found, unknown = self.histories.resolve([item])
        if unknown or not found:
            name = self.histories.dataset.name
            raise ValueError(f"unknown item {item!r}: it matches no item id or exact title of {name}.")
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
            return self._user_ratings(user_id, target)
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
        found = [self.histories.resolve([reference])[0] for reference in history]
        keep = [i for i, ids in enumerate(found) if ids]
        rows = np.array([self.catalog.index[found[i][0]] for i in keep], dtype=np.int64)
        return rows, values[keep]

    def _user_ratings(self, user_id: str | int, target: int) -> tuple[np.ndarray, np.ndarray]:
        """A dataset user's rated events before their first event on ``target`` (all when none)."""
        self.histories.user(user_id)  # an unknown user fails here with one sentence
        user = str(user_id)
        if user not in self.split.ratings:
            name = self.histories.dataset.name
            raise ValueError(f"{name} has no ratings, so user {user!r} has no rated history.")
        sequence, values = self.split.sequences[user], self.split.ratings[user]
        met = np.flatnonzero(sequence == target)
        end = int(met[0]) if len(met) else len(sequence)
        return np.asarray(sequence[:end], dtype=np.int64), np.asarray(values[:end], dtype=np.float64)
