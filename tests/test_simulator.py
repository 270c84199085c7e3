"""The simulated person of issue 28 (pure, milliseconds): deterministic per seed, never names the
target, never says anything false about it; one conversation through the handler the browser uses."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from test_chat_turn import FakePipeline

from recommender.data.loaders import load_dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.data.titles import fold, title_keys
from recommender.evaluation.simulator import (
    MIN_COWATCH,
    CoWatch,
    Fact,
    SimulatedPerson,
    Utterance,
    make_person,
)
from recommender.store import FeedbackStore


@pytest.fixture(scope="module")
def data():
    dataset = load_dataset("ml-100k")
    split = LeaveOneOutSplit(dataset.interactions)
    return dataset.catalog, split, CoWatch.from_split(split, len(dataset.catalog))


def people(data, n: int = 60, warm: bool = True):
    catalog, split, cowatch = data
    for user in split.eval_users[:n]:
        case = split.case(user, "test")
        history = [catalog.ids[row] for row in case.history]
        yield make_person(user, catalog.ids[case.target], history, catalog, cowatch, warm=warm)


def conversation(person, catalog, seed: int, turns: int = 6) -> list[Utterance]:
    """The person's utterances against seeded random lists without the target."""
    talk = SimulatedPerson(person, catalog, seed)
    lists = random.Random(seed)
    said = [talk.opening()]
    others = [i for i in catalog.ids if i != person.target]
    for _ in range(turns - 1):
        shown = lists.sample(others, 5) + [i for i in catalog.ids[:5] if i != person.target]  # a series now and then
        said.append(talk.react(shown))
    return said


def test_the_same_seed_says_the_same_things_and_another_seed_does_not(data):
    catalog = data[0]
    for person in people(data, 20):
        assert conversation(person, catalog, 3) == conversation(person, catalog, 3)
    differ = sum(conversation(p, catalog, 3) != conversation(p, catalog, 4) for p in people(data, 20))
    assert differ >= 15


_TRAIN: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def train_watchers(split, row: int) -> set[int]:
    """Train users who watched ``row``, counted here from the split (not through ``CoWatch``)."""
    if id(split) not in _TRAIN:
        indptr, items = split.train_csr()
        _TRAIN[id(split)] = (np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), items)
    users, items = _TRAIN[id(split)]
    return set(users[items == row].tolist())


def test_every_fact_is_true_of_the_target_and_the_title_never_said(data):
    catalog, split, _ = data
    newest = int(catalog.years.max())
    checked = 0
    for warm in (True, False):
        for person in people(data, 80, warm):
            target = catalog[person.target]
            keys = [
                k for k in title_keys(re.sub(r"\s*\(\d{4}\)$", "", target.title)) if len(k.split()) > 1 or len(k) >= 4
            ]
            for utterance in conversation(person, catalog, 0):
                assert not any(f" {key} " in f" {fold(utterance.message)} " for key in keys), utterance.message
                for fact in utterance.facts:
                    checked += 1
                    assert fact.holds(target, newest), (fact, target)
                    if fact.kind == "genre":
                        assert fact.value in target.genres
                    if fact.kind == "not_genre":
                        assert fact.value not in target.genres
                    if fact.kind == "decade":
                        assert fact.value <= target.year <= fact.value + 9
                    if fact.kind == "not_fragment":
                        assert str(fact.value) not in fold(target.title)
                    if fact.kind == "like":  # a film of the person's own history, co-watched with the target
                        assert warm and fact.value in person.history
                        both = train_watchers(split, catalog.row(fact.value)) & train_watchers(
                            split, catalog.row(target.id)
                        )
                        assert len(both) == fact.cowatched >= MIN_COWATCH
    assert checked > 500


def test_a_cold_person_names_no_film_of_a_history_and_success_ends_the_talk(data):
    catalog = data[0]
    for person in people(data, 30, warm=False):
        assert person.history == () and not any(f.kind == "like" for f in person.facts)
        talk = SimulatedPerson(person, catalog, 0)
        talk.opening()
        assert talk.react([person.target, *catalog.ids[:9]]) is None  # the target in the top 10
        assert talk.react([*catalog.ids[:10], person.target]) is not None  # 11th: not yet


def test_a_card_breaking_what_was_said_is_seen_and_corrected(data):
    catalog = data[0]
    person = next(p for p in people(data, 200) if "Horror" not in catalog[p.target].genres)
    talk = SimulatedPerson(person, catalog, 0)
    talk.firm.append(Fact("not_genre", "Horror"))
    horror = next(i.id for i in catalog.items if "Horror" in i.genres and i.id != person.target)
    assert Fact("not_genre", "Horror") in talk.broken(horror)
    said = talk.react([horror])
    assert said.kind == "correct" and said.facts == (Fact("not_genre", "Horror"),)


def test_one_simulated_conversation_runs_through_the_handler_the_browser_uses(data, tmp_path):
    from recommender.ui.app import ChatHandlers

    catalog = data[0]
    person = next(people(data, 5))
    handlers = ChatHandlers(FakePipeline(catalog), FeedbackStore(tmp_path / "f.sqlite"), llm_reply=False)
    page = handlers.restore(None)[3]
    talk = SimulatedPerson(person, catalog, 0)
    said = talk.opening()
    for _ in range(3):
        for item_id, action in said.feedback:
            page = handlers.feedback(action)(page, item_id, "new user")[0]
        *_, (chat, cards, _, page, sid, _) = handlers.respond(said.message, [], page, "new user", 10)
        assert chat[-2]["content"] and "rec-card" in cards  # the message was read and cards came back
        said = talk.react(page["shown"])
        if said is None:
            break
    assert len(handlers.store.turns(sid)) >= 1


def test_a_rejection_that_points_at_a_card_is_read_as_that_card(data):
    """A quarter of the worded rejections say where the card is ("seen the 2nd one already"): the parser,
    given the cards on screen, must reject exactly the film the person meant."""
    from recommender.chat.understanding import parse_message

    catalog = data[0]
    fields = ("exclude_items", "seen", "disliked")
    pointed = 0
    for person in people(data, 60):
        talk = SimulatedPerson(person, catalog, seed=5)
        talk.opening()
        others = [i for i in catalog.ids if i != person.target]
        for turn in range(6):
            shown = random.Random(turn).sample(others, 10)
            before = set(talk.rejected)
            said = talk.react(shown)
            if said is None or said.kind != "reject" or said.feedback:
                continue
            meant = set(talk.rejected) - before
            read = parse_message(said.message, catalog, shown=shown)
            rejected = {i for name in fields for i in getattr(read, name)}
            if re.search(r"\b(?:first|second|third|fourth|fifth|\d+th) one\b|#\d", said.message, re.I):
                pointed += 1
                assert rejected == meant, said.message
    assert pointed >= 5
