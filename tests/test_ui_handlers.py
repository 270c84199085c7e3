"""The app's handlers without a server (fake pipeline, milliseconds): messages that arrive while a
reply streams, page reloads, the buttons on the cards, a picked card's explanation, and the server
config the CLI builds."""

from __future__ import annotations

import threading
import time

import pytest
from test_chat_turn import FakePipeline, InfluencePipeline

from recommender.data.loaders import load_dataset
from recommender.store import FeedbackStore


@pytest.fixture(scope="module")
def catalog():
    return load_dataset("ml-100k").catalog


class SlowScorer:
    """Streams a reply naming the first listed item, one word at a time: the first sentence at once,
    the rest once the test opens the gate."""

    def __init__(self):
        self.gate = threading.Event()
        self.started = threading.Event()

    def stream(self, messages, max_new_tokens=96):
        title = messages[0]["content"].split("\n1. ")[1].split(" (")[0]
        self.started.set()
        first = f"I recommend {title}.".split()
        for n, word in enumerate([*first, *"It is a good pick for you tonight.".split()]):
            if n >= len(first):
                self.gate.wait(5)  # the first sentence comes at once, the rest once the test opens the gate
            yield word + " "


def contents(chat):
    return [m["content"] for m in chat]


@pytest.mark.parametrize("with_store", [True, False])
def test_a_message_sent_while_a_reply_streams_waits_and_keeps_every_constraint(catalog, tmp_path, with_store):
    from recommender.ui.app import QUEUED, ChatHandlers

    scorer = SlowScorer()
    store = FeedbackStore(tmp_path / "f.sqlite") if with_store else None
    handlers = ChatHandlers(FakePipeline(catalog, scorer=scorer), store)
    page = handlers.restore(None)[3]  # the page's session, as the load event leaves it

    first = handlers.respond("comedy", [], page, "new user", 5)
    next(first)  # the box empties
    next(first)  # the cards, the reply not yet written
    next(first)  # the first sentence of the reply (shown once it passed the gate): the turn is streaming
    assert scorer.started.is_set()
    outcome = {}

    def second_message():  # sent while the first reply streams, with the page's (stale) state
        outcome["updates"] = list(handlers.respond("no horror", [], page, "new user", 5))

    thread = threading.Thread(target=second_message)
    thread.start()
    for _ in range(100):
        if handlers.turns.waiting(page["session_id"]):
            break
        time.sleep(0.01)
    assert handlers.turns.waiting(page["session_id"]) == ["no horror"]
    scorer.gate.set()
    firsts = list(first)
    assert "no horror" in contents(firsts[0][0]) and QUEUED in contents(firsts[0][0])  # shown as queued
    thread.join(10)
    chat, _, _, data, sid, _ = outcome["updates"][-1]
    cards = [update[1] for update in outcome["updates"] if isinstance(update[1], str)][-1]
    texts = contents(chat)
    assert texts[0] == "comedy" and texts[2] == "no horror" and len(texts) == 4  # both turns, in order
    assert all("I recommend" in t or "Here are" in t for t in texts[1::2])
    from recommender.chat.turn import Session

    state = Session.from_dict(data).state
    assert state.include_genres == ("Comedy",) and state.exclude_genres == ("Horror",)
    assert "Comedy; no Horror" in cards
    if store is not None:
        assert [t["message"] for t in store.turns(sid)] == ["comedy", "no horror"]


