"""Influence by drop-one ablation over orders against a threshold, the title checker, generation and the
explanation gate (issues 8 and 29).

The influence tests run a TINY randomly initialised Llama with the real SmolLM2 tokenizer; the
checker, gate and fallback tests use a literal catalogue and hand-written fakes (milliseconds).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from recommender.data import Catalog, Dataset, Interactions, Item, LoadReport
from recommender.explain import (
    MIN_FLOOR,
    InfluenceTable,
    PairTest,
    TitleChecker,
    explain_item,
    measure_influence,
    measure_pair,
    split_measured,
    swap_pairs,
    swapped,
)
from recommender.explanation_evidence import GroupInfluence, because_sentence, group_influence
from recommender.explanation_generation import Decoding, _processors, generate_answers, generate_candidates
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
    """A writer that answers ``text`` whatever it is asked (the prefix included, as a model's answer is)."""
    return lambda messages, prefix: text


# ---------------------------------------------------------------- drop-one influence and its threshold (pure)


def fans(histories):
    """A candidate's score = how many of its "fans" are in the history, plus a small order effect."""
    out = []
    for h in histories:
        order = 0.002 * float(h[-1] == 7) if len(h) else 0.0  # item 7 last: a presentation effect
        out.append(np.array([float(2 in h) + 0.5 * float(5 in h) + order, float(7 in h)]))
    return out


def test_measure_influence_ablates_the_window_and_swaps_in_one_call():
    calls = []

    def score(histories):
        calls.append([h.tolist() for h in histories])
        return fans(histories)

    table = measure_influence(score, np.array([1, 2, 5, 7]), window=3, swaps=[(2, 3)])
    # 1 served + 1 swapped order, and each of the 3 shown items dropped in both orders: 8 prompts, one call
    assert table.positions.tolist() == [1, 2, 3] and len(calls) == 1 and len(calls[0]) == 8
    assert calls[0][1] == [1, 2, 7, 5] and table.pairs == ((2, 3),)  # the swap: positions 2 and 3 traded
    assert calls[0][-1] == [1, 2, 5]  # 7 dropped from the swapped order, where the swap put it
    # dropping 5 from the swapped order leaves 7 last: its order effect moves 5's effect by 0.002
    np.testing.assert_allclose(table.orders[:, :, 0], [[1.0, 0.5, 0.002], [1.0, 0.498, 0.0]])
    np.testing.assert_allclose(table.effect, [[1.0, 0.0], [0.499, 0.0], [0.001, 1.0]])  # mean over the orders
    np.testing.assert_allclose(table.swaps, [[0.002, 0.0]])
    np.testing.assert_allclose(table.floor, [0.002, MIN_FLOOR])  # never below MIN_FLOOR
    # t(1 - 0.05/3, 1 df) x the standard error over the 2 orders; a steady effect's is MIN_FLOOR
    critical = stats.t.ppf(1 - 0.05 / 3, 1) * 0.001  # both moving items: sd 0.0014 over 2 orders
    np.testing.assert_allclose(table.threshold[:, 0], [MIN_FLOOR, critical, critical])
    base = score([np.array([1, 2, 5, 7])])[0]
    again = measure_influence(score, np.array([1, 2, 5, 7]), None, (), base)
    assert again.positions.tolist() == [0, 1, 2, 3] and len(calls[-1]) == 4  # base reused
    assert np.isinf(again.threshold).all()  # one order, no spread to measure: nothing is called an influence
    assert again.influencers(0, ["a", "b", "c", "d"]) == ()
    assert table.influencers(0, ["a", "b", "c", "d"]) == (("b", 1.0), ("c", 0.499))  # "d" moves with the order
    assert table.influencers(1, ["a", "b", "c", "d"]) == (("d", 1.0),)


def test_the_threshold_passes_few_pure_noise_items_and_finds_a_steady_effect():
    rng = np.random.default_rng(0)
    users, orders, window = 2000, 5, 5
    noise = rng.normal(0.0, 0.03, size=(users, orders, window, 1))  # effects that only follow the order

    def influencers(per_order: np.ndarray) -> list[str]:
        table = InfluenceTable(np.arange(window), per_order, np.zeros((orders - 1, 1)))
        return [item for item, _ in table.influencers(0, list("abcde"))]

    assert np.mean([bool(influencers(o)) for o in noise]) < 0.07  # any of 5 items: ~5% of users (Bonferroni)
    steady = noise[:200] + np.array([0.1, 0, 0, 0, 0])[None, None, :, None]  # item a: +0.1 in every order
    assert np.mean([influencers(o)[:1] == ["a"] for o in steady]) > 0.9


def test_effects_within_the_floor_are_no_influence_and_never_ranked():
    values = np.array([np.nan, 0.2, -0.5, 0.009, 0.0, 0.05])
    raised, lowered, quiet = split_measured(values, 0.01)
    assert raised == [(1, 0.2), (5, 0.05)] and lowered == [(2, -0.5)]
    assert [p for p, _ in quiet] == [4, 3]  # most recent first, whatever their values


def test_swap_pairs_are_adjacent_first_within_the_window_and_neutral_only():
    assert swap_pairs(8, 5, lambda i, j: True) == [(6, 7), (5, 6), (4, 5), (3, 4)]
    assert swap_pairs(8, 5, lambda i, j: True, limit=6)[4:] == [(5, 7), (4, 6)]
    # rank_evidence: the co-watch digit reads the last 3 items, so only swaps inside them or outside them
    last3 = {5, 6, 7}
    assert swap_pairs(8, 5, lambda i, j: (i in last3) == (j in last3)) == [(6, 7), (5, 6), (3, 4), (5, 7)]
    assert swap_pairs(1, 5, lambda i, j: True) == []


# ---------------------------------------------------------------- influence on the served prompt, tiny Llama


@pytest.fixture(scope="module")
def tiny_scorer(tiny_llama_dir):
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    return LLMScorer(load_model(tiny_llama_dir, device="cpu"), batch_size=4)


def _pipeline(scorer, template: str, max_history: int | None = None) -> Recommender:
    events = [("u1", r, t) for t, r in enumerate([0, 6, 7, 1])] + [("u2", r, t) for t, r in enumerate([0, 3, 5, 6])]
    events += [("u3", r, t) for t, r in enumerate([6, 7, 2, 4])]
    users, rows, times = zip(*events)
    interactions = Interactions(np.array(users, dtype=object), np.array(rows), np.array(times, dtype=float))
    dataset = Dataset("toy", CATALOG, interactions, LoadReport())
    split_rows = {u: [r for uu, r, _ in events if uu == u][:-2] for u in ("u1", "u2", "u3")}
    co = CooccurrenceRetriever(CATALOG, {u: np.array(r) for u, r in split_rows.items()})
    retriever = PopularityRetriever(CATALOG, np.arange(8, 0, -1, dtype=float))
    retriever.components = {"cooccurrence": co}
    config = PipelineConfig(template=template, llm_candidates=4, max_history=max_history)
    return Recommender(dataset, retriever, scorer, config)


def _two_stage(pipeline, history_rows, candidates) -> np.ndarray:
    """[K] the two-stage score of the candidates, written out: the blend of both halves."""
    from recommender.ranking import blend

    llm = pipeline.llm_scores([history_rows], [candidates])[0]
    retrieval = np.asarray(pipeline.retriever.score_batch([history_rows]))[0, candidates]
    return blend(llm, retrieval, pipeline.config.llm_weight)


def test_the_benchs_candidate_score_shortens_the_prompt_for_a_removed_film(tiny_scorer):
    from bench.two_stage_score import TwoStageScore

    def with_settings(pipeline, **settings):
        return Recommender(pipeline.dataset, pipeline.retriever, pipeline.scorer, replace(pipeline.config, **settings))

    pipeline = with_settings(_pipeline(tiny_scorer, "rank_evidence", max_history=3), llm_weight=0.7)
    rows, candidates = pipeline._rows(["1", "7", "8", "6", "4"]), np.array([1, 2, 3, 5])
    score = TwoStageScore(pipeline, rows, candidates)
    served, without_last, swapped = score([rows, np.delete(rows, 4), rows[[0, 1, 3, 2, 4]]])
    np.testing.assert_allclose(served, _two_stage(pipeline, rows, candidates), atol=1e-6)
    shorter = with_settings(pipeline, max_history=2)  # "8" does not take the freed place
    np.testing.assert_allclose(without_last, _two_stage(shorter, np.delete(rows, 4), candidates), atol=1e-6)
    assert not np.allclose(without_last, _two_stage(pipeline, np.delete(rows, 4), candidates), atol=1e-6)
    np.testing.assert_allclose(swapped, _two_stage(pipeline, rows[[0, 1, 3, 2, 4]], candidates), atol=1e-6)
    np.testing.assert_allclose(score.from_llm(pipeline.llm_scores([rows], [candidates])[0]), served, atol=1e-6)


@pytest.mark.parametrize("template", ["rank", "rank_evidence"])
def test_served_influence_equals_a_naive_loop_and_cards_equal_explain(tiny_scorer, template):
    pipeline = _pipeline(tiny_scorer, template)
    history = ["1", "7", "8", "6"]
    cards = pipeline.recommend(history=history, k=4, influence_window=3)
    retrieved = pipeline.retriever.retrieve(history, 4).items  # the LLM's candidates, retrieval order
    history_rows = pipeline._rows(history)
    base = pipeline.llm_scores([history_rows], [retrieved])[0]
    table = pipeline.influence_table(history_rows, retrieved, 3, base)
    assert len(table.swaps) >= 1  # another order was measured

    def llm(history: np.ndarray, column: int) -> float:
        return float(pipeline.llm_scores([history], [retrieved])[0][column])

    orders = [(history_rows, None)] + [(swapped(history_rows, pair), pair) for pair in table.pairs]
    for card in cards:
        column = int(np.flatnonzero(retrieved == CATALOG.index[card.item_id])[0])
        naive = {  # each film left out of each order, wherever the swap put it, then the mean over the orders
            history[p]: np.mean([
                llm(order, column) - llm(order[order != history_rows[p]], column) for order, _ in orders
            ])
            for p in (1, 2, 3)
        }  # fmt: skip
        for item_id, value in card.influences:  # only effects above their thresholds
            p = history.index(item_id)
            assert value == pytest.approx(naive[item_id], abs=1e-5) and value > table.thresholds(column, 4)[p]
        explained = pipeline.explain(history, card.item_id, window=3, writer=saying(""))
        measured = {item_id: value for item_id, _, value in explained.influences}
        assert [i for i, _ in card.influences] == [i for i, _, v in explained.influences if v > 0][:3]
        for item_id, value in card.influences:  # the card's numbers are explain's numbers
            assert measured[item_id] == pytest.approx(value, abs=1e-6)
        assert all(abs(v) <= explained.thresholds[i] for i, _, v in explained.no_effect)
        assert all(abs(v) > explained.thresholds[i] for i, _, v in explained.influences)
    on_demand = pipeline.influences([c.item_id for c in cards], history=history, window=3)
    for card in cards:
        assert [p[0] for p in on_demand.get(card.item_id, ())] == [p[0] for p in card.influences]


def test_with_the_pair_test_explain_measures_the_pair_on_the_served_prompt(tiny_scorer):
    pipeline = _pipeline(tiny_scorer, "rank_evidence")
    pipeline = Recommender(pipeline.dataset, pipeline.retriever, pipeline.scorer,
                           replace(pipeline.config, pair_test=True))  # fmt: skip
    history = ["1", "7", "8", "6"]
    cards = {card.item_id: card for card in pipeline.recommend(history=history, k=4, influence_window=3)}
    on_demand = pipeline.influences(list(cards), history=history, window=3)
    for item, card in cards.items():
        explained = pipeline.explain(history, item, window=3, writer=saying(""))
        raised = [i for i, _, v in explained.influences if v > 0]
        test = explained.evidence["pair_test"]
        assert (test is not None) == (len(raised) >= 2)
        named = [e["id"] for e in explained.evidence["influences"]]
        if not explained.evidence["group"]:
            assert named == (raised[:2] if test is None or test["adds"] else raised[:1])
            assert [i for i, _ in card.influences] == named == [i for i, _ in on_demand.get(item, ())]


def test_an_explainer_writes_with_the_writer_it_was_built_with(tiny_scorer):
    from recommender.explain import Explainer

    pipeline = _pipeline(tiny_scorer, "rank")
    history = ["1", "7", "8", "6"]
    built = Explainer(pipeline, None).explain(history, "2", window=3)  # no writer: the built sentence
    assert built.path == "fallback" and built.reason in ("no generator given", "no measured influence")
    given = pipeline.explain(history, "2", window=3, writer=saying(""))  # the same numbers either way
    assert given.influences == built.influences and given.evidence["base_score"] == built.evidence["base_score"]
    with pytest.raises(ValueError, match="unknown item 'Nope'"):
        Explainer(pipeline, None).explain(history, "Nope")


def test_the_window_is_what_the_served_prompt_shows(tiny_scorer):
    pipeline = _pipeline(tiny_scorer, "rank_evidence", max_history=3)
    history = ["1", "7", "8", "6", "4"]
    assert pipeline.influence_window() == 3 and pipeline.influence_window(10) == 3
    explained = pipeline.explain(history, "2", window=10, writer=saying(""))
    ablated = [i for i, _, _ in explained.influences] + [i for i, _, _ in explained.no_effect]
    assert sorted(ablated) == sorted(["8", "6", "4"])  # never an item the prompt does not show
    assert explained.evidence["window"] == 3 and explained.evidence["prompt"] == pipeline.prompt.version


def test_neutral_swaps_leave_the_prompt_evidence_unchanged(tiny_scorer):
    pipeline = _pipeline(tiny_scorer, "rank_evidence", max_history=5)
    rows = pipeline._rows(["1", "7", "8", "6", "4", "3"])
    candidates = np.array([1, 4, 2, 6])
    calls = []
    original = pipeline.llm_scores

    def spy(histories, candidate_lists):
        calls.extend(h.tolist() for h in histories)
        return original(histories, candidate_lists)

    pipeline.llm_scores = spy
    table = pipeline.influence_table(rows, candidates)
    swapped = calls[1 : 1 + len(table.swaps)]  # the full history, then the swapped orders, then the drops
    reference = pipeline.ranking_requests([rows], [candidates])[0].evidence["recent"]
    for history in swapped:
        assert sorted(history) == sorted(rows.tolist()) and history != rows.tolist()
        digits = pipeline.ranking_requests([np.array(history)], [candidates])[0].evidence["recent"]
        np.testing.assert_array_equal(digits, reference)


# ---------------------------------------------------------------- generation


def test_generate_answers_continues_the_prefix_with_the_tiny_model(tiny_scorer):
    messages = [{"role": "system", "content": "Explain."}, {"role": "user", "content": "Why Fargo?"}]
    prefix = "Because you watched Seven (1995), you may like Fargo (1996)"
    answers = generate_answers(tiny_scorer, [messages, messages], [prefix, ""], Decoding(max_new_tokens=6))
    assert answers[0].startswith(prefix) and len(answers) == 2 and isinstance(answers[1], str)


def test_candidates_are_the_greedy_answer_then_sampled_ones(tiny_scorer):
    messages = [{"role": "system", "content": "Explain."}, {"role": "user", "content": "Why Fargo?"}]
    prefix = "Because you watched Seven (1995), you may like Fargo (1996)"
    decoding = Decoding(max_new_tokens=6, candidates=3)
    answers = generate_candidates(tiny_scorer, [messages, messages], [prefix, ""], decoding)
    assert [len(a) for a in answers] == [3, 3] and all(a.startswith(prefix) for a in answers[0])
    greedy = generate_answers(tiny_scorer, [messages, messages], [prefix, ""], decoding)
    assert [a[0] for a in answers] == greedy
    assert generate_candidates(tiny_scorer, [messages, messages], [prefix, ""], decoding) == answers  # seeded


def test_repetition_controls_read_the_answer_only():
    import torch

    processors = _processors(Decoding(repetition_penalty=2.0, no_repeat_ngram_size=3), starts=[3])
    ids = torch.tensor([[1, 2, 5, 1, 2, 3, 1, 2]])  # prompt "1 2 5", answer "1 2 3 1 2"
    scores = processors[0](ids, torch.ones(1, 12))
    assert scores[0, 1] == 0.5 and scores[0, 3] == 0.5 and scores[0, 5] == 1.0  # prompt-only tokens not penalised
    scores = processors[1](ids, torch.zeros(1, 12))
    assert scores[0, 3] == -float("inf")  # "1 2 3" is in the answer: no second time
    assert torch.isfinite(scores[0, [0, 1, 2, 4, 5]]).all()  # "1 2 5" is only in the prompt: allowed


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


def test_the_pair_test_removes_the_first_film_then_both_in_every_order():
    from recommender.influence import pair_histories, pair_test

    made = pair_histories(np.array([1, 2, 5, 7]), [(2, 3)], first=2, second=3)
    # without 5, then without 5 and 7: in the served order, then in the order with 5 and 7 traded
    assert [h.tolist() for h in made] == [[1, 2, 7], [1, 2, 7], [1, 2], [1, 2]]
    steady = pair_test([1.0, 1.02, 0.9, 0.5, 0.52, 0.41])  # the second film lowers the score by ~0.5 in each order
    assert steady.adds and steady.orders == 3 and steady.effect == pytest.approx(0.4967, abs=1e-4)
    noisy = pair_test([1.0, 1.0, 1.0, 0.9, 1.1, 1.02])  # within the spread of the orders
    assert not noisy.adds and noisy.to_dict()["adds"] is False


def test_cards_list_the_second_influence_only_where_it_adds():
    from recommender.influence import listed_influencers

    def together(histories):  # film 5 raises candidate 0 only beside film 2; candidate 1 adds them up
        return [np.array([float(2 in h) + 0.5 * float(5 in h and 2 in h), float(2 in h) + 0.5 * float(5 in h)])
                + 0.001 * float(h[-1] == 7) for h in histories]  # fmt: skip

    history, calls = np.array([1, 2, 5, 7]), []
    table = measure_influence(together, history, window=3, swaps=[(2, 3), (1, 2)])
    ids = ["a", "b", "c", "d"]
    assert [i for i, _ in table.influencers(0, ids)] == ["b", "c"] == [i for i, _ in table.influencers(1, ids)]
    listed = listed_influencers(lambda hs: calls.append(len(hs)) or together(hs), history, table, ids)
    assert [i for i, _ in listed[0]] == ["b"] and [i for i, _ in listed[1]] == ["b", "c"]
    assert calls == [12]  # both columns' pair histories (2 x 3 orders each) in one call


def test_the_second_film_is_named_only_when_it_adds_to_the_first():
    table = InfluenceTable(np.arange(1, 4), np.zeros((3, 3, 1)), np.zeros((2, 1)), ((2, 3), (1, 2)))
    pair = measure_pair(
        lambda hs: [float(2 in h) + 0.5 * float(5 in h) for h in hs], np.array([1, 2, 5, 7]), table, 1, 2
    )
    assert pair.adds and pair.effect == pytest.approx(0.5) and pair.orders == 3
    both = _explain(None, values=(0.5, 0.0, 0.3), threshold=0.05, pair=pair)
    alone = _explain(None, values=(0.5, 0.0, 0.3), threshold=0.05, pair=PairTest(0.0, 0.01, 3))
    assert [e["id"] for e in both.evidence["influences"]] == ["1", "8"] and "Twelve Monkeys" in both.text
    assert [e["id"] for e in alone.evidence["influences"]] == ["1"] and "Twelve Monkeys" not in alone.text
    assert alone.evidence["pair_test"] == {"effect": 0.0, "threshold": 0.01, "orders": 3, "adds": False}
    assert [i for i, _, _ in alone.influences] == ["1", "8"]  # both stay measured rows of the table
    assert alone.rubric["passes"]


# ---------------------------------------------------------------- explanations, the gate and the fallback

GOOD = (
    "Because you watched The Usual Suspects (1995) and Twelve Monkeys (1995), you may like Fargo (1996): "
    "all three are films from the 1990s."
)


def _explain(generator, values=(0.3, -0.1, 0.2), threshold=0.05, **options):
    return explain_item(generator, CATALOG, HISTORY, ITEM, np.array(values), threshold=threshold, **options)


def test_fallback_when_generation_raises():
    explanation = _explain(Raising())
    assert explanation.path == "fallback" and "RuntimeError" in explanation.reason
    assert explanation.raw_generation is None and explanation.text == because_sentence(explanation.evidence)
    assert TitleChecker(CATALOG).check(explanation.text, ALLOWED).ok and explanation.rubric["passes"]


def test_fallback_when_generation_invents_a_title():
    explanation = _explain(saying("Because you watched Twelve Monkeys, you may like Fargo, just like Star Wars."))
    assert explanation.path == "fallback" and "Star Wars" in explanation.reason
    assert ("Star Wars", "catalogue") in explanation.invented
    assert "Star Wars" not in explanation.text and TitleChecker(CATALOG).check(explanation.text, ALLOWED).ok


def test_a_built_sentence_the_rubric_refuses_is_never_shown():
    # Explaining a film the history holds (the API allows it): "Because you watched Fargo, you may like Fargo"
    # would say the person watched the recommended film; the item's own facts are shown instead.
    explanation = explain_item(None, CATALOG, [*HISTORY, ITEM], ITEM, np.array([0.3, -0.1, 0.2, 0.6]), threshold=0.05)
    assert explanation.path == "fallback" and not explanation.rubric["false_claims"]
    assert explanation.text.startswith("You may like Fargo (1996), a crime, drama and thriller film")
    assert "watched_target" in {kind for kind, _ in _built_claims(explanation)}  # what the guard kept out


def _built_claims(explanation):
    from recommender.explanation_rubric import RubricContext, score_explanation

    text = because_sentence(explanation.evidence)
    context = RubricContext.from_evidence(explanation.evidence, [*HISTORY, ITEM])
    return score_explanation(text, context, TitleChecker(CATALOG).check(text, context.allowed_ids)).false_claims


@pytest.mark.parametrize("generator", [saying(""), saying("   "), saying(None), None])
def test_fallback_when_generation_returns_nothing(generator):
    explanation = _explain(generator)
    assert explanation.path == "fallback" and explanation.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # bench/explain.py with the 12-layer ranking adapter merged: its free text degenerates
        ("f\n\nf\n\nf\n\n\nf.", "generation was empty or too short"),
        ("The 1995, 1995\n\nThe 1995, 1995\n\nThe 19", "generation stopped before its sentence ended"),
        (
            "Because you watched Twelve Monkeys, Fargo is a classic crime drama and a classic crime drama and a "
            "classic crime drama.",
            "generation repeats itself",
        ),
    ],
)
def test_fallback_when_generation_degenerates(raw, reason):
    explanation = _explain(saying(raw))
    assert explanation.path == "fallback" and explanation.reason == reason
    assert explanation.raw_generation == raw and TitleChecker(CATALOG).check(explanation.text, ALLOWED).ok


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # issue 29: third person, no link, and it reads as if the person saw the recommended film
        ("The user enjoyed the movie Fargo.", "watched_target"),
        ("Because you watched Seven, you may like Fargo: both are crime films.", "unmeasured_influence"),
        ("Because you watched Twelve Monkeys (1995), you may like Fargo (1996), a sci-fi film.", "wrong_genre"),
        ("Because you watched Twelve Monkeys (1995), you may like Fargo (1996) tonight.", "no link"),
    ],
)
def test_the_rubric_gate_refuses_what_breaks_the_rules(raw, reason):
    explanation = _explain(saying(raw))
    assert explanation.path == "fallback" and reason in explanation.reason, explanation.reason
    assert explanation.rubric["passes"] and not explanation.rubric["false_claims"]


