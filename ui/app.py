"""The Gradio chat: say what you want, see cards with reasons, refine, and leave feedback.

    recommender chat                                  # 127.0.0.1:7860, SmolLM2 + shipped adapter, ml-100k
    recommender chat --retrieval-only --port 7861     # no LLM: templated replies, fast

Typed endpoints for ``gradio_client`` (``Client(url).predict(..., api_name=...)``):
``/recommend`` (message, user_id, k -> list of dicts), ``/chat`` (message, user_id, k,
session_id -> dict with the session id, reply and items) and ``/feedback`` (session_id,
item_id, action -> dict). The app only wires widgets to ``recommender.chat.turn``; models
load in ``recommender.ui.server.serve``, never at import time.

A page keeps its session id in the browser's storage (and accepts ``?session=<id>`` in the URL):
reloading it resumes the conversation from the SQLite store. Turns and feedback of one session run
one at a time (``SessionTurns``): a message sent while a reply still streams waits for it, shown as
queued, and then starts from the state that turn stored.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from recommender.chat.cards import PickExplanation  # noqa: E402
from recommender.chat.state import describe_constraints, retrieval_history, to_filters  # noqa: E402
from recommender.chat.turn import (  # noqa: E402
    NEW_USER,
    REPLY_DEADLINE_S,
    Session,
    TurnBasis,
    explain_cards,
    explain_pick,
    finish_turn,
    give_feedback,
    load_session,
    model_name,
    open_session,
    recommend_for_message,
    run_turn,
    shown_recommendations,
    stored_conversation,
)
from recommender.ui.render import CARD_CLICKS, cards_html, reply_markdown, user_markdown  # noqa: E402

log = logging.getLogger(__name__)
EXAMPLES = ["something like Toy Story but no animation", "a funny 90s comedy, no horror", "show me more"]
QUEUED = "… (waiting for the previous reply)"
BUSY = "Sorry, I am still working on your previous message; please send this one again in a moment."
STORAGE_KEY = "recommender-chat-session"


@dataclass
class CardList:
    """A session's last list of cards as ``open_card`` needs it (mutable: filled in as cards are picked)."""

    recs: tuple[Any, ...]
    basis: TurnBasis | None
    measured: bool = False  # influences measured (once per list)
    explanations: dict[str, PickExplanation] = field(default_factory=dict)
    picked: str | None = None  # the card whose explanation is open


class SessionTurns:
    """One turn or feedback at a time per session; messages that arrive meanwhile wait their turn.

    Gradio runs events of one page concurrently (a second message while a reply streams); both
    would start from the same saved state and the later to finish would erase the other's changes.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._waiting: dict[str, list[tuple[str, str]]] = {}

    def waiting(self, session_id: str, but: str = "") -> list[str]:
        """Messages queued behind the running turn of ``session_id`` (except the ticket ``but``)."""
        with self._guard:
            return [message for ticket, message in self._waiting.get(session_id, ()) if ticket != but]

    @contextmanager
    def hold(self, session_id: str, message: str = "", timeout: float = REPLY_DEADLINE_S + 60) -> Iterator[str | None]:
        """Wait for the session (showing ``message`` as queued meanwhile); yields a ticket, or None on timeout."""
        ticket = uuid.uuid4().hex
        with self._guard:
            lock = self._locks.setdefault(session_id, threading.Lock())
            if message:
                self._waiting.setdefault(session_id, []).append((ticket, message))
        acquired = False
        try:
            acquired = lock.acquire(timeout=timeout)
            with self._guard:
                queue = self._waiting.get(session_id, [])
                queue[:] = [entry for entry in queue if entry[0] != ticket]
            yield ticket if acquired else None
        finally:
            if acquired:
                lock.release()


def _text(content: Any) -> str:
    """A Chatbot message's text: Gradio 6 hands a list of parts ``[{"type": "text", "text": ...}]``."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "".join(_text(part) for part in content)
    return ""


def _plain_history(history: Sequence[Any] | None) -> list[dict[str, str]]:
    out = []
    for message in history or ():
        role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        if role in ("user", "assistant"):
            out.append({"role": role, "content": _text(content)})
    return out


