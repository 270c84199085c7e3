"""One chat turn, end to end: message -> state -> recommendations -> reply -> store.

The Gradio app (``ui/app.py``) calls these functions and holds no recommendation logic;
tests call them with a fake pipeline. Nothing a person types can raise out of a turn: any exception
becomes a friendly reply, the state stays as it was before the turn and the store keeps everything
written before it (each store write is its own transaction).

    session = open_session(pipeline, store, user_id="196")
    for update in run_turn(pipeline, store, session, "something funny, no horror", k=10):
        show(update.reply, update.recommendations)       # the reply streams in pieces
    session = update.session                              # the state after the turn
    session, note = give_feedback(pipeline, store, session, item_id="100", action="like")

``pipeline`` is anything with ``.catalog``, ``.recommend(history=, query=, filters=, k=,
influence_window=)``, ``.user_history(user_id)`` and ``.scorer`` (None, or an object with
``.stream(messages, max_new_tokens)`` yielding text pieces), i.e. a ``recommender.pipeline.Recommender``;
optionally ``.influences(history, item_ids, window)`` (item id -> its positive influencers).

A turn's updates, in order: the cards (the reply "…"), the LLM reply sentence by sentence as each
passes the gate (``writing.gated_reply``: what is shown is never replaced), the final reply (what
passed, else the template), and last, once the reply is done, the cards again with their influences
(``done=True``). Influences come after the reply
because they cost W more LLM prompts, and the person reads the reply first. With
``influences="on demand"`` (the app's choice) the turn ends with the reply and its last update
carries the ``basis`` the cards were ranked from; ``explain_cards`` measures them when a card is
opened, once per list.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from recommender.chat.cards import (
    INFLUENCE_WINDOW,
    TurnBasis,
    card_explanation,
    explain_cards,
    explain_pick,
    with_reasons,
)
from recommender.chat.counts import MAX_COUNT_NOTE, MAX_K  # MAX_K: the most cards a turn shows
from recommender.chat.state import (
    ConversationState,
    _miss_lines,  # "I could not find X. Did you mean ...?"; kept in LLM replies too
    apply,
    apply_feedback,
    clean_message,
    help_reply,
    meaningful_query,
    parse_message,
    record_shown,
    retrieval_history,
    start_state,
    to_filters,
)
from recommender.chat.writing import (
    REPLY_DEADLINE_S,
    REPLY_TOKENS,
    gated_reply,
    reply_messages,
    reply_opening,
    templated_reply,
)
from recommender.protocols import Recommendation
from recommender.store import with_stored_interactions

__all__ = ["INFLUENCE_WINDOW", "MAX_K", "NEW_USER", "REPLY_DEADLINE_S", "REPLY_TOKENS", "SORRY", "Session", "TurnBasis",
           "TurnUpdate", "asks_for_picks", "card_explanation", "clamp_k", "explain_cards", "explain_pick",
           "finish_turn", "give_feedback", "load_session", "model_name", "open_session", "parse_user",
           "recommend_for_message", "reply_messages", "reply_opening", "resolve_user", "run_turn",
           "shown_recommendations", "stored_conversation"]  # fmt: skip

log = logging.getLogger(__name__)

NEW_USER = "new user"
SORRY = "Sorry, something went wrong on my side with that request, and nothing you asked for was lost. Please try again, or rephrase it."  # noqa: E501


@dataclass(frozen=True)
class Session:
    """One person's conversation as the app keeps it between turns (JSON-safe via ``to_dict``)."""

    session_id: str | None  # None until the store created the session
    state: ConversationState
    model: str | None = None  # what wrote the last list, for feedback rows
    template_version: str | None = None
    shown: tuple[str, ...] = ()  # item ids of the cards on screen, best first

    @property
    def user_id(self) -> str | None:
        return self.state.user_id

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.to_json()
        data["shown"] = list(self.shown)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Session | None:
        if not data:
            return None
        return cls(
            session_id=data.get("session_id"),
            state=ConversationState.from_json(data["state"]),
            model=data.get("model"),
            template_version=data.get("template_version"),
            shown=tuple(str(i) for i in data.get("shown") or ()),
        )


@dataclass(frozen=True)
class TurnUpdate:
    """What the screen shows during and after a turn."""

    reply: str  # markdown; the part written so far while streaming
    recommendations: tuple[Recommendation, ...]
    session: Session
    source: str  # "llm", "template", "help" or "error"
    done: bool
    draft: str = ""  # the LLM's reply as written (tidied), also when the gate refused it
    rejected: str = ""  # why the gate refused the draft ("" when shown or when no LLM wrote one)
    basis: TurnBasis | None = None  # on the last update when influences are left for ``explain_cards``