def test_generated_path_keeps_the_first_sentence_when_it_passes_the_rubric():
    explanation = _explain(saying(GOOD + " It is a great film. And more"))
    assert explanation.path == "generated" and explanation.text == GOOD and explanation.reason == ""
    assert explanation.rubric["passes"] and explanation.rubric["names_influence"]


def test_the_first_candidate_the_gate_accepts_is_shown_else_the_greedy_refusal_is_reported():
    bad = "Because you watched Twelve Monkeys, you may like Fargo, just like Star Wars."
    explanation = _explain(lambda messages, prefix: [bad, "Because you watched Seven.", GOOD, GOOD + " More."])
    assert explanation.path == "generated" and explanation.text == GOOD and explanation.raw_generation == GOOD
    refused = _explain(lambda messages, prefix: [bad, "Because you watched Seven."])
    assert refused.path == "fallback" and refused.raw_generation == bad and "Star Wars" in refused.reason


def test_the_model_writes_after_the_prefix_built_from_the_influences():
    asked = {}

    def writer(messages, prefix):
        asked.update(messages=messages, prefix=prefix)
        return prefix + ": all three are films from the 1990s."

    explanation = _explain(writer)
    prefix = "Because you watched The Usual Suspects (1995) and Twelve Monkeys (1995), you may like Fargo (1996)"
    assert asked["prefix"] == prefix
    prompt = asked["messages"][-1]["content"]
    assert "Twelve Monkeys (1995)" in prompt and "Seven" not in prompt  # only measured influences are shown
    assert explanation.path == "generated" and explanation.text == GOOD


