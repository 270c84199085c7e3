"""Rating prediction: the rating prompt (render + read), its train-split evidence, the baselines
and paired intervals, ``Recommender.predict_rating`` / ``rating_influences`` with a fake scorer,
bad input, fine-tuning examples from the same prompt object, and one pass of a tiny Llama."""

import re

import numpy as np
import pytest

from recommender.data import Catalog, Dataset, Interactions, Item, LoadReport
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.rating import (
    RatedEvents,
    fit_events,
    mean_predictions,
    paired_rmse_difference,
    rating_table,
    tune_blend,
)
from recommender.llm.rating_prompt import RatingEvidence, RatingPrompt, RatingRequest, RatingStatistics
from recommender.pipeline import Recommender

ITEMS = [
    Item("1", "Toy Story", 1995, ("Animation", "Comedy")),
    Item("2", "Fargo", 1996, ("Crime", "Drama")),
    Item("3", "Alien", 1979, ("Horror", "Sci-Fi")),
    Item("4", "Heat", 1995, ("Crime", "Thriller")),
    Item("5", "Babe", 1995, ("Comedy",)),
    Item("6", "Usual Suspects, The", 1995, ("Crime", "Thriller")),
]
# (user, item row, time, rating). Every user has 4 events: 2 train, 1 validation, 1 test.
EVENTS = [
    ("u1", 0, 1, 5), ("u1", 1, 2, 4), ("u1", 2, 3, 2), ("u1", 3, 4, 1),
    ("u2", 0, 1, 3), ("u2", 3, 2, 1), ("u2", 1, 3, 5), ("u2", 4, 4, 4),
    ("u3", 1, 1, 2), ("u3", 3, 2, 4), ("u3", 5, 3, 3), ("u3", 0, 4, 5),
]  # fmt: skip


@pytest.fixture
def dataset():
    users, rows, times, ratings = zip(*EVENTS)
    interactions = Interactions(
        np.array(users, dtype=object), np.array(rows), np.array(times, dtype=float), np.array(ratings, dtype=float)
    )
    return Dataset("toy", Catalog(ITEMS), interactions, LoadReport())


class MeanScorer:
    """Fake scorer: digit logits peaked at the user's average rating shown in the prompt (3 when none)."""

    def __init__(self):
        self.calls = 0

    def rating_logits(self, conversations):
        self.calls += 1
        out = []
        for messages in conversations:
            found = re.search(r"User's average rating: ([\d.]+)", messages[-1]["content"])
            mean = float(found.group(1)) if found else 3.0
            out.append(-10.0 * np.abs(np.arange(1, 6) - mean))
        return out


def make(dataset, scorer=None):
    return Recommender(dataset, None, scorer or MeanScorer())


# ---------------------------------------------------------------- prompt


def test_prompt_shows_the_evidence_similar_first_then_latest():
    history = [(ITEMS[i], r) for i, r in [(0, 5.0), (1, 4.0), (2, 2.0), (3, 1.0), (4, 3.5)]]
    evidence = RatingEvidence(3.84, 25, np.array([0.9, 0.0, 0.5, 0.0, 0.0]))
    rendered = RatingPrompt(max_history=2, max_similar=3).render(RatingRequest(history, ITEMS[5], evidence))
    text = rendered.messages[-1]["content"]
    assert "User's average rating: 3.1 over 5 items." in text
    assert "Item's average rating: 3.8 from 25 users." in text
    similar = text.split("most similar items:\n")[1].split("\n\n")[0]
    assert similar.index("Toy Story") < similar.index("Alien")  # most similar first, only co-rated ones
    assert "Fargo" not in similar
    latest = text.split("oldest first:\n")[1]
    assert latest.index("Heat (1995) - Crime, Thriller: 1/5") < latest.index("Babe (1995) - Comedy: 3.5/5")
    assert "Fargo" not in text  # neither similar nor among the 2 latest
    assert rendered.dropped_history == 1 and text.endswith("Item: Usual Suspects, The (1995) - Crime, Thriller")


