"""The Gradio chat: say what you want, see cards with reasons, refine, and leave feedback.

    recommender chat                                  # 127.0.0.1:7860, SmolLM2 + shipped adapter, ml-100k
    recommender chat --retrieval-only --port 7861     # no LLM: templated replies, fast
    python -m recommender.ui.app --db /tmp/feedback.sqlite

Typed endpoints for ``gradio_client`` (``Client(url).predict(..., api_name=...)``):
``/recommend`` (message, user_id, k -> list of dicts), ``/chat`` (message, user_id, k,
session_id -> dict with the session id, reply and items) and ``/feedback`` (session_id,
item_id, action -> dict). The app only wires widgets to ``recommender.chat.turn``; models
load in ``main()``, never at import time.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from recommender.ui.render import CARD_CSS, cards_html, reply_markdown, user_markdown  # noqa: E402

from recommender.chat.state import describe_constraints  # noqa: E402
from recommender.chat.turn import (  # noqa: E402
    NEW_USER,
    Session,
    finish_turn,
    give_feedback,
    load_session,
    model_name,
    open_session,
    recommend_for_message,
    run_turn,
)

log = logging.getLogger(__name__)
EXAMPLES = ["something like Toy Story but no animation", "a funny 90s comedy, no horror", "show me more"]


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


def _user_choices(pipeline: Any, limit: int = 1000) -> list[str]:
    split = getattr(pipeline, "split", None)
    users = list(getattr(split, "users", ()) or ())[:limit]
    return [NEW_USER, *map(str, users)]


def build_app(pipeline: Any, store: Any, default_k: int = 10, llm_reply: bool = True) -> gr.Blocks:
    """The Blocks app around a loaded pipeline (a ``Recommender`` or a fake) and a ``FeedbackStore``."""
    titles = {item.id: item.title for item in getattr(pipeline.catalog, "items", ())}

    def session_of(data: dict | None, user: str) -> tuple[Session, str]:
        session = Session.from_dict(data)
        return (session, "") if session is not None else open_session(pipeline, store, user)

    def picks(recs) -> dict:
        choices = [(f"{n}. {r.title}" + (f" ({r.year})" if r.year else ""), r.item_id) for n, r in enumerate(recs, 1)]
        return gr.update(choices=choices, value=None)

    def respond(message: str, history: list, data: dict | None, user: str, k: float):
        history = _plain_history(history)
        try:
            session, note = session_of(data, user)
        except Exception:  # noqa: BLE001 - e.g. the store cannot be written
            log.exception("could not open a session")
            history += [{"role": "assistant", "content": "Sorry, I cannot start a conversation right now."}]
            yield history, gr.update(), gr.update(), data, message
            return
        history += [
            {"role": "user", "content": user_markdown(str(message or ""))},
            {"role": "assistant", "content": "…"},
        ]
        yield history, gr.update(), gr.update(), session.to_dict(), ""
        prefix = f"{reply_markdown(note)}\n\n" if note else ""
        for update in run_turn(pipeline, store, session, message, k, llm_reply=llm_reply):
            history[-1] = {"role": "assistant", "content": prefix + reply_markdown(update.reply)}
            if update.source in ("help", "error"):
                yield history, gr.update(), gr.update(), update.session.to_dict(), ""
                continue
            header = describe_constraints(update.session.state)
            cards = cards_html(update.recommendations, header=header, titles=titles)
            yield history, cards, picks(update.recommendations), update.session.to_dict(), ""

    def change_user(user: str):
        try:
            session, note = open_session(pipeline, store, user)
        except Exception:  # noqa: BLE001
            log.exception("could not open a session")
            return [], cards_html([]), gr.update(choices=[], value=None), None, "Sorry, the store is unavailable."
        who = "a new user" if session.user_id is None else f"user {session.user_id}"
        seen = f" with {len(session.state.history)} rated films" if session.state.history else ""
        text = note or f"Now chatting as {who}{seen}."
        return [], cards_html([]), gr.update(choices=[], value=None), session.to_dict(), reply_markdown(text)

    def feedback(action: str):
        def handler(data: dict | None, item_id: str | None, user: str):
            try:
                session, _ = session_of(data, user)
            except Exception:  # noqa: BLE001
                log.exception("could not open a session")
                return data, "Sorry, the store is unavailable."
            session, note = give_feedback(pipeline, store, session, item_id, action)
            return session.to_dict(), reply_markdown(note)

        return handler

    def recommend(message: str, user_id: str = NEW_USER, k: int = 10) -> list[dict]:
        """Top-k items for a message ("no horror, 90s") and a dataset user id ("new user" for none)."""
        try:
            return recommend_for_message(pipeline, message, user_id, k)
        except ValueError as error:
            raise gr.Error(str(error)) from None

    def chat(message: str, user_id: str = NEW_USER, k: int = 10, session_id: str = "") -> dict:
        """One chat turn without a browser: returns session_id (pass it back), reply, source and items."""
        try:
            if session_id:
                session = load_session(pipeline, store, session_id)
            else:
                session, _ = open_session(pipeline, store, user_id)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        last = finish_turn(run_turn(pipeline, store, session, message, k, llm_reply=llm_reply))
        items = [
            {"item_id": r.item_id, "title": r.title, "year": r.year, "score": r.score} for r in last.recommendations
        ]
        return {"session_id": last.session.session_id, "reply": last.reply, "source": last.source, "items": items}

    def feedback_api(session_id: str, item_id: str, action: str) -> dict:
        """Record "like", "dislike" or "seen" on an item for a session returned by /chat."""
        if action not in ("like", "dislike", "seen"):
            raise gr.Error(f"action must be like, dislike or seen, not {action[:20]!r}.")
        try:
            session = load_session(pipeline, store, session_id)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        after, note = give_feedback(pipeline, store, session, item_id, action)
        return {"stored": after.state != session.state or action == "seen", "note": note}

    with gr.Blocks(title="Movie recommender chat") as demo:
        session_data = gr.State(None)
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
                cards = gr.HTML(cards_html([]), elem_id="cards")
                pick = gr.Radio(choices=[], label="Pick a recommendation for feedback", elem_id="pick")
                with gr.Row():
                    like = gr.Button("Thumbs up", elem_id="like", size="sm")
                    dislike = gr.Button("Thumbs down", elem_id="dislike", size="sm")
                    seen = gr.Button("Seen it", elem_id="seen", size="sm")
                note = gr.Markdown(elem_id="feedback-note")
        with gr.Row():
            user = gr.Dropdown(
                choices=_user_choices(pipeline), value=NEW_USER, allow_custom_value=True,
                label="User (dataset id or new user)", elem_id="user",
            )  # fmt: skip
            k = gr.Slider(1, 20, value=default_k, step=1, label="k", elem_id="k")
            gr.Textbox(value=model_name(pipeline), label="Model and adapter", interactive=False, elem_id="model")

        turn_io = dict(
            fn=respond,
            inputs=[message, chatbot, session_data, user, k],
            outputs=[chatbot, cards, pick, session_data, message],
        )
        message.submit(**turn_io, api_visibility="private")
        send.click(**turn_io, api_visibility="private")
        user.change(change_user, [user], [chatbot, cards, pick, session_data, note], api_visibility="private")
        for button, action in ((like, "like"), (dislike, "dislike"), (seen, "seen")):
            button.click(feedback(action), [session_data, pick, user], [session_data, note], api_visibility="private")
        gr.api(recommend, api_name="recommend")
        gr.api(chat, api_name="chat")
        gr.api(feedback_api, api_name="feedback")
    return demo


def make_parser() -> argparse.ArgumentParser:
    from recommender.commands.chat import add_chat_arguments

    parser = argparse.ArgumentParser(prog="recommender chat", description="Serve the Gradio recommender chat.")
    add_chat_arguments(parser)
    return parser


def serve(args: argparse.Namespace, block: bool = True) -> gr.Blocks:
    """Load the pipeline and the store named by ``args`` and launch the app."""
    from recommender.pipeline import Recommender
    from recommender.store import FeedbackStore

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pipeline = Recommender.from_pretrained(
        dataset=args.dataset, model=args.model, adapter=args.adapter, quantize=args.quantize, device=args.device,
        retrieval_only=args.retrieval_only,
    )  # fmt: skip
    store = FeedbackStore(args.db)
    demo = build_app(pipeline, store, default_k=args.k, llm_reply=not args.no_llm_reply)
    demo.queue(default_concurrency_limit=args.concurrency)
    print(f"model: {model_name(pipeline)}; feedback store: {store.path}", flush=True)
    demo.launch(
        server_name=args.host, server_port=args.port, css=CARD_CSS, prevent_thread_lock=not block, show_error=False
    )
    return demo


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(make_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
