"""text_checks: the one title-mention rule that chat replies and explanations share, and repetition."""

from __future__ import annotations

import pytest

from recommender.chat.replies import mentioned_titles
from recommender.data.loaders import load_dataset
from recommender.explanation_titles import TitleChecker
from recommender.text_checks import names_title, ordinary_words, repeats_itself, sentence_start


@pytest.fixture(scope="module")
def catalog():
    return load_dataset("ml-100k").catalog  # "Heat" is 273, "Ran" 647, "Net, The" 38, "War, The" 1058


def at(text: str, title: str, ordinary=None) -> bool:
    """``names_title`` on the last place ``title`` is written in ``text``."""
    start = text.rindex(title)
    return names_title(text, start, start + len(title), *([] if ordinary is None else [ordinary]))


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("You liked Heat, so try Fargo.", "Heat"),  # capitalised mid-sentence
        ("Because you watched Ran, you may like Kagemusha.", "Ran"),
        ('You may like "Heat" tonight.', "Heat"),  # quoted
        ("Heat. Try **Heat** tonight.", "Heat"),  # bold (the second one)
        ("heat (1995) is a thriller.", "heat"),  # its year follows, even lower case and at the start
        ("Since you liked Heat (1995), try this.", "Heat"),
        ("You enjoyed The Net, a thriller.", "The Net"),  # article + one word
        ("A film like (Heat) is rare.", "Heat"),  # an opening bracket does not start a sentence
    ],
)
def test_a_one_word_title_written_as_a_title_counts(text, title):
    assert at(text, title)


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("the heat of the summer", "heat"),  # lower case: a word
        ("Heat rises in the afternoon.", "Heat"),  # capitalised only because a sentence starts
        ("It was good. Ran home after.", "Ran"),  # after a full stop
        ("Picks:\nHeat and more", "Heat"),  # a line's start
        ("- Heat", "Heat"),  # a list entry
        ("it sold 1995 copies", "1995"),  # a bare number
        ("28 of the 187 people who watched it", "the 187"),  # a count after an article ("187 (1997)" is a film)
        ("a film to die for", "to die for"),  # several words, all ordinary: needs a capital
    ],
)
def test_a_one_word_title_written_as_a_word_does_not(text, title):
    assert not at(text, title)


def test_ordinary_words_are_no_title_by_themselves(catalog):
    ordinary = ordinary_words(catalog)
    assert {"war", "wars", "horror", "candidate", "you"} <= ordinary
    assert not at("You may like War, a drama.", "War", ordinary)  # "The War" (1058), but also a genre word
    assert at('You may like "War", a drama.', "War", ordinary)  # quoted it is a title
    assert at("You may like War (1994).", "War", ordinary)  # so with its year
    assert at("You may like Heat, a thriller.", "Heat", ordinary)
    assert at("You may like To Die For, a comedy.", "To Die For", ordinary)


def test_sentence_start():
    assert sentence_start("Heat", 0) and sentence_start("Done. Heat", 6) and sentence_start('Done. "Heat', 7)
    assert not sentence_start("try Heat", 4) and not sentence_start("try (Heat", 5)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("You liked Heat, so you may like Fargo.", {"273", "100"}),
        ("Heat rises; you may like Fargo.", {"100"}),
        ("Because you watched Ran, you may like Fargo.", {"647", "100"}),
        ("You ran home; you may like Fargo.", {"100"}),
        ("You may like **Ran** and Fargo.", {"647", "100"}),
        ("You may like The War and Fargo.", {"100"}),  # a genre word alone is no title
    ],
)
def test_chat_replies_and_explanations_read_one_word_titles_the_same(catalog, text, named):
    in_reply = {i for _, ids in mentioned_titles(text, catalog) for i in ids}
    check = TitleChecker(catalog).check(text, sorted(named | {"273", "647", "100", "1058"}))
    assert in_reply == named
    assert set(check.mentioned) == named


def test_repeats_itself():
    assert repeats_itself("I recommend Fargo because it is entertaining and entertaining.")
    assert repeats_itself("F F F F F F F F F F F F F")
    assert not repeats_itself("Fargo gets better and better, and you will watch it again and again.")
    assert not repeats_itself("Because you watched Heat, you may like Fargo, another crime film.")


def test_a_count_is_no_film_even_when_a_film_is_called_so(catalog):
    checker = TitleChecker(catalog)  # "187" (1997) is item 330
    built = "You may like Fargo (1996): 28 of the 187 people who watched Heat also watched it."
    count = checker.check(built, ["100", "273"])
    assert count.ok, count.invented  # the built fallback sentence that the rubric once called an outside film
    assert not checker.check('You may like Fargo (1996), or "187".', ["100"]).ok  # quoted it is the film
    assert not checker.check("You may like Fargo (1996), or 187 (1997).", ["100"]).ok
