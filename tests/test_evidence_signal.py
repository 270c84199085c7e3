"""The evidence probe's pure parts (bench/evidence_signal.py): the fitted reranker and its ranks."""

import numpy as np

from bench.evidence_signal import Lists, fit_conditional_logit, places, reranked


def test_the_fit_recovers_the_weights_that_generated_the_choices():
    """Lists drawn from a known conditional logit: the fitted weights are its maximum-likelihood
    estimate, close to the truth, and the fit reaches the optimum (zero gradient), not a step cap."""
    rng = np.random.default_rng(0)
    truth = np.array([1.5, -0.7])
    lists = [rng.normal(size=(8, 2)) for _ in range(4000)]
    targets = np.array([rng.choice(8, p=np.exp(x @ truth) / np.exp(x @ truth).sum()) for x in lists])
    weights, nll = fit_conditional_logit(lists, targets)
    np.testing.assert_allclose(weights, truth, atol=0.1)
    assert nll < np.log(8)
    x = np.stack(lists)
    p = np.exp(x @ weights)
    p /= p.sum(axis=1, keepdims=True)
    gradient = ((x * p[..., None]).sum(axis=1) - x[np.arange(len(x)), targets]).mean(axis=0)
    assert np.abs(gradient).max() < 1e-6


def test_places_rank_best_first_and_reranked_moves_only_retrieved_targets():
    assert places(np.array([0.1, 0.9, 0.5])).tolist() == [2 / 3, 0.0, 1 / 3]
    valid = Lists(k=3, features=[{"x": np.array([0.0, 0.0, 1.0])}], targets=[2], ranks=np.array([3, 40]))
    assert reranked(valid, ("x",), np.array([1.0])).tolist() == [1, 40]
