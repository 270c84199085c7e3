"""Render histories and candidates into chat messages, and the label scheme. Pure: no torch.

Serving and fine-tuning call THE SAME functions, so a prompt seen at training time is
byte-for-byte the prompt seen at inference:

    prompt = render_rank(history, candidates)              # serving: score prompt.messages
    example = with_completion(prompt.messages, rank_completion(prompt.labels[target]))  # SFT

Choices made here, each enforced with a clear ``ValueError``:
- Candidates are labelled A, B, C, ... (``LABELS``, 26); at most ``max_candidates`` (20 by default,
  up to ``len(LABELS)``) per prompt. More candidates than allowed is an error, never a silent cut:
  the caller decides K.
- Duplicate candidate ids are an error, not deduplicated: a silently shortened list would leave the
  caller's candidate array and the returned labels/scores out of step.
- Histories are truncated to a budget (``max_history`` items and optionally ``max_history_chars``
  characters of item text), dropping the OLDEST items first; the drop count is returned.
- An empty history renders a history-free prompt (cold start), not an error.
"""

from __future__ import annotations

import bisect
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from recommender.data import Item
from recommender.prompts import render, template_version

LABELS: tuple[str, ...] = tuple(string.ascii_uppercase)
DEFAULT_MAX_CANDIDATES = 20
DEFAULT_MAX_HISTORY = 20
POINTWISE_ANSWERS: tuple[str, str] = ("Yes", "No")
RATING_VALUES: tuple[str, ...] = ("1", "2", "3", "4", "5")
ITEM_TEXT_MAX_CHARS = 160

T = TypeVar("T")


@dataclass(frozen=True)
class RankPrompt:
    """A rendered next-item ranking prompt; ``labels[i]`` names ``item_ids[i]``."""

    messages: list[dict[str, str]]
    labels: tuple[str, ...]
    item_ids: tuple[str, ...]
    dropped_history: int  # oldest history items left out to fit the budget
    template: str = "rank"
    template_version: str = ""

    def label_of(self, item_id: str) -> str:
        """Label of a candidate id (the SFT target letter); ``KeyError`` if it is not a candidate."""
        try:
            return self.labels[self.item_ids.index(item_id)]
        except ValueError:
            raise KeyError(f"item id {item_id!r} is not among this prompt's candidates") from None


@dataclass(frozen=True)
class ItemPrompt:
    """A rendered prompt about one item (pointwise, rating or explanation)."""

    messages: list[dict[str, str]]
    item_id: str
    dropped_history: int
    template: str
    template_version: str


def make_labels(n: int, labels: Sequence[str] = LABELS) -> tuple[str, ...]:
    """The first ``n`` labels; ``ValueError`` when ``n`` exceeds the label count."""
    if n > len(labels):
        raise ValueError(
            f"{n} candidates but only {len(labels)} labels ({labels[0]}..{labels[-1]}); pass at most {len(labels)}"
        )
    return tuple(labels[:n])


def item_text(item: Item, max_chars: int = ITEM_TEXT_MAX_CHARS) -> str:
    """One line describing an item: "Fargo (1996) - Crime, Drama, Thriller".

    Whitespace (newlines included) is collapsed so no catalogue text can break the prompt layout;
    overly long texts are cut to ``max_chars`` with an ellipsis.
    """
    text = item.display_title()
    if item.genres:
        text += " - " + ", ".join(item.genres)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def truncate_history(
    history: Sequence[T],
    max_items: int | None = DEFAULT_MAX_HISTORY,
    max_chars: int | None = None,
    lengths: Sequence[int] | None = None,
) -> tuple[list[T], int]:
    """Keep the most recent history entries within a budget; the oldest go first.

    Args:
        history: entries, oldest first.
        max_items: most entries kept (None: no limit).
        max_chars: most characters kept, summed over ``lengths`` (None: no limit); a rough,
            tokenizer-free proxy for a token budget.
        lengths: character length of each entry (needed with ``max_chars``).

    Returns:
        The kept entries (oldest first) and how many were dropped.
    """
    if max_items is not None and max_items < 0:
        raise ValueError(f"max_history must be >= 0, got {max_items}")
    keep = len(history) if max_items is None else min(len(history), max_items)
    if max_chars is not None:
        if lengths is None or len(lengths) != len(history):
            raise ValueError("truncate_history needs one length per history entry when max_chars is set")
        used, fits = 0, 0
        for length in reversed(lengths[len(history) - keep :]):
            if used + length > max_chars:
                break
            used += length
            fits += 1
        keep = fits
    kept = list(history[len(history) - keep :])
    return kept, len(history) - keep