def _pairs(conversation: Sequence[tuple[str, str]], escape_reply: bool = True) -> list[dict[str, str]]:
    """(message, reply) pairs as Chatbot messages (the message shown verbatim, the reply as markdown)."""
    out = []
    for message, reply in conversation:
        out += [
            {"role": "user", "content": user_markdown(message)},
            {"role": "assistant", "content": reply_markdown(reply) if escape_reply else reply},
        ]
    return out


def _user_choices(pipeline: Any, limit: int = 1000) -> list[str]:
    split = getattr(pipeline, "split", None)
    users = list(getattr(split, "users", ()) or ())[:limit]
    return [NEW_USER, *map(str, users)]


def _marks(session: Session | None) -> dict[str, str]:
    """Item id -> the feedback the session gave it, for the cards ("seen" last: it hides the film)."""
    if session is None:
        return {}
    state = session.state
    marks = {item: "like" for item in state.liked} | {item: "dislike" for item in state.disliked}
    return marks | {item: "seen" for item in state.seen}


class ChatHandlers:
    """The page's event handlers around one pipeline and store (the Blocks layout is in ``build_app``)."""

    def __init__(self, pipeline: Any, store: Any, llm_reply: bool = True, writer: Any = None):
        self.pipeline, self.store, self.llm_reply, self.writer = pipeline, store, llm_reply, writer
        self.titles = {item.id: item.title for item in getattr(pipeline.catalog, "items", ())}
        self.turns = SessionTurns()
        self.latest: dict[str, Session] = {}  # without a store: each session's state after its last turn
        self.memory: dict[str, list[tuple[str, str]]] = {}  # without a store: each session's (message, reply)s
        # Per session, its last list: the cards, what they were ranked from, whether their influences
        # were measured (on the first card opened, once per list) and each picked card's explanation.
        self.lists: dict[str, CardList] = {}

    # -- sessions ----------------------------------------------------------------------------

    def new_session(self, user: object) -> tuple[Session, str]:
        session, note = open_session(self.pipeline, self.store, user)
        if session.session_id is None:  # no store: an id of its own, so its turns still queue
            session = replace(session, session_id=uuid.uuid4().hex)
        return session, note

    def current(self, data: dict | None, user: object) -> tuple[Session, str]:
        """The session to continue: the store's latest state (another turn may have changed it), else the page's."""
        session = Session.from_dict(data)
        if session is None:
            return self.new_session(user)
        if self.store is not None and session.session_id:
            try:
                return load_session(self.pipeline, self.store, session.session_id), ""
            except ValueError:
                return self.new_session(user)
        return self.latest.get(session.session_id or "", session), ""

    def header(self, session: Session) -> str:
        return describe_constraints(session.state)

    def cards(self, session: Session, recs: Sequence[Any], listed: CardList | None = None) -> str:
        """The cards of ``recs`` for ``session``: its constraints above them, its feedback on them, and
        the picked card of ``listed`` with its explanation."""
        picked = listed.picked if listed is not None else None
        explanation = listed.explanations.get(picked) if listed is not None and picked else None
        header, marks = self.header(session), _marks(session)
        return cards_html(recs, header, self.titles, picked=picked, explanation=explanation, marks=marks)

    def restore(self, saved_id: str | None, request: gr.Request | None = None):
        """Page load: resume ``?session=`` or the id in browser storage, else start a new session."""
        wanted = ""
        if request is not None:
            wanted = str(dict(getattr(request, "query_params", {}) or {}).get("session") or "")
        wanted = wanted or str(saved_id or "")
        session = None
        if wanted and self.store is not None:
            try:
                session = load_session(self.pipeline, self.store, wanted)
            except Exception:  # noqa: BLE001 - an unknown or unreadable id starts afresh
                log.info("session %r not resumed; starting a new one", wanted[:64])
        if session is None:
            try:
                session, _ = self.new_session(None)
            except Exception:  # noqa: BLE001
                log.exception("could not open a session")
                return [], cards_html([]), "", None, saved_id, gr.update()
        chat = _pairs(stored_conversation(self.store, session.session_id))
        recs = shown_recommendations(self.pipeline, session)
        if recs:  # the cards' buttons work after a reload (ranked, approximately, from the state as stored)
            state = session.state
            basis = TurnBasis(retrieval_history(state), state.query or None, to_filters(state))
            self.lists[session.session_id or ""] = CardList(tuple(recs), basis)
        user = session.user_id or NEW_USER
        return chat, self.cards(session, recs), "", session.to_dict(), session.session_id, gr.update(value=user)

    def change_user(self, user: str):
        try:
            session, note = self.new_session(user)
        except Exception:  # noqa: BLE001
            log.exception("could not open a session")
            return [], cards_html([]), "Sorry, the store is unavailable.", None, None
        who = "a new user" if session.user_id is None else f"user {session.user_id}"
        seen = f" with {len(session.state.history)} rated films" if session.state.history else ""
        text = note or f"Now chatting as {who}{seen}."
        return [], cards_html([]), reply_markdown(text), session.to_dict(), session.session_id

    # -- one turn ------------------------------------------------------------------------------

    def respond(self, message: str, history: list, data: dict | None, user: str, k: float):
        """Outputs: chatbot, cards, feedback note, session state, browser-stored id, message box."""
        text = str(message or "")
        try:
            first, note = self.current(data, user)
        except Exception:  # noqa: BLE001 - e.g. the store cannot be written
            log.exception("could not open a session")
            chat = [
                *_plain_history(history),
                {"role": "assistant", "content": "Sorry, I cannot start a conversation right now."},
            ]
            yield chat, gr.update(), gr.update(), data, gr.update(), text
            return
        sid = first.session_id
        yield gr.update(), gr.update(), gr.update(), gr.update(), sid, ""  # the box empties at once
        with self.turns.hold(sid, text) as ticket:
            if ticket is None:
                yield [*_plain_history(history), {"role": "assistant", "content": BUSY}], *(gr.update(),) * 3, sid, ""
                return
            session = self.current(first.to_dict(), user)[0]  # what the turn before this one stored
            before = self.conversation(sid)
            prefix = f"{reply_markdown(note)}\n\n" if note else ""
            shown_cards = None
            turn = run_turn(
                self.pipeline, self.store, session, text, k, self.llm_reply, influences="on demand", writer=self.writer
            )
            for update in turn:
                chat = [*before, *_pairs([(text, prefix + reply_markdown(update.reply))], escape_reply=False)]
                chat += _pairs([(waiting, QUEUED) for waiting in self.turns.waiting(sid, but=ticket)])
                cards = note = gr.update()
                if update.source not in ("help", "error") and update.recommendations is not shown_cards:
                    shown_cards, note = update.recommendations, ""  # a new list: the last feedback note goes
                    cards = self.cards(update.session, shown_cards)
                if update.done:
                    self.latest[sid] = update.session
                    if update.source not in ("help", "error"):
                        self.lists[sid] = CardList(update.recommendations, update.basis)
                    if self.store is None:
                        self.memory.setdefault(sid, []).append((text, update.reply))
                yield chat, cards, note, update.session.to_dict(), sid, gr.update()

    def open_card(self, data: dict | None, item_id: str | None):
        """A card's "Why?": the cards again with their influences ("Because of: ..."), measured once per
        list (W more LLM prompts), so the turn itself ends with the reply, and the picked card marked with
        its explanation (``explain_pick``, once per card: the sentence and influence table of ``recommender
        explain``). Outputs: the cards."""
        session = Session.from_dict(data)
        sid = (session.session_id if session is not None else None) or ""
        # Not under the session's turn lock: influences change no stored state, and a feedback click
        # must not wait for them. A list replaced meanwhile by a newer turn is left alone.
        listed = self.lists.get(sid)
        if listed is None or item_id not in {r.item_id for r in listed.recs}:
            return gr.update()
        recs = listed.recs
        if not listed.measured and listed.basis is not None:
            recs = explain_cards(self.pipeline, recs, listed.basis)
        if item_id not in listed.explanations:
            rec = next(r for r in recs if r.item_id == item_id)
            # No reply writer here: ``pipeline.explain`` writes with ``text_writer()``, as ``recommender explain``.
            listed.explanations[item_id] = explain_pick(self.pipeline, rec, listed.basis)
        explanation = listed.explanations[item_id]
        if self.lists.get(sid) is not listed:
            return gr.update()
        # A measured pick's "Because of" line says what its table says (``explain`` measures the item in
        # its own prompt, so its numbers can differ from the list's measurement on the other cards).
        measured = explanation.thresholds is not None
        listed.recs = tuple(
            replace(r, influences=explanation.raised) if r.item_id == item_id and (measured or not r.influences) else r
            for r in recs
        )
        listed.measured, listed.picked = True, item_id
        return self.cards(self.latest.get(sid, session), listed.recs, listed)

    def card_action(self, data: dict | None, user: str, event: gr.EventData):
        """A button on a card: "open" (Why?) explains it, "like", "dislike" and "seen" are the feedback of
        ``feedback`` (the same store rows; "seen" hides the film from every later list). The click carries
        ``{"action", "item_id"}`` (``render.CARD_CLICKS``). Outputs: the cards, session state, feedback note."""
        payload = getattr(event, "_data", None) or {}
        action, item_id = str(payload.get("action") or ""), str(payload.get("item_id") or "")
        if action == "open":
            return self.open_card(data, item_id), gr.update(), gr.update()
        if action not in ("like", "dislike", "seen"):
            return gr.update(), gr.update(), gr.update()
        after, note = self.feedback(action)(data, item_id, user)
        session = Session.from_dict(after)
        listed = self.lists.get((session.session_id if session is not None else None) or "")
        if session is None or listed is None:
            return gr.update(), after, note
        return self.cards(session, listed.recs, listed), after, note

    def conversation(self, session_id: str) -> list[dict[str, str]]:
        """The session's turns so far as Chatbot messages: from the store, or kept in memory without one."""
        if self.store is not None:
            return _pairs(stored_conversation(self.store, session_id))
        return _pairs(self.memory.get(session_id, []))

    def feedback(self, action: str):
        def handler(data: dict | None, item_id: str | None, user: str):
            try:
                session, _ = self.current(data, user)
            except Exception:  # noqa: BLE001
                log.exception("could not open a session")
                return data, "Sorry, the store is unavailable."
            with self.turns.hold(session.session_id) as ticket:
                if ticket is None:
                    return data, BUSY
                session, _ = self.current(session.to_dict(), user)  # what a turn that just ended stored
                session, note = give_feedback(self.pipeline, self.store, session, item_id, action)
                self.latest[session.session_id or ""] = session
            return session.to_dict(), reply_markdown(note)

        return handler

    # -- typed endpoints -------------------------------------------------------------------------

    def recommend(self, message: str, user_id: str = NEW_USER, k: int = 10) -> list[dict]:
        """Top-k items for a message ("no horror, 90s") and a dataset user id ("new user" for none)."""
        try:
            return recommend_for_message(self.pipeline, message, user_id, k)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def chat(self, message: str, user_id: str = NEW_USER, k: int = 10, session_id: str = "") -> dict:
        """One chat turn without a browser: returns session_id (pass it back), reply, source and items."""
        try:
            session = (
                load_session(self.pipeline, self.store, session_id) if session_id else self.new_session(user_id)[0]
            )
        except ValueError as error:
            raise gr.Error(str(error)) from None
        with self.turns.hold(session.session_id) as ticket:
            if ticket is None:
                raise gr.Error(BUSY)
            if session_id:
                session = load_session(self.pipeline, self.store, session_id)
            last = finish_turn(
                run_turn(
                    self.pipeline, self.store, session, message, k, self.llm_reply, influences=False, writer=self.writer
                )
            )
        items = [
            {"item_id": r.item_id, "title": r.title, "year": r.year, "score": r.score} for r in last.recommendations
        ]
        return {"session_id": last.session.session_id, "reply": last.reply, "source": last.source, "items": items}

    def feedback_api(self, session_id: str, item_id: str, action: str) -> dict:
        """Record "like", "dislike" or "seen" on an item for a session returned by /chat."""
        if action not in ("like", "dislike", "seen"):
            raise gr.Error(f"action must be like, dislike or seen, not {action[:20]!r}.")
        with self.turns.hold(str(session_id)) as ticket:
            if ticket is None:
                raise gr.Error(BUSY)
            try:
                session = load_session(self.pipeline, self.store, session_id)
            except ValueError as error:
                raise gr.Error(str(error)) from None
            after, note = give_feedback(self.pipeline, self.store, session, item_id, action)
        return {"stored": after.state != session.state or action == "seen", "note": note}