def model_name(pipeline: Any) -> str:
    """The line saying which model and adapter serve, e.g. "SmolLM2-135M-Instruct + LoRA ... on cpu"."""
    scorer = getattr(pipeline, "scorer", None)
    loaded = getattr(scorer, "loaded", None)
    if loaded is not None and hasattr(loaded, "describe"):
        adapter = "" if getattr(loaded, "adapter_path", None) else " · no LoRA adapter"
        return loaded.describe() + adapter
    return "retrieval only (no LLM)" if scorer is None else type(scorer).__name__


def parse_user(user: object) -> str | None:
    """A user picker value as a user id; "", "new user" and None mean someone new."""
    text = clean_message(user, 64)[0] if user is not None else ""
    return None if text == "" or text.lower() == NEW_USER else text


def resolve_user(pipeline: Any, user: object, store: Any = None) -> tuple[ConversationState, str]:
    """A fresh state for a picker value and a note for the reply ("" when all is well).

    A known user's history is the dataset's, followed by what they liked or marked seen in earlier
    chat sessions (stored interactions). An id that is not in the dataset starts a new person (with
    no history), and the note says so.
    """
    user_id = parse_user(user)
    if user_id is None:
        return start_state(None), ""
    try:
        history = pipeline.user_history(user_id)
    except (ValueError, KeyError) as error:
        return start_state(None), f"{error} Starting as a new user with no history."
    if store is not None and hasattr(store, "appended_interactions"):
        history = with_stored_interactions(history, store, user_id, pipeline.catalog)
    return start_state(user_id, {user_id: history}, pipeline.catalog), ""


def open_session(pipeline: Any, store: Any, user: object = None) -> tuple[Session, str]:
    """A new session for a picker value, stored when ``store`` is given; (session, note)."""
    state, note = resolve_user(pipeline, user, store)
    session_id = store.start_session(user_id=state.user_id, state=state.to_json()) if store is not None else None
    return Session(session_id, state, model=model_name(pipeline)), note


def load_session(pipeline: Any, store: Any, session_id: object) -> Session:
    """A stored session (state, last template version) by id; ``ValueError`` when the id is unknown."""
    sid = str(session_id or "").strip()
    try:
        saved = store.load_state(sid)
        turns = store.turns(sid)
    except KeyError:
        raise ValueError(
            f"session {sid[:64]!r} is not in the store; start a new one with an empty session id."
        ) from None
    state = ConversationState.from_json(saved) if saved else start_state(None)
    version = turns[-1]["template_version"] if turns else None
    shown = tuple(turns[-1]["shown"]) if turns else ()
    return Session(sid, state, model=model_name(pipeline), template_version=version, shown=shown)


def shown_recommendations(pipeline: Any, session: Session) -> tuple[Recommendation, ...]:
    """The cards of the session's last turn rebuilt from the catalogue (a reloaded page shows them again)."""
    version = session.template_version or ""
    items = [pipeline.catalog[i] for i in session.shown if i in pipeline.catalog]
    return tuple(Recommendation(item.id, item.title, 0.0, 0.0, None, version, item.year, item.genres) for item in items)


def stored_conversation(store: Any, session_id: str | None) -> list[tuple[str, str]]:
    """(message, reply) pairs of a stored session, oldest first; [] without a store or session."""
    if store is None or not session_id:
        return []
    try:
        return [(str(turn["message"]), str(turn["reply"])) for turn in store.turns(session_id)]
    except KeyError:
        return []


def clamp_k(k: object, default: int = 10) -> int:
    """``k`` from a slider or an API call as an int in 1..MAX_K."""
    try:
        value = int(float(k))  # sliders send floats
    except (TypeError, ValueError, OverflowError):
        return default
    return max(1, min(MAX_K, value))