def _history_texts(
    history: Sequence[Item], max_history: int | None, max_history_chars: int | None
) -> tuple[list[str], int]:
    texts = [item_text(item) for item in history]
    return truncate_history(texts, max_history, max_history_chars, [len(t) for t in texts])


def check_items(items: Sequence[Item], what: str) -> None:
    """``TypeError`` naming the first entry of ``items`` (called ``what``) that is not an ``Item``."""
    for position, item in enumerate(items):
        if not isinstance(item, Item):
            raise TypeError(f"{what}[{position}] is a {type(item).__name__}, expected recommender.data.Item")


def render_rank(
    history: Sequence[Item],
    candidates: Sequence[Item],
    *,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    max_history: int | None = DEFAULT_MAX_HISTORY,
    max_history_chars: int | None = None,
    labels: Sequence[str] = LABELS,
) -> RankPrompt:
    """Next-item ranking prompt: history + candidates labelled A, B, ... -> one letter.

    Candidates keep the given order (shuffle before calling to fight position bias).

    Raises:
        ValueError: no candidates, more than ``max_candidates``, ``max_candidates`` above the
            label count, or a duplicate candidate id.
    """
    check_items(history, "history")
    check_items(candidates, "candidates")
    if max_candidates > len(labels):
        raise ValueError(f"max_candidates={max_candidates} exceeds the {len(labels)} available labels")
    if not candidates:
        raise ValueError("render_rank needs at least one candidate")
    if len(candidates) > max_candidates:
        raise ValueError(f"{len(candidates)} candidates given but at most {max_candidates} fit one ranking prompt")
    first_seen: dict[str, int] = {}
    for position, item in enumerate(candidates):
        if item.id in first_seen:
            raise ValueError(
                f"duplicate candidate id {item.id!r} at positions {first_seen[item.id]} and {position}; "
                "deduplicate candidates before rendering"
            )
        first_seen[item.id] = position
    chosen = make_labels(len(candidates), labels)
    texts, dropped = _history_texts(history, max_history, max_history_chars)
    messages = render(
        "rank",
        history=texts,
        candidates=[{"label": label, "text": item_text(item)} for label, item in zip(chosen, candidates)],
    )
    ids = tuple(item.id for item in candidates)
    return RankPrompt(messages, chosen, ids, dropped, "rank", template_version("rank"))


def render_pointwise(
    history: Sequence[Item],
    candidate: Item,
    *,
    max_history: int | None = DEFAULT_MAX_HISTORY,
    max_history_chars: int | None = None,
) -> ItemPrompt:
    """Yes/no prompt: will the user like ``candidate``? The candidate comes last in the prompt,
    so every candidate of one user shares the history prefix (the scorer caches it)."""
    check_items(history, "history")
    check_items([candidate], "candidate")
    texts, dropped = _history_texts(history, max_history, max_history_chars)
    messages = render("pointwise", history=texts, candidate=item_text(candidate))
    return ItemPrompt(messages, candidate.id, dropped, "pointwise", template_version("pointwise"))


def format_rating(rating: float) -> str:
    """ "4" for 4.0, "3.5" for 3.5; ``ValueError`` outside [1, 5] or for NaN."""
    value = float(rating)
    if math.isnan(value) or not 1 <= value <= 5:
        raise ValueError(f"rating {rating!r} is not a number from 1 to 5")
    return str(int(value)) if value.is_integer() else f"{value:.1f}"