def build_app(pipeline: Any, store: Any, default_k: int = 10, llm_reply: bool = True, writer: Any = None) -> gr.Blocks:
    """The Blocks app around a loaded pipeline (a ``Recommender`` or a fake) and a ``FeedbackStore``.

    ``writer`` writes the replies (``.stream(messages, max_new_tokens)``); default the pipeline's scorer.
    """
    handlers = ChatHandlers(pipeline, store, llm_reply, writer)
    with gr.Blocks(title="Movie recommender chat") as demo:
        session_data = gr.State(None)
        saved_id = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=STORAGE_KEY)  # survives a reload
        gr.Markdown(
            "## Movie recommender chat\n"
            "Say what you feel like watching; refine with “no horror”, “90s”, “more like Fargo”."
        )
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Chat", height=480, elem_id="chat", buttons=["copy"])
                with gr.Row():
                    message = gr.Textbox(
                        placeholder="e.g. something like Toy Story but no animation",
                        show_label=False, elem_id="message", scale=5, max_lines=4,
                    )  # fmt: skip
                    send = gr.Button("Send", variant="primary", elem_id="send", scale=1)
                gr.Examples(EXAMPLES, inputs=message)
            with gr.Column(scale=2):
                gr.Markdown("### Recommendations")
                note = gr.Markdown(elem_id="feedback-note")
                # Each card carries its buttons (Why?, thumbs up, thumbs down, Seen it); a click is one
                # "click" event of this component with the action and the item id (render.CARD_CLICKS).
                cards = gr.HTML(cards_html([]), elem_id="cards", js_on_load=CARD_CLICKS)
        with gr.Row():
            user = gr.Dropdown(
                choices=_user_choices(pipeline), value=NEW_USER, allow_custom_value=True,
                label="User (dataset id or new user)", elem_id="user",
            )  # fmt: skip
            k = gr.Slider(1, 20, value=default_k, step=1, label="k", elem_id="k")
            gr.Textbox(value=model_name(pipeline), label="Model and adapter", interactive=False, elem_id="model")

        demo.load(handlers.restore, [saved_id], [chatbot, cards, note, session_data, saved_id, user],
                  api_visibility="private")  # fmt: skip
        # One event for Enter and Send, and "multiple": a message sent while a reply streams is not
        # dropped; SessionTurns makes it wait for that turn and start from the state it stored.
        gr.on(
            [message.submit, send.click], handlers.respond, [message, chatbot, session_data, user, k],
            [chatbot, cards, note, session_data, saved_id, message], trigger_mode="multiple", api_visibility="private",
        )  # fmt: skip
        # .input, not .change: restoring a session sets the picker without starting another one.
        user.input(handlers.change_user, [user], [chatbot, cards, note, session_data, saved_id],
                   api_visibility="private")  # fmt: skip
        # "multiple": a thumbs up while a card's explanation is measured is not dropped.
        cards.click(handlers.card_action, [session_data, user], [cards, session_data, note],
                    trigger_mode="multiple", api_visibility="private")  # fmt: skip
        gr.api(handlers.recommend, api_name="recommend")
        gr.api(handlers.chat, api_name="chat")
        gr.api(handlers.feedback_api, api_name="feedback")
    return demo