def test_a_reload_resumes_the_stored_session(catalog, tmp_path):
    from recommender.ui.app import ChatHandlers

    store = FeedbackStore(tmp_path / "f.sqlite")
    handlers = ChatHandlers(FakePipeline(catalog), store)
    page = handlers.restore(None)[3]
    updates = list(handlers.respond("comedy, no horror", [], page, "new user", 5))
    chat, _, _, data, sid, _ = updates[-1]
    cards = [update[1] for update in updates if isinstance(update[1], str)][-1]
    like = handlers.feedback("like")(data, data["shown"][0], "new user")
    assert "Noted" in like[1]

    class Request:  # what gradio hands a load event: the page's URL query
        query_params = {"session": sid}

    for restored in (handlers.restore(sid), handlers.restore(None, Request())):
        chat2, cards2, _, data2, sid2, _ = restored
        assert sid2 == sid and contents(chat2) == contents(chat)
        assert cards2.count("rec-card") == cards.count("rec-card") and "no Horror" in cards2
        assert data["shown"][0] in Session_state(data2).liked
    fresh = handlers.restore("no-such-session")
    assert fresh[4] != sid and fresh[0] == []


def test_a_turn_ends_with_its_reply_and_opening_a_card_measures_influences_once(catalog, tmp_path):
    from recommender.ui.app import ChatHandlers

    pipeline = InfluencePipeline(catalog)
    handlers = ChatHandlers(pipeline, FeedbackStore(tmp_path / "f.sqlite"))
    page = handlers.change_user("1")[3]
    updates = list(handlers.respond("comedy", [], page, "1", 5))
    data = updates[-1][3]
    assert pipeline.influence_calls == []  # not inside the turn
    assert "Because of" not in [u[1] for u in updates if isinstance(u[1], str)][-1]
    cards = handlers.open_card(data, data["shown"][1])
    assert "Because of" in cards and len(pipeline.influence_calls) == 1
    picked = cards.split('rec-picked" data-item-id="')[1]
    mine = picked.split('class="rec-card')[0]
    assert picked.startswith(data["shown"][1]) and '<div class="rec-sentence">We suggest' in mine
    assert '<table class="rec-influence">' in mine and "(not measured)" in mine  # the fake has no LLM to measure
    other = handlers.open_card(data, data["shown"][0])  # another card: its own explanation, influences kept
    assert f'rec-picked" data-item-id="{data["shown"][0]}"' in other and "Because of" in other
    assert len(pipeline.influence_calls) == 1  # measured once per list
    assert not isinstance(handlers.open_card(data, "no-such-item"), str)
    list(handlers.respond("no horror", [], data, "1", 5))  # a new list: measured again when opened
    assert "Because of" in handlers.open_card(data, handlers.lists[data["session_id"]].recs[0].item_id)
    assert len(pipeline.influence_calls) == 2


def Session_state(data):  # noqa: N802 - a tiny helper
    from recommender.chat.turn import Session

    return Session.from_dict(data).state


