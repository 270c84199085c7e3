"""Films on screen pointed at instead of named ("more like the first one", "seen #2 and #4"): what each
message means, written from how people say it, and what happens when it points at nothing. Pure: no models."""

from __future__ import annotations

import pytest

from recommender.chat.card_refs import acknowledgement, card_references, resolve
from recommender.chat.understanding import parse_message
from recommender.data.loaders import load_dataset

# Star Wars, Fargo, Return of the Jedi, Contact, The Godfather: the cards on screen, best first.
SHOWN = ("50", "100", "181", "258", "127")
FIELDS = {"like": "more_like", "liked": "liked", "dislike": "disliked", "seen": "seen", "exclude": "exclude_items"}


@pytest.fixture(scope="module")
def catalog():
    return load_dataset("ml-100k").catalog


@pytest.mark.parametrize(
    ("message", "role", "positions"),
    [
        ("more like the first one", "like", [0]),
        ("something like the third one but funnier", "like", [2]),
        ("the 2nd one", "like", [1]),
        ("#3", "like", [2]),
        ("ok the last one then", "like", [4]),
        ("option 2", "like", [1]),
        ("I've seen all of those", "seen", [0, 1, 2, 3, 4]),
        ("seen them all", "seen", [0, 1, 2, 3, 4]),
        ("i've seen everything you showed me", "seen", [0, 1, 2, 3, 4]),
        ("i've seen those", "seen", [0, 1, 2, 3, 4]),
        ("I've seen #2 and #4", "seen", [1, 3]),
        ("i've seen 1, 2 and 5", "seen", [0, 1, 4]),
        ("seen the first two", "seen", [0, 1]),
        ("already watched the last one", "seen", [4]),
        ("the first and third ones I've seen", "seen", [0, 2]),
        ("the second one looks good", "liked", [1]),
        ("i like the second one", "liked", [1]),
        ("number 2 sounds interesting", "liked", [1]),
        ("i want the first one", "liked", [0]),
        ("the first one looks boring", "dislike", [0]),
        ("i didn't like the fourth one", "dislike", [3]),
        ("all of these are boring", "dislike", [0, 1, 2, 3, 4]),
        ("I don't like any of these", "dislike", [0, 1, 2, 3, 4]),
        ("not the last one", "exclude", [4]),
        ("nothing like the first one", "exclude", [0]),
        ("anything but the 2nd one", "exclude", [1]),
        ("not interested in #2", "dislike", [1]),
        ("I never liked the first one", "dislike", [0]),
        ("hated all of them except the first", "dislike", [1, 2, 3, 4]),
        ("seen everything except number 2", "seen", [0, 2, 3, 4]),
        ("i like all but the first", "liked", [1, 2, 3, 4]),
        ("seen the first, the third and #5", "seen", [0, 2, 4]),
        ("seen the 2nd, #4", "seen", [1, 3]),
        ("3rd and 4th, seen em", "seen", [2, 3]),
        ("skip the third one", "exclude", [2]),
    ],
)
def test_a_reference_takes_the_role_its_clause_gives_it(catalog, message, role, positions):
    refinement = parse_message(message, catalog, shown=SHOWN)
    assert set(getattr(refinement, FIELDS[role])) == {SHOWN[p] for p in positions}
    for other in set(FIELDS) - {role}:
        assert not set(getattr(refinement, FIELDS[other])) & set(SHOWN), other
    assert refinement.query == ""


@pytest.mark.parametrize(
    "message",
    ["i haven't seen the first one", "tell me about the second one", "the first time i saw it", "top 5 comedies",
     "give me the top 3", "the last ones were too scary", "i liked the last supper", "more like the third man",
     "first wives club", "watched it with my kids",
     "from the last 5 years", "seen 2 westerns this week", "more like that", "not that",
     "seen the first two godfathers", "hated the last two minutes", "I have seen all 3 godfather films",
     "The last movie I watched was Heat", "I don't hate the first one", "I loved Heat and Alien, seen both of them"],
)  # fmt: skip
def test_words_that_only_look_like_a_reference_point_at_no_card(catalog, message):
    refinement = parse_message(message, catalog, shown=SHOWN)
    for name in FIELDS.values():
        assert not set(getattr(refinement, name)) & set(SHOWN), name


def test_titles_with_ordinals_stay_titles(catalog):
    assert [catalog[i].title for i in parse_message("i liked the last supper", catalog, SHOWN).liked] == [
        "Last Supper, The"
    ]
    assert [catalog[i].title for i in parse_message("more like the third man", catalog, SHOWN).more_like] == [
        "Third Man, The"
    ]


def test_a_seen_card_then_a_verdict_with_a_pronoun(catalog):
    refinement = parse_message("seen the first one and hated it", catalog, shown=SHOWN)
    assert refinement.seen == ("50",) and refinement.disliked == ("50",)
    named = parse_message("I watched Titanic and didn't like it", catalog, shown=SHOWN)
    assert not set(named.disliked) & set(SHOWN)  # "it" is Titanic, not a card


def test_a_pronoun_is_a_card_only_when_one_is_on_screen(catalog):
    assert parse_message("seen it", catalog, shown=("100",)).seen == ("100",)
    assert parse_message("loved it!", catalog, shown=("100",)).liked == ("100",)
    several = parse_message("seen that one already", catalog, shown=SHOWN)
    assert not several.seen and any("Which one" in note for note in several.notes)


def test_a_reference_to_nothing_says_so(catalog):
    nothing = parse_message("more like the first one", catalog)
    assert not nothing.more_like and any("no films on screen" in note for note in nothing.notes)
    beyond = parse_message("seen the 5th one", catalog, shown=SHOWN[:3])
    assert not beyond.seen and any("only 3 films" in note for note in beyond.notes)


def test_what_a_reference_did_is_said_with_the_title(catalog):
    refinement = parse_message("I've seen #2", catalog, shown=SHOWN)
    assert "Fargo (1996)" in refinement.notes[0]
    assert acknowledgement("seen", ["A", "B", "C", "D", "E"]) == (
        "Noted: you have seen A, B, C and 2 more, so they will not come up again."
    )


def test_resolve_keeps_roles_apart_and_skips_references_without_one():
    refs = card_references("not the first one, tell me about #2, more like #3")
    roles, notes = resolve(refs, SHOWN)
    assert roles == {"exclude": [("50", "the first one")], "like": [("181", "#3")]} and notes == []


def test_two_verdicts_in_one_message_keep_their_own_cards(catalog):
    both = parse_message("loved the first one, the rest are boring", catalog, shown=SHOWN)
    assert both.liked == ("50",) and set(both.disliked) == set(SHOWN[1:])
    mixed = parse_message("#2 looks boring and no horror please", catalog, shown=SHOWN)
    assert mixed.disliked == ("100",) and mixed.exclude_genres == ("Horror",)
    assert not parse_message("seen #3 and I want a comedy", catalog, shown=SHOWN).additive


@pytest.mark.parametrize("message", ["the fırst one", "seen number sıx", "the top fıve", "፯", "make it ⓽", "#" * 500,
                                     "1 " * 1500,
                                     "the first, " * 300, "all but " * 400])  # fmt: skip
def test_odd_references_never_raise(catalog, message):
    parse_message(message, catalog, shown=SHOWN)