def test_only_effects_above_their_threshold_are_influences_and_zeros_are_never_named():
    explanation = _explain(None, values=(0.5, 0.0, 0.03), threshold=0.05)
    assert [i for i, _, _ in explanation.influences] == ["1"]
    assert [i for i, _, _ in explanation.no_effect] == ["8", "7"]  # most recent first, unranked
    assert [e["id"] for e in explanation.evidence["influences"]] == ["1"]
    assert "Twelve Monkeys" not in explanation.text and "Seven" not in explanation.text
    assert explanation.text.startswith("Because you watched The Usual Suspects (1995), you may like Fargo (1996)")
    assert "crime and thriller films from the 1990s" in explanation.text and explanation.rubric["passes"]
    own = _explain(None, values=(0.5, 0.0, 0.03), threshold=np.array([0.6, 0.01, np.nan]))  # each film its own bar
    assert own.influences == [] and [i for i, _, _ in own.no_effect] == ["8", "7", "1"]  # NaN: not measurable
    assert own.thresholds == {"1": 0.6, "7": 0.01}


def test_without_a_measured_influence_the_sentence_says_so():
    explanation = _explain(saying(GOOD), values=(0.01, -0.02, 0.0), threshold=0.05)
    assert explanation.path == "fallback" and explanation.reason == "no measured influence"
    assert explanation.influences == [] and len(explanation.no_effect) == 3
    assert "none of your recent films moved its score measurably" in explanation.text
    assert not explanation.rubric["false_claims"] and not explanation.rubric["names_influence"]


