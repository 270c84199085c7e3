"""The rating prompt: one object, used by serving (``Recommender.predict_rating``), evaluation,
explanations and fine-tuning alike. Pure: numpy, scipy.sparse and the renderers, no torch.

Like the ranking prompts (``llm.ranking_prompts``) it does two things:
- ``render(request)``: a rated history, the item and its evidence -> chat messages;
- ``read(logits)``: the scorer's [5] logits of the digits "1".."5" -> the expected rating.

The evidence a rating depends on, shown in the prompt: the user's mean and count (over the rated
history given), the item's mean and count in the TRAIN split, the user's ratings of the items they
rated that are most co-rated with this one (cosine over the train split's user x item matrix),
and the latest other ratings. ``RatingStatistics`` computes the item side from a split.

    stats = RatingStatistics.from_split(split, len(catalog))
    prompt = RatingPrompt()
    request = stats.request(catalog, history_rows, ratings, target_row)
    expected = rate_requests(scorer, prompt, [request])        # [1] in [1, 5]

``render_rating(history, item)`` renders the same template from a rated history alone (no evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.data import Catalog, Item
from recommender.llm.prompting import (
    DEFAULT_MAX_HISTORY,
    ItemPrompt,
    check_items,
    format_rating,
    item_text,
    truncate_history,
)
from recommender.prompts import render, template_version

RATING_SCALE = np.arange(1, 6, dtype=np.float64)  # the digits "1".."5" the answer is read from


@dataclass(frozen=True)
class RatingEvidence:
    """Item-side evidence for one rating question, from the train split."""

    item_mean: float | None  # the item's mean train rating (None when nobody rated it)
    item_count: int  # its number of train ratings
    similarity: np.ndarray  # [H] co-rating cosine of each history entry with the item (0 = never co-rated)


@dataclass(frozen=True)
class RatingRequest:
    """One rating question: the user's rated history (oldest first), the item, its evidence
    (None: the prompt shows the history only)."""

    history: Sequence[tuple[Item, float]]
    item: Item
    evidence: RatingEvidence | None = None


def check_ratings(ratings: Sequence, what: str = "ratings") -> np.ndarray:
    """[H] float64 ratings; ``ValueError`` naming the first entry that is not a number from 1 to 5."""
    out = np.zeros(len(ratings), dtype=np.float64)
    for position, value in enumerate(ratings):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not 1.0 <= number <= 5.0:  # NaN fails too
            raise ValueError(f"{what}[{position}] = {value!r} is not a number from 1 to 5.")
        out[position] = number
    return out


class RatingPrompt:
    """``rating``: user and item means and counts, the user's ratings of the most similar items,
    the latest other ratings, the item -> one digit; read as the expected value over 1..5.

    Args:
        max_history: latest ratings shown (besides the similar ones).
        max_similar: most similar rated items shown (only those co-rated at all with the item).
    """

    name = "rating"

    def __init__(self, max_history: int = 3, max_similar: int = 3):
        if max_history < 0 or max_similar < 0:
            raise ValueError(f"max_history and max_similar must be >= 0, got {max_history} and {max_similar}.")
        self.max_history = max_history
        self.max_similar = max_similar

    @property
    def version(self) -> str:
        return template_version(self.name)

    def shown(self, request: RatingRequest) -> tuple[list[int], list[int]]:
        """History positions shown as similar (most similar first) and as latest (oldest first)."""
        n = len(request.history)
        similar: list[int] = []
        if request.evidence is not None and self.max_similar:
            sims = np.asarray(request.evidence.similarity, dtype=np.float64)
            if sims.shape != (n,):
                raise ValueError(f"{len(sims)} similarity values for {n} history entries.")
            order = sorted(np.flatnonzero(sims > 0), key=lambda p: (-sims[p], -p))  # ties: the more recent
            similar = [int(p) for p in order[: self.max_similar]]
        taken = set(similar)
        others = [p for p in range(n) if p not in taken]
        latest = others[max(0, len(others) - self.max_history) :] if self.max_history else []
        return similar, latest

    def render(self, request: RatingRequest) -> ItemPrompt:
        """The chat messages for one request."""
        items = [entry[0] for entry in request.history]
        for position, item in enumerate([*items, request.item]):
            if not isinstance(item, Item):
                raise TypeError(f"rating request entry {position} is a {type(item).__name__}, expected Item")
        ratings = check_ratings([entry[1] for entry in request.history])
        similar, latest = self.shown(request)

        def entry(p: int) -> dict:
            return {"text": item_text(items[p]), "rating": format_rating(ratings[p])}

        user_stats = {"mean": f"{ratings.mean():.1f}", "count": len(ratings)} if len(ratings) else None
        item_stats = None
        if request.evidence is not None:
            evidence = request.evidence
            mean = "" if evidence.item_mean is None else f"{evidence.item_mean:.1f}"
            item_stats = {"mean": mean, "count": int(evidence.item_count)}
        messages = render(
            self.name,
            user_stats=user_stats,
            item_stats=item_stats,
            similar=[entry(p) for p in similar],
            history=[entry(p) for p in latest],
            item=item_text(request.item),
        )
        dropped = len(request.history) - len(similar) - len(latest)
        return ItemPrompt(messages, request.item.id, dropped, self.name, self.version)

    def read(self, logits: np.ndarray) -> np.ndarray:
        """Expected rating from [..., 5] logits of the digits 1..5 (softmax, then the mean)."""
        logits = np.asarray(logits, dtype=np.float64)
        if logits.shape[-1] != len(RATING_SCALE):
            raise ValueError(f"rating logits must end in {len(RATING_SCALE)} values (digits 1-5), got {logits.shape}.")
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return (shifted / shifted.sum(axis=-1, keepdims=True)) @ RATING_SCALE

    def raw_scores(self, scorer, prompts: Sequence[ItemPrompt]) -> list[np.ndarray]:
        """The scorer's [5] digit logits per rendered prompt, in one batched call."""
        return scorer.rating_logits([p.messages for p in prompts])

    def __repr__(self) -> str:
        return f"RatingPrompt(max_history={self.max_history}, max_similar={self.max_similar})"