def test_prompt_cold_start_and_unrated_item():
    text = RatingPrompt().render(RatingRequest([], ITEMS[0], RatingEvidence(None, 0, np.zeros(0))))
    content = text.messages[-1]["content"]
    assert "know nothing about this user" in content and "Nobody has rated this item yet." in content
    without = RatingPrompt().render(RatingRequest([], ITEMS[0])).messages[-1]["content"]
    assert "Item's average" not in without and "Nobody has rated" not in without


def test_read_is_the_expected_digit():
    prompt = RatingPrompt()
    assert prompt.read(np.zeros(5)) == pytest.approx(3.0)
    assert prompt.read(np.array([0, 0, 0, 0, 50.0])) == pytest.approx(5.0)
    np.testing.assert_allclose(prompt.read(np.array([[50.0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])), [1.0, 3.0])
    with pytest.raises(ValueError, match="digits 1-5"):
        prompt.read(np.zeros(4))


# ---------------------------------------------------------------- evidence from the train split


def test_statistics_use_train_events_only(dataset):
    split = LeaveOneOutSplit(dataset.interactions)
    stats = RatingStatistics.from_split(split, len(ITEMS))
    # Train events: u1 (0:5, 1:4), u2 (0:3, 3:1), u3 (1:2, 3:4); validation and test events never count.
    assert stats.counts.tolist() == [2, 2, 0, 2, 0, 0]
    evidence = stats.evidence(np.array([1, 3]), 0)
    assert evidence.item_mean == pytest.approx(4.0) and evidence.item_count == 2
    # cosine: item 0 rated by {u1, u2}, item 1 by {u1, u3}, item 3 by {u2, u3}: 1 / (sqrt 2 * sqrt 2)
    np.testing.assert_allclose(evidence.similarity, [0.5, 0.5])
    assert stats.evidence(np.array([0]), 2).item_mean is None
    # A training example leaves its own rating out: u1's event on item 0 (rated 5) with history [1].
    own = stats.evidence(np.array([1]), 0, own_rating=5.0)
    assert own.item_mean == pytest.approx(3.0) and own.item_count == 1
    np.testing.assert_allclose(own.similarity, [0.0])  # u1 was the only user to rate both


def test_finetune_rating_examples_use_the_serving_prompt(dataset):
    from recommender.finetune.examples import _rating_example

    split = LeaveOneOutSplit(dataset.interactions)
    ratings = split.ratings["u1"]
    example = _rating_example(dataset.catalog, split, "u1", split.train("u1")[:1], ratings[:2], 1, 1)
    stats = RatingStatistics.from_split(split, len(ITEMS))
    request = stats.request(dataset.catalog, np.array([0]), [5.0], 1, own_rating=4.0)
    assert example.messages == RatingPrompt().render(request).messages
    assert example.completion == "4" and example.template_version == RatingPrompt().version
    # item 1's train ratings: u1 4 (this example's answer, left out) and u3 2
    assert "Item's average rating: 2.0 from 1 users." in example.messages[-1]["content"]


# ---------------------------------------------------------------- the API


def test_predict_rating_reads_the_prompt(dataset):
    recommender = make(dataset)
    assert recommender.predict_rating(["Toy Story", "Fargo"], "Heat", ratings=[5, 3]) == pytest.approx(4.0, abs=1e-3)
    assert recommender.predict_rating([], "Heat") == pytest.approx(3.0, abs=1e-3)
    # unknown history entries are left out together with their ratings
    assert recommender.predict_rating(["Nope", "2"], "4", ratings=[1, 5]) == pytest.approx(5.0, abs=1e-3)
    # a dataset user: their rated events before the item (u1 rated items 0, 1, 2 before item 3)
    by_user = recommender.predict_rating(None, "4", user_id="u1")
    assert by_user == pytest.approx(recommender.predict_rating(["1", "2", "3"], "4", ratings=[5, 4, 2]))


def test_rating_influences_match_predictions_without_each_item(dataset):
    recommender = make(dataset)
    rating, influences = recommender.rating_influences("4", ["1", "2", "3"], [5, 4, 2], window=2)
    assert [i for i, _, _ in influences] == ["2", "3"]  # the last 2, oldest first
    assert [r for _, r, _ in influences] == [4.0, 2.0]
    for item_id, _, value in influences:
        rest = [(i, r) for i, r in [("1", 5), ("2", 4), ("3", 2)] if i != item_id]
        without = recommender.predict_rating([i for i, _ in rest], "4", ratings=[r for _, r in rest])
        assert value == pytest.approx(rating - without)
    assert dict((i, v) for i, _, v in influences)["3"] < 0  # a 2/5 pulls the predicted rating down


@pytest.mark.parametrize(
    ("history", "item", "ratings", "message"),
    [
        (["1"], "Nope", [4], "unknown item 'Nope': it matches no item id or exact title of toy."),
        (["1", "2"], "4", [4], "1 ratings for 2 history items; give one rating per history item."),
        (["1"], "4", [6], r"ratings\[0\] = 6 is not a number from 1 to 5."),
        (["1", "2"], "4", [4, float("nan")], r"ratings\[1\] = nan is not a number from 1 to 5."),
        (["1"], "4", ["good"], r"ratings\[0\] = 'good' is not a number from 1 to 5."),
        (["1"], "4", None, "ratings are missing: give one rating from 1 to 5 for each of the 1 history items."),
        ("Toy Story", "4", [4], "history and ratings must be lists"),
        (["1"], "4", 4, "ratings must be a list of numbers from 1 to 5, got int."),
    ],
)
def test_predict_rating_bad_input_has_one_clear_sentence(dataset, history, item, ratings, message):
    with pytest.raises(ValueError, match=message):
        make(dataset).predict_rating(history, item, ratings)


def test_the_ratings_object_is_what_the_recommender_delegates_to(dataset):
    from recommender.histories import Histories
    from recommender.ratings import Ratings

    recommender = make(dataset)
    assert isinstance(recommender.ratings, Ratings) and recommender.rating_prompt is recommender.ratings.prompt
    alone = Ratings(Histories(dataset, recommender.split), MeanScorer())  # usable without a Recommender
    assert alone.predict(None, "4", user_id="u1") == recommender.predict_rating(None, "4", user_id="u1")
    assert alone.influences("4", user_id="u1", window=2) == recommender.rating_influences("4", user_id="u1", window=2)
    with pytest.raises(ValueError, match="built without an LLM"):
        Ratings(alone.histories).predict([], "4")


def test_predict_rating_bad_user(dataset):
    recommender = make(dataset)
    with pytest.raises(ValueError, match="user id 'nobody' is not in toy"):
        recommender.predict_rating(None, "4", user_id="nobody")
    with pytest.raises(ValueError, match="pass either user_id or history with ratings, not both."):
        recommender.predict_rating(["1"], "4", [3], user_id="u1")
    with pytest.raises(ValueError, match="built without an LLM"):
        Recommender(dataset, None, None).predict_rating([], "4")


# ---------------------------------------------------------------- baselines and intervals


def test_fit_events_and_mean_baselines(dataset):
    split = LeaveOneOutSplit(dataset.interactions)
    assert len(fit_events(split, "valid").items) == 6 and len(fit_events(split, "test").items) == 9
    test = RatedEvents.of_cases(split.cases("test"))
    predictions = mean_predictions(fit_events(split, "test"), test)
    assert predictions["global_mean"][0] == pytest.approx(29 / 9)
    assert predictions["user_mean"].tolist() == pytest.approx([11 / 3, 3.0, 3.0])
    # u1's test item 3 has train ratings 1 and 4; u2's test item 4 none (global mean); u3's item 0: 5, 3
    assert predictions["item_mean"].tolist() == pytest.approx([2.5, 29 / 9, 4.0])


def test_surprise_baselines_fit_and_predict(dataset):
    pytest.importorskip("surprise")
    from recommender.evaluation.rating import baseline_predictions

    split = LeaveOneOutSplit(dataset.interactions)
    test = RatedEvents.of_cases(split.cases("test"))
    params = {"n_factors": 2, "n_epochs": 5, "lr_all": 0.01, "reg_all": 0.05}
    first = baseline_predictions(split, "test", test, params, seed=0)
    again = baseline_predictions(split, "test", test, params, seed=0)
    assert set(first) == {"global_mean", "user_mean", "item_mean", "baseline_only", "svd"}
    np.testing.assert_allclose(first["svd"], again["svd"])  # seeded
    assert ((first["svd"] >= 1) & (first["svd"] <= 5)).all()


def test_paired_rmse_difference_and_blend():
    truth = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    same = paired_rmse_difference(truth + 0.5, truth + 0.5, truth)
    assert same["difference"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0 and same["wins"] == 0
    better = paired_rmse_difference(truth, truth + 1.0, truth)
    assert better["difference"] == pytest.approx(-1.0) and better["ci_high"] < 0 and better["wins"] == 5
    assert tune_blend(truth, np.full(5, 3.0), truth) == (1.0, 0.0)
    assert tune_blend(np.full(5, 3.0), truth, truth)[0] == 0.0
    table = rating_table(
        {"svd": {"RMSE": 1.0, "MAE": 0.8, "users": 5}}, [{"method": "llm", "reference": "svd", **better}], {}
    )
    assert "| svd | 1.0000 | 0.8000 | 5 |" in table and "| llm | svd | -1.0000 |" in table


# ---------------------------------------------------------------- a real (tiny) model


def test_tiny_llama_rates_through_the_prompt(dataset, tiny_llama_dir):
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    scorer = LLMScorer(load_model(tiny_llama_dir, adapter=None, quantize="none", device="cpu"), batch_size=2)
    recommender = Recommender(dataset, None, scorer)
    logits = scorer.rating_logits([RatingPrompt().render(RatingRequest([(ITEMS[0], 4.0)], ITEMS[1])).messages])
    assert logits[0].shape == (5,) and np.isfinite(logits[0]).all()
    alone = recommender.predict_rating(None, "4", user_id="u1")
    batch = recommender.rating_scores([np.array([0, 1, 2]), np.array([0])], [[5, 4, 2], [3]], [3, 4])
    assert 1 <= alone <= 5 and batch[0] == pytest.approx(alone, abs=1e-4)  # the same in a batch


def test_a_dataset_without_ratings_rates_from_the_given_ratings(dataset):
    unrated = Interactions(
        dataset.interactions.users, dataset.interactions.items, dataset.interactions.timestamps, None
    )
    scorer = MeanScorer()
    recommender = make(Dataset("plain", dataset.catalog, unrated, LoadReport()), scorer)
    assert recommender.predict_rating(["1", "2"], "4", ratings=[2, 4]) == pytest.approx(3.0, abs=1e-3)
    with pytest.raises(ValueError, match="plain has no ratings, so user 'u1' has no rated history."):
        recommender.predict_rating(None, "4", user_id="u1")


def test_explain_rating_command_prints_the_influences(dataset, capsys):
    import argparse
    import json

    from recommender.commands.explain import _explain_rating

    class Loaded:
        def describe(self):
            return "fake"

    scorer = MeanScorer()
    scorer.loaded = Loaded()
    recommender = make(dataset, scorer)
    args = argparse.Namespace(window=2, top=5, json=False)
    assert _explain_rating(recommender, "u1", "4", args) == 0
    text = capsys.readouterr().out
    expected = recommender.predict_rating(None, "4", user_id="u1")
    assert f"predicted rating: {expected:.3f}" in text
    assert text.index("Alien (1979)") < text.index("Fargo (1996)")  # strongest (absolute) first
    assert _explain_rating(recommender, "u1", "4", argparse.Namespace(window=2, top=5, json=True)) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["rating"] == pytest.approx(expected) and len(record["influences"]) == 2
