"""What a picked card says: the influences of the history on the cards (measured once per list,
after the reply) and the picked card's written explanation (issue 28: picking a card explained the
others and not it).

    basis = TurnBasis(history, query, filters)             # what the list was ranked from
    cards = explain_cards(pipeline, recs, basis)           # "Because of: ..." on the LLM-ranked cards
    text, raised = explain_pick(pipeline, recs[0], basis)  # the picked card's sentence and influencers
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from recommender.protocols import Recommendation

log = logging.getLogger(__name__)

INFLUENCE_WINDOW = 5  # cards show which of the last 5 history items drove each LLM-ranked item


@dataclass(frozen=True)
class TurnBasis:
    """What a turn's cards were ranked from (before the turn marked them shown), so that their
    influences can be measured later on the same candidate list."""

    history: tuple[str, ...]
    query: str | None
    filters: Any


def explain_cards(pipeline: Any, recs: Sequence[Recommendation], basis: TurnBasis) -> tuple[Recommendation, ...]:
    """``recs`` with the influences ``pipeline.influences(history=, item_ids=, window=)`` measures for
    the LLM-ranked ones on the list ``basis`` ranked.

    The basis's ``query`` and ``filters`` are passed on when ``influences`` takes them, so the
    pipeline can rebuild the same candidate list. A failure leaves the cards as they are: influences
    are an extra, never a reason to lose a turn.
    """
    measure = getattr(pipeline, "influences", None)
    if measure is None or not basis.history:
        return tuple(recs)
    ranked = [rec.item_id for rec in recs if rec.llm_score is not None]
    if not ranked:  # retrieval only: no LLM score to measure an influence on
        return tuple(recs)
    try:
        accepted = inspect.signature(measure).parameters
        context = {"query": basis.query, "filters": basis.filters}
        extra = {name: value for name, value in context.items() if name in accepted}
        found = measure(history=list(basis.history), item_ids=ranked, window=INFLUENCE_WINDOW, **extra)
    except Exception:  # noqa: BLE001
        log.exception("influences failed; the cards keep no influences")
        return tuple(recs)
    return tuple(replace(rec, influences=tuple(found.get(rec.item_id, rec.influences))) for rec in recs)


def explain_pick(
    pipeline: Any, rec: Recommendation, basis: TurnBasis | None, writer: Any = None
) -> tuple[str, tuple[tuple[str, float], ...]]:
    """A written explanation of the picked card and the history items that raised it most.

    With an LLM, ``pipeline.explain`` (drop-one influence on the served prompt, then a sentence checked
    to name only the history and the item); without one, or when that fails, a sentence from the card's
    own facts (its genres, the asked constraints it meets, its reasons). Never raises.
    """
    explain = getattr(pipeline, "explain", None)
    if explain is not None and getattr(pipeline, "scorer", None) is not None and basis is not None and basis.history:
        try:
            options = {"writer": writer} if writer is not None else {}
            explanation = explain(list(basis.history), rec.item_id, window=INFLUENCE_WINDOW, **options)
            raised = tuple((item_id, value) for item_id, _, value in explanation.influences if value > 0)
            return str(explanation.text), raised[:3]
        except Exception:  # noqa: BLE001 - the card's own facts are always there
            log.exception("explaining %s failed; explaining from the card's facts", rec.item_id)
    return card_explanation(rec, basis), ()


def card_explanation(rec: Recommendation, basis: TurnBasis | None = None) -> str:
    """A sentence from the card's facts alone: what it is, which asked constraints it meets, its reasons."""
    title = f"{rec.title} ({rec.year})" if rec.year else rec.title
    genres = "/".join(rec.genres)
    kind = f", {'an' if genres[:1] in 'AEIOU' else 'a'} {genres} film" if genres else ""
    filters = getattr(basis, "filters", None)
    asked = [g for g in getattr(filters, "include_genres", ()) if g in rec.genres]
    text = f"We suggest {title}{kind}"
    text += f", because you asked for {' or '.join(asked)}." if asked else "."
    if rec.reasons:
        text += " Why: " + "; ".join(rec.reasons[:2]) + "."
    return text