def render_rating(
    history: Sequence[tuple[Item, float]],
    item: Item,
    *,
    max_history: int | None = DEFAULT_MAX_HISTORY,
    max_history_chars: int | None = None,
) -> ItemPrompt:
    """Rating prompt from a rated history alone, oldest first, + one item -> a digit from 1 to 5.

    The ``rating`` template through ``RatingPrompt`` without train-split evidence (serving and
    fine-tuning add it there)."""
    check_items([entry[0] for entry in history], "history")
    check_items([item], "item")
    for _, rating in history:
        format_rating(rating)  # validates
    lengths = [len(item_text(entry)) + 4 for entry, _ in history]
    kept, dropped = truncate_history(list(history), max_history, max_history_chars, lengths)
    rendered = RatingPrompt(max_history=len(kept), max_similar=0).render(RatingRequest(kept, item))
    return ItemPrompt(rendered.messages, item.id, dropped, "rating", template_version("rating"))


def rate_requests(scorer, prompt: RatingPrompt, requests: Sequence[RatingRequest]) -> np.ndarray:
    """[R] expected ratings of the requests, all prompts in one batched scorer call."""
    rendered = [prompt.render(r) for r in requests]
    raw = prompt.raw_scores(scorer, rendered) if rendered else []
    return np.array([float(prompt.read(values)) for values in raw], dtype=np.float64)


class RatingStatistics:
    """Item rating means, counts and item-item co-rating cosine from the TRAIN split.

    The cosine is over the binary user x item matrix of train events: co-rated users over the
    square root of the two rating counts. It is computed only for the pairs a prompt needs.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_items: int):
        from scipy import sparse

        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        ratings = np.asarray(ratings, dtype=np.float64)
        self.n_items = n_items
        self.counts = np.bincount(items, minlength=n_items).astype(np.float64)  # [N]
        self.sums = np.bincount(items, weights=ratings, minlength=n_items)  # [N]
        n_users = int(users.max()) + 1 if len(users) else 0
        # Duplicate (user, item) events sum into one entry; clip back to binary.
        matrix = sparse.csc_matrix((np.ones(len(items)), (users, items)), shape=(n_users, n_items))
        matrix.data = np.minimum(matrix.data, 1.0)
        self.matrix = matrix  # [U, N] binary, columns = items
        self.norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())  # [N]

    @classmethod
    def from_split(cls, split, n_items: int) -> RatingStatistics:
        """Statistics of every user's train events (never validation or test events)."""
        users, items, ratings = [], [], []
        for index, user in enumerate(split.users):
            train = split.train(user)
            if user not in split.ratings:
                continue
            users.append(np.full(len(train), index))
            items.append(train)
            ratings.append(split.ratings[user][: len(train)])
        if not items:
            raise ValueError("the dataset has no ratings: rating prediction needs a rating column.")
        return cls(np.concatenate(users), np.concatenate(items), np.concatenate(ratings), n_items)

    def evidence(self, history: np.ndarray, target: int, own_rating: float | None = None) -> RatingEvidence:
        """Evidence for ``target`` given the user's history rows.

        Args:
            own_rating: for a training example whose target is one of the user's own TRAIN events:
                its rating is taken out of the item mean, and the user's own co-rating out of the
                similarities, so the prompt never shows the answer it is trained on.
        """
        history = np.asarray(history, dtype=np.int64)
        count, total = self.counts[target], self.sums[target]
        co = np.asarray((self.matrix[:, history].T @ self.matrix[:, [target]]).todense()).ravel()  # [H]
        norms = self.norms[history] * self.norms[target]
        if own_rating is not None:
            count, total = count - 1, total - float(own_rating)
            co = np.maximum(co - 1.0, 0.0)
            norms = np.sqrt(np.maximum(self.counts[history] - 1, 0) * max(count, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            similarity = np.where(norms > 0, co / np.where(norms > 0, norms, 1.0), 0.0)
        mean = float(total / count) if count > 0 else None
        return RatingEvidence(mean, int(max(count, 0)), similarity)

    def request(
        self,
        catalog: Catalog,
        history: np.ndarray,
        ratings: Sequence[float],
        target: int,
        own_rating: float | None = None,
    ) -> RatingRequest:
        """The rating question for catalogue rows ``history`` (oldest first) rated ``ratings``."""
        history = np.asarray(history, dtype=np.int64)
        if len(ratings) != len(history):
            raise ValueError(f"{len(ratings)} ratings for {len(history)} history items; give one rating per item.")
        rated = [(catalog.items[int(row)], float(r)) for row, r in zip(history, ratings)]
        return RatingRequest(rated, catalog.items[int(target)], self.evidence(history, int(target), own_rating))


__all__ = [
    "RATING_SCALE",
    "RatingEvidence",
    "RatingPrompt",
    "RatingRequest",
    "RatingStatistics",
    "check_ratings",
    "rate_requests",
]
