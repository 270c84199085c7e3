"""The explanation rubric (issue 29): each rule with a sentence that passes and one that fails, the
sentence builder against the rubric, and the evidence it reads. Pure: a literal catalogue, milliseconds."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.data import Catalog, Item
from recommender.explanation_evidence import (
    CowatchCounts,
    EvidenceSources,
    because_prefix,
    because_sentence,
    build_evidence,
    link_groups,
    readable_title,
)
from recommender.explanation_rubric import RubricContext, score_explanation
from recommender.explanation_titles import TitleChecker

CATALOG = Catalog(
    [
        Item("1", "Usual Suspects, The", 1995, ("Crime", "Thriller")),
        Item("2", "Fargo", 1996, ("Crime", "Drama", "Thriller")),
        Item("3", "Star Wars", 1977, ("Action", "Sci-Fi")),
        Item("4", "Heat", 1995, ("Action", "Crime")),
        Item("5", "Babe", 1995, ("Children's", "Comedy")),
        Item("6", "Return of the Jedi", 1983, ("Action", "Sci-Fi")),
        Item("7", "Seven (Se7en)", 1995, ("Crime", "Thriller")),
        Item("8", "Twelve Monkeys", 1995, ("Drama", "Sci-Fi")),
        Item("9", "Pulp Fiction", 1994, ("Crime", "Drama")),
    ]
)
# Users' train events (catalogue rows): 4 users watched Seven (row 6), 3 of them Fargo (row 1) too.
LOGS = CowatchCounts(np.array([0, 3, 6, 9, 11]), np.array([0, 1, 6, 0, 1, 6, 2, 7, 6, 6, 1]), len(CATALOG), "toy logs")
HISTORY = [CATALOG["1"], CATALOG["7"], CATALOG["8"], CATALOG["4"]]  # Usual Suspects, Seven, Twelve Monkeys, Heat
ITEM = CATALOG["2"]  # Fargo


class Relations:
    """A knowledge graph stand-in: Seven and Fargo share two cast members."""

    def relations_between(self, row_a: int, row_b: int) -> list[tuple[str, int]]:
        return [("cast", 2), ("language", 1)] if {row_a, row_b} == {6, 1} else []


def evidence(influences=((1, 0.4), (0, 0.2)), knowledge=None) -> dict:
    """Seven and The Usual Suspects measured as influences; Twelve Monkeys and Heat within their threshold."""
    sources = EvidenceSources(CATALOG, LOGS, knowledge)
    return build_evidence(sources, HISTORY, ITEM, list(influences), [(3, 0.001), (2, -0.002)], 0.01)


def score(text: str, facts: dict | None = None):
    context = RubricContext.from_evidence(facts or evidence(), HISTORY)
    return score_explanation(text, context, TitleChecker(CATALOG).check(text, context.allowed_ids))


def kinds(text: str, facts: dict | None = None) -> set[str]:
    return {kind for kind, _ in score(text, facts).false_claims}


GOOD = "Because you watched Seven (1995), you may like Fargo (1996): both are crime thrillers from the 1990s."


def test_a_good_sentence_passes_every_rule():
    result = score(GOOD)
    assert result.passes and result.names_influence and result.supported_link and not result.false_claims
    assert set(result.links) == {"genre", "era"} and result.content_words >= 5


# ---------------------------------------------------------------- names a measured influence


def test_names_influence_passes_with_a_measured_influence_and_fails_without():
    assert score(GOOD).names_influence
    assert not score("You may like Fargo (1996), a crime film from the 1990s.").names_influence


def group_evidence() -> dict:
    """No single film measured; The Usual Suspects and Seven (both crime thrillers) measured together."""
    group = {"positions": [0, 1], "link": {"kind": "genre", "genres": ["Crime"]}, "effect": 0.09, "threshold": 0.05}
    sources = EvidenceSources(CATALOG, LOGS)
    return build_evidence(sources, HISTORY, ITEM, [(0, 0.01), (1, 0.02)], [(3, 0.0), (2, 0.0)], 0.03, (), group)


def test_a_group_influence_counts_when_every_member_is_named():
    facts = group_evidence()
    result = score(
        "Because you watched The Usual Suspects and Seven, you may like Fargo: all three are crime films.", facts
    )
    assert result.names_influence and result.passes and result.links == ("genre",)


def test_a_group_member_named_alone_is_no_measured_influence():
    result = score("Because you watched Seven, you may like Fargo: both are crime films.", group_evidence())
    assert not result.names_influence and not result.passes
    assert ("unmeasured_influence", "Seven (Se7en) (1995) without the rest of its group") in result.false_claims


def test_the_built_sentence_names_the_whole_group_and_passes():
    facts = group_evidence()
    text = because_sentence(facts)
    assert text.startswith("Because you watched The Usual Suspects (1995) and Seven (Se7en) (1995), you may like")
    assert score(text, facts).passes and facts["group"]["ids"] == ["1", "7"]
    assert facts["lines"][0].startswith("Together, The Usual Suspects (1995) and Seven (Se7en) (1995) raised")


def test_link_groups_follow_the_item_genres_then_its_decade_and_never_take_every_shown_film():
    sources = EvidenceSources(CATALOG)
    groups = link_groups(sources, HISTORY, [0, 1, 2, 3], ITEM)  # Fargo: Crime, Drama, Thriller; 1990s
    # Crime: Suspects, Seven, Heat; Drama: Twelve Monkeys alone (no group); Thriller: Suspects, Seven;
    # the 1990s: all four, so the three most recent.
    assert [(g["positions"], g["link"]["kind"]) for g in groups] == [([0, 1, 3], "genre"), ([0, 1], "genre"),
                                                                     ([1, 2, 3], "era")]  # fmt: skip
    assert groups == link_groups(sources, HISTORY, [0, 1, 2, 3], ITEM)  # a fixed order, no effect read
    assert link_groups(sources, HISTORY[:2], [0, 1], ITEM) == []  # the group would be every shown film


def test_the_most_cowatched_pair_comes_first_and_its_sentence_gives_every_count():
    # Fargo's co-watching: 2 of the 2 viewers of The Usual Suspects, 3 of the 4 of Seven, none of the others.
    groups = link_groups(EvidenceSources(CATALOG, LOGS), HISTORY, [0, 1, 2, 3], ITEM)
    assert groups[0] == {"positions": [0, 1], "link": {"kind": "cowatch", "source": "toy logs"}}
    assert [g["positions"] for g in groups[1:]] == [[0, 1, 3], [1, 2, 3]]  # Thriller's [0, 1] is listed once
    group = {**groups[0], "effect": 0.09, "threshold": 0.05}
    facts = build_evidence(EvidenceSources(CATALOG, LOGS), HISTORY, ITEM, [(0, 0.01), (1, 0.02)], (), 0.03, (), group)
    text = because_sentence(facts)
    assert "2 of the 2 people who watched The Usual Suspects (1995)" in text and "3 of the 4 people" in text
    assert score(text, facts).passes and "cowatch" in score(text, facts).links
    assert not link_groups(EvidenceSources(CATALOG, LOGS), HISTORY, [2, 3], ITEM)  # neither was co-watched with it


# ---------------------------------------------------------------- supported link


@pytest.mark.parametrize(
    "text, link",
    [
        ("Because you watched Seven, you may like Fargo: both are crime films.", "genre"),
        ("Because you watched Seven, you may like Fargo: both are from the 90s.", "era"),
        ("Because you watched Seven, you may like Fargo: 3 of the 4 people who watched Seven also watched it.",
         "cowatch"),
    ],
)  # fmt: skip
def test_supported_link_found(text, link):
    result = score(text)
    assert link in result.links and result.passes, result


def test_no_supported_link_when_nothing_links_them():
    result = score("Because you watched Seven (1995), you may like Fargo (1996), a fine choice for tonight.")
    assert not result.supported_link and not result.passes and not result.false_claims


def test_a_graph_relation_is_a_link_only_when_the_graph_has_it():
    facts = evidence(knowledge=Relations())
    text = "Because you watched Seven (1995), you may like Fargo (1996): it shares 2 cast members with Seven (1995)."
    assert "relation" in score(text, facts).links and score(text, facts).passes
    assert "unsupported_relation" in kinds(text)  # the same sentence without the graph
    wrong = "Because you watched Seven (1995), you may like Fargo (1996): it has the same director as Seven (1995)."
    assert "unsupported_relation" in kinds(wrong, facts)
    assert "unsupported_relation" in kinds(text.replace("2 cast", "5 cast"), facts)


# ---------------------------------------------------------------- false claims


@pytest.mark.parametrize(
    "text",
    [
        "The user enjoyed the movie Fargo.",
        "Because you watched Seven and Fargo, you will like more crime films.",
        "Since you already loved Fargo (1996), here it is with Seven.",
        "As a fan of Fargo, you may like it again after Seven.",
        "Because you watched Seven, you will enjoy Fargo again.",
    ],
)
def test_watched_target_fails(text):
    assert "watched_target" in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "Because you watched Seven, you may like Fargo, since Seven has a dark crime story.",
        "Since you liked Seven, Fargo is a crime film you may enjoy.",
        "Because you watched Seven, you may like Fargo: 3 of the 4 people who watched Seven also watched it.",
    ],
)
def test_watched_target_passes(text):
    assert "watched_target" not in kinds(text)


def test_wrong_genre():
    assert "wrong_genre" in kinds("Because you watched Seven, you may like Fargo, a sci-fi film.")
    assert "wrong_genre" in kinds("Because you watched Seven and The Usual Suspects, both dramas, try Fargo.")
    assert "wrong_genre" not in kinds("Because you watched Seven, you may like Fargo, a drama.")
    assert "wrong_genre" not in kinds("Because you watched Seven, both crime thrillers, you may like Fargo.")


@pytest.mark.parametrize(
    "text, false",
    [
        ("Because you watched Seven, you may like Fargo because of the drama themes in those films.", True),
        ("Because you watched Seven, you may like Fargo because of the thriller themes in these two films.", False),
        ("Because you watched Seven, you may like Fargo because of its drama themes.", False),
    ],
)  # fmt: skip
def test_a_plural_reference_after_a_genre_makes_it_a_claim_about_every_film_before(text, false):
    assert ("wrong_genre" in kinds(text)) is false


def test_a_list_of_genres_before_film_like_is_about_that_film():
    # The built sentence "it is a children's, fantasy and sci-fi film like Jumanji (1995)" was read as a claim
    # about the film named before it (a fresh test sample's false alarm).
    opening = (
        "Because you watched Seven (Se7en) (1995), you may like Fargo (1996): it is a drama film like Twelve Monkeys, "
    )
    assert "wrong_genre" not in kinds(opening + "it is a crime and thriller film like Seven (Se7en) (1995).")
    assert "wrong_genre" not in kinds(opening + "it is a crime, thriller film like Seven (Se7en) (1995).")
    assert "wrong_genre" in kinds(
        opening + "it is a crime and drama film like Seven (Se7en) (1995)."
    )  # Seven: no drama


def test_wrong_year():
    assert "wrong_year" in kinds("Because you watched Seven (1994), you may like Fargo (1996).")
    assert "wrong_year" in kinds("Because you watched Seven, you may like Fargo, a film from the 1980s.")
    assert "wrong_year" in kinds("Because you watched Seven, you may like Fargo, released in 1997.")
    assert "wrong_year" not in kinds("Because you watched Seven (1995), you may like Fargo, released in 1996.")
    assert "wrong_year" not in kinds("Because you watched Seven, you may like Fargo: both are from the nineties.")


def test_outside_film():
    assert "outside_film" in kinds("Because you watched Seven, you may like Fargo, which is like Star Wars.")
    assert "outside_film" in kinds('Because you watched Seven, you may like Fargo, a cousin of "The Dark Road".')
    assert "outside_film" not in kinds(GOOD)


def test_unmeasured_influence():
    # Heat was ablated but its effect is within its threshold: it must not be called a reason.
    assert "unmeasured_influence" in kinds("Because you watched Heat (1995), you may like Fargo, a crime film.")
    assert "unmeasured_influence" not in kinds(GOOD)


def test_wrong_count():
    opening = "Because you watched Seven, you may like Fargo: "
    assert "wrong_count" in kinds(opening + "9 of the 10 people who watched Seven did.")
    assert "wrong_count" not in kinds(opening + "3 of the 4 people who watched Seven also watched it.")
    text = "Because you watched The Usual Suspects, you may like Fargo: people who watched Twelve Monkeys liked it."
    assert "wrong_count" in kinds(text, evidence(influences=((0, 0.3), (2, 0.2))))  # never watched together


@pytest.mark.parametrize(
    "tail, false",
    [
        ("because of the film's 20-year history.", "unsupported_number"),  # a bench generation the gate showed
        ("90% of viewers who watched Seven liked it.", "unsupported_number"),
        ("rated 4.5 stars by people like you.", "unsupported_number"),
        ("both are crime films among the 5 films you watched.", "unsupported_number"),  # 2 films named
        ("it is a 19th-century crime film.", "wrong_year"),
        ("it is a 20th-century crime film like Seven.", None),
        ("3 of the 4 people who watched Seven also watched it, like the 2 films say.", None),
        ("it is a crime film released in 1996.", None),
    ],
)  # fmt: skip
def test_a_number_must_be_one_the_evidence_checks(tail, false):
    found = kinds("Because you watched Seven (Se7en) (1995), you may like Fargo (1996): " + tail)
    assert (false in found) if false else not ({"unsupported_number", "wrong_year"} & found), found


def test_names_item():
    assert score(GOOD).names_item
    result = score("Because you watched Seven (1995), which is a crime thriller from the 1990s.")
    assert not result.names_item and not result.passes


def test_second_person():
    assert score(GOOD).second_person
    assert not score("Seven (1995) and Fargo (1996) are both crime thrillers from the 1990s.").second_person
    assert not score("The user watched Seven, so you may like Fargo: both are crime films.").second_person


def test_content_words_count_what_the_sentence_says():
    assert score(GOOD).content_words > score("Because you watched Seven, you may like Fargo.").content_words


# ---------------------------------------------------------------- evidence and the sentence builder


def test_evidence_links_are_checkable_against_the_catalogue_and_the_logs():
    facts = evidence(knowledge=Relations())
    assert [e["id"] for e in facts["influences"]] == ["7", "1"]
    assert [e["id"] for e in facts["no_effect"]] == ["4", "8"]
    assert {e["threshold"] for e in facts["influences"] + facts["no_effect"]} == {0.01}  # what each was compared with
    seven = facts["influences"][0]
    by_kind = {link["kind"]: link for link in seven["links"]}
    assert by_kind["genre"]["genres"] == ["Crime", "Thriller"]  # Fargo's genres that Seven has too
    assert by_kind["era"]["decade"] == "1990s"
    assert (by_kind["cowatch"]["both"], by_kind["cowatch"]["watched"]) == (3, 4)
    assert LOGS.both(6, 1) == 3 and LOGS.watched(6) == 4  # the logs say so
    assert by_kind["relation"] == {"kind": "relation", "relation": "cast", "count": 2, "source": "knowledge graph"}
    assert all("language" not in str(link) for link in seven["links"])  # a shared language says little


@pytest.mark.parametrize(
    "influences",
    [((1, 0.4),), ((1, 0.4), (0, 0.2)), ((2, 0.3),), ((2, 0.3), (3, 0.1)), ((3, 0.5),)],
)
def test_because_sentence_passes_the_rubric_whenever_the_evidence_has_a_link(influences):
    facts = evidence(influences=influences, knowledge=Relations())
    text = because_sentence(facts)
    assert text.startswith(because_prefix(facts)) and text.startswith("Because you watched")
    result = score(text, facts)
    assert not result.false_claims and result.names_influence and result.second_person, (text, result)
    assert result.supported_link == any(entry["links"] for entry in facts["influences"][:2]), text


def test_because_sentence_without_a_measured_influence_says_so_and_names_no_history_film():
    facts = evidence(influences=())
    text = because_sentence(facts)
    assert text.startswith("You may like Fargo (1996), a crime, drama and thriller film from the 1990s")
    result = score(text, facts)
    assert not result.false_claims and not result.names_influence and "measurably" in text


def test_readable_titles_move_the_article_back():
    assert readable_title(CATALOG["1"]) == "The Usual Suspects (1995)"
    assert readable_title(Item("x", "Postino, Il", 1994)) == "Il Postino (1994)"
    assert readable_title(Item("y", "Heat")) == "Heat"


def test_a_genre_compared_with_a_film_is_checked_on_that_film_and_on_it():
    """The built fallback's form: "it is a <genre> film like <influence>", one clause per influence
    (a run on 200 test users flagged a true one against the film named in the previous clause)."""
    facts = evidence(influences=((1, 0.4), (2, 0.3)))  # Seven and Twelve Monkeys measured
    true = (
        "Because you watched Seven (1995) and Twelve Monkeys (1995), you may like Fargo (1996): it is a crime "
        "film like Seven (1995), it is a drama film like Twelve Monkeys (1995), and 3 of the 4 people who "
        "watched Seven (1995) also watched it."
    )
    assert not score(true, facts).false_claims
    wrong_film = true.replace("a drama film like Twelve Monkeys", "a thriller like Twelve Monkeys")
    assert "wrong_genre" in kinds(wrong_film, facts)  # Twelve Monkeys is no thriller
    wrong_item = true.replace("a drama film like Twelve Monkeys", "a sci-fi film like Twelve Monkeys")
    assert "wrong_genre" in kinds(wrong_item, facts)  # Fargo ("it") is no sci-fi film
