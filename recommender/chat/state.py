"""Conversation state for the chat, and the replies that need no model. Pure: stdlib only.

One turn, as the Gradio app and the pipeline walk it::

    refinement = parse_message(text, catalog)          # recommender.chat.understanding
    state = apply(state, refinement)                     # new state; the old one is untouched
    filters = to_filters(state)                          # protocols.Filters for the retriever
    recs = recommender.recommend(history=retrieval_history(state), query=state.query or None, filters=filters)
    state = record_shown(state, [r.item_id for r in recs])
    reply = writing.templated_reply(recs, refinement, state)  # or an LLM reply the gate passed (chat.replies)
    store.save_state(session_id, state.to_json())        # survives a restart: ConversationState.from_json
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace

from recommender.chat.lexicon import AVOIDABLE_WORDS, QUERY_FILLERS
from recommender.chat.understanding import MAX_MESSAGE_CHARS, Refinement, clean_message, parse_message
from recommender.data import Catalog
from recommender.data.titles import TitleMatch, TitleMatcher, TitleMiss, fold
from recommender.protocols import Filters, Recommendation

__all__ = [
    "ConversationState",
    "Refinement",
    "TitleMatch",
    "TitleMatcher",
    "TitleMiss",
    "MAX_MESSAGE_CHARS",
    "apply",
    "apply_feedback",
    "allowed_titles",
    "clean_message",
    "help_reply",
    "parse_message",
    "record_shown",
    "retrieval_history",
    "start_state",
    "to_filters",
]

STATE_VERSION = 1
FEEDBACK_ACTIONS = ("like", "dislike", "seen")
# Words that carry no topic: "what should I watch next?" leaves no query, so no sticky 'about "should next"'.
FILLER_WORDS = QUERY_FILLERS


@dataclass(frozen=True)
class ConversationState:
    """Everything a chat session has learned; immutable, so every turn returns a new one."""

    user_id: str | None = None  # None for a new (anonymous) person
    user_known: bool = False  # False when user_id is None or not in the interaction logs
    history: tuple[str, ...] = ()  # item ids from the logs, oldest first
    include_genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    exclude_items: tuple[str, ...] = ()  # "not Star Wars", and every film of an excluded fragment
    exclude_fragments: tuple[str, ...] = ()  # "not another Star Trek": title fragments left out, as typed
    anchors: tuple[str, ...] = ()  # "more like Fargo": the retriever's most recent history
    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()  # every item shown so far, oldest first
    query: str = ""  # the last free-text query
    avoid: tuple[str, ...] = ()  # "less violent": words whose films move down the list (``Filters.avoid``)
    page: int = 0  # 0 = first answer; "show me more" counts up and hides what was shown
    turns: int = 0
    k: int | None = None  # films asked for ("show me 3 comedies"): kept until another count or "start over"

    def to_json(self) -> str:
        """The state as one JSON object (with a ``version``), for the store."""
        return json.dumps({"version": STATE_VERSION, **asdict(self)}, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ConversationState:
        """Read ``to_json`` output; raises ``ValueError`` naming the field when the text is not a state."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ValueError(f"saved conversation state is not JSON ({error}).") from None
        if not isinstance(data, dict):
            raise ValueError("saved conversation state is not a JSON object.")
        if data.pop("version", STATE_VERSION) != STATE_VERSION:
            raise ValueError(f"saved conversation state has an unknown version (expected {STATE_VERSION}).")
        values = {}
        for spec in fields(cls):
            if spec.name not in data:
                continue  # older states lack newer fields: keep the default
            value = data[spec.name]
            default = getattr(cls, spec.name)
            if isinstance(default, tuple):
                if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
                    raise ValueError(f"saved conversation state: field {spec.name!r} must be a list of ids.")
                value = tuple(str(v) for v in value)
            elif spec.name in {"year_min", "year_max"}:
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    raise ValueError(f"saved conversation state: field {spec.name!r} must be a year or null.")
            elif spec.name == "k":
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                    raise ValueError("saved conversation state: field 'k' must be a positive count or null.")
            elif spec.name in {"page", "turns"}:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"saved conversation state: field {spec.name!r} must be a count.")
            elif spec.name == "user_id":
                value = None if value is None else str(value)
            elif spec.name == "query":
                value = str(value)
            elif spec.name == "user_known":
                value = bool(value)
            values[spec.name] = value
        return cls(**values)


