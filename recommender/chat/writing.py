"""The chat reply: the LLM-written one (its prompt, its stream, and the gate every sentence passes
before anyone reads it, ``replies.reply_problem``) and the templated one. A reply on screen is never
replaced by the template: what passed stays, and the first sentence that fails ends the reply (issue 28).

    texts = gated_reply(pipeline, scorer, recs, state, message)   # yields the reply as it passes the gate
    shown, draft, rejected = (yield from texts)                   # what passed, the draft, why it stopped
    reply = templated_reply(recs, refinement, state)              # no LLM: the top pick and why

Both talk about one or two picks and leave the list to the cards (issue 29: the template used to
repeat every card inside the chat box).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from recommender.chat.replies import complete_sentences, finished_text, reply_problem, tidy_reply
from recommender.chat.state import (
    ConversationState,
    _miss_lines,  # "I could not find X. Did you mean ...?"
    allowed_titles,
    clean_message,
    describe_constraints,
)
from recommender.data import Item
from recommender.llm.prompting import render_chat_system
from recommender.protocols import Recommendation

log = logging.getLogger(__name__)

REPLY_ITEMS = 3  # ranked items the LLM sees when it writes the reply (a 135M model copies a short list best)
OPENING = "I recommend {title} because"  # a reply's first words: asked for in the user turn, prefilled where possible
STEER = "Start your answer with: {opening}"
REPLY_TOKENS = 50  # new tokens of an LLM reply at most (two sentences); ~40 ms each on 2 cores in bf16
REPLY_SENTENCES = 2  # the reply stops once it holds this many whole sentences: the answer, then one reason
REPLY_DEADLINE_S = 90.0  # an LLM reply still running after this long is dropped for the template


def reply_messages(
    pipeline: Any, recommendations: Sequence[Recommendation], state: ConversationState, message: str
) -> list[dict[str, str]]:
    """The chat_system prompt conditioned on the top ranked items, then the person's message.

    The message ends with a line asking the reply to start by naming the top item: a 135M model
    left to open on its own talks about itself or films from its memory; asked to start with the
    title, it goes on to say why that film fits. A writer whose ``stream`` takes a ``prefix`` also
    gets those words as the start of its answer (``reply_opening``).
    """
    top = list(recommendations)[:REPLY_ITEMS]
    items = [pipeline.catalog[rec.item_id] for rec in top]
    constraints = [part for part in describe_constraints(state).split("; ") if part]
    system = render_chat_system(items, [list(rec.reasons) for rec in top], constraints)
    content = clean_message(message, 500)[0]
    if items:
        content += "\n\n" + STEER.format(opening=reply_opening(items[0]))
    return [*system, {"role": "user", "content": content}]


def reply_opening(item: Item) -> str:
    """The reply's first words for the top item, "I recommend Fargo (1996) because": asked for in
    the user turn, and written into the prompt when the writer takes a ``prefix`` (the model then
    reads the title in one pass instead of copying it token by token)."""
    return OPENING.format(title=item.display_title())


def stream_reply(
    scorer: Any, messages: list[dict[str, str]], deadline_s: float, max_new_tokens: int = REPLY_TOKENS, prefix: str = ""
) -> Iterator[str]:
    """Text pieces of the LLM reply; it ends once the text holds ``REPLY_SENTENCES`` whole sentences
    (closing the stream stops generation at the next token), and raises TimeoutError once
    ``deadline_s`` has passed."""
    start, written = time.monotonic(), ""
    takes_prefix = prefix and "prefix" in inspect.signature(scorer.stream).parameters
    stream = scorer.stream(messages, max_new_tokens=max_new_tokens, **({"prefix": prefix} if takes_prefix else {}))
    try:
        for piece in stream:
            yield piece
            written += piece
            if complete_sentences(written) >= REPLY_SENTENCES:
                return
            if time.monotonic() - start > deadline_s:
                raise TimeoutError(f"the LLM reply took longer than {deadline_s:.0f} s")
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def gated_reply(
    pipeline: Any,
    scorer: Any,
    recs: Sequence[Recommendation],
    state: ConversationState,
    text: str,
    deadline_s: float = REPLY_DEADLINE_S,
    reply_tokens: int = REPLY_TOKENS,
) -> Generator[str, None, tuple[str, str, str]]:
    """Stream the LLM reply, yielding only what passed the gate: each finished sentence is added once
    the reply up to it passes ``reply_problem``; the first sentence that fails ends the reply there.

    So a reply on screen is never replaced (issue 28: a streamed sentence used to give way to the
    template once the whole reply failed). Returns (what passed, "" when nothing did; the whole
    draft; why the draft, or its first failing part, was refused).
    """
    catalog = pipeline.catalog
    allowed = allowed_titles(recs, state, catalog)
    shown, written, rejected = "", "", ""
    try:
        messages = reply_messages(pipeline, recs, state, text)
        opening = reply_opening(catalog[recs[0].item_id])
        for piece in stream_reply(scorer, messages, deadline_s, reply_tokens, opening):
            written += piece
            ready = finished_text(written)
            if len(ready) > len(shown):
                rejected = reply_problem(ready, recs, allowed, state, catalog)
                if rejected:
                    break
                shown = ready
                yield shown
        else:
            final = tidy_reply(written)
            if final and final != shown:
                rejected = reply_problem(final, recs, allowed, state, catalog)
                shown = shown if rejected else final
    except Exception as error:  # noqa: BLE001 - the template, or what already passed, is always there
        rejected = f"failed: {type(error).__name__}"
        log.exception("LLM reply failed; keeping what passed the gate, else the template")
    return shown, tidy_reply(written), rejected


REFINE_HINT = 'Use the buttons on a card (Why?, thumbs up or down, seen it), or say "show me more", "no horror", "from the 90s" or "more like <title>".'  # noqa: E501


def templated_reply(recommendations: Sequence[Recommendation], refinement: Any, state: ConversationState) -> str:
    """The reply when no LLM writes one: how many picks (and under which constraints), the top one and
    its reason, a second one, and how to refine; the whole list is on the cards, not repeated here. It
    names only recommended items (and, for a title that matched nothing, the closest titles offered)."""
    lines = [*refinement.notes, *_miss_lines(refinement)]
    constraints = describe_constraints(state)
    if not recommendations:
        lines.append(
            f"Nothing in the catalogue fits ({constraints})." if constraints else "I have nothing to recommend yet."
        )
        lines.append('Try loosening a constraint, or say "start over".')
        return "\n\n".join(lines)
    recs = list(recommendations)
    more = " more" if state.page > 0 else ""
    count = f"Here are {len(recs)}{more} picks" + (f" ({constraints})" if constraints else "") + ", on the cards."
    top = f"My top pick is **{_display(recs[0])}**" + _because(recs[0])
    if len(recs) > 1:
        top += f" Also worth a look: **{_display(recs[1])}**" + _because(recs[1])
    return "\n\n".join([*lines, f"{count} {top}", REFINE_HINT])


def _display(rec: Recommendation) -> str:
    return f"{rec.title} ({rec.year})" if rec.year else rec.title


def _because(rec: Recommendation) -> str:
    """ ": " and the card's first reason, else its genres, then a full stop."""
    if rec.reasons:
        return f": {rec.reasons[0]}."
    return f", {'/'.join(rec.genres)}." if rec.genres else "."
