"""Conversation state: apply, filters, JSON round trip, the templated reply and the title checker."""

from __future__ import annotations

import json

import pytest

from recommender.chat.replies import check_reply_names_only, mentioned_titles
from recommender.chat.state import (
    ConversationState,
    Refinement,
    allowed_titles,
    apply,
    apply_feedback,
    describe_constraints,
    help_reply,
    meaningful_query,
    parse_message,
    record_shown,
    retrieval_history,
    start_state,
    to_filters,
)
from recommender.chat.writing import templated_reply
from recommender.data.loaders import load_dataset
from recommender.protocols import Filters, Recommendation


@pytest.fixture(scope="module")
def catalog():
    return load_dataset("ml-100k").catalog


def say(state: ConversationState, text: str, catalog) -> ConversationState:
    return apply(state, parse_message(text, catalog))


def recs(catalog, *ids: str) -> list[Recommendation]:
    return [
        Recommendation(i, catalog[i].title, 1.0 - n / 10, 0.5, None, "rank@1", catalog[i].year, catalog[i].genres)
        for n, i in enumerate(ids)
    ]


def test_start_state_known_unknown_and_new_user(catalog):
    histories = {"196": ["242", "302", "99999"]}
    known = start_state("196", histories, catalog)
    assert known.user_known and known.history == ("242", "302")  # ids not in the catalogue dropped
    unknown = start_state("no-such-user", histories, catalog)
    assert unknown.user_id == "no-such-user" and not unknown.user_known and unknown.history == ()
    for anonymous in (None, "", "   "):
        assert start_state(anonymous, histories) == ConversationState()
    assert to_filters(unknown) == Filters()


def test_a_conversation_accumulates_and_replaces(catalog):
    state = start_state("196", {"196": ["242"]}, catalog)
    state = say(state, "something funny from the 90s, no horror", catalog)
    assert (state.include_genres, state.exclude_genres) == (("Comedy",), ("Horror",))
    assert (state.year_min, state.year_max) == (1990, 1999)
    state = say(state, "actually something scary", catalog)  # wanted genres replace; horror is now wanted
    assert state.include_genres == ("Horror",) and state.exclude_genres == ()
    state = say(state, "also westerns", catalog)
    assert state.include_genres == ("Horror", "Western")
    state = say(state, "before 1995", catalog)  # one bound replaces one side
    assert (state.year_min, state.year_max) == (1990, 1994)
    state = say(state, "from the 80s", catalog)  # a decade replaces both
    assert (state.year_min, state.year_max) == (1980, 1989)
    state = say(state, "not Star Wars", catalog)
    state = say(state, "I hated Titanic", catalog)
    state = say(state, "I watched Heat", catalog)
    filters = to_filters(state)
    assert set(filters.exclude_items) == {"50", "313", "273"}
    assert filters.include_genres == ("Horror", "Western") and filters.exclude_seen
    assert state.turns == 8


def test_show_me_more_hides_what_was_shown_then_a_refinement_resets_the_page(catalog):
    state = say(ConversationState(), "comedies", catalog)
    state = record_shown(state, ["1", "2", "3"])
    assert "1" not in to_filters(state).exclude_items
    state = say(state, "show me more", catalog)
    assert state.page == 1 and {"1", "2", "3"} <= set(to_filters(state).exclude_items)
    assert state.include_genres == ("Comedy",)  # "more" keeps the constraints
    state = say(state, "from the 90s", catalog)
    assert state.page == 0 and "1" not in to_filters(state).exclude_items


def test_start_over_keeps_the_person_and_drops_the_constraints(catalog):
    state = start_state("196", {"196": ["242"]}, catalog)
    state = say(state, "no horror from the 90s, I liked Fargo", catalog)
    state = say(state, "start over", catalog)
    assert state.history == ("242",) and state.liked == ("100",) and state.user_id == "196"
    assert to_filters(state) == Filters()
    assert state.query == "" and state.page == 0