# ---------------------------------------------------------------- group influence


def group_scores(effect):
    """The item's score: 1 minus ``effect`` when films 10 and 11 are both gone, minus 0.01 per other film gone."""
    full = {10, 11, 12, 13, 14}
    return lambda histories: [1.0 - (effect if not {10, 11} & set(h.tolist()) else 0.0)
                              - 0.01 * len(full - set(h.tolist()) - {10, 11}) for h in histories]  # fmt: skip


GROUP = [{"positions": [1, 2], "link": {"kind": "genre", "genres": ["Crime"]}}]


def test_a_group_is_an_influence_when_its_drop_beats_every_other_set_of_its_size_and_the_floor():
    history = np.array([9, 10, 11, 12, 13, 14])  # positions 1..5 shown
    found = group_influence(group_scores(0.2), history, [1, 2, 3, 4, 5], GROUP, base=1.0, floor=0.05)
    assert found.measured and found.positions == (1, 2) and found.effect == pytest.approx(0.2)
    assert len(found.null) == 9 and found.threshold == pytest.approx(0.05)  # null drops <= 0.02
    weak = group_influence(group_scores(0.04), history, [1, 2, 3, 4, 5], GROUP, base=1.0, floor=0.05)
    assert not weak.measured  # above every null set, but within the swap floor
    loud = group_influence(group_scores(0.2), history, [1, 2, 3, 4, 5], GROUP, base=1.0, floor=0.05, null_sets=3)
    assert not loud.measured  # too few null sets to call it anything