def render_explain(
    history: Sequence[Item],
    item: Item,
    evidence: Sequence[str] = (),
    *,
    max_history: int | None = 10,
    max_history_chars: int | None = None,
) -> ItemPrompt:
    """Explanation prompt: history + recommended item + evidence lines -> one or two sentences.

    ``evidence`` holds short facts the model may use (e.g. "you rated Fargo (1996) highly",
    the most influential history items); newlines inside them are collapsed.
    """
    check_items(history, "history")
    check_items([item], "item")
    texts, dropped = _history_texts(history, max_history, max_history_chars)
    facts = [re.sub(r"\s+", " ", str(fact)).strip() for fact in evidence]
    messages = render("explain", history=texts, item=item_text(item), evidence=[f for f in facts if f])
    return ItemPrompt(messages, item.id, dropped, "explain", template_version("explain"))


def render_chat_system(
    items: Sequence[Item],
    reasons: Sequence[Sequence[str]] | None = None,
    constraints: Sequence[str] = (),
) -> list[dict[str, str]]:
    """System message for the chat assistant, grounded in ``items`` (ranked, best first).

    It tells the model to name only these items. ``reasons[i]`` are short lines for ``items[i]``;
    ``constraints`` are the user's requests so far ("no horror", "from the 90s").
    """
    check_items(items, "items")
    if reasons is not None and len(reasons) != len(items):
        raise ValueError(f"{len(reasons)} reason lists for {len(items)} items; pass one list per item")
    entries = [
        {"text": item_text(item), "reasons": [re.sub(r"\s+", " ", r).strip() for r in (reasons[i] if reasons else ())]}
        for i, item in enumerate(items)
    ]
    return render("chat_system", items=entries, constraints=[re.sub(r"\s+", " ", c).strip() for c in constraints])


def rank_completion(label: str, labels: Sequence[str] = LABELS) -> str:
    """Assistant completion for a ranking target: the bare label, e.g. "C"."""
    if label not in labels:
        raise ValueError(f"{label!r} is not a candidate label ({labels[0]}..{labels[-1]})")
    return label


def rating_completion(rating: float) -> str:
    """Assistant completion for a rating target: the rating rounded to a digit "1".."5"."""
    format_rating(rating)  # validates
    return RATING_VALUES[math.floor(float(rating) + 0.5) - 1]  # half up: 3.5 -> "4"


def with_completion(messages: list[dict[str, str]], completion: str) -> list[dict[str, str]]:
    """The prompt messages plus the assistant turn: one SFT example."""
    return [*messages, {"role": "assistant", "content": completion}]


def candidate_line_ends(text: str, labels: Sequence[str]) -> list[int]:
    """Character index of the last character of each candidate line ("A. ..." at a line start),
    in label order, searched from the end of the previous one.

    Line-scored prompts (``rank_evidence``) read one score per candidate at that character: the
    model has then read the history and the candidate's whole line, evidence digit included.
    ``ValueError`` names the first label whose line is missing.
    """
    ends, start = [], 0
    for label in labels:
        found = re.compile(rf"(?m)^{re.escape(label)}\. [^\n]*").search(text, start)
        if found is None:
            raise ValueError(f"no candidate line starting {label + '.'!r} in the rendered prompt")
        ends.append(found.end() - 1)
        start = found.end()
    return ends


def tokens_at_chars(offsets: Sequence[tuple[int, int]], chars: Sequence[int]) -> list[int]:
    """Index of the token whose character span ``[start, end)`` holds each of ``chars``.

    ``offsets`` are a fast tokenizer's ``offset_mapping`` for the text the characters index.
    """
    starts = [start for start, _ in offsets]
    out = []
    for char in chars:
        index = bisect.bisect_right(starts, char) - 1
        if index < 0 or not offsets[index][0] <= char < offsets[index][1]:
            raise ValueError(f"character {char} is not inside any token's span")
        out.append(index)
    return out


__all__ = [
    "DEFAULT_MAX_CANDIDATES",
    "DEFAULT_MAX_HISTORY",
    "LABELS",
    "POINTWISE_ANSWERS",
    "RATING_VALUES",
    "ItemPrompt",
    "RankPrompt",
    "candidate_line_ends",
    "check_items",
    "format_rating",
    "item_text",
    "make_labels",
    "rank_completion",
    "rating_completion",
    "render_chat_system",
    "render_explain",
    "render_pointwise",
    "render_rank",
    "tokens_at_chars",
    "truncate_history",
    "with_completion",
]