def test_the_cli_builds_the_server_config_without_importing_the_app():
    import subprocess
    import sys

    code = (
        "import sys; from recommender.commands.chat import make_parser;"
        "make_parser().parse_args(['--port', '7999']);"
        "assert 'recommender.ui.app' not in sys.modules and 'gradio' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    from recommender.commands.chat import config_from_args, make_parser

    config = config_from_args(make_parser().parse_args(["--port", "7999", "--no-llm-reply", "-k", "7"]))
    assert (config.port, config.llm_reply, config.k, config.adapter) == (7999, False, 7, "default")
    with pytest.raises(ValueError, match="k must be within"):
        config_from_args(make_parser().parse_args(["-k", "0"]))


def click(handlers, data, action, item_id, user="new user"):
    """What a button on a card sends (``render.CARD_CLICKS``): one click event with the action and item."""
    import gradio as gr

    return handlers.card_action(data, user, gr.EventData(None, {"action": action, "item_id": item_id}))


def test_every_card_has_its_buttons_and_they_store_the_feedback_rows(catalog, tmp_path):
    from recommender.ui.app import ChatHandlers

    store = FeedbackStore(tmp_path / "f.sqlite")
    handlers = ChatHandlers(FakePipeline(catalog), store, llm_reply=False)
    page = handlers.restore(None)[3]
    updates = list(handlers.respond("comedy", [], page, "new user", 5))
    cards, data = updates[-1][1], updates[-1][3]
    for item_id in data["shown"]:
        for action in ("open", "like", "dislike", "seen"):
            assert f'data-action="{action}" data-item-id="{item_id}"' in cards
    first, second, third = data["shown"][:3]
    cards, data, note = click(handlers, data, "like", first)
    assert "Noted: you like" in note and 'class="rec-card rec-like"' in cards
    cards, data, note = click(handlers, data, "dislike", second)
    cards, data, note = click(handlers, data, "seen", third)
    assert "Noted: you have seen" in note and "Seen: it will not be shown again" in cards
    rows = [(r["item_id"], r["action"]) for r in store.feedback(data["session_id"])]
    assert rows == [(first, "like"), (second, "dislike"), (third, "seen")]  # the rows the feedback handler writes
    later = list(handlers.respond("comedy", [], data, "new user", 10))[-1][3]
    assert third not in later["shown"] and second not in later["shown"]  # seen (and disliked): never again
    assert click(handlers, later, "nonsense", first)[1:] == click(handlers, later, "open", "no-such-item")[1:]


class ExplainingPipeline(FakePipeline):
    """A fake with an LLM: ``explain`` answers as ``Recommender.explain`` does, with one influence above
    its threshold, one below zero beyond it, and films within theirs (a zero among them)."""

    def __init__(self, catalog):
        super().__init__(catalog, scorer=object())
        self.explained = []

    def recommend(self, **kwargs):
        from dataclasses import replace

        return [replace(rec, llm_score=-1.0) for rec in super().recommend(**kwargs)]

    def explain(self, history, item, window=None, **options):
        from types import SimpleNamespace

        self.explained.append((list(history), item))
        title = self.catalog[history[-1]].display_title()
        return SimpleNamespace(
            text=f"Because you watched {title}, you may like it.",
            influences=[(history[-1], title, 0.0412), ("1", "Toy Story (1995)", -0.02)],
            no_effect=[("7", "Twelve Monkeys (1995)", 0.0), ("2", "GoldenEye (1995)", 0.003)],
            thresholds={history[-1]: 0.011, "1": 0.012, "7": 0.01, "2": 0.009},
        )


def test_a_picked_card_shows_the_sentence_and_influence_table_of_recommender_explain(catalog, tmp_path):
    from recommender.ui.app import ChatHandlers

    pipeline = ExplainingPipeline(catalog)
    handlers = ChatHandlers(pipeline, FeedbackStore(tmp_path / "f.sqlite"), llm_reply=False)
    page = handlers.change_user("1")[3]
    data = list(handlers.respond("comedy", [], page, "1", 5))[-1][3]
    cards = click(handlers, data, "open", data["shown"][2], user="1")[0]
    picked = cards.split('rec-picked" data-item-id="')[1].split('class="rec-card')[0]
    assert pipeline.explained == [(["1", "50"], data["shown"][2])]
    assert "Because you watched Star Wars (1977), you may like it." in picked
    table = picked.split('<table class="rec-influence">')[1].split("</table>")[0]
    assert "+0.0412" in table and "0.0110" in table and "-0.0200" in table and "0.0120" in table and "lowered" in table
    assert "0.0000" not in table and "GoldenEye" not in table  # within its threshold: no influence
    assert "No measurable effect (within the threshold, not ranked): Twelve Monkeys (1995), GoldenEye (1995)" in picked
    assert "Because of: Star Wars (+0.0412)" in picked  # the card's own line says what its table says
    cards = click(handlers, data, "like", data["shown"][0], user="1")[0]
    assert f'rec-picked" data-item-id="{data["shown"][2]}"' in cards  # feedback keeps the open explanation


def test_a_group_influence_reads_as_its_films_together():
    from recommender.ui.render import _influence_name

    titles = {"1": "Toy Story (1995)", "7": "Twelve Monkeys (1995)"}
    assert _influence_name("1", titles) == "Toy Story (1995)"
    assert _influence_name("1+7", titles) == "Toy Story (1995) and Twelve Monkeys (1995), together"