def test_more_like_anchors_come_last_in_the_retrieval_history(catalog):
    state = start_state("1", {"1": ["100", "12", "50"]}, catalog)
    state = say(state, "more like Fargo", catalog)
    assert retrieval_history(state) == ("12", "50", "100")
    state = say(state, "I didn't like Star Wars", catalog)
    assert "50" not in retrieval_history(state)


def test_a_constraint_only_message_keeps_the_query(catalog):
    state = say(ConversationState(), "a heist with a twist", catalog)
    state = say(state, "from the 90s", catalog)
    assert state.query == "twist"


@pytest.mark.parametrize(
    ("query", "kept"),
    [("should next", ""), ("what should I watch next", ""), ("something good tonight please", ""), ("I'd", ""),
     ("heist twist", "heist twist"), ("a heist with a twist", "heist twist"), ("space opera", "space opera")],
)  # fmt: skip
def test_only_meaningful_words_make_a_query(query, kept):
    assert meaningful_query(query) == kept


def test_a_query_is_replaced_never_accumulated_and_filler_never_sticks():
    state = apply(ConversationState(), Refinement(query="should next"))  # "what should I watch next?"
    assert state.query == "" and "about" not in describe_constraints(state)
    state = apply(state, Refinement(query="heist twist"))
    state = apply(state, Refinement(query="should next"))  # filler keeps the topic, adds nothing
    assert state.query == "heist twist"
    state = apply(state, Refinement(query="space opera"))
    assert state.query == "space opera"  # replaced
    state = apply(state, Refinement(exclude_genres=("Horror",)))
    assert state.query == "space opera" and describe_constraints(state) == 'no Horror; about "space opera"'
    assert apply(state, Refinement(include_genres=("Comedy",))).query == ""  # a new topic drops it
    assert apply(state, Refinement(include_genres=("Comedy",), additive=True)).query == "space opera"
    assert apply(state, Refinement(more_like=("1",))).query == ""


def test_feedback_updates_state():
    state = apply_feedback(ConversationState(), "100", "like")
    state = apply_feedback(state, "100", "dislike")
    assert state.liked == () and state.disliked == ("100",)
    state = apply_feedback(state, "7", "seen")
    assert set(to_filters(state).exclude_items) == {"100", "7"}
    with pytest.raises(ValueError, match="not one of"):
        apply_feedback(state, "7", "meh")


def test_json_round_trip(catalog):
    state = start_state("196", {"196": ["242"]}, catalog)
    for text in ("no horror, 90s comedies about dogs", "more like Fargo", "I liked Babe", "show me more",
                 "give me 3, and not another Star Trek"):  # fmt: skip
        state = say(state, text, catalog)
    state = record_shown(state, ["1", "2"])
    assert ConversationState.from_json(state.to_json()) == state
    assert ConversationState.from_json(ConversationState().to_json()) == ConversationState()
    assert json.loads(state.to_json())["version"] == 1


@pytest.mark.parametrize(
    "text,field",
    [("not json", "not JSON"), ("[1, 2]", "not a JSON object"), ('{"liked": "100"}', "liked"),
     ('{"year_min": "1990"}', "year_min"), ('{"page": -1}', "page"), ('{"version": 99}', "version"),
     ('{"k": 0}', "'k'"), ('{"k": "3"}', "'k'")],
)  # fmt: skip
def test_from_json_refuses_bad_state_with_one_sentence(text, field):
    with pytest.raises(ValueError, match=field):
        ConversationState.from_json(text)


def test_from_json_ignores_unknown_fields_and_fills_missing_ones():
    state = ConversationState.from_json('{"version": 1, "query": "dogs", "future_field": 3}')
    assert state.query == "dogs" and state.liked == ()


