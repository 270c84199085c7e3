"""The chat page in a real browser: Playwright drives Debian's chromium against the app served in-process.

``test_chat_cards_and_thumbs_up_reach_sqlite`` uses the real hybrid retriever and the real default
LLM (SmolLM2-135M + the shipped adapter) reranking the candidates and writing the reply, and a
temporary SQLite store. Cards arrive before the reply streams, so it does not wait for the (slow on
2 CPU cores) reply to finish. The multi-turn refinement runs retrieval only (fast): every card must
obey every constraint the conversation set, and a reload must bring the conversation back. The six
turns of issue 28 rank with the same LLM (a scripted writer writes the replies), press the buttons on
the cards, and open one card's explanation: the sentence and influence table of ``recommender explain``.

    .venv/bin/python -m pytest -m browser tests/test_ui_browser.py
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def llm_pipeline():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from recommender.pipeline import Recommender

    return Recommender.from_pretrained()  # real retriever + real default LLM and adapter


@pytest.fixture(scope="module")
def served(tmp_path_factory, llm_pipeline):
    from conftest import serve_app

    from recommender.ui.render import CARD_CSS

    pipeline = llm_pipeline
    demo, store = serve_app(pipeline, tmp_path_factory.mktemp("chat") / "feedback.sqlite", concurrency=2, css=CARD_CSS)
    yield demo.local_url, store
    demo.close()


@pytest.fixture(scope="module")
def served_fast(tmp_path_factory):
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from conftest import serve_app

    from recommender.pipeline import Recommender
    from recommender.ui.render import CARD_CSS

    pipeline = Recommender.from_pretrained(retrieval_only=True)
    demo, store = serve_app(pipeline, tmp_path_factory.mktemp("fast") / "feedback.sqlite", concurrency=2, css=CARD_CSS)
    yield demo.local_url, store, pipeline.catalog
    demo.close()


def _send(page, store, text: str, turn: int) -> tuple[str, list[str]]:
    """Type a message, send it, wait until the store holds the turn and the page shows its cards;
    returns (session id, the card ids shown)."""
    page.locator("#message textarea").fill(text)
    page.locator("#send").click()
    for _ in range(600):
        session_id = _last_session(store)
        turns = store.turns(session_id) if session_id else []
        if len(turns) == turn:
            break
        time.sleep(0.1)
    assert len(turns) == turn, f"turn {turn} ({text!r}) was not stored"
    expected = turns[-1]["shown"]
    page.wait_for_function(
        "(ids) => JSON.stringify([...document.querySelectorAll('#cards .rec-card')]"
        ".map(c => c.dataset.itemId)) === JSON.stringify(ids)",
        arg=expected,
        timeout=60_000,
    )
    return session_id, expected


def test_multi_turn_refinement_obeys_every_constraint_and_survives_a_reload(served_fast):
    from playwright.sync_api import sync_playwright

    from recommender.chat.state import ConversationState

    url, store, catalog = served_fast
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#message textarea", timeout=60_000)
        shown: list[list[str]] = []
        messages = ["sci-fi", "not too old", "more", "I've seen the first one"]  # the last points at a card
        for turn, text in enumerate(messages, start=1):
            session_id, ids = _send(page, store, text, turn)
            shown.append(ids)
            assert len(ids) >= 5
            assert all("Sci-Fi" in catalog[i].genres for i in ids), [catalog[i].title for i in ids]
            state = ConversationState.from_json(store.load_state(session_id))
            assert "Sci-Fi" in page.locator("#cards .rec-header").inner_text()
            if turn >= 2:
                assert state.year_min is not None and state.year_max is None, state  # "not too old": a lower bound
                years = [catalog[i].year for i in ids]
                assert all(y is not None and y >= state.year_min for y in years), (state.year_min, years)
        assert not set(shown[2]) & set(shown[1])  # "more" shows new films
        assert shown[2][0] in state.seen and shown[2][0] not in shown[3]  # "the first one" is the first card
        assert "Noted: you have seen" in page.locator("#chat").inner_text()

        page.reload(wait_until="domcontentloaded")  # the session comes back from SQLite
        page.wait_for_function(
            "(ids) => JSON.stringify([...document.querySelectorAll('#cards .rec-card')]"
            ".map(c => c.dataset.itemId)) === JSON.stringify(ids)",
            arg=shown[3],
            timeout=60_000,
        )
        chat = page.locator("#chat").inner_text()
        assert all(text in chat for text in messages)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat-refinement.png"), full_page=True)
        browser.close()


def _last_session(store) -> str | None:
    with sqlite3.connect(store.path) as conn:
        row = conn.execute("SELECT session_id FROM turns ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def test_chat_cards_and_thumbs_up_reach_sqlite(served):
    from playwright.sync_api import sync_playwright

    url, store = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#message textarea", timeout=60_000)
        assert "SmolLM2" in page.locator("#model textarea, #model input").first.input_value()

        page.locator("#message textarea").fill("something like Toy Story but no animation")
        page.locator("#send").click()
        page.wait_for_function("document.querySelectorAll('#cards .rec-card').length >= 5", timeout=300_000)
        cards = page.locator("#cards .rec-card")
        assert cards.count() >= 5
        genres = page.locator("#cards .rec-meta").all_inner_texts()
        assert genres and not any("Animation" in line for line in genres)

        item_id = cards.first.get_attribute("data-item-id")
        cards.first.locator('button[data-action="like"]').click()  # the thumbs up on the card itself
        # Feedback for a session waits for its turn in flight (the streamed reply): on a busy CPU, minutes.
        page.locator("#feedback-note", has_text="Noted").wait_for(timeout=300_000)
        rows = []
        for _ in range(50):  # the handler has stored the row before it answers; poll to be safe
            with sqlite3.connect(store.path) as conn:
                rows = conn.execute("SELECT item_id, action, model FROM feedback").fetchall()
            if rows:
                break
            time.sleep(0.1)
        assert rows and rows[0][0] == item_id and rows[0][1] == "like" and "SmolLM2" in rows[0][2]

        # Give the streamed reply a little while to finish for the screenshot; the test does not depend on it.
        try:
            page.wait_for_function(
                "(() => { const m = document.querySelectorAll('#chat .message'); "
                "return m.length >= 2 && !m[m.length - 1].innerText.trim().endsWith('…'); })()",
                timeout=90_000,
            )
        except Exception:  # noqa: BLE001 - slow CPU: the screenshot shows the reply so far
            pass
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
        browser.close()


class ScriptedWriter:
    """Writes every reply as one sentence that passes the gate, then one that names a film outside the
    list (refused): the page must keep the first and never swap it for the template. Slow on purpose,
    so the page shows the first sentence while the second is still being written."""

    def stream(self, messages, max_new_tokens=50, prefix=""):
        yield prefix or "I recommend the first card because"
        for word in " it is what you asked for tonight. Schindler's List (1993) is a classic too. ".split(" "):
            time.sleep(0.05)
            yield word + " "


@pytest.fixture(scope="module")
def served_six(tmp_path_factory, llm_pipeline):
    import socket

    from recommender.store import FeedbackStore
    from recommender.ui.app import build_app
    from recommender.ui.render import CARD_CSS

    pipeline = llm_pipeline  # the LLM ranks, so a picked card's influences are measured
    store = FeedbackStore(tmp_path_factory.mktemp("six") / "feedback.sqlite")
    demo = build_app(pipeline, store, writer=ScriptedWriter())  # as `recommender chat` builds it, a scripted writer
    demo.queue(default_concurrency_limit=2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CARD_CSS)
    yield demo.local_url, store, pipeline.catalog
    demo.close()


def _watch_reply(page, store, text: str, turn: int, before: str) -> tuple[list[str], list[str]]:
    """Send ``text`` and read the last message on the page every 50 ms until the turn is stored and its
    cards are shown; returns (every text this turn's reply had on screen, the card ids). ``before`` is
    the previous reply (still the last message until the new one appears)."""
    page.locator("#message textarea").fill(text)
    page.locator("#send").click()
    seen: list[str] = []
    for _ in range(1200):
        messages = page.locator("#chat .message").all_inner_texts()
        last = " ".join(messages[-1].split()) if messages else ""
        if last and last not in (before, " ".join(text.split())) and (not seen or seen[-1] != last):
            seen.append(last)
        session_id = _last_session(store)
        if session_id and len(store.turns(session_id)) == turn:
            break
        time.sleep(0.05)
    _, ids = _send_wait(page, store, turn)
    seen.append(" ".join(page.locator("#chat .message").all_inner_texts()[-1].split()))
    return seen, ids


def _send_wait(page, store, turn: int) -> tuple[str, list[str]]:
    session_id = _last_session(store)
    expected = store.turns(session_id)[turn - 1]["shown"]
    page.wait_for_function(
        "(ids) => JSON.stringify([...document.querySelectorAll('#cards .rec-card')]"
        ".map(c => c.dataset.itemId)) === JSON.stringify(ids)",
        arg=expected,
        timeout=60_000,
    )
    return session_id, expected


def _press(page, item_id: str, action: str, note: str) -> None:
    """Press a button on the card of ``item_id`` and wait for the feedback note."""
    page.locator(f'#cards .rec-card[data-item-id="{item_id}"] button[data-action="{action}"]').click()
    page.locator("#feedback-note", has_text=note).wait_for(timeout=120_000)


def test_the_six_turns_of_issue_28(served_six):
    """ "sci-fi, nothing too old" -> "no horror though, and not another Star Trek" -> "something more like
    Blade Runner" -> "show me 3 comedies from the 90s instead" (then thumbs up on the first card, "Seen it"
    on the second) -> "I've already seen Groundhog Day" -> "more", then "Why?" on a card: what a person
    expects at each turn."""
    from playwright.sync_api import sync_playwright

    url, store, catalog = served_six
    messages = ["sci-fi, nothing too old", "no horror though, and not another Star Trek",
                "something more like Blade Runner", "show me 3 comedies from the 90s instead",
                "I've already seen Groundhog Day", "more"]  # fmt: skip
    groundhog = next(i.id for i in catalog.items if i.title == "Groundhog Day")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#message textarea", timeout=60_000)
        shown: list[list[str]] = []
        final, seen_ids = "", [groundhog]
        for turn, text in enumerate(messages, start=1):
            seen, ids = _watch_reply(page, store, text, turn, final)
            shown.append(ids)
            final = seen[-1]
            for reply in seen:  # a reply once shown is only ever extended, never replaced
                assert reply in ("…", "Loading content") or final.startswith(reply.rstrip("…").rstrip()), seen
            assert "Schindler" not in final and "I recommend" in final  # the refused sentence never showed
            header = page.locator("#cards .rec-header").inner_text() if ids else ""
            assert "though" not in header and "can't filter" not in final  # no filler made a search term
            titles = [catalog[i].title for i in ids]
            if turn >= 2:
                assert not any("Star Trek" in t for t in titles), titles  # "not another Star Trek"
            if turn >= 4:
                assert len(ids) == 3, titles  # the count stays until changed
                assert all("Comedy" in catalog[i].genres and 1990 <= catalog[i].year <= 1999 for i in ids), titles
            reasons = page.locator("#cards .rec-why").all_inner_texts()
            why_lines = [line for line in reasons if line.startswith("Why:")]
            # Each card's reason its own (issue 29: ten cards read "Sci-Fi like Blade Runner (1982)"); two
            # films may share a count by chance.
            assert len(set(why_lines)) >= len(why_lines) - 2, why_lines
            if turn == 4:  # the buttons on the cards: the same rows as the feedback handler writes
                _press(page, ids[0], "like", "Noted: you like")
                _press(page, ids[1], "seen", "Noted: you have seen")
                seen_ids.append(ids[1])
                rows = store.feedback(_last_session(store))
                assert [(r["item_id"], r["action"]) for r in rows] == [(ids[0], "like"), (ids[1], "seen")]
                assert page.locator(f'#cards .rec-card.rec-seen[data-item-id="{ids[1]}"]').count() == 1
            if turn >= 5:
                why = page.locator("#cards").inner_text()
                assert not set(seen_ids) & set(ids) and "Groundhog Day" not in why  # seen: hidden, never a seed
                assert catalog[seen_ids[1]].title not in why
        assert not set(shown[5]) & set(shown[4])  # "more" shows new films

        first = page.locator(f'#cards .rec-card[data-item-id="{shown[5][0]}"]')
        first.locator('button[data-action="open"]').click()  # "Why?": the card shows its explanation
        page.wait_for_selector("#cards .rec-picked .rec-explain table.rec-influence", timeout=180_000)
        picked = page.locator("#cards .rec-picked")
        assert picked.get_attribute("data-item-id") == shown[5][0]
        assert picked.locator(".rec-sentence").inner_text().strip()  # the sentence of `recommender explain`
        values = picked.locator(".rec-influence td.rec-value").all_inner_texts()
        assert all(float(v) != 0 for v in values), values  # no zero effect listed as an influence
        quiet = picked.locator(".rec-no-effect").all_inner_texts()
        table = picked.locator(".rec-influence tbody").inner_text()
        assert not quiet or all(t.strip() not in table for t in quiet[0].split(":", 1)[1].split(", ")), (quiet, table)
        for line in picked.locator(".rec-why").all_inner_texts():
            if line.startswith("Because of:"):  # the films that raised its score, each by a non-zero amount
                effects = [float(v) for v in re.findall(r"\(([+-][0-9.e+-]+)\)", line)]
                assert effects and all(v > 0 for v in effects), line
                names = re.findall(r"(?:: |, )(.+?) \([+-][0-9.e+-]+\)", line)
                assert all(name in table for name in names), (line, table)  # what its table says
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat-six-turns.png"), full_page=True)
        browser.close()