def test_a_null_set_that_lowers_the_score_as_much_keeps_the_group_unmeasured():
    def score(sign):  # removing 13 and 14 changes the score by 0.3: lowers it (sign 1) or raises it (-1)
        return lambda histories: [1.0 - 0.1 * (not {10, 11} & set(h.tolist()))
                                  - sign * 0.3 * (not {13, 14} & set(h.tolist())) for h in histories]  # fmt: skip

    history, shown = np.array([9, 10, 11, 12, 13, 14]), [1, 2, 3, 4, 5]
    found = group_influence(score(1), history, shown, GROUP, base=1.0, floor=0.05)
    assert not found.measured and found.threshold == pytest.approx(0.3)
    # One-sided: a set whose removal RAISES the score is no rival to one that lowers it.
    found = group_influence(score(-1), history, shown, GROUP, base=1.0, floor=0.05)
    assert found.measured and found.threshold == pytest.approx(0.05)


def test_explain_item_names_a_measured_group_whole_and_lists_it_as_one_row():
    group = GroupInfluence((0, 1), {"kind": "genre", "genres": ["Crime"]}, 0.09, (0.01,) * 9, 0.05)
    explanation = _explain(saying("Because you watched Seven, you may like Fargo."), values=(0.01, 0.02, 0.0),
                           group=group)  # fmt: skip
    assert explanation.path == "fallback" and explanation.rubric["passes"] and explanation.rubric["names_influence"]
    assert explanation.text.startswith("Because you watched The Usual Suspects (1995) and Seven (Se7en) (1995)")
    assert [row[0] for row in explanation.influences] == ["1+7"] and explanation.influences[0][2] == 0.09
    assert "group threshold 0.0500" in explanation.influences[0][1] and explanation.group["ids"] == ["1", "7"]
    assert [i for i, _, _ in explanation.no_effect] == ["8", "7", "1"]  # none alone: no zero is ranked
    unmeasured = GroupInfluence((0, 1), {"kind": "genre", "genres": ["Crime"]}, 0.03, (0.01,) * 9, 0.05)
    plain = _explain(None, values=(0.01, 0.02, 0.0), group=unmeasured)
    assert plain.group is None and plain.influences == [] and plain.reason == "no measured influence"