def test_templated_reply_names_only_the_recommended_items(catalog):
    state = say(ConversationState(), "funny from the 90s, no horror", catalog)
    shown = recs(catalog, "1", "100")
    refinement = parse_message("funny from the 90s, no horror", catalog)
    reply = templated_reply(shown, refinement, state)
    assert "Toy Story (1995)" in reply and "Fargo (1996)" in reply and "no Horror" in reply
    assert check_reply_names_only(reply, [r.title for r in shown], catalog)
    assert {ids for _, ids in mentioned_titles(reply, catalog)} == {("1",), ("100",)}


def test_templated_reply_when_nothing_fits_and_when_a_title_is_missing(catalog):
    refinement = parse_message("I liked Blorptastic Adventure, westerns after 2000", catalog)
    state = apply(ConversationState(), refinement)
    reply = templated_reply([], refinement, state)
    assert "Blorptastic Adventure" in reply and "Did you mean" in reply
    assert "ends in 1998" in reply and "start over" in reply


def test_templated_reply_does_not_echo_markup(catalog):
    refinement = parse_message("<script>alert(1)</script> I loved <b>Qqqq Zzzz</b>", catalog)
    reply = templated_reply([], refinement, apply(ConversationState(), refinement))
    assert "<" not in reply and ">" not in reply


def test_help_reply_for_a_message_that_parses_to_nothing(catalog):
    refinement = parse_message("😀", catalog)
    assert refinement.is_empty
    text = help_reply(refinement, catalog)
    assert "no horror" in text and "more like" in text and "Sci-Fi" in text and "unknown" not in text


def test_name_checker_catches_titles_outside_the_list(catalog):
    allowed = ["Toy Story", "Fargo"]
    assert check_reply_names_only("Try Toy Story (1995), then **Fargo**.", allowed, catalog)
    assert not check_reply_names_only("Try Toy Story, or maybe The Usual Suspects.", allowed, catalog)
    assert not check_reply_names_only("If you liked Fargo, you'll love Star Wars (1977).", allowed, catalog)
    assert not check_reply_names_only('I also suggest "Heat".', allowed, catalog)
    # Ordinary words that happen to be one-word titles do not count.
    assert check_reply_names_only("Heat up some popcorn. Its mother would approve; contact me.", allowed, catalog)
    assert check_reply_names_only("", allowed, catalog)


def test_allowed_titles_include_the_history(catalog):
    state = say(start_state("1", {"1": ["50"]}, catalog), "more like Fargo", catalog)
    allowed = allowed_titles(recs(catalog, "1"), state, catalog)
    assert {"Toy Story", "Star Wars", "Fargo"} <= allowed
    assert check_reply_names_only("Since you liked Star Wars and Fargo: Toy Story.", allowed, catalog)


def test_the_six_turns_of_issue_28_keep_every_constraint(catalog):
    """ "sci-fi, nothing too old" -> "no horror though, and not another Star Trek" -> "something more like
    Blade Runner" -> "show me 3 comedies from the 90s instead" -> "I've already seen Groundhog Day" -> "more"."""
    star_trek = {item.id for item in catalog.items if "star trek" in item.title.lower()}
    state = say(ConversationState(), "sci-fi, nothing too old", catalog)
    state = say(state, "no horror though, and not another Star Trek", catalog)
    assert state.query == "" and star_trek <= set(to_filters(state).exclude_items)
    assert state.exclude_fragments == ("Star Trek",) and 'no "Star Trek"' in describe_constraints(state)
    state = say(state, "something more like Blade Runner", catalog)
    state = say(state, "show me 3 comedies from the 90s instead", catalog)
    assert state.k == 3 and state.include_genres == ("Comedy",) and state.exclude_genres == ("Horror",)
    state = say(state, "I've already seen Groundhog Day", catalog)
    assert state.k == 3 and "202" in to_filters(state).exclude_items
    assert "202" not in retrieval_history(state) and "202" not in state.anchors  # seen: hidden, never a seed
    state = say(state, "more", catalog)
    assert state.k == 3 and state.page == 1 and star_trek <= set(to_filters(state).exclude_items)
    assert state.query == ""


