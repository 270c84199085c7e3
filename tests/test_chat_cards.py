"""What each card and the chat box say (milliseconds): every card's reason is its own (issue 29: ten
cards read "Sci-Fi like Blade Runner (1982)"), and the templated reply talks about one or two picks
and leaves the list to the cards."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from recommender.chat.cards import card_reasons, with_reasons
from recommender.chat.state import ConversationState
from recommender.chat.writing import templated_reply
from recommender.data.loaders import load_dataset
from recommender.explanation_evidence import CowatchCounts, EvidenceSources
from recommender.protocols import Recommendation


@pytest.fixture(scope="module")
def catalog():
    return load_dataset("ml-100k").catalog


def film(catalog, title):
    return next(item for item in catalog.items if item.title == title)


def card(item, reasons=("Sci-Fi like Blade Runner (1982)",)):
    return Recommendation(item.id, item.title, 1.0, 0.5, None, "t", item.year, item.genres, reasons)


@pytest.fixture(scope="module")
def films(catalog):
    names = ["Blade Runner", "Alien", "Terminator, The", "Star Wars", "Groundhog Day"]
    return {name: film(catalog, name) for name in names}


@pytest.fixture(scope="module")
def pipeline(catalog, films):
    """Four people: all watched Blade Runner, three Alien, one The Terminator; Star Wars five of six."""
    row = {name: catalog.index[item.id] for name, item in films.items()}
    logs = [
        ["Blade Runner", "Alien", "Terminator, The", "Star Wars"],
        ["Blade Runner", "Alien", "Star Wars"],
        ["Blade Runner", "Alien", "Star Wars"],
        ["Blade Runner", "Star Wars"],
        ["Star Wars"],
        ["Groundhog Day"],
    ]
    indptr = np.cumsum([0, *map(len, logs)])
    items = np.array([row[name] for log in logs for name in log])
    cowatch = CowatchCounts(indptr, items, len(catalog.items), "a test log")
    return SimpleNamespace(catalog=catalog, evidence_sources=EvidenceSources(catalog, cowatch=cowatch))


def test_each_card_gives_its_own_reason(pipeline, films):
    recs = [card(films[name]) for name in ("Alien", "Terminator, The", "Star Wars")]
    state = ConversationState(include_genres=("Sci-Fi",), year_min=1975)
    out = with_reasons(pipeline, recs, [films["Blade Runner"].id], state)
    reasons = [rec.reasons for rec in out]
    assert len({"; ".join(r) for r in reasons}) == 3, reasons  # no two cards say the same
    assert "3 of the 4 who watched Blade Runner (1982) also watched it" in reasons[0]
    assert "1 of the 4 who watched Blade Runner (1982) also watched it" in reasons[1]
    assert all(len(r) <= 2 and any("Blade Runner" in line for line in r) for r in reasons)


def test_a_new_person_gets_what_they_asked_for_and_how_many_watched_it(pipeline, films):
    state = ConversationState(include_genres=("Sci-Fi",), year_min=1975)
    alien, star_wars = (with_reasons(pipeline, [card(films[n])], [], state)[0].reasons for n in ("Alien", "Star Wars"))
    assert alien == ("Sci-Fi from 1979, as you asked", "watched by 3 people in the logs")
    assert star_wars == ("Sci-Fi from 1977, as you asked", "watched by 5 people in the logs")


def test_a_film_only_seen_is_never_a_reason_and_no_evidence_keeps_the_catalogue(catalog, films):
    bare = SimpleNamespace(catalog=catalog)  # a fake pipeline: no co-watching counts
    out = with_reasons(bare, [card(films["Alien"])], [films["Blade Runner"].id], ConversationState())
    assert out[0].reasons == ("Sci-Fi like Blade Runner (1982)",)
    sources = EvidenceSources(catalog)
    assert card_reasons(sources, films["Groundhog Day"], [films["Blade Runner"]], ConversationState()) == ()
    kept = with_reasons(bare, [card(films["Groundhog Day"], ("kept",))], [films["Blade Runner"].id], None)
    assert kept[0].reasons == ("kept",)  # nothing of its own to say: the pipeline's reason stays


def test_the_templated_reply_talks_about_two_picks_and_leaves_the_list_to_the_cards(catalog):
    recs = [card(item, (f"reason {n}",)) for n, item in enumerate(catalog.items[:10])]
    state = ConversationState(include_genres=("Comedy",))
    reply = templated_reply(recs, SimpleNamespace(notes=(), unmatched=()), state)
    assert reply.startswith("Here are 10 picks (Comedy), on the cards.")
    assert f"**{recs[0].title} ({recs[0].year})**: reason 0." in reply and f"**{recs[1].title}" in reply
    assert not any(rec.title in reply for rec in recs[2:]) and "reason 2" not in reply
    assert "Why?" in reply  # points at the buttons on the cards
    empty = templated_reply([], SimpleNamespace(notes=("A note.",), unmatched=()), state)
    assert empty.startswith("A note.") and "Nothing in the catalogue fits (Comedy)" in empty