def test_a_single_influence_wins_over_a_group():
    group = GroupInfluence((0, 1), {"kind": "genre", "genres": ["Crime"]}, 0.09, (0.01,) * 9, 0.05)
    explanation = _explain(None, group=group)
    assert explanation.group is None and [i for i, _, _ in explanation.influences] == ["1", "8", "7"]


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_explain_user_1_with_the_served_model_lists_no_zero_and_passes_the_rubric():
    from recommender.commands.explain import history_before

    pipeline = Recommender.from_pretrained()
    history = history_before(pipeline, "1", "50")
    explanation = pipeline.explain(history, "50")
    assert explanation.text and TitleChecker(pipeline.catalog).check(explanation.text, history + ["50"]).ok
    assert len(explanation.influences) + len(explanation.no_effect) == pipeline.influence_window()
    assert all(abs(value) > explanation.thresholds[i] for i, _, value in explanation.influences)
    assert not explanation.rubric["false_claims"]
    if explanation.influences and explanation.influences[0][2] > 0:
        assert explanation.rubric["passes"]
    assert explanation.evidence["prompt"] == pipeline.prompt.version


def test_every_ml100k_title_in_a_built_sentence_passes_the_checker_and_the_rubric():
    from recommender.assets import find_ml100k
    from recommender.data.loaders import load_dataset
    from recommender.explanation_evidence import EvidenceSources, build_evidence
    from recommender.explanation_rubric import RubricContext, score_explanation

    if find_ml100k() is None:
        pytest.skip("ml-100k not installed (pip install --no-deps recbole==1.2.1)")
    catalog = load_dataset("ml-100k").catalog
    checker = TitleChecker(catalog)
    refused = []
    items = catalog.items
    for past, item in zip(items, items[1:]):
        if past.title == item.title or "unk" in past.title.lower():
            continue  # ml-100k lists a few films twice, and one item is titled "unknown"
        evidence = build_evidence(EvidenceSources(catalog), [past], item, [(0, 0.1)])
        text = because_sentence(evidence)
        context = RubricContext.from_evidence(evidence, [past])
        result = score_explanation(text, context, checker.check(text, context.allowed_ids))
        if result.false_claims or not result.names_influence:
            refused.append((text, result.false_claims))
    assert refused == []
