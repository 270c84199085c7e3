"""Counterfactual variants for the influence term: which film is removed, which swap is neutral, and
the loss that reads them (a tiny Llama)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import tiny_llama

from recommender.data import Catalog, Interactions, Item
from recommender.data.split import EvalCase, LeaveOneOutSplit
from recommender.finetune.config import ConfigError, DataConfig, TrainSettings
from recommender.finetune.counterfactual import counterfactual, linked_position
from recommender.finetune.encoding import Encoded, batch_loss, influence_term
from recommender.finetune.examples import served_examples
from recommender.llm.evidence import CowatchEvidence
from recommender.llm.ranking_prompts import ranking_prompt
from recommender.retrieval.base import CooccurrenceRetriever, HybridRetriever, PopularityRetriever


@pytest.fixture(scope="module")
def world():
    """30 items, 12 users with 10-20 distinct items each, a pop + co-occurrence hybrid."""
    rng = np.random.default_rng(4)
    catalog = Catalog([Item(str(i), f"Film {i}", 1990 + i % 10, ("Drama",)) for i in range(30)])
    users, items = [], []
    for u in range(12):
        for item in rng.choice(30, int(rng.integers(10, 21)), replace=False):
            users.append(str(u))
            items.append(int(item))
    n = len(items)
    interactions = Interactions(np.array(users, dtype=object), np.array(items), np.arange(n, dtype=float), np.ones(n))
    split = LeaveOneOutSplit(interactions)
    components = {
        "pop": PopularityRetriever(catalog, split.item_popularity(30)),
        "cooccurrence": CooccurrenceRetriever(catalog, split.train_sequences()),
    }
    hybrid = HybridRetriever(catalog, components, {"pop": 0.3, "cooccurrence": 0.7})
    return catalog, split, hybrid, CowatchEvidence.for_retriever(hybrid, split)


def test_the_removed_film_is_the_shown_one_most_co_watched_with_the_target():
    similarity = np.zeros((6, 6))
    similarity[1, 5] = 0.9  # not shown: outside the last 3
    similarity[3, 5], similarity[4, 5] = 0.2, 0.5
    history = np.array([0, 1, 2, 3, 4])
    assert linked_position(history, 3, 5, similarity) == 4
    assert linked_position(history, 5, 5, similarity) == 1
    assert linked_position(history, 3, 0, similarity) is None  # nothing shown co-occurs with film 0


def test_variants_remove_the_linked_film_and_swap_two_films_without_changing_the_digits(world):
    catalog, split, hybrid, evidence = world
    rng = np.random.default_rng(0)
    found = 0
    for user in split.users:
        history = split.train(user)[:-1]
        target = int(split.train(user)[-1])
        candidates = np.arange(30)[~np.isin(np.arange(30), history)][:8]
        result = counterfactual(history, target, candidates, evidence, 5, rng)
        if result is None:
            continue
        found += 1
        position = linked_position(history, 5, target, evidence.similarity)
        assert result.removed_row == history[position] and list(result.removed) == list(np.delete(history, position))
        moved = np.flatnonzero(result.reordered != history)
        assert len(moved) == 2 and moved.min() >= len(history) - 5  # two shown films traded places
        assert sorted(result.reordered) == sorted(history)
        digits = evidence.recent(history, candidates)
        assert np.array_equal(evidence.recent(result.reordered, candidates), digits)
    assert found >= len(split.users) / 2


def test_served_examples_carry_variants_rendered_by_the_same_prompt(world):
    catalog, split, hybrid, evidence = world
    prompt = ranking_prompt("rank_evidence", 5)
    cases = [EvalCase(u, split.train(u)[:-1], int(split.train(u)[-1])) for u in split.users]
    plain = served_examples(catalog, cases, hybrid, evidence, prompt, 8, seed=1)
    paired = served_examples(catalog, cases, hybrid, evidence, prompt, 8, seed=1, counterfactual=1.0)
    assert [replace(e, variants=()) for e in paired] == plain  # the examples themselves are unchanged
    with_variants = [e for e in paired if e.variants]
    assert len(with_variants) >= len(paired) / 2
    for example in with_variants:
        removed, reordered = example.variants
        assert removed.choices == reordered.choices == example.choices  # same candidates, same lines
        assert removed.completion == reordered.completion == example.completion
        assert len(removed.history) == len(example.history) - 1 and sorted(reordered.history) == sorted(example.history)
        assert example.messages[-1]["content"] != removed.messages[-1]["content"]


def test_counterfactual_needs_served_examples_in_their_true_order():
    with pytest.raises(ConfigError, match="data.counterfactual"):
        DataConfig(counterfactual=1.5)
    with pytest.raises(ConfigError, match="data.counterfactual"):
        DataConfig(examples="held_out", sequential=True, counterfactual=0.5, shuffle_shown=0.5)
    with pytest.raises(ConfigError, match="influence_weight"):
        TrainSettings(influence_weight=-1.0)


def test_influence_term_is_zero_only_when_removal_costs_the_margin_and_order_costs_nothing():
    import torch

    assert float(influence_term(torch.tensor([-1.0, -1.2, -1.0]), 0.1)) == 0.0
    assert float(influence_term(torch.tensor([-1.0, -1.05, -1.0]), 0.1)) == pytest.approx(0.05)
    assert float(influence_term(torch.tensor([-1.0, -1.2, -1.3]), 0.1)) == pytest.approx(0.3)
    assert float(influence_term(torch.tensor([-1.0, -0.8, -1.0]), 0.1)) == pytest.approx(0.3)  # removal raised it
    assert float(influence_term(torch.tensor([-1.0, -1.2, -1.3]), 0.1, order_weight=0.5)) == pytest.approx(0.15)
    assert float(influence_term(torch.tensor([-1.0, -1.05, -1.3]), 0.1, order_weight=0.0)) == pytest.approx(0.05)


def test_batch_loss_adds_the_weighted_term_on_examples_with_variants_only():
    import torch

    model = tiny_llama(64)
    answers = torch.tensor([5, 6])
    rng = np.random.default_rng(2)

    def encoded(target, variants=()):
        ids = [int(x) for x in rng.integers(7, 64, 10)]
        return Encoded(ids, 0, target=target, readouts=(2, 5, 9), variants=variants)

    plain = encoded(1)
    paired = encoded(0, (encoded(0), encoded(0)))
    with torch.no_grad():
        base = float(batch_loss(model, [plain, paired], 0, answer_ids=answers))
        weighted = float(batch_loss(model, [plain, paired], 0, answer_ids=answers, influence=(2.0, 0.1, 1.0)))
        hinge_only = float(batch_loss(model, [plain, paired], 0, answer_ids=answers, influence=(2.0, 0.1, 0.0)))
        alone = float(batch_loss(model, [plain], 0, answer_ids=answers))
        alone_weighted = float(batch_loss(model, [plain], 0, answer_ids=answers, influence=(2.0, 0.1, 1.0)))
        scores = []
        for example in (paired, *paired.variants):
            logits = model(input_ids=torch.tensor([example.ids])).logits[0]
            margins = logits[list(example.readouts), 5] - logits[list(example.readouts), 6]
            scores.append(margins.log_softmax(-1)[0])
        term = float(influence_term(torch.stack(scores), 0.1))
        hinge = float(influence_term(torch.stack(scores[:2]), 0.1))
    assert alone_weighted == pytest.approx(alone, abs=1e-6)
    assert weighted == pytest.approx(base + 2.0 * term / 2, abs=1e-4)  # the mean over the two examples
    assert hinge_only == pytest.approx(base + 2.0 * hinge / 2, abs=1e-4)  # the reordered prompt left out
    assert term > 0
