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

from recommender.data import Item
from recommender.explanation_evidence import LINK_FINDERS, EvidenceSources
from recommender.influence import CARD_INFLUENCERS
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


@dataclass(frozen=True)
class PickExplanation:
    """What a picked card shows: the sentence and the influence table of ``recommender explain``.

    ``thresholds`` is None when nothing was measured (no LLM ranks the list, no history to ablate, or
    fewer than two shown films to swap); then ``influences`` are empty and ``unmeasured`` says why.
    """

    text: str
    influences: tuple[tuple[str, str, float], ...] = ()  # (id, title, effect) beyond its threshold: raised, lowered
    no_effect: tuple[tuple[str, str], ...] = ()  # (id, title) of the ablated films within their thresholds
    thresholds: dict[str, float] | None = None  # id -> what each ablated film's effect was compared with
    unmeasured: str = ""  # why no influence was measured ("" when measured)

    @property
    def raised(self) -> tuple[tuple[str, float], ...]:
        """The (id, effect) of the films that raised the card's score, strongest first (``CARD_INFLUENCERS``)."""
        return tuple((item_id, value) for item_id, _, value in self.influences if value > 0)[:CARD_INFLUENCERS]


def explain_pick(pipeline: Any, rec: Recommendation, basis: TurnBasis | None, writer: Any = None) -> PickExplanation:
    """The picked card's explanation, as ``recommender explain`` gives it: ``pipeline.explain`` (drop-one
    influence on the served prompt against each film's threshold, then a sentence checked to name only the history and
    the item). Without an LLM, a history or when that fails, a sentence from the card's own facts (its
    genres, the asked constraints it meets, its reasons) and no influence. Never raises.
    """
    explain = getattr(pipeline, "explain", None)
    history = list(basis.history) if basis is not None else []
    if getattr(pipeline, "scorer", None) is None or explain is None:
        return PickExplanation(card_explanation(rec, basis), unmeasured="no LLM ranks this list")
    if not history:
        return PickExplanation(card_explanation(rec, basis), unmeasured="no history to measure influence on")
    try:
        explanation = explain(history, rec.item_id, window=INFLUENCE_WINDOW, writer=writer)
        thresholds = {str(i): float(v) for i, v in explanation.thresholds.items()}
        influences = tuple((str(i), str(t), float(v)) for i, t, v in explanation.influences if v != 0)
        no_effect = tuple((str(i), str(t)) for i, t, _ in explanation.no_effect)
        if not thresholds:  # fewer than two shown films to swap: no spread to measure, no influence claimed
            reason = "fewer than two of your films to compare, so no influence is claimed"
            return PickExplanation(str(explanation.text), (), no_effect, None, reason)
        return PickExplanation(str(explanation.text), influences, no_effect, thresholds)
    except Exception:  # noqa: BLE001 - the card's own facts are always there
        log.exception("explaining %s failed; explaining from the card's facts", rec.item_id)
        return PickExplanation(card_explanation(rec, basis), unmeasured="the measurement failed")


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


# ---------------------------------------------------------------- each card's own reasons


def with_reasons(
    pipeline: Any, recs: Sequence[Recommendation], history: Sequence[str], state: Any
) -> tuple[Recommendation, ...]:
    """``recs`` with reasons of their own (``card_reasons``) instead of the pipeline's genre line, which
    read the same on every card ("Sci-Fi like Blade Runner (1982)" ten times, issue 29)."""
    catalog = pipeline.catalog
    sources = _sources(pipeline)
    recent = [catalog[i] for i in reversed(list(history)[-REASON_WINDOW:]) if i in catalog]  # most recent first
    out = []
    for rec in recs:
        try:
            reasons = card_reasons(sources, catalog[rec.item_id], recent, state) if rec.item_id in catalog else ()
        except Exception:  # noqa: BLE001 - a reason is an extra: keep the pipeline's
            log.exception("reasons for %s failed; keeping the pipeline's", rec.item_id)
            reasons = ()
        out.append(replace(rec, reasons=reasons or rec.reasons))
    return tuple(out)


