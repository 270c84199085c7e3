"""The small interfaces the rooms share. Pure: no torch, no models.

Retrievers turn a history into candidates; encoders turn texts into vectors; scorers turn
rendered chat messages into one score per candidate label. Tests pass hand-written fakes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Filters:
    """Hard constraints applied before top-K (from the chat or the API), and one soft one: ``avoid``."""

    include_genres: tuple[str, ...] = field(default=(), metadata={"help": "keep items with any of these genres"})
    exclude_genres: tuple[str, ...] = field(default=(), metadata={"help": "drop items with any of these genres"})
    year_min: int | None = field(default=None, metadata={"help": "earliest release year, inclusive"})
    year_max: int | None = field(default=None, metadata={"help": "latest release year, inclusive"})
    exclude_items: tuple[str, ...] = field(default=(), metadata={"help": "item ids never to return (their films)"})
    exclude_seen: bool = field(
        default=True, metadata={"help": "drop the films of the history (a film listed twice under two ids too)"}
    )
    avoid: tuple[str, ...] = field(
        default=(), metadata={"help": "words ('violent'): items whose text is close to them move down, none is dropped"}
    )


@dataclass(frozen=True)
class Candidates:
    """Retrieved items, best first."""

    items: np.ndarray  # [K] int64 catalogue rows
    scores: np.ndarray  # [K] float64, higher is better
    reason: str = ""  # why the list is empty or short; empty when all is well
    unknown_history: int = 0  # history ids not in the catalogue, ignored

    def __len__(self) -> int:
        return len(self.items)


class Retriever(Protocol):
    """Every retriever (``retrieval.base.BaseRetriever`` and its subclasses) has both."""

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        """[B, N] full-catalogue scores for each history of catalogue rows (oldest first)."""
        ...

    def retrieve(
        self,
        history: Sequence[str],
        k: int,
        query: str | None = None,
        filters: Filters | None = None,
    ) -> Candidates:
        """Top-``k`` candidates for a history of item ids (oldest first)."""
        ...


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray:
        """[T, D] L2-normalised float32 vectors."""
        ...


class Scorer(Protocol):
    """What the pipeline, validation, explanations and the chat call on a scorer (``LLMScorer``).

    Ranking goes through ``score_labels`` or ``score_lines``, as the ranking prompt's ``readout``
    says (``llm.ranking_prompts``); the rest serve the other tasks.
    """

    def score_labels(self, conversations: list[list[dict[str, str]]], n_labels: Sequence[int]) -> list[np.ndarray]:
        """For each conversation, the [n] next-token logits of its first ``n`` candidate labels."""
        ...

    def score_lines(self, conversations: list[list[dict[str, str]]], n_lines: Sequence[int]) -> list[np.ndarray]:
        """For each line-scored conversation, one score per candidate line ("Yes" minus "No")."""
        ...

    def pointwise(self, history: Sequence[Any], candidates: Sequence[Any]) -> Any:
        """P(Yes) per candidate (``.scores``), the shared history prefix computed once."""
        ...

    def rate(self, history: Sequence[tuple[Any, float]], items: Sequence[Any]) -> Any:
        """Expected rating in [1, 5] per item (``.scores``)."""
        ...

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 96) -> str:
        """Greedy reply to chat messages."""
        ...

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int = 96, prefix: str = "") -> Iterator[str]:
        """``generate`` as text pieces while they are produced."""
        ...


@dataclass(frozen=True)
class Recommendation:
    """One recommended item as every front end (API, CLI, chat) receives it."""

    item_id: str
    title: str
    score: float  # final score used for the order
    retrieval_score: float
    llm_score: float | None  # None when the item was not reranked by the LLM
    template_version: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # short "why" lines, grounded in data
    influences: tuple[tuple[str, float], ...] = ()  # (history item id, signed influence)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (lists instead of tuples) for the CLI, the batch files and the chat API."""
        return {
            "item_id": self.item_id,
            "title": self.title,
            "year": self.year,
            "genres": list(self.genres),
            "score": float(self.score),
            "retrieval_score": float(self.retrieval_score),
            "llm_score": None if self.llm_score is None else float(self.llm_score),
            "template_version": self.template_version,
            "reasons": list(self.reasons),
            "influences": [[item_id, float(value)] for item_id, value in self.influences],
        }


class RecommendationList(list):
    """A list of ``Recommendation`` plus what the caller should know about it."""

    def __init__(self, items: Sequence[Recommendation] = (), reason: str = "", unknown_history: int = 0):
        super().__init__(items)
        self.reason = reason  # why the list is empty or short
        self.unknown_history = unknown_history  # history ids not in the catalogue, ignored
