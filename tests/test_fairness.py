"""Fairness metrics and the calibration re-ranker against small hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.calibration import (
    calibrate,
    genre_distribution,
    genre_matrix,
    miscalibration,
    user_miscalibration,
)
from recommender.evaluation.fairness import (
    Grouping,
    activity_terciles,
    adjust_over_groups,
    age_bands,
    categorical,
    exposure,
    exposure_shares,
    gini,
    group_quality,
    item_side,
    largest_gap,
    length_buckets,
    paired_by_group,
    popularity_buckets,
)
from recommender.evaluation.fairness_report import groupings, write_report

# Four films: 0 comedy, 1 comedy+drama, 2 drama, 3 horror.
GENRES = genre_matrix([("Comedy",), ("Comedy", "Drama"), ("Drama",), ("Horror",)], ("Comedy", "Drama", "Horror"))


def test_genre_matrix_splits_one_unit_over_genres():
    assert GENRES[1].tolist() == [0.5, 0.5, 0.0]
    assert GENRES.sum(axis=1).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert genre_matrix([(), ("Unknown",)], ("Comedy",)).tolist() == [[0.0], [0.0]]
    assert genre_distribution(GENRES[[0, 1]]).tolist() == pytest.approx([0.75, 0.25, 0.0])


def test_miscalibration_hand_computed():
    p = np.array([0.5, 0.5, 0.0])
    assert float(miscalibration(p, p)) == pytest.approx(0.0, abs=1e-12)
    # q = all comedy: q~ = 0.99 * (1, 0, 0) + 0.01 * p = (0.995, 0.005, 0)
    expected = 0.5 * np.log(0.5 / 0.995) + 0.5 * np.log(0.5 / 0.005)
    assert float(miscalibration(p, np.array([1.0, 0.0, 0.0]))) == pytest.approx(expected)
    assert float(miscalibration(np.zeros(3), np.array([1.0, 0.0, 0.0]))) == 0.0  # no history genres
    batch = miscalibration(p, np.array([p, [1.0, 0.0, 0.0]]))
    assert batch.shape == (2,) and batch[1] == pytest.approx(expected)


def test_user_miscalibration_per_user():
    values = user_miscalibration([np.array([0, 2]), np.array([3])], [[1], [3]], GENRES)
    assert values.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)  # (0.5, 0.5) both ways; horror both


def test_calibrate_zero_lambda_keeps_the_order():
    rng = np.random.default_rng(0)
    relevance = rng.normal(size=30)
    genres = genre_matrix([tuple(rng.choice(["A", "B", "C"], size=2)) for _ in range(30)], ("A", "B", "C"))
    p = np.array([0.1, 0.2, 0.7])
    order = np.argsort(-relevance, kind="stable")
    assert calibrate(relevance, genres, p, 10, 0.0).tolist() == order[:10].tolist()
    assert calibrate(relevance, genres, np.zeros(3), 10, 0.9).tolist() == order[:10].tolist()  # no history mix
    assert calibrate(relevance, genres, p, 0, 0.5).tolist() == []
    with pytest.raises(ValueError, match="calibration"):
        calibrate(relevance, genres, p, 10, 1.5)


def test_calibrate_moves_the_mix_toward_the_history():
    # Relevance prefers comedies; the history is all drama.
    genres = genre_matrix([("Comedy",)] * 6 + [("Drama",)] * 6, ("Comedy", "Drama"))
    relevance = np.concatenate([np.linspace(2.0, 1.5, 6), np.linspace(1.0, 0.5, 6)])
    p = np.array([0.2, 0.8])
    plain = calibrate(relevance, genres, p, 5, 0.0)
    calibrated = calibrate(relevance, genres, p, 5, 0.9)
    before = miscalibration(p, genre_distribution(genres[plain]))
    after = miscalibration(p, genre_distribution(genres[calibrated]))
    assert after < before
    assert genres[calibrated][:, 1].sum() > genres[plain][:, 1].sum()
    assert len(set(calibrated.tolist())) == 5


def test_gini_limits():
    assert gini(np.full(5, 3.0)) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 7.0])) == pytest.approx(3 / 4)
    assert gini(np.zeros(3)) == 0.0
    assert gini(np.array([1.0, 3.0])) == pytest.approx(0.25)  # sum((2i - n - 1) x_(i)) / (n sum x) = (3 - 1) / 8


def test_popularity_buckets_and_exposure_shares():
    popularity = np.array([50.0, 20.0, 10.0, 10.0, 5.0, 3.0, 2.0, 0.0])  # 100 interactions
    buckets = popularity_buckets(popularity)
    # head: item 0 alone reaches 20% (it holds 50%); tail: items 3..7 hold 10+5+3+2+0 = 20%
    assert buckets.tolist() == ["head", "mid", "mid", "tail", "tail", "tail", "tail", "tail"]
    lists = [[0, 1, 7], [0, 2, 6]]
    shares = exposure_shares(lists, buckets)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares == pytest.approx({"head": 2 / 6, "mid": 2 / 6, "tail": 2 / 6})
    assert exposure(lists, 8).tolist() == [2, 1, 1, 0, 0, 0, 1, 1]


def test_item_side_row():
    buckets = np.array(["head", "mid", "tail", "tail"], dtype=object)
    row = item_side([[0, 1], [0, 3]], [np.array([0]), np.array([3])], buckets, GENRES, k=2)
    assert row["head_share"] + row["mid_share"] + row["tail_share"] == pytest.approx(1.0)
    assert row["coverage"] == pytest.approx(3 / 4)
    assert row["miscalibration"] > 0


def test_group_helpers():
    assert age_bands([10, 18, 24, 25, 60]).labels.tolist() == ["under 18", "18-24", "18-24", "25-34", "56+"]
    terciles = activity_terciles([1, 2, 3, 4, 5, 6])
    assert [label.split()[0] for label in terciles.labels] == ["low", "low", "mid", "mid", "high", "high"]
    assert length_buckets([5, 20, 49, 300]).labels.tolist() == ["< 20", "20-49", "20-49", ">= 200"]
    assert categorical("gender", ["M", "F", "M"]).order == ("M", "F")


def test_group_quality_flags_small_groups_and_computes_means():
    labels = np.array(["a"] * 30 + ["b"] * 30 + ["c"] * 5, dtype=object)
    grouping = Grouping("toy", labels, ("a", "b", "c"))
    ranks = np.array([1] * 30 + [11] * 30 + [3] * 5)  # a: NDCG 1, b: 0, c: 1/log2(4) = 0.5
    rows = {r["group"]: r for r in group_quality(ranks, grouping, resamples=200)}
    assert rows["c"]["too_small"] and rows["c"]["ndcg_ci"] is None and rows["c"]["users"] == 5
    assert rows["c"]["ndcg"] == pytest.approx(0.5)
    assert not rows["a"]["too_small"] and rows["a"]["ndcg"] == 1.0 and rows["a"]["hr"] == 1.0
    assert rows["a"]["ndcg_ci"] == pytest.approx((1.0, 1.0))
    assert rows["a"]["gap"] == pytest.approx(1.0 - 2.5 / 35)
    low, high = rows["a"]["gap_ci"]
    assert low <= rows["a"]["gap"] <= high
    gap = largest_gap(ranks, grouping, resamples=200)
    assert gap["best"] == "a" and gap["worst"] == "b" and gap["gap"] == pytest.approx(1.0) and gap["groups"] == 2
    assert gap["ci"] == pytest.approx((1.0, 1.0)) and gap["p"] < 0.01
    null = largest_gap(np.arange(60) % 7 + 1, Grouping("toy", labels[:60], ("a", "b")), resamples=200)
    assert null["p"] > 0.05 and null["ci"][0] < 0 < null["ci"][1]  # same ranks in both groups: no gap


def test_paired_by_group():
    labels = np.array(["a"] * 25 + ["b"] * 25, dtype=object)
    grouping = Grouping("toy", labels, ("a", "b"))
    reference = np.full(50, 3)
    ranks = np.concatenate([np.full(25, 1), np.full(25, 3)])  # better in a only
    rows = {r["group"]: r for r in paired_by_group(ranks, reference, grouping, resamples=200)}
    assert rows["a"]["difference"] == pytest.approx(1.0 - 0.5)
    assert rows["b"]["difference"] == 0.0 and rows["b"]["wins"] == 0
    assert rows["a"]["gap_change"] == pytest.approx(0.5) and rows["b"]["gap_change"] == pytest.approx(-0.5)
    assert rows["a"]["p"] < 0.01 and rows["b"]["p"] == 1.0  # 25 users all better; no change at all


def test_many_groups_are_adjusted_for_multiplicity():
    rng = np.random.default_rng(0)
    labels = np.array([f"g{i}" for i in range(20) for _ in range(30)], dtype=object)
    grouping = Grouping("toy", labels, tuple(f"g{i}" for i in range(20)))
    reference = rng.integers(1, 30, size=600)
    ranks = np.where(rng.random(600) < 0.5, reference, rng.integers(1, 30, size=600))  # no method effect
    rows = paired_by_group(ranks, reference, grouping, resamples=500)
    adjust_over_groups(rows)
    assert all(r["q"] >= r["p"] for r in rows)
    assert min(r["q"] for r in rows) > 0.05  # noise in 20 groups: nothing survives the adjustment
    real = paired_by_group(np.concatenate([np.ones(30, int), ranks[30:]]), reference, grouping, resamples=4000)
    adjust_over_groups(real)
    assert real[0]["q"] < 0.05  # a group whose every user moved to the top does


def test_groupings_from_attributes_and_report(tmp_path):
    attributes = {"gender": {"1": "M", "2": "F"}, "age": {"1": "24", "2": "53"}}
    groups = groupings(["1", "2", "3"], attributes, [10, 50, 90], [30, 60, 300])
    assert [g.attribute for g in groups] == ["gender", "age", "activity tercile", "history length"]
    assert groups[0].labels.tolist() == ["M", "F", "unknown"] and groups[1].labels.tolist() == [
        "18-24",
        "50-55",
        "unknown",
    ]
    grouping = Grouping("toy", np.array(["a"] * 25 + ["b"] * 3, dtype=object), ("a", "b"))
    ranks = {"x": np.arange(1, 29), "y": np.full(28, 2)}
    lists = {m: [[0, 1]] * 28 for m in ranks}
    histories = [np.array([2])] * 28
    buckets = np.array(["head", "mid", "tail", "tail"], dtype=object)
    write_report(tmp_path, ranks, lists, [grouping], histories, buckets, GENRES, {"x": "y"}, {"split": "test"})
    text = (tmp_path / "fairness.md").read_text()
    assert "too few users" in text and "x - y" in text and "Gini" in text
    rows = json.loads((tmp_path / "fairness.json").read_text())["quality"]["x"]["toy"]
    assert rows[1]["too_small"] and not rows[0]["too_small"]
    assert rows[0]["ndcg_ci"] is not None and rows[0]["gap_ci"] is None  # the rest is too small for a gap
    assert (tmp_path / "fairness.png").stat().st_size > 0


def test_recommender_calibration_knob():
    from recommender.data import Catalog, Dataset, Interactions, Item, LoadReport
    from recommender.pipeline import Recommender
    from recommender.retrieval.base import PopularityRetriever

    items = [
        Item("1", "Toy Story", 1995, ("Animation", "Comedy")),
        Item("2", "Fargo", 1996, ("Crime", "Drama")),
        Item("3", "Alien", 1979, ("Horror", "Sci-Fi")),
        Item("4", "Heat", 1995, ("Crime", "Thriller")),
        Item("5", "Babe", 1995, ("Comedy",)),
    ]
    catalog = Catalog(items)
    interactions = Interactions(np.array(["u1"] * 3, dtype=object), np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0]))
    dataset = Dataset("toy", catalog, interactions, LoadReport())
    recommender = Recommender(dataset, PopularityRetriever(catalog, np.array([5.0, 4.0, 3.0, 2.0, 1.0])))
    plain = [r.item_id for r in recommender.recommend(history=["Fargo"], k=2)]
    same = [r.item_id for r in recommender.recommend(history=["Fargo"], k=2, calibration=0.0)]
    calibrated = [r.item_id for r in recommender.recommend(history=["Fargo"], k=2, calibration=0.9)]
    assert plain == same == ["1", "3"] and calibrated[0] == "4"  # the only other crime film
    with pytest.raises(ValueError, match="calibration"):
        recommender.recommend(history=["Fargo"], calibration=0.5, diversity=0.5)
