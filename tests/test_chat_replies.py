"""The reply gate, from replies a 135M model really wrote (bench/chat_replies.py and issue 17)."""

from __future__ import annotations

import pytest

from recommender.chat.replies import (
    complete_sentences,
    contradicts,
    names_a_shown_item,
    repeats_itself,
    reply_problem,
    tidy_reply,
)
from recommender.chat.state import ConversationState, allowed_titles
from recommender.data.loaders import load_dataset
from recommender.protocols import Recommendation


@pytest.fixture(scope="module")
def catalog():
    return load_dataset("ml-100k").catalog


def recs(catalog, *ids: str) -> list[Recommendation]:
    return [Recommendation(i, catalog[i].title, 1.0, 1.0, None, "t", catalog[i].year, catalog[i].genres) for i in ids]


def problem(catalog, reply: str, state: ConversationState | None = None, shown=("1", "50", "100")) -> str:
    state = state or ConversationState()
    cards = recs(catalog, *shown)
    return reply_problem(tidy_reply(reply), cards, allowed_titles(cards, state, catalog), state, catalog)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        # issue 17, as shown in the browser
        ("I'm not a movie or a movie-like character, but I can provide a more specific answer about it.", "off task"),
        ("I'm not a nerf, but I'm not a nerf, I'm not a nerf, I'm", "repeats itself"),
        # bench/chat_replies.py, the shipped adapter (seed 1)
        ("The 1994, 1995, 1996, 1997, 1996, 1997, 1996, 1997, 1996, 1997", "repeats itself"),
        ("The 1969 The (1969)\nThe 1969 The (1969)\nThe 1969 The (1969)\nThe 1969 The (1969)", "repeats itself"),
        ("A 1977 1980 2221 2221 2221 2221 2221 2221 2221 2221 2221 222", "repeats itself"),
        ("I am a no-nonsense, no-nonsense, no-nonsense, no-nonsense, no-nonsense, no-nonsense", "repeats itself"),
        ("1.", "too short"),
        ("something funny", "too short"),
        ("A het with a twist, a 1997, 1993, 1994, 1995, 1997.", "names no shown item"),
        # bench, the base model: the prompt echoed back, or a film from its own memory
        ("The user asked for:\n- no Romance\nThe user requested:\n- no Romance", "off task"),
        (
            'The 2019 film "The Hunger Games" is a classic example of a genre that has been reimagined.',
            "names no shown item",
        ),  # noqa: E501
        ("Try Toy Story (1995), or The Godfather (1972) if you want more.", "names a film outside the list"),
    ],
)
def test_bad_replies_are_refused_with_a_reason(catalog, reply, why):
    assert problem(catalog, reply) == why


@pytest.mark.parametrize(
    "reply",
    [
        "I recommend Toy Story (1995): a warm, funny animated adventure. Fargo is a darker pick.",
        "Fargo (1996) fits well: a crime story with sharp dialogue.",
        "Try Toy Story. If you want something else, Fargo is great too.",
        "I recommend Independence Day (ID4) for tonight, a big and loud adventure.",
    ],
)
def test_replies_that_answer_pass(catalog, reply):
    assert problem(catalog, reply, shown=("1", "100", "121")) == ""


def test_a_reply_cut_by_the_token_limit_keeps_whole_sentences():
    assert tidy_reply("Try Fargo (1996). It is a dark and") == "Try Fargo (1996)."
    assert tidy_reply("  Try   Fargo.\n\n It is great!  ") == "Try Fargo.\nIt is great!"
    assert (
        tidy_reply("Try Fargo because it is dark, funny,") == "Try Fargo because it is dark, funny…"
    )  # one cut sentence
    assert tidy_reply("") == ""


def test_too_many_sentences_is_too_long(catalog):
    reply = "Try Fargo. " + " ".join(f"Sentence {n} is here." for n in range(5))
    assert problem(catalog, reply) == "too long"


def test_repetition_detector_spares_ordinary_text():
    assert not repeats_itself("I recommend Fargo, a dark comedy. I also recommend Toy Story, a warm one.")
    assert repeats_itself("Children, Children, Children, Children, Children, Children, Children, Children")
    assert repeats_itself("I recommend Fargo because it is entertaining and entertaining.")  # issue 28
    assert not repeats_itself("Fargo gets better and better, and you will watch it again and again.")


def test_a_reply_giving_a_film_a_genre_its_card_does_not_show_is_refused(catalog):
    shown = ("89", "202")  # Blade Runner (Film-Noir, Sci-Fi), Groundhog Day (Comedy, Romance)
    assert problem(catalog, "I recommend Blade Runner (1982) because it is a great comedy.", shown=shown) == (
        "calls a film Comedy"
    )
    assert problem(catalog, "I recommend Blade Runner (1982). It is a dark sci-fi noir.", shown=shown) == ""
    assert problem(catalog, "Try Groundhog Day, a comedy, or Blade Runner (1982).", shown=shown) == ""
    assert problem(catalog, "Blade Runner (1982) is no comedy, but it is sharp.", shown=shown) == ""  # negated


def test_names_a_shown_item_also_at_a_sentence_start(catalog):
    cards = recs(catalog, "50", "127")  # Star Wars, The Godfather
    assert names_a_shown_item("Star Wars is the one.", cards, catalog)
    assert names_a_shown_item("The Godfather is the one.", cards, catalog)
    assert not names_a_shown_item("A classic space adventure.", cards, catalog)


def test_a_reply_contradicting_the_constraints_is_refused(catalog):
    no_horror = ConversationState(exclude_genres=("Horror",))
    assert contradicts("Fargo is a great horror pick.", no_horror) == "names excluded Horror"
    assert contradicts("Fargo: nothing scary, as you asked.", no_horror) == ""  # negated
    assert contradicts("Fargo, with no horror at all.", no_horror) == ""
    nineties = ConversationState(year_min=1990, year_max=1999)
    assert contradicts("Fargo (1996) is a 1996 film.", nineties) == ""
    assert contradicts("A classic from 1975.", nineties) == "year 1975 outside the asked range"
    assert contradicts("Pure 90s fun.", ConversationState(year_min=1995)) == ""  # the decade overlaps
    assert problem(catalog, "Fargo (1996) is a fine horror film.", state=no_horror) == "names excluded Horror"


@pytest.mark.parametrize(
    ("text", "finished"),
    [
        ("I recommend Fargo (1996) because it is dark. It ", 1),
        ("I recommend Dr. Strangelove because", 0),
        ("L.A. Confidential is sharp! Also ", 1),
        ("Try Fargo.", 0),  # not yet followed by anything: the model may still be writing "Fargo.com"
        ("Is it good? Yes. ", 2),
        ("Mr. Holland's Opus. St. Elmo's Fire. ", 2),
    ],
)
def test_complete_sentences_skips_abbreviations_and_initials(text, finished):
    assert complete_sentences(text) == finished