def run_turn(
    pipeline: Any,
    store: Any,
    session: Session,
    message: object,
    k: object = 10,
    llm_reply: bool = True,
    deadline_s: float = REPLY_DEADLINE_S,
    influences: bool | str = True,
    reply_tokens: int = REPLY_TOKENS,
    writer: Any = None,
) -> Iterator[TurnUpdate]:
    """Run one turn and yield what to show: the cards first, then the reply as it streams, then
    the cards with their influences.

    The last update has ``done=True`` and the session after the turn. It never raises.

    Args:
        influences: True: the cards' influences after the reply (when the pipeline has ``influences``);
            False: none; "on demand": none in the turn, and the last update's ``basis`` lets
            ``explain_cards`` measure them later.
        reply_tokens: at most this many new tokens in the LLM reply.
        writer: what writes the reply (``.stream(messages, max_new_tokens)``); default ``pipeline.scorer``.
    """
    text = clean_message(message, 20_000)[0]
    try:
        yield from _turn(
            pipeline, store, session, text, clamp_k(k), llm_reply, deadline_s, influences, reply_tokens, writer
        )
    except Exception:  # noqa: BLE001 - a turn must never take the app down
        log.exception("chat turn failed for message %r", text[:200])
        yield TurnUpdate(SORRY, (), session, "error", True)


def asks_for_picks(text: str) -> bool:
    """True for a bare request with no constraint ("what should I watch next?", "surprise me", "I'm bored"):
    answer it from what the session already knows rather than with the help text."""
    asks = r"\b(?:watch|recommend\w*|suggest\w*|movies?|films?|picks?|surprise|bored|entertain|you (?:pick|choose))\b"
    return bool(re.search(asks, text, re.I)) and not (meaningful_query(text))


def _asked_k(refinement: Any, k: int, state: Any = None) -> tuple[int, str]:
    """The number of cards: the message's own count ("give me 3 options") within ``MAX_K``, else the
    count asked for earlier in the conversation (``state.k``: "more" after "show me 3" shows 3), else ``k``."""
    asked = getattr(refinement, "k", None)
    if not isinstance(asked, int) or isinstance(asked, bool) or asked <= 0:
        asked = getattr(state, "k", None)
    if not isinstance(asked, int) or isinstance(asked, bool) or asked <= 0:
        return k, ""
    if asked > MAX_K:
        return MAX_K, MAX_COUNT_NOTE.format(cap=MAX_K)
    return asked, ""


def _turn(
    pipeline: Any,
    store: Any,
    session: Session,
    text: str,
    k: int,
    llm_reply: bool,
    deadline_s: float,
    influences: bool | str,
    reply_tokens: int,
    writer: Any = None,
) -> Iterator[TurnUpdate]:
    catalog = pipeline.catalog
    refinement = parse_message(text, catalog, shown=session.shown)
    if refinement.is_empty and not asks_for_picks(text):
        reply = help_reply(refinement, catalog)
        if store is not None:
            session = replace(session, session_id=session.session_id or store.start_session(user_id=session.user_id))
            store.record_turn(session.session_id, text, reply, state=session.state.to_json())
        yield TurnUpdate(reply, (), session, "help", True)
        return
    state = apply(session.state, refinement, catalog)
    k, count_note = _asked_k(refinement, k, state)
    history, filters = list(retrieval_history(state)), to_filters(state)
    recs = with_reasons(pipeline, _fresh_first(pipeline, state, history, filters, k), history, state)  # each its own
    state = record_shown(state, [rec.item_id for rec in recs])
    version = recs[0].template_version if recs else session.template_version
    after = replace(
        session, state=state, model=model_name(pipeline), template_version=version, shown=tuple(r.item_id for r in recs)
    )
    fallback = templated_reply(recs, refinement, state)
    notes = "\n\n".join([*((count_note,) if count_note else ()), *refinement.notes, *_miss_lines(refinement)])
    if count_note:
        fallback = f"{count_note}\n\n{fallback}"
    reply, source, draft, rejected = fallback, "template", "", ""
    scorer = writer if writer is not None else getattr(pipeline, "scorer", None)
    if llm_reply and recs and scorer is not None and hasattr(scorer, "stream"):
        yield TurnUpdate("…", recs, after, "llm", False)
        texts = gated_reply(pipeline, scorer, recs, state, text, deadline_s, reply_tokens)
        shown, draft, rejected = yield from _updates(
            texts, lambda passed: TurnUpdate(f"{notes}\n\n{passed}" if notes else passed, recs, after, "llm", False)
        )
        if shown:
            reply, source = (f"{notes}\n\n{shown}" if notes else shown), "llm"
        if rejected:
            log.info(
                "LLM reply refused (%s); %s: %r", rejected, "kept what passed" if shown else "template", draft[:200]
            )
    if store is not None:
        session_id = after.session_id or store.start_session(user_id=state.user_id)
        after = replace(after, session_id=session_id)
        store.record_turn(session_id, text, reply, shown=recs, state=state.to_json(), model=after.model,
                          template_version=version, history=history)  # fmt: skip
    measure = getattr(pipeline, "influences", None) if influences else None
    basis = TurnBasis(tuple(history), state.query or None, filters)  # as recommend saw them, before record_shown
    if influences == "on demand":  # a picked card is explained later (``explain_cards``, ``explain_pick``)
        yield TurnUpdate(reply, recs, after, source, True, draft, rejected, basis)
        return
    if measure is None or not history or not any(rec.llm_score is not None for rec in recs):
        yield TurnUpdate(reply, recs, after, source, True, draft, rejected)
        return
    yield TurnUpdate(reply, recs, after, source, False, draft, rejected)
    yield TurnUpdate(reply, explain_cards(pipeline, recs, basis), after, source, True, draft, rejected)