def card_reasons(sources: EvidenceSources, item: Item, recent: Sequence[Item], state: Any = None) -> tuple[str, ...]:
    """Up to two reasons that belong to ``item``: its closest tie to a recent history film (same
    director, sequel, shared cast; the genres they share; how many who watched that film watched this
    one), then what the person asked for that it meets (its genres, its year), then how many people
    watched it. ``recent`` is the history, most recent first."""
    reasons: list[str] = []
    past, links = _closest(sources, item, recent)
    if past is not None:
        title = past.display_title()
        for link in links:
            if link["kind"] == "relation" and link["relation"] in RELATION_WORDS:
                reasons.append(RELATION_WORDS[link["relation"]].format(title=title, count=link.get("count", 1)))
                break
        genres = next((link["genres"] for link in links if link["kind"] == "genre"), [])
        if genres:
            reasons.append(f"{', '.join(genres)} like {title}")
        both = next((link for link in links if link["kind"] == "cowatch"), None)
        if both is not None:
            reasons.append(f"{both['both']} of the {both['watched']} who watched {title} also watched it")
    asked = _asked(item, state)
    if asked:
        reasons.append(asked)
    watched = _watched(sources, item)
    if watched:
        reasons.append(f"watched by {watched} people in the logs")
    return tuple(reasons[:2])


REASON_WINDOW = 5  # a card's reason looks back on the last 5 history films
RELATION_WORDS = {
    "sequel": "a sequel to {title}",
    "prequel": "a prequel to {title}",
    "series": "in the same series as {title}",
    "director": "same director as {title}",
    "writer": "same writer as {title}",
    "cast": "shares cast with {title}",
}


def _sources(pipeline: Any) -> EvidenceSources:
    try:
        sources = getattr(pipeline, "evidence_sources", None)  # a cached property: co-watching counts, graph
    except Exception:  # noqa: BLE001
        log.exception("evidence sources failed; reasons from the catalogue alone")
        sources = None
    return sources if isinstance(sources, EvidenceSources) else EvidenceSources(pipeline.catalog)


def _closest(sources: EvidenceSources, item: Item, recent: Sequence[Item]) -> tuple[Item | None, list[dict]]:
    """The recent film most tied to ``item`` (a relation first, then the share of its viewers who watched
    ``item`` too, then shared genres; the most recent on a tie) and its links."""
    best, best_links, best_score = None, [], 0.0
    for past in recent:
        if past.id == item.id:
            continue
        links = [link for find in LINK_FINDERS for link in find(sources, past, item)]
        score = 0.0
        for link in links:
            if link["kind"] == "relation" and link["relation"] in RELATION_WORDS:
                score += 10.0
            elif link["kind"] == "cowatch":
                score += 2.0 * link["both"] / max(link["watched"], 1)
            elif link["kind"] == "genre":
                score += 1.0 + 0.1 * len(link["genres"])
        if score > best_score:
            best, best_links, best_score = past, links, score
    return best, best_links


def _asked(item: Item, state: Any) -> str:
    """What the person asked for that ``item`` meets: "Comedy from 1993, as you asked"."""
    genres = [g for g in getattr(state, "include_genres", ()) if g in item.genres]
    dated = getattr(state, "year_min", None) is not None or getattr(state, "year_max", None) is not None
    when = f"from {item.year}" if dated and item.year else ""
    if not genres and not when:
        return ""
    return " ".join(part for part in ("/".join(genres), when) if part) + ", as you asked"


def _watched(sources: EvidenceSources, item: Item) -> int:
    cowatch = sources.cowatch
    if cowatch is None or item.id not in sources.catalog.index:
        return 0
    return int(cowatch.watched(sources.catalog.index[item.id]))