def _merge(old: Iterable[str], new: Iterable[str], drop: Iterable[str] = ()) -> tuple[str, ...]:
    """``old`` then ``new``, without duplicates and without anything in ``drop``."""
    dropped = set(drop)
    return tuple(i for i in dict.fromkeys([*old, *new]) if i not in dropped)


def start_state(
    user_id: str | int | None = None,
    histories: Mapping[str, Sequence[str]] | None = None,
    catalog: Catalog | None = None,
) -> ConversationState:
    """A fresh state for ``user_id``; an unknown or missing user starts with an empty history.

    Args:
        user_id: the person's id in the logs, or None for someone new.
        histories: user id -> item ids, oldest first (the pipeline's training sequences).
        catalog: when given, history ids missing from it are dropped.
    """
    user = None if user_id is None or str(user_id).strip() == "" else str(user_id).strip()
    history = tuple(str(i) for i in (histories or {}).get(user, ())) if user is not None else ()
    if catalog is not None:
        history = tuple(i for i in history if i in catalog)
    known = user is not None and histories is not None and user in histories
    return ConversationState(user_id=user, user_known=known, history=history)


def meaningful_query(text: str) -> str:
    """The words of a free-text query that say what to look for, or "" when all are filler.

    "what should I watch next" -> ""; "a heist with a twist" -> "heist twist".
    """
    words = [
        w for w in re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", text or "") if fold(w).replace(" ", "") not in FILLER_WORDS
    ]
    return " ".join(w for w in words if len(w) > 1 or w.isdigit())


def _next_query(state: ConversationState, refinement: Refinement) -> str:
    """A new meaningful query replaces the old one; new wanted genres or "more like" seeds (a new
    topic) drop it; anything else (years, exclusions, "show me more", filler) keeps it."""
    query = meaningful_query(refinement.query)
    if query:
        return query
    if refinement.include_genres and not refinement.additive or refinement.more_like:
        return ""
    return state.query


def apply(state: ConversationState, refinement: Refinement, catalog: Catalog | None = None) -> ConversationState:
    """The state after one message. Pure: ``state`` is not changed.

    Wanted genres replace the previous ones (unless the message said "also"); excluded genres,
    items, likes and dislikes accumulate; a decade or year replaces both year bounds, "before"
    or "after" replaces one; "show me more" turns the page; "start over" keeps only the person.
    The free-text query is replaced, never accumulated, and only by words that mean something.
    "Older" / "newer" with no year are compared with the years asked so far, else (given ``catalog``)
    with the film the conversation took as its seed.
    A count ("show me 3 comedies") stays until another count or "start over".
    """
    if refinement.reset:
        keep = ("user_id", "user_known", "history", "liked", "disliked", "seen", "turns")
        state = ConversationState(**{name: getattr(state, name) for name in keep})
        if refinement == Refinement(reset=True, truncated=refinement.truncated, notes=refinement.notes):
            return replace(state, turns=state.turns + 1)
    state = _lift(state, refinement)
    allowed = set(refinement.allow_genres) & set(state.exclude_genres)  # "actually war is fine": lifted only
    state = replace(state, exclude_genres=tuple(g for g in state.exclude_genres if g not in allowed))
    include = tuple(g for g in refinement.include_genres if g not in allowed)
    additive = refinement.additive or bool(refinement.allow_genres)  # "war is fine too" adds, never replaces
    exclude = _merge(state.exclude_genres, refinement.exclude_genres, drop=include)
    if include:
        include = _merge(state.include_genres if additive else (), include, drop=exclude)
    else:
        include = tuple(g for g in state.include_genres if g not in exclude)
    anchor = catalog[state.anchors[0]].year if catalog is not None and state.anchors[:1] and (
        state.anchors[0] in catalog) else None  # fmt: skip
    year_min, year_max = _years(state, refinement, anchor)
    liked = _merge(state.liked, refinement.liked, drop=refinement.disliked)
    disliked = _merge(state.disliked, refinement.disliked, drop=refinement.liked)
    changed = refinement.is_empty is False and not refinement.show_more
    return replace(
        state,
        include_genres=include,
        exclude_genres=exclude,
        year_min=year_min,
        year_max=year_max,
        exclude_items=_merge(state.exclude_items, refinement.exclude_items, drop=refinement.liked),
        exclude_fragments=_merge(state.exclude_fragments, refinement.exclude_fragments),
        anchors=refinement.more_like or state.anchors,
        liked=liked,
        disliked=disliked,
        seen=_merge(state.seen, refinement.seen),
        query=_next_query(state, refinement),
        avoid=_merge(state.avoid, tuple(word for word in refinement.avoid_terms if word in AVOIDABLE_WORDS))[-5:],
        page=state.page + 1 if refinement.show_more else 0 if changed else state.page,
        turns=state.turns + 1,
        k=refinement.k or state.k,
    )


