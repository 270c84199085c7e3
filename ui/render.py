"""HTML and markdown for the chat page. Pure (stdlib only): every title and everything a person
typed passes through ``html.escape`` here before it reaches the browser."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from recommender.influence import threshold_text

CARD_CSS = """
.rec-cards { display: flex; flex-direction: column; gap: 8px; }
.rec-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; }
.rec-card .rec-title { font-weight: 600; }
.rec-card .rec-meta { font-size: 0.85em; opacity: 0.8; }
.rec-card .rec-why { font-size: 0.85em; margin-top: 4px; }
.rec-card.rec-picked { border-width: 2px; border-color: var(--color-accent); }
.rec-card .rec-explain { font-size: 0.9em; margin-top: 6px; }
.rec-card .rec-sentence { font-style: italic; }
.rec-card .rec-influence { font-size: 0.85em; margin-top: 4px; border-collapse: collapse; width: 100%; }
.rec-card .rec-influence td, .rec-card .rec-influence th { padding: 1px 6px; text-align: left; }
.rec-card .rec-influence caption { text-align: left; opacity: 0.8; }
.rec-card .rec-no-effect, .rec-card .rec-mark { font-size: 0.85em; opacity: 0.8; margin-top: 2px; }
.rec-card .rec-actions { display: flex; gap: 6px; margin-top: 6px; }
.rec-card .rec-act { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 1px 8px;
  font-size: 0.85em; cursor: pointer; background: var(--button-secondary-background-fill); }
.rec-card .rec-act[aria-pressed="true"] { border-color: var(--color-accent); font-weight: 600; }
.rec-card.rec-seen, .rec-card.rec-dislike { opacity: 0.6; }
.rec-empty, .rec-header { opacity: 0.8; font-size: 0.9em; }
"""


def esc(text: object) -> str:
    """``text`` safe to place inside HTML (and inside markdown that allows HTML)."""
    return html.escape("" if text is None else str(text), quote=True)


# (action, label, tooltip); the labels carry words beside the thumbs, which a browser without an emoji
# font draws as empty boxes.
ACTIONS = (
    ("open", "Why?", "Explain this pick"),
    ("like", "👍 Like", "Thumbs up"),
    ("dislike", "👎 Not for me", "Thumbs down"),
    ("seen", "Seen it", "I have seen it: never show it again"),
)
MARKS = {"like": "You liked this", "dislike": "Not for you", "seen": "Seen: it will not be shown again"}
# Clicks on a card's buttons become one "click" event of the cards component, carrying the action and
# the item id (Gradio 6 ``gr.HTML(js_on_load=...)``): delegated from the root, so the handler survives
# every re-render of the cards.
CARD_CLICKS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  if (!button || !element.contains(button)) return;
  trigger('click', {action: button.dataset.action, item_id: button.dataset.itemId});
});
"""


