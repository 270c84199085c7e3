"""HTML and markdown for the chat page. Pure (stdlib only): every title and everything a person
typed passes through ``html.escape`` here before it reaches the browser."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

CARD_CSS = """
.rec-cards { display: flex; flex-direction: column; gap: 8px; }
.rec-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; }
.rec-card .rec-title { font-weight: 600; }
.rec-card .rec-meta { font-size: 0.85em; opacity: 0.8; }
.rec-card .rec-why { font-size: 0.85em; margin-top: 4px; }
.rec-card.rec-picked { border-width: 2px; border-color: var(--color-accent); }
.rec-card .rec-explain { font-size: 0.9em; margin-top: 6px; font-style: italic; }
.rec-empty, .rec-header { opacity: 0.8; font-size: 0.9em; }
"""


def esc(text: object) -> str:
    """``text`` safe to place inside HTML (and inside markdown that allows HTML)."""
    return html.escape("" if text is None else str(text), quote=True)


def cards_html(
    recommendations: Sequence[Any],
    header: str = "",
    titles: Mapping[str, str] | None = None,
    limit_why: int = 2,
    picked: str | None = None,
    explanation: str = "",
) -> str:
    """The side panel: one card per recommendation (title, year, genres, why, influences).

    Args:
        recommendations: ``Recommendation`` objects, best first.
        header: a line above the cards (the active constraints, as the person typed them).
        titles: item id -> title, to name influential history items.
        picked: the id of the card the person picked; it is marked and shows ``explanation``.
        explanation: the written explanation of the picked card.
    """
    head = f'<div class="rec-header">{esc(header)}</div>' if header else ""
    if not recommendations:
        return f'<div class="rec-cards">{head}<div class="rec-empty">No recommendations yet.</div></div>'
    cards = []
    for rank, rec in enumerate(recommendations, start=1):
        year = f" ({esc(rec.year)})" if rec.year else ""
        genres = esc(", ".join(rec.genres)) if rec.genres else "&nbsp;"
        why = "; ".join(list(rec.reasons)[:limit_why])
        why_html = f'<div class="rec-why">Why: {esc(why)}</div>' if why else ""
        influence_html = ""
        if rec.influences and titles is not None:
            named = [f"{titles.get(item_id, item_id)} ({value:+.2f})" for item_id, value in rec.influences[:3]]
            influence_html = f'<div class="rec-why">Because of: {esc(", ".join(named))}</div>'
        is_picked = picked is not None and rec.item_id == picked
        explain_html = f'<div class="rec-explain">{esc(explanation)}</div>' if is_picked and explanation else ""
        cards.append(
            f'<div class="rec-card{" rec-picked" if is_picked else ""}" data-item-id="{esc(rec.item_id)}" '
            f'data-rank="{rank}"><div class="rec-title">{rank}. {esc(rec.title)}{year}</div>'
            f'<div class="rec-meta">{genres}</div>{why_html}{influence_html}{explain_html}</div>'
        )
    return f'<div class="rec-cards">{head}{"".join(cards)}</div>'


def reply_markdown(reply: str) -> str:
    """A reply (LLM-written or templated) for the Chatbot: markdown kept, HTML escaped."""
    return html.escape(reply, quote=False)


def user_markdown(message: str) -> str:
    """What the person typed, shown verbatim: HTML escaped, markdown characters backslash-escaped."""
    text = html.escape(message, quote=False)
    for mark in "\\`*_[]#|~":
        text = text.replace(mark, "\\" + mark)
    return text
