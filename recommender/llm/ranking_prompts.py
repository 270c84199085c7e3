"""Ranking prompts: one object per template, used by serving, validation, fine-tuning and
explanations alike. Pure: numpy and the renderers, no torch.

A ranking prompt does two things:
- ``render(request)``: a history and candidates (+ the evidence it shows) -> chat messages;
- ``read(raw)``: what the scorer returned for those messages -> one log-probability per candidate.

How the scorer is asked is the prompt's ``readout``: ``"label"`` reads the next-token logits of
the candidate letters at the last position (``Scorer.score_labels``); ``"line"`` reads "Yes"
minus "No" at the end of every candidate line (``Scorer.score_lines``). ``score_requests`` is the
one function that turns requests into scores through any prompt, with permutation averaging for
prompts whose candidate order carries no information.

    prompt = ranking_prompt("rank_evidence", max_history=3)
    scores = score_requests(scorer, prompt, [RankingRequest(history, candidates, {"recent": digits})])
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from recommender.data import Item
from recommender.llm.prompting import DEFAULT_MAX_HISTORY, RankPrompt, make_labels, render_rank
from recommender.prompts import render, template_version
from recommender.protocols import Scorer
from recommender.ranking import log_softmax

READOUTS = ("label", "line")


@dataclass(frozen=True)
class RankingRequest:
    """One user's ranking question: the history (oldest first), the candidates in the order the
    retriever gave them (best first), and per-candidate evidence arrays the prompt shows."""

    history: Sequence[Item]
    candidates: Sequence[Item]
    evidence: Mapping[str, np.ndarray] = field(default_factory=dict)


class RankingPrompt:
    """Base of the ranking prompts; subclasses set the class attributes and ``_messages``."""

    name: ClassVar[str]
    readout: ClassVar[str]  # "label" or "line": which scorer call reads this prompt
    shuffle: ClassVar[bool]  # True when the candidate order carries nothing (permutation averaging applies)
    evidence: ClassVar[tuple[str, ...]] = ()  # evidence arrays a request must carry

    def __init__(self, max_history: int | None = DEFAULT_MAX_HISTORY):
        if max_history is not None and max_history < 0:
            raise ValueError(f"max_history must be >= 0 or None, got {max_history}.")
        self.max_history = max_history

    @property
    def version(self) -> str:
        return template_version(self.name)

    def render(self, request: RankingRequest) -> RankPrompt:
        """The chat messages for one request; candidates keep the given order."""
        missing = [name for name in self.evidence if name not in request.evidence]
        if missing:
            raise ValueError(f"the {self.name!r} prompt shows evidence {missing} that the request does not carry.")
        return self._messages(request)

    def _messages(self, request: RankingRequest) -> RankPrompt:
        raise NotImplementedError

    def read(self, raw: np.ndarray) -> np.ndarray:
        """[K] log-probabilities of the candidates from the scorer's [K] raw scores."""
        return log_softmax(np.asarray(raw, dtype=np.float64))

    def raw_scores(self, scorer: Scorer, prompts: Sequence[RankPrompt]) -> list[np.ndarray]:
        """The scorer's raw per-candidate outputs for rendered prompts, in one batched call."""
        conversations = [p.messages for p in prompts]
        sizes = [len(p.item_ids) for p in prompts]
        if self.readout == "line":
            return scorer.score_lines(conversations, sizes)
        return scorer.score_labels(conversations, sizes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_history={self.max_history})"


class LetterRankPrompt(RankingPrompt):
    """``rank``: history titles and genres, lettered candidates, one letter read at the end.
    Works with any instruct model; the order is shuffled and averaged against position bias."""

    name = "rank"
    readout = "label"
    shuffle = True

    def _messages(self, request: RankingRequest) -> RankPrompt:
        return render_rank(request.history, request.candidates, max_history=self.max_history)