def cards_html(
    recommendations: Sequence[Any],
    header: str = "",
    titles: Mapping[str, str] | None = None,
    limit_why: int = 2,
    picked: str | None = None,
    explanation: Any = None,
    marks: Mapping[str, str] | None = None,
) -> str:
    """The side panel: one card per recommendation (title, year, genres, why, influences) with its
    buttons: "Why?" (explain it), thumbs up, thumbs down and "Seen it".

    Args:
        recommendations: ``Recommendation`` objects, best first.
        header: a line above the cards (the active constraints, as the person typed them).
        titles: item id -> title, to name influential history items.
        picked: the id of the card the person picked; it is marked and shows ``explanation``.
        explanation: the picked card's ``PickExplanation`` (sentence and influence table), or a sentence.
        marks: item id -> the feedback given on it ("like", "dislike" or "seen"), shown on its card.
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
        raised = [(item_id, value) for item_id, value in rec.influences if value > 0][:3]
        influence_html = ""
        if raised and titles is not None:
            named = [f"{_influence_name(item_id, titles)} ({value:+.3g})" for item_id, value in raised]
            influence_html = f'<div class="rec-why">Because of: {esc(", ".join(named))}</div>'
        is_picked = picked is not None and rec.item_id == picked
        explain_html = explanation_html(explanation) if is_picked and explanation else ""
        mark = (marks or {}).get(rec.item_id, "")
        mark_html = f'<div class="rec-mark">{esc(MARKS[mark])}</div>' if mark in MARKS else ""
        classes = "rec-card" + (" rec-picked" if is_picked else "") + (f" rec-{mark}" if mark in MARKS else "")
        cards.append(
            f'<div class="{classes}" data-item-id="{esc(rec.item_id)}" data-rank="{rank}">'
            f'<div class="rec-title">{rank}. {esc(rec.title)}{year}</div><div class="rec-meta">{genres}</div>'
            f"{why_html}{influence_html}{_buttons(rec.item_id, mark)}{mark_html}{explain_html}</div>"
        )
    return f'<div class="rec-cards">{head}{"".join(cards)}</div>'


def _buttons(item_id: str, mark: str) -> str:
    buttons = [
        f'<button type="button" class="rec-act rec-{action}" data-action="{action}" data-item-id="{esc(item_id)}" '
        f'title="{esc(tip)}" aria-label="{esc(tip)}" aria-pressed="{"true" if mark == action else "false"}">'
        f"{esc(label)}</button>"
        for action, label, tip in ACTIONS
    ]
    return f'<div class="rec-actions">{"".join(buttons)}</div>'


def explanation_html(explanation: Any) -> str:
    """The picked card's explanation as ``recommender explain`` prints it: the sentence, then the table of
    measured influences (effects beyond their thresholds only: raised first, then lowered), then the films
    with no measurable effect, unranked. ``explanation`` is a ``PickExplanation`` or a plain sentence."""
    if isinstance(explanation, str):
        return f'<div class="rec-explain"><div class="rec-sentence">{esc(explanation)}</div></div>'
    thresholds = getattr(explanation, "thresholds", None)
    if thresholds is None:
        caption = f"Influence of your films: not measured ({getattr(explanation, 'unmeasured', '') or 'no LLM'})."
    else:
        caption = (
            "Influence of your films on its LLM score: the change when the film is left out, averaged over "
            "orders of your films; an influence only beyond its threshold (smaller changes are noise)."
        )
    rows = [
        f'<tr><td class="rec-value">{value:+.4f}</td>'
        f'<td class="rec-threshold">{threshold_text(thresholds, item_id)}</td>'
        f"<td>{esc(title)}</td><td>{'raised' if value > 0 else 'lowered'} the score</td></tr>"
        for item_id, title, value in getattr(explanation, "influences", ())
        if value != 0
    ]
    if not rows:
        empty = "(none beyond its threshold)" if thresholds is not None else "(not measured)"
        rows = [f'<tr><td colspan="4" class="rec-none">{empty}</td></tr>']
    table = (
        f'<table class="rec-influence"><caption>{esc(caption)}</caption>'
        "<thead><tr><th>influence</th><th>threshold</th><th>film</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    quiet = [title for _, title in getattr(explanation, "no_effect", ())]
    quiet_html = (
        '<div class="rec-no-effect">No measurable effect (within the threshold, not ranked): '
        f"{esc(', '.join(quiet))}</div>"
        if quiet
        else ""
    )
    sentence = f'<div class="rec-sentence">{esc(explanation.text)}</div>'
    return f'<div class="rec-explain">{sentence}{table}{quiet_html}</div>'


def reply_markdown(reply: str) -> str:
    """A reply (LLM-written or templated) for the Chatbot: markdown kept, HTML escaped."""
    return html.escape(reply, quote=False)


def user_markdown(message: str) -> str:
    """What the person typed, shown verbatim: HTML escaped, markdown characters backslash-escaped."""
    text = html.escape(message, quote=False)
    for mark in "\\`*_[]#|~":
        text = text.replace(mark, "\\" + mark)
    return text


def _influence_name(item_id: str, titles: dict) -> str:
    """A film's title, or for a group influence ("1+7": removed together) its members' titles."""
    parts = item_id.split("+")
    named = " and ".join(titles.get(part, part) for part in parts)
    return f"{named}, together" if len(parts) > 1 else named