def test_a_count_stays_until_another_count_or_start_over(catalog):
    state = say(ConversationState(), "show me 3 comedies", catalog)
    for text in ("no horror", "more", "from the 90s"):
        state = say(state, text, catalog)
        assert state.k == 3, text
    assert say(state, "give me 5 options", catalog).k == 5
    assert say(state, "start over", catalog).k is None


def test_a_seen_film_is_no_seed_but_a_liked_one_is(catalog):
    state = start_state("1", {"1": ["100"]}, catalog)
    state = apply_feedback(say(state, "I've seen Heat", catalog), "7", "seen")
    assert retrieval_history(state) == ("100",) and {"273", "7"} <= set(to_filters(state).exclude_items)
    assert retrieval_history(say(state, "I liked Babe", catalog)) == ("100", "8")


@pytest.mark.parametrize(
    ("messages", "years"),
    [(("90s", "nothing too old"), (1990, 1999)), (("90s", "recent"), (1996, 1999)),
     (("after 1990", "after 1980"), (1981, None)), (("recent", "old classics"), (None, 1973)),
     (("90s", "before 1995"), (1990, 1994)), (("80s", "after 1995"), (1996, None))],
)  # fmt: skip
def test_a_one_sided_bound_narrows_a_range_and_replaces_one_of_its_side(catalog, messages, years):
    """Issue 28's simulated people said "90s", then "nothing too old", and got the 80s back."""
    state = ConversationState()
    for message in messages:
        state = say(state, message, catalog)
    assert (state.year_min, state.year_max) == years


def test_lifting_a_filter_removes_it_and_keeps_the_rest(catalog):
    state = say(start_state("1", {"1": ["242"]}, catalog), "romance or comedy from the 90s, no horror", catalog)
    assert (set(state.include_genres), state.exclude_genres, state.year_min) == (
        {"Romance", "Comedy"},
        ("Horror",),
        1990,
    )
    lifted = say(state, "remove the romance filter", catalog)
    assert (lifted.include_genres, lifted.exclude_genres, lifted.year_min) == (("Comedy",), ("Horror",), 1990)
    no_years = say(state, "I don't care about the year", catalog)
    assert (no_years.year_min, no_years.year_max, set(no_years.include_genres)) == (None, None, {"Romance", "Comedy"})
    any_genre = say(state, "any genre is fine", catalog)
    assert (any_genre.include_genres, any_genre.exclude_genres, any_genre.year_min) == ((), ("Horror",), 1990)
    allowed = say(state, "drop the horror exclusion", catalog)
    assert allowed.exclude_genres == () and "Horror" not in allowed.include_genres
    swapped = say(state, "forget the comedy and romance, westerns from the 50s", catalog)
    assert (swapped.include_genres, swapped.year_min, swapped.year_max) == (("Western",), 1950, 1959)


def test_words_of_what_a_film_holds_move_films_down_and_verdicts_do_not(catalog):
    state = say(ConversationState(), "something like Fargo but less violent", catalog)
    assert state.avoid == ("violent",) and to_filters(state).avoid == ("violent",)
    assert 'less "violent"' in describe_constraints(state)
    assert any("move down the list" in note for note in parse_message("nothing too sappy", catalog).notes)
    state = say(state, "these are too sappy", catalog)
    assert state.avoid == ("violent", "sappy")  # accumulated, like excluded genres
    for verdict in ("I saw Heat, it was boring", "horror is so overrated", "nothing too long"):
        assert say(ConversationState(), verdict, catalog).avoid == ()  # no text similarity reads these
    assert say(state, "start over", catalog).avoid == ()
    assert ConversationState.from_json(json.dumps({"version": 1, "query": "x"})).avoid == ()  # a state saved before