class EvidenceLinePrompt(RankingPrompt):
    """``rank_evidence``: recent titles, candidates in retriever order each with a 0-9 "recent"
    co-watch digit, one Yes-minus-No score read at the end of each candidate line (the
    fine-tuned adapters'). The order is the retriever's, so it is never shuffled."""

    name = "rank_evidence"
    readout = "line"
    shuffle = False
    evidence = ("recent",)

    def __init__(self, max_history: int | None = 3):
        super().__init__(max_history)

    def _messages(self, request: RankingRequest) -> RankPrompt:
        candidates = list(request.candidates)
        if not candidates:
            raise ValueError("the rank_evidence prompt needs at least one candidate.")
        ids = tuple(item.id for item in candidates)
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate candidate ids; deduplicate candidates before rendering.")
        digits = np.asarray(request.evidence["recent"], dtype=np.int64)
        if digits.shape != (len(candidates),):
            raise ValueError(f"{len(digits)} 'recent' digits for {len(candidates)} candidates.")
        labels = make_labels(len(candidates))
        history = list(request.history)
        shown = history if self.max_history is None else history[max(0, len(history) - self.max_history) :]
        messages = render(
            self.name,
            history=[item.display_title() for item in shown],
            candidates=[
                {"label": label, "text": " ".join(item.display_title().split()), "recent": int(digit)}
                for label, item, digit in zip(labels, candidates, digits)
            ],
        )
        return RankPrompt(messages, labels, ids, len(history) - len(shown), self.name, self.version)


PROMPTS: dict[str, type[RankingPrompt]] = {cls.name: cls for cls in (LetterRankPrompt, EvidenceLinePrompt)}


def ranking_prompt(name: str, max_history: int | None = None) -> RankingPrompt:
    """The ranking prompt called ``name``; ``max_history=None`` keeps the prompt's own default."""
    try:
        cls = PROMPTS[name]
    except KeyError:
        raise ValueError(f"unknown ranking prompt {name!r}; known: {', '.join(sorted(PROMPTS))}.") from None
    return cls() if max_history is None else cls(max_history)


def shuffled_orders(n: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` orders of ``n`` candidates for permutation averaging: the identity first, then
    seeded shuffles. ``order[j]`` is the original index shown at position ``j``."""
    if count < 1:
        raise ValueError(f"permutations must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    return [np.arange(n)] + [rng.permutation(n) for _ in range(count - 1)]


def request_seed(request: RankingRequest, seed: int) -> int:
    """A seed for ``request``'s shuffles from ``seed`` and its item ids (stable across processes)."""
    ids = "\x1f".join(str(item.id) for item in (*request.history, None, *request.candidates) if item is not None)
    key = f"{len(request.history)}\x1e{ids}".encode()
    return int(np.random.SeedSequence([seed, zlib.crc32(key)]).generate_state(1)[0])


def score_requests(
    scorer: Scorer,
    prompt: RankingPrompt,
    requests: Sequence[RankingRequest],
    permutations: int = 1,
    seed: int = 0,
) -> list[np.ndarray]:
    """Per request, [K] log-probabilities of its candidates in the given order.

    With ``permutations`` > 1 and a prompt whose order carries nothing (``prompt.shuffle``), each
    request is also scored under seeded shuffles and the log-probabilities are averaged; all
    prompts go to the scorer in one batched call. A request's shuffles depend on ``seed`` and on
    its own history and candidates only, so a user scores the same alone and in any batch.
    """
    count = permutations if prompt.shuffle else 1
    rendered, owners = [], []
    for user, request in enumerate(requests):
        for order in shuffled_orders(len(request.candidates), count, request_seed(request, seed)):
            shown = RankingRequest(
                request.history,
                [request.candidates[i] for i in order],
                {name: np.asarray(values)[order] for name, values in request.evidence.items()},
            )
            rendered.append(prompt.render(shown))
            owners.append((user, order))
    raw = prompt.raw_scores(scorer, rendered) if rendered else []
    totals = [np.zeros(len(request.candidates)) for request in requests]
    for values, (user, order) in zip(raw, owners):
        totals[user][order] += prompt.read(values)
    return [total / count for total in totals]


__all__ = [
    "PROMPTS",
    "READOUTS",
    "EvidenceLinePrompt",
    "LetterRankPrompt",
    "RankingPrompt",
    "RankingRequest",
    "ranking_prompt",
    "request_seed",
    "score_requests",
    "shuffled_orders",
]
