"""One chat turn with a fake pipeline (milliseconds): bad input, fallbacks, the store, escaping."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from types import SimpleNamespace

import pytest

from recommender.chat.turn import (
    SORRY,
    Session,
    explain_cards,
    finish_turn,
    give_feedback,
    load_session,
    open_session,
    recommend_for_message,
    run_turn,
)
from recommender.data.loaders import load_dataset
from recommender.protocols import Recommendation
from recommender.store import FeedbackStore
from recommender.ui.render import cards_html, reply_markdown, user_markdown


@pytest.fixture(scope="module")
def catalog():
    return load_dataset("ml-100k").catalog


class FakeScorer:
    """Streams a fixed reply in pieces (or raises)."""

    def __init__(self, reply: str | Exception):
        self.reply = reply
        self.calls = []

    def stream(self, messages, max_new_tokens=96):
        self.calls.append(messages)
        if isinstance(self.reply, Exception):
            raise self.reply
        for word in self.reply.split(" "):
            yield word + " "


class FakePipeline:
    """The ``Recommender`` surface the chat uses: catalogue order, hard filters, one known user."""

    def __init__(self, catalog, scorer=None, fail: Exception | None = None):
        self.catalog = catalog
        self.scorer = scorer
        self.fail = fail
        self.calls = []

    def user_history(self, user_id):
        if str(user_id) != "1":
            raise ValueError(f"user id {str(user_id)!r} is not in ml-100k (943 users, ids 1 to 943).")
        return ["1", "50"]

    def recommend(self, user_id=None, history=None, k=10, query=None, filters=None, diversity=0.0, influence_window=0):
        self.calls.append({"history": history, "query": query, "filters": filters, "k": k})
        if self.fail is not None:
            raise self.fail
        out = []
        for item in self.catalog.items:
            if filters and (set(item.genres) & set(filters.exclude_genres) or item.id in filters.exclude_items):
                continue
            if filters and filters.include_genres and not set(item.genres) & set(filters.include_genres):
                continue
            if item.id in (history or ()):
                continue
            out.append(
                Recommendation(
                    item.id,
                    item.title,
                    1.0 - len(out) / 100,
                    0.5,
                    None,
                    "rank@test",
                    item.year,
                    item.genres,
                    reasons=("Comedy like Toy Story (1995)",),
                )  # fmt: skip
            )
            if len(out) == k:
                break
        return out


@pytest.fixture()
def store(tmp_path):
    return FeedbackStore(tmp_path / "feedback.sqlite")


def turn(pipeline, store, message, user=None, k=5, session=None):
    session = session or open_session(pipeline, store, user)[0]
    return finish_turn(run_turn(pipeline, store, session, message, k))


def test_a_turn_recommends_stores_and_keeps_state(catalog, store):
    pipeline = FakePipeline(catalog)
    last = turn(pipeline, store, "something funny but no horror", user="1")
    assert last.done and last.source == "template" and len(last.recommendations) == 5
    assert all("Horror" not in rec.genres for rec in last.recommendations)
    assert pipeline.calls[-1]["history"] == ["1", "50"]
    stored = store.turns(last.session.session_id)
    assert stored[0]["message"] == "something funny but no horror"
    assert stored[0]["shown"] == [rec.item_id for rec in last.recommendations]
    assert load_session(pipeline, store, last.session.session_id).state == last.session.state
    again = turn(pipeline, store, "show me more", session=last.session)
    assert not {r.item_id for r in again.recommendations} & {r.item_id for r in last.recommendations}


@pytest.mark.parametrize("message", ["", "   ", None, "\u200f\u200e", "?!", "🙂"])
def test_a_message_that_asks_for_nothing_gets_help(catalog, store, message):
    last = turn(FakePipeline(catalog), store, message)
    assert last.source == "help" and "I didn't catch a request" in last.reply and last.recommendations == ()


@pytest.mark.parametrize(
    "message",
    [
        "x" * 20_000,
        "funny " * 4_000,
        "something 😂🎬 funny 🍿",
        "فيلم مضحك comedy אני רוצה",  # right-to-left text around a genre
        "\u202eno horror\u202c",
        "<script>alert(1)</script> comedy",
    ],
)
def test_bad_input_never_raises_and_is_stored(catalog, store, message):
    last = turn(FakePipeline(catalog), store, message)
    assert last.done and last.source in ("template", "help")
    assert store.counts()["turns"] == 1


def test_script_in_a_message_is_escaped_everywhere(catalog, store):
    message = "<script>alert(1)</script> a comedy about <b>cats</b>"
    last = turn(FakePipeline(catalog), store, message)
    from recommender.chat.state import describe_constraints

    header = describe_constraints(last.session.state)
    page = cards_html(last.recommendations, header=header + " " + message) + reply_markdown(last.reply)
    page += user_markdown(message)
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page


def test_titles_are_escaped_in_cards():
    title = "<img src=x onerror=alert(1)> & Co"
    rec = Recommendation("9", title, 1.0, 1.0, None, "t", 1999, ("Drama",), ("<i>why</i>",))
    html = cards_html([rec], header="<b>typed</b>")
    assert "<img" not in html and "<i>" not in html and "<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; Co (1999)" in html


def test_unknown_user_starts_as_new_user_and_says_so(catalog, store):
    pipeline = FakePipeline(catalog)
    session, note = open_session(pipeline, store, "no-such-user")
    assert session.user_id is None and session.state.history == ()
    assert "'no-such-user' is not in ml-100k" in note and "new user" in note
    for new in (None, "", "new user", "New User"):
        assert open_session(pipeline, store, new)[0].user_id is None
    with pytest.raises(ValueError, match="not in ml-100k"):
        recommend_for_message(pipeline, "comedy", "no-such-user", 5)


def test_a_title_that_matches_nothing_is_named_with_the_closest(catalog, store):
    last = turn(FakePipeline(catalog), store, "more like Zorblax the Unwatchable")
    assert last.source == "help"
    assert 'I could not find "Zorblax the Unwatchable" in the catalogue. Did you mean Sunchaser, The' in last.reply
    last = turn(FakePipeline(catalog), store, "more like Zorblax the Unwatchable, but no horror")
    assert last.source == "template" and len(last.recommendations) == 5
    assert 'I could not find "Zorblax the Unwatchable"' in last.reply and "Did you mean" in last.reply


def test_a_pipeline_exception_gives_a_friendly_reply_and_keeps_the_store(catalog, store):
    ok = FakePipeline(catalog)
    first = turn(ok, store, "comedy", user="1")
    session_id = first.session.session_id
    session, _ = give_feedback(ok, store, first.session, first.recommendations[0].item_id, "like")
    before = store.counts()
    broken = FakePipeline(catalog, fail=RuntimeError("CUDA out of memory"))
    last = turn(broken, store, "no horror", session=session)
    assert last.source == "error" and last.reply == SORRY and "CUDA" not in last.reply
    assert last.session == session  # the state is as it was before the failed turn
    assert store.counts() == before
    assert load_session(ok, store, session_id).state == session.state


def test_llm_reply_is_streamed_and_kept_when_it_names_only_allowed_titles(catalog, store):
    pipeline = FakePipeline(catalog)
    first = turn(pipeline, store, "comedy", k=5)
    title = first.recommendations[0].title
    pipeline.scorer = FakeScorer(f"You could try {title}, a fine pick for tonight. It has plenty of laughs.")
    updates = list(run_turn(pipeline, store, open_session(pipeline, store)[0], "comedy", 5))
    assert [u.done for u in updates][-1] and not any(u.done for u in updates[:-1])
    assert len(updates) > 3  # cards first, then the reply sentence by sentence
    assert [u.reply for u in updates[1:-1]] == [f"You could try {title}, a fine pick for tonight.", updates[-1].reply]
    assert updates[0].recommendations and updates[-1].source == "llm" and title in updates[-1].reply
    system = pipeline.scorer.calls[0][0]["content"]
    asked = pipeline.scorer.calls[0][-1]
    assert title in system and asked["role"] == "user" and asked["content"].startswith("comedy\n\n")
    year = first.recommendations[0].year
    assert asked["content"].endswith(f"Start your answer with: I recommend {title} ({year}) because")


@pytest.mark.parametrize(
    "reply",
    [
        "You should watch Fargo (1996), it is great and everybody loves it.",  # not in the list
        "Children, Children, Children, Children, Children, Children, Children, Children, Children, Children, Children",
        "",
        RuntimeError("generation failed"),
    ],
)
def test_a_bad_llm_reply_falls_back_to_the_template(catalog, store, reply):
    pipeline = FakePipeline(catalog, scorer=FakeScorer(reply))
    last = turn(pipeline, store, "comedy, no crime")
    assert last.source == "template" and "Here are" in last.reply and "Fargo" not in last.reply


def test_feedback_is_stored_with_model_and_template(catalog, store):
    pipeline = FakePipeline(catalog)
    last = turn(pipeline, store, "comedy", user="1")
    item = last.recommendations[1].item_id
    session, note = give_feedback(pipeline, store, last.session, item, "like")
    assert "like" in note and item in session.state.liked
    session, _ = give_feedback(pipeline, store, session, item, "seen")
    rows = store.feedback(session.session_id)
    assert [(r["item_id"], r["action"], r["user_id"], r["template_version"]) for r in rows] == [
        (item, "like", "1", "rank@test"),
        (item, "seen", "1", "rank@test"),
    ]
    assert give_feedback(pipeline, store, session, None, "like")[1] == "Pick one of the recommendations first."
    assert give_feedback(pipeline, store, session, "<script>", "like")[0] == session
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 2


def test_feedback_records_carry_the_history_the_list_was_ranked_from(catalog, store):
    pipeline = FakePipeline(catalog)
    first = turn(pipeline, store, "comedy", user="1")
    liked = first.recommendations[0].item_id
    session, _ = give_feedback(pipeline, store, first.session, liked, "like")
    second = turn(pipeline, store, "show me more", session=session)
    give_feedback(pipeline, store, second.session, second.recommendations[2].item_id, "dislike")
    records = store.feedback_records()
    assert records[0]["history"] == ["1", "50"] == pipeline.calls[0]["history"]
    assert records[1]["history"] == pipeline.calls[1]["history"] and liked in records[1]["history"]
    assert records[1]["shown"] == [rec.item_id for rec in second.recommendations]


def test_session_round_trips_through_gradio_state(catalog, store):
    last = turn(FakePipeline(catalog), store, "90s comedy", user="1")
    assert Session.from_dict(last.session.to_dict()) == last.session
    assert Session.from_dict(None) is None


def test_recommend_for_message_returns_plain_dicts(catalog):
    rows = recommend_for_message(FakePipeline(catalog), "no horror", "new user", "7")
    assert len(rows) == 7 and rows[0]["rank"] == 1 and isinstance(rows[0]["genres"], list)
    assert rows[0]["user_id"] is None
    assert len(recommend_for_message(FakePipeline(catalog), "", "1", 10_000)) == 50  # k is clamped


class InfluencePipeline(FakePipeline):
    """A fake whose items are LLM-ranked and that measures influences on request (and records when)."""

    def __init__(self, catalog, scorer=None):
        super().__init__(catalog, scorer)
        self.influence_calls = []

    def recommend(self, **kwargs):
        assert kwargs.get("influence_window", 0) == 0  # never inside the turn's recommend call
        return [replace(rec, llm_score=-1.0) for rec in super().recommend(**kwargs)]

    def influences(self, history, item_ids, window=5):
        self.influence_calls.append(
            (list(history), list(item_ids), window, len(self.scorer.calls) if self.scorer else 0)
        )
        return {item: ((history[-1], 0.5),) for item in item_ids}


def test_cards_come_before_the_reply_and_influences_after_it(catalog, store):
    title = turn(FakePipeline(catalog), store, "comedy", user="1").recommendations[0].title
    pipeline = InfluencePipeline(catalog)
    pipeline.scorer = FakeScorer(f"I recommend {title}, a fine pick for tonight with plenty of laughs.")
    session = open_session(pipeline, store, "1")[0]
    updates = list(run_turn(pipeline, store, session, "comedy", 5))
    assert updates[0].recommendations and updates[0].reply == "…" and not updates[0].done
    assert all(not rec.influences for u in updates[:-1] for rec in u.recommendations)
    last = updates[-1]
    assert last.done and last.source == "llm" and title in last.reply
    assert all(rec.influences == (("50", 0.5),) for rec in last.recommendations)
    ((history, ids, window, streams),) = pipeline.influence_calls
    assert streams == 1 and window == 5 and ids == [rec.item_id for rec in last.recommendations]
    assert history == ["1", "50"]
    assert updates[-2].reply == last.reply and not updates[-2].recommendations[0].influences  # reply, then influences


def test_influences_are_skipped_when_asked_or_when_the_pipeline_has_none(catalog, store):
    pipeline = InfluencePipeline(catalog)
    session = open_session(pipeline, store, "1")[0]
    last = finish_turn(run_turn(pipeline, store, session, "comedy", 5, influences=False))
    assert pipeline.influence_calls == [] and not last.recommendations[0].influences
    last = finish_turn(run_turn(FakePipeline(catalog), store, session, "comedy", 5))  # no .influences at all
    assert last.done and last.source == "template"


def test_on_demand_influences_end_the_turn_with_the_reply_and_are_measured_later(catalog, store):
    pipeline = InfluencePipeline(catalog)
    session = open_session(pipeline, store, "1")[0]
    updates = list(run_turn(pipeline, store, session, "comedy", 5, influences="on demand"))
    last = updates[-1]
    assert last.done and pipeline.influence_calls == [] and not last.recommendations[0].influences
    assert last.basis is not None and last.basis.history == ("1", "50")
    assert [u.done for u in updates].count(True) == 1
    explained = explain_cards(pipeline, last.recommendations, last.basis)
    assert all(rec.influences == (("50", 0.5),) for rec in explained)
    assert [r.item_id for r in explained] == [r.item_id for r in last.recommendations]


def test_the_reply_stops_after_two_whole_sentences(catalog, store):
    closed = []

    class LongScorer:
        def stream(self, messages, max_new_tokens=96):
            title = messages[0]["content"].split("\n1. ")[1].split(" (")[0]
            text = f"I recommend {title} because it is funny. Dr. Smith is great in it. More words here. And more."
            try:
                for word in text.split():
                    yield word + " "
            finally:
                closed.append(True)

    last = turn(FakePipeline(catalog, scorer=LongScorer()), store, "comedy")
    assert last.source == "llm" and last.reply.endswith("great in it.") and "More words" not in last.reply
    assert closed == [True]  # the generator was closed, so a real model stops generating


def test_a_writer_that_takes_a_prefix_gets_the_replys_first_words(catalog, store):
    received = []

    class PrefixScorer:
        def stream(self, messages, max_new_tokens=96, prefix=""):
            received.append(prefix)
            yield prefix
            yield " it is a good laugh for tonight."

    last = turn(FakePipeline(catalog, scorer=PrefixScorer()), store, "comedy")
    top = last.recommendations[0]
    assert received == [f"I recommend {top.title} ({top.year}) because"]
    assert last.source == "llm" and last.reply == f"{received[0]} it is a good laugh for tonight."


def test_a_failing_influence_measure_keeps_the_turn(catalog, store):
    pipeline = InfluencePipeline(catalog)
    pipeline.influences = lambda history, item_ids, window=5: 1 / 0
    last = finish_turn(run_turn(pipeline, store, open_session(pipeline, store, "1")[0], "comedy", 5))
    assert last.done and last.source == "template" and len(last.recommendations) == 5


def test_a_refused_llm_reply_reports_why(catalog, store):
    pipeline = FakePipeline(catalog, scorer=FakeScorer("I'm not a nerf, but I'm not a nerf, I'm not a nerf, I'm"))
    last = turn(pipeline, store, "comedy")
    assert last.source == "template" and last.rejected == "repeats itself" and "nerf" in last.draft


@pytest.mark.parametrize(("asked", "cards", "note"), [(3, 3, False), (500, 50, True), (0, 5, False), (None, 5, False)])
def test_a_count_in_the_message_sets_k_within_the_cap(catalog, store, monkeypatch, asked, cards, note):
    import recommender.chat.turn as turn_module

    real = turn_module.parse_message

    def parse_with_count(text, catalog, shown=()):
        refinement = real(text, catalog, shown)
        return SimpleNamespace(**{**refinement.__dict__, "k": asked, "is_empty": refinement.is_empty})

    monkeypatch.setattr(turn_module, "parse_message", parse_with_count)
    monkeypatch.setattr(turn_module, "apply", lambda state, refinement, catalog=None: state)
    monkeypatch.setattr(turn_module, "templated_reply", lambda recs, refinement, state: f"{len(recs)} picks")
    last = turn(FakePipeline(catalog), store, "comedy")
    assert len(last.recommendations) == cards
    assert ("I show at most 50 at a time" in last.reply) is note


@pytest.mark.parametrize(
    "message",
    ["what should I watch next?", "any suggestions?", "recommend me a movie please", "surprise me",
     "i'm bored, entertain me", "you pick"],
)  # fmt: skip
def test_a_bare_request_recommends_from_what_is_known_and_leaves_no_query(catalog, store, message):
    last = turn(FakePipeline(catalog), store, message, user="1")
    assert last.source == "template" and len(last.recommendations) == 5
    assert last.session.state.query == "" and "about" not in last.reply.split("\n")[0]


def test_a_known_users_like_joins_their_history_in_later_sessions(catalog, store):
    pipeline = FakePipeline(catalog)
    session = open_session(pipeline, store, "1")[0]
    item = next(i.id for i in catalog.items if i.id not in ("1", "50"))
    give_feedback(pipeline, store, session, item, "like")
    give_feedback(pipeline, store, session, "50", "dislike")  # a dislike is no interaction
    rows = store.appended_interactions(user_id="1")
    assert [(r["item_id"], r["source"]) for r in rows] == [(item, "chat:like")]
    later = open_session(pipeline, store, "1")[0]
    from recommender.chat.state import retrieval_history

    run_turn_history = retrieval_history(later.state)
    assert list(run_turn_history)[-1] == item and list(run_turn_history)[:2] == ["1", "50"]
    newcomer = open_session(pipeline, store, None)[0]
    give_feedback(pipeline, store, newcomer, item, "like")
    assert len(store.appended_interactions()) == 1  # nobody to attach it to: feedback only


def test_the_six_turns_of_issue_28_through_the_turn_handler(catalog, store):
    """What a person expects at each turn of the conversation that went wrong in the browser."""
    pipeline = FakePipeline(catalog)
    star_trek = {item.id for item in catalog.items if "star trek" in item.title.lower()}
    session = open_session(pipeline, store, None)[0]
    lasts = []
    for message in ("sci-fi, nothing too old", "no horror though, and not another Star Trek",
                    "something more like Blade Runner", "show me 3 comedies from the 90s instead",
                    "I've already seen Groundhog Day", "more"):  # fmt: skip
        last = turn(pipeline, store, message, k=10, session=session)
        session = last.session
        lasts.append(last)
        assert last.source == "template" and "though" not in last.reply and "can't filter" not in last.reply
    assert not star_trek & {r.item_id for last in lasts[1:] for r in last.recommendations}
    assert star_trek <= set(pipeline.calls[-1]["filters"].exclude_items)
    assert [len(last.recommendations) for last in lasts[3:]] == [3, 3, 3]  # the count stays until changed
    assert "202" not in {r.item_id for last in lasts[4:] for r in last.recommendations}
    assert "202" not in pipeline.calls[-1]["history"] and "202" not in pipeline.calls[-2]["history"]
    assert all(call["query"] is None for call in pipeline.calls)  # no free-text term made of filler


class SentenceScorer:
    """Streams the given sentences word by word, naming the top card where ``{title}`` stands."""

    def __init__(self, *sentences: str):
        self.sentences = sentences

    def stream(self, messages, max_new_tokens=96):
        title = messages[0]["content"].split("\n1. ")[1].split(" (")[0]
        for word in " ".join(self.sentences).format(title=title).split():
            yield word + " "


def test_a_reply_on_screen_is_never_replaced(catalog, store):
    good, bad = "I recommend {title} for a relaxed evening.", "Fargo (1996) is great too."  # Fargo: not a card
    pipeline = FakePipeline(catalog, scorer=SentenceScorer(good, bad))
    updates = list(run_turn(pipeline, store, open_session(pipeline, store)[0], "comedy", 5))
    last = updates[-1]
    assert last.source == "llm" and last.rejected == "names a film outside the list" and "Fargo" not in last.reply
    shown = [u.reply for u in updates if u.reply != "…"]
    assert shown and all(last.reply.startswith(reply) for reply in shown)  # each one grows the one before
    assert store.turns(last.session.session_id)[-1]["reply"] == last.reply
    pipeline.scorer = SentenceScorer(bad, good)  # the first sentence fails: nothing of it is ever shown
    updates = list(run_turn(pipeline, store, open_session(pipeline, store)[0], "comedy", 5))
    assert [u.reply for u in updates[:-1]] == ["…"] and updates[-1].source == "template"


def test_a_refinement_shows_films_not_shown_yet_first(catalog, store):
    """Issue 28: simulated people saw the same top cards after every fact they added."""
    pipeline = FakePipeline(catalog)
    first = turn(pipeline, store, "comedy", k=5)
    again = turn(pipeline, store, "no horror", k=5, session=first.session)
    assert not {r.item_id for r in first.recommendations} & {r.item_id for r in again.recommendations}
    assert pipeline.calls[-1]["k"] == 10  # the films shown before are fetched too, and go last

    class FewFit(FakePipeline):  # only seven films fit
        def recommend(self, **kwargs):
            return super().recommend(**kwargs)[:7]

    first = turn(FewFit(catalog), store, "comedy", k=5)
    again = turn(FewFit(catalog), store, "no horror", k=5, session=first.session)
    ids, before = [r.item_id for r in again.recommendations], [r.item_id for r in first.recommendations]
    assert len(ids) == 5 and not set(ids[:2]) & set(before) and ids[2:] == before[:3]  # new ones, then the rest


def test_a_message_can_point_at_the_cards_on_screen(catalog, store):
    pipeline = FakePipeline(catalog)
    first = turn(pipeline, store, "comedy")
    shown = [rec.item_id for rec in first.recommendations]
    second = turn(pipeline, store, "I've already seen the first one and the third one", session=first.session)
    assert set(second.session.state.seen) >= {shown[0], shown[2]}
    assert not {shown[0], shown[2]} & {rec.item_id for rec in second.recommendations}
    assert catalog[shown[0]].display_title() in second.reply.split("\n\n")[0]
    third = turn(pipeline, store, "more like the second one", session=second.session)
    assert third.session.state.anchors == (second.session.shown[1],)


def test_a_pronoun_among_several_cards_asks_which_one(catalog, store):
    pipeline = FakePipeline(catalog)
    first = turn(pipeline, store, "comedy")
    second = turn(pipeline, store, "seen it", session=first.session)
    assert second.source == "help" and "Which one" in second.reply
    assert second.session.state.seen == first.session.state.seen