def _fresh_first(pipeline: Any, state: ConversationState, history: list[str], filters: Any, k: int) -> tuple:
    """The top ``k`` for the turn, films this conversation has not shown yet first.

    A refinement ("from the 90s") ranks afresh, and the films the person already saw and passed over
    would fill the list again (issue 28: simulated people saw the same top four after every added
    fact); they go behind every film not shown yet. "Show me more" hides them altogether (``to_filters``).
    """
    shown = set(state.shown) if state.page == 0 else set()
    # Influences are not computed here: they cost W more prompts, and the cards must come first.
    recs = pipeline.recommend(
        history=history, query=state.query or None, filters=filters, k=k + min(len(shown), MAX_K), influence_window=0
    )
    fresh = [rec for rec in recs if rec.item_id not in shown]
    return tuple([*fresh, *(rec for rec in recs if rec.item_id in shown)][:k])


def _updates(texts: Generator[str, None, Any], wrap: Any) -> Generator[TurnUpdate, None, Any]:
    """Each text ``texts`` yields as an update (``wrap(text)``); returns what ``texts`` returns."""
    while True:
        try:
            text = next(texts)
        except StopIteration as stop:
            return stop.value
        yield wrap(text)


def finish_turn(updates: Iterator[TurnUpdate]) -> TurnUpdate:
    """The last update of a turn (for callers that do not stream)."""
    *_, last = updates
    return last


def give_feedback(pipeline: Any, store: Any, session: Session, item_id: object, action: str) -> tuple[Session, str]:
    """Record a like / dislike / seen on a shown item; (session after, a note for the screen). Never raises."""
    item = str(item_id or "").strip()
    if not item or item not in pipeline.catalog:
        return session, "Pick one of the recommendations first."
    try:
        state = apply_feedback(session.state, item, action)
        session_id = session.session_id
        if store is not None:
            session_id = session_id or store.start_session(user_id=state.user_id)
            store.record_feedback(session_id, state.user_id, item, action, model=session.model,
                                  template_version=session.template_version)  # fmt: skip
            if state.user_id is not None and action in ("like", "seen") and hasattr(store, "record_interactions"):
                # A known user's like or seen joins their history for every later session.
                store.record_interactions(state.user_id, [item], f"chat:{action}", session_id=session_id)
            store.save_state(session_id, state.to_json())
    except Exception:  # noqa: BLE001
        log.exception("feedback %s on %s failed", action, item)
        return session, "Sorry, that feedback could not be saved; please try again."
    words = {"like": "Noted: you like", "dislike": "Noted: not for you:", "seen": "Noted: you have seen"}
    title = pipeline.catalog[item].title
    return replace(session, session_id=session_id, state=state), f"{words[action]} {title}."


def recommend_for_message(pipeline: Any, message: object, user: object = None, k: object = 10) -> list[dict[str, Any]]:
    """Stateless recommendations for one message and user (the ``/recommend`` API), as plain dicts.

    Raises ``ValueError`` with one sentence for an unknown user; an empty message recommends from
    the user's history alone.
    """
    user_id = parse_user(user)
    state, note = resolve_user(pipeline, user)
    if note:
        raise ValueError(note.replace(" Starting as a new user with no history.", ""))
    text = clean_message(message)[0]
    state = apply(state, parse_message(text, pipeline.catalog), pipeline.catalog) if text else state
    recs = pipeline.recommend(
        history=list(retrieval_history(state)), query=state.query or None, filters=to_filters(state), k=clamp_k(k)
    )
    out = []
    for rank, rec in enumerate(recs, start=1):
        row = asdict(rec)
        row["genres"] = list(rec.genres)
        row["reasons"] = list(rec.reasons)
        row["influences"] = [[i, float(v)] for i, v in rec.influences]
        out.append({"rank": rank, "user_id": user_id, **row})
    return out
