import numpy as np
import pytest

from recommender import ranking
from recommender.evaluation import metrics


def test_blend_limits():
    llm, retrieval = np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    assert ranking.stable_order(ranking.blend(llm, retrieval, 1.0)).tolist() == [0, 2, 1]
    assert ranking.stable_order(ranking.blend(llm, retrieval, 0.0)).tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="llm_weight must be within"):
        ranking.blend(llm, retrieval, 1.5)


def test_standardise_constant_and_empty():
    assert ranking.standardise(np.ones(3)).tolist() == [0.0, 0.0, 0.0]
    assert ranking.standardise(np.zeros(0)).size == 0


def test_two_stage_scores_put_reranked_block_first():
    retrieval = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    full = ranking.two_stage_full_scores(retrieval, np.array([1, 0]), np.array([5.0, 1.0]))
    assert metrics.top_k(full, 5).tolist() == [1, 0, 2, 3, 4]
    assert metrics.target_rank(full, 0) == 2 and metrics.target_rank(full, 3) == 4
    single = ranking.two_stage_full_scores(retrieval, np.array([4]), np.array([0.0]))
    assert metrics.top_k(single, 2).tolist() == [4, 0]


def test_mmr_zero_diversity_is_relevance_order_and_high_diversity_spreads():
    relevance = np.array([3.0, 2.9, 1.0])
    vectors = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]])
    assert ranking.mmr(relevance, vectors, 3, 0.0).tolist() == [0, 1, 2]
    assert ranking.mmr(relevance, vectors, 2, 0.7).tolist() == [0, 2]
    assert ranking.mmr(relevance, vectors, 0, 0.5).tolist() == []
    assert ranking.mmr(relevance, vectors, 10, 0.5).shape == (3,)
    with pytest.raises(ValueError, match="diversity must be within"):
        ranking.mmr(relevance, vectors, 2, -0.1)
