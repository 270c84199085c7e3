"""The chat page in a real browser: Playwright drives Debian's chromium against the app served in-process.

It uses the real hybrid retriever and the real default LLM (SmolLM2-135M + the shipped adapter)
reranking the candidates and writing the reply, and a temporary SQLite store. Cards arrive before
the reply streams, so the test does not wait for the (slow on 2 CPU cores) reply to finish.

    .venv/bin/python -m pytest -m browser tests/test_ui_browser.py
"""

from __future__ import annotations

import os
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
def served(tmp_path_factory):
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from conftest import serve_app
    from recommender.ui.render import CARD_CSS

    from recommender.pipeline import Recommender

    pipeline = Recommender.from_pretrained()  # real retriever + real default LLM and adapter
    demo, store = serve_app(pipeline, tmp_path_factory.mktemp("chat") / "feedback.sqlite", concurrency=2, css=CARD_CSS)
    yield demo.local_url, store
    demo.close()


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
        page.locator("#pick label").first.click()
        page.locator("#like").click()
        page.locator("#feedback-note", has_text="Noted").wait_for(timeout=60_000)
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