def _lift(state: ConversationState, refinement: Refinement) -> ConversationState:
    """``state`` without the filters the message lifted: named genres leave both lists ("remove the
    romance filter"), "any genre" empties the wanted ones (exclusions were said firmly and stay), "forget
    the year" both bounds. The message's own filters are applied after."""
    lifted = set(refinement.lift_genres)
    include = () if refinement.lift_all_genres else tuple(g for g in state.include_genres if g not in lifted)
    exclude = tuple(g for g in state.exclude_genres if g not in lifted)
    years = (None, None) if refinement.lift_years else (state.year_min, state.year_max)
    return replace(state, include_genres=include, exclude_genres=exclude, year_min=years[0], year_max=years[1])


def _years(state: ConversationState, refinement: Refinement, anchor: int | None) -> tuple[int | None, int | None]:
    """The year bounds after a message: a decade or year ("the 90s") replaces both; a one-sided bound
    ("nothing too old", "after 1985") narrows a range the person gave ("90s" stays the 90s: issue 28's
    simulated people lost it), replaces a one-sided bound of the same side, and replaces the range when
    they do not overlap ("recent" after "classics")."""
    if refinement.year_set or refinement.year_min is not None and refinement.year_max is not None:
        return refinement.year_min, refinement.year_max  # both bounds said: they replace both
    low, high = state.year_min, state.year_max
    if refinement.year_relative == "older" and low is not None:
        return None, low - 1  # "the 90s", then "hmm older": before 1990
    if refinement.year_relative == "newer" and high is not None:  # "the 70s", then "newer": from 1980
        if refinement.year_min is not None and high >= refinement.year_min + 2:  # nothing after "the 90s":
            return max(low or refinement.year_min, refinement.year_min), high  # its newest years, 1996-1999
        return high + 1, None
    if refinement.year_relative and low is None and high is None and anchor:  # "like the godfather" / "but newer"
        return (anchor + 1, None) if refinement.year_relative == "newer" else (None, anchor - 1)
    if refinement.year_min is not None:
        new = refinement.year_min
        if low is not None and high is not None and new <= high:
            low = max(low, new)  # within the range: narrow it
        else:
            low, high = new, None if high is not None and high < new else high
    if refinement.year_max is not None:
        new = refinement.year_max
        if low is not None and high is not None and new >= low:
            high = min(high, new)
        else:
            low, high = None if low is not None and low > new else low, new
    return low, high


def apply_feedback(state: ConversationState, item_id: str, action: str) -> ConversationState:
    """The state after a thumbs up ("like"), thumbs down ("dislike") or "seen" on one item."""
    if action not in FEEDBACK_ACTIONS:
        raise ValueError(f"feedback action {action!r} is not one of {', '.join(FEEDBACK_ACTIONS)}.")
    item = str(item_id)
    if action == "like":
        return replace(state, liked=_merge(state.liked, [item]), disliked=_merge(state.disliked, (), drop=[item]))
    if action == "dislike":
        return replace(state, disliked=_merge(state.disliked, [item]), liked=_merge(state.liked, (), drop=[item]))
    return replace(state, seen=_merge(state.seen, [item]))


def record_shown(state: ConversationState, item_ids: Iterable[str]) -> ConversationState:
    """The state after the app showed ``item_ids``; "show me more" will skip them."""
    return replace(state, shown=_merge(state.shown, map(str, item_ids)))


