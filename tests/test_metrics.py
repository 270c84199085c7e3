import numpy as np
import pytest

from recommender.evaluation import metrics


def test_perfect_ranking_has_ndcg_one():
    assert metrics.ndcg([1, 1, 1], 10) == pytest.approx(1.0)
    assert metrics.hit_rate([1], 1) == 1.0
    assert metrics.mrr([1], 10) == 1.0


def test_hand_computed_values():
    ranks = [1, 2, 4, 11]
    assert metrics.hit_rate(ranks, 10) == pytest.approx(0.75)
    expected = (1 + 1 / np.log2(3) + 1 / np.log2(5) + 0) / 4
    assert metrics.ndcg(ranks, 10) == pytest.approx(expected)
    assert metrics.mrr(ranks, 10) == pytest.approx((1 + 0.5 + 0.25) / 4)


def test_item_ranked_past_k_scores_zero():
    assert metrics.hit_rate([11], 10) == 0.0
    assert metrics.ndcg([11], 10) == 0.0
    assert metrics.mrr([11], 10) == 0.0


def test_empty_inputs_give_zero():
    assert metrics.ndcg([], 10) == 0.0
    assert metrics.hit_rate([], 10) == 0.0
    assert metrics.coverage([], 5, 10) == 0.0
    assert metrics.popularity_bias([], np.ones(3), 10) == 0.0


def test_target_rank_masks_history_and_breaks_ties_by_row():
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    assert metrics.target_rank(scores, target=2) == 3  # 0.9 above, row 1 tied and earlier
    assert metrics.target_rank(scores, target=2, mask=[0, 1]) == 1
    assert metrics.target_rank(scores, target=1) == 2
    # the target is never masked out of its own ranking
    assert metrics.target_rank(scores, target=4, mask=[4]) == 5


def test_top_k_ties_and_mask_and_limits():
    scores = np.array([0.2, 0.5, 0.5, 0.9])
    assert metrics.top_k(scores, 3).tolist() == [3, 1, 2]
    assert metrics.top_k(scores, 2, mask=[3]).tolist() == [1, 2]
    assert metrics.top_k(scores, 10).tolist() == [3, 1, 2, 0]
    assert metrics.top_k(scores, 0).tolist() == []
    assert metrics.top_k(np.array([1.0]), 5).tolist() == [0]


def test_top_k_agrees_with_target_rank():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=50).astype(float)
    order = metrics.top_k(scores, 50)
    for position, row in enumerate(order, start=1):
        assert metrics.target_rank(scores, int(row)) == position


def test_coverage_and_popularity_bias():
    assert metrics.coverage([[0, 1], [1, 2]], n_items=4, k=2) == pytest.approx(0.75)
    assert metrics.coverage([[0, 1], [1, 2]], n_items=4, k=1) == pytest.approx(0.5)
    popularity = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.popularity_bias([[3]], popularity, 10) == pytest.approx(1.0)
    assert metrics.popularity_bias([[0, 3]], popularity, 10) == pytest.approx((0.25 + 1.0) / 2)


def test_intra_list_diversity():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert metrics.intra_list_diversity([[0, 1]], vectors, 10) == pytest.approx(1.0)
    assert metrics.intra_list_diversity([[0, 2]], vectors, 10) == pytest.approx(0.0)
    assert metrics.intra_list_diversity([[0]], vectors, 10) == 0.0


def test_ranking_report_names():
    report = metrics.ranking_report([1, 3, 30])
    assert set(report) == {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR@10"}
    assert report["HR@5"] == pytest.approx(2 / 3)


def test_paired_ndcg_difference_counts_users_and_brackets_the_mean():
    ranks, reference = [1, 3, 30, 2, 50], [2, 3, 30, 1, 40]
    out = metrics.paired_ndcg_difference(ranks, reference, k=10, resamples=500, seed=1)
    gain = lambda r: 1 / np.log2(r + 1) if r <= 10 else 0.0  # noqa: E731
    expected = np.mean([gain(a) - gain(b) for a, b in zip(ranks, reference)])
    assert out["difference"] == pytest.approx(expected)
    assert out["ci_low"] <= out["difference"] <= out["ci_high"]
    assert (out["wins"], out["losses"], out["users"]) == (1, 1, 5)  # ties: equal ranks and both past k
    same = metrics.paired_ndcg_difference(ranks, ranks)
    assert same["difference"] == same["ci_low"] == same["ci_high"] == 0.0
    with pytest.raises(ValueError, match="same non-empty users"):
        metrics.paired_ndcg_difference([1, 2], [1])


def test_paired_bootstrap_in_batches_equals_the_one_matrix_bootstrap():
    rng = np.random.default_rng(5)
    ranks, reference = rng.integers(1, 40, 943), rng.integers(1, 40, 943)
    difference = metrics.ndcg_gains(ranks, 10) - metrics.ndcg_gains(reference, 10)
    picks = np.random.default_rng(7).integers(0, 943, (300, 943))  # the former [resamples, U] matrix
    means = difference[picks].mean(axis=1)
    expected = (np.percentile(means, 2.5), np.percentile(means, 97.5))
    for batch_elements in (1, 943 * 7, 1 << 24):  # one resample at a time, 7 at a time, all at once
        out = metrics.paired_ndcg_difference(ranks, reference, resamples=300, seed=7, batch_elements=batch_elements)
        assert (out["ci_low"], out["ci_high"]) == expected


def test_the_one_paired_bootstrap_agrees_with_scipys_percentile_bootstrap():
    from scipy import stats

    from recommender.evaluation.bootstrap import paired_mean_difference

    difference = np.random.default_rng(3).normal(0.01, 0.2, 600)  # per-user paired differences
    ours = paired_mean_difference(difference, resamples=20000, seed=0)
    theirs = stats.bootstrap(
        (difference,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(1)
    ).confidence_interval
    standard_error = difference.std() / np.sqrt(len(difference))
    assert abs(ours["ci_low"] - theirs.low) < 0.1 * standard_error
    assert abs(ours["ci_high"] - theirs.high) < 0.1 * standard_error
    assert ours["difference"] == pytest.approx(difference.mean())


def test_the_bootstrap_does_not_depend_on_its_batch_size():
    from recommender.evaluation.bootstrap import resampled_means

    values = np.random.default_rng(0).random((97, 2))
    whole = resampled_means(values, resamples=300, seed=5)
    batched = resampled_means(values, resamples=300, seed=5, batch_elements=97 * 7)
    np.testing.assert_array_equal(whole, batched)
