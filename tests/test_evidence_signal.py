"""The evidence probe's pure parts (bench/evidence_signal.py): the fitted reranker and its ranks."""

import numpy as np

from bench.evidence_signal import Lists, fit_conditional_logit, places, reranked


def test_a_feature_that_marks_the_target_gets_a_positive_weight_and_one_that_marks_a_decoy_a_negative_one():
    rng = np.random.default_rng(0)
    lists, targets = [], []
    for _ in range(200):
        target, decoy = rng.choice(5, 2, replace=False)
        marks = np.zeros((5, 2))
        marks[target, 0] = 1.0
        marks[decoy, 1] = 1.0
        lists.append(marks)
        targets.append(int(target))
    weights, nll = fit_conditional_logit(lists, np.asarray(targets))
    assert weights[0] > 1.0 and weights[1] < 0.0
    assert nll < np.log(5)


def test_places_rank_best_first_and_reranked_moves_only_retrieved_targets():
    assert places(np.array([0.1, 0.9, 0.5])).tolist() == [2 / 3, 0.0, 1 / 3]
    valid = Lists(k=3, features=[{"x": np.array([0.0, 0.0, 1.0])}], targets=[2], ranks=np.array([3, 40]))
    assert reranked(valid, ("x",), np.array([1.0])).tolist() == [1, 40]