def retrieval_history(state: ConversationState) -> tuple[str, ...]:
    """The history the retriever should see: logs, then liked items, then "more like" anchors last.

    Disliked items are left out, and so are films the person only said they have seen: "I've already
    seen Groundhog Day" hides it and says nothing about wanting more like it, so it never seeds the
    list nor a card's "like Groundhog Day" reason (issue 28). Each id appears once, at its most recent
    position.
    """
    ordered = [*state.history, *state.liked, *state.anchors]
    last = {item: position for position, item in enumerate(ordered)}
    disliked = set(state.disliked)
    return tuple(item for position, item in enumerate(ordered) if last[item] == position and item not in disliked)


def to_filters(state: ConversationState) -> Filters:
    """``protocols.Filters`` for the retriever: genres, years, and every item not to show again."""
    hidden = [*state.exclude_items, *state.disliked, *state.seen]
    if state.page > 0:
        hidden += state.shown
    return Filters(
        include_genres=state.include_genres,
        exclude_genres=state.exclude_genres,
        year_min=state.year_min,
        year_max=state.year_max,
        exclude_items=tuple(dict.fromkeys(hidden)),
        exclude_seen=True,
        avoid=state.avoid,
    )


# ---------------------------------------------------------------- replies


def _safe(text: str, limit: int = 80) -> str:
    """User text fit to echo inside markdown: no HTML or markdown control characters, short."""
    text = re.sub(r"[<>*_`\[\]#|\\]", "", clean_message(text, limit)[0])
    return " ".join(text.split())


def describe_constraints(state: ConversationState) -> str:
    """The active constraints in words ("Comedy, not Horror, 1990-1999"), or "" when none."""
    parts = []
    if state.include_genres:
        parts.append(" or ".join(state.include_genres))
    if state.exclude_genres:
        parts.append("no " + ", ".join(state.exclude_genres))
    if state.year_min is not None and state.year_max is not None:
        parts.append(str(state.year_min) if state.year_min == state.year_max else f"{state.year_min}-{state.year_max}")
    elif state.year_min is not None:
        parts.append(f"from {state.year_min} on")
    elif state.year_max is not None:
        parts.append(f"up to {state.year_max}")
    if state.exclude_fragments:
        parts.append("no " + ", ".join(f'"{_safe(fragment, 40)}"' for fragment in state.exclude_fragments))
    if state.query:
        parts.append(f'about "{_safe(state.query)}"')
    if state.avoid:
        parts.append("less " + ", ".join(f'"{_safe(word, 20)}"' for word in state.avoid))
    return "; ".join(parts)


def _miss_lines(refinement: Refinement) -> list[str]:
    lines = []
    for miss in refinement.unmatched:
        offer = f" Did you mean {', '.join(miss.suggestions)}?" if miss.suggestions else ""
        lines.append(f'I could not find "{_safe(miss.typed)}" in the catalogue.{offer}')
    return lines


def help_reply(refinement: Refinement | None = None, catalog: Catalog | None = None) -> str:
    """What to say when a message asked for nothing we understood: what the chat can do, with examples."""
    lines = list(refinement.notes) if refinement else []
    lines += _miss_lines(refinement) if refinement else []
    genres = [g for g in (catalog.genre_vocabulary if catalog else ()) if g.lower() != "unknown"]
    lines.append("I didn't catch a request there. You can tell me, for example:")
    lines += [
        '- a genre or mood: "something funny", "sci-fi", "for kids"'
        + (f" (genres here: {', '.join(genres)})" if genres else ""),
        '- what to leave out: "no horror", "nothing animated", "not Star Wars"',
        '- when: "from the 90s", "before 1980", "recent", "classics"',
        '- a film as a starting point: "more like Fargo", "I liked The Usual Suspects", "I watched Heat"',
        '- "show me more" for the next few, "start over" to clear everything',
        '- or just describe it in your own words: "a heist with a twist"',
    ]
    return "\n".join(lines)


def allowed_titles(recommendations: Sequence[Recommendation], state: ConversationState, catalog: Catalog) -> set[str]:
    """Titles a reply may name: the ranked list and the person's own history, likes and anchors."""
    ids = [*state.history, *state.liked, *state.seen, *state.anchors, *state.disliked]
    titles = {rec.title for rec in recommendations}
    return titles | {catalog[i].title for i in ids if i in catalog}
