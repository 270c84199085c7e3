"""Metric aggregation of the evaluation on a hand-made mini dataset, and output files."""

import json

import numpy as np
import pytest

from recommender.data.split import EvalCase
from recommender.evaluation.protocol import (
    MethodResult,
    llm_settings,
    markdown_table,
    paired_differences,
    rank_cases,
    rating_report,
    summarise,
    write_outputs,
)

# Four items; item 3 is the most popular. Two users.
CASES = [
    EvalCase("a", history=np.array([0]), target=1),  # scores put 1 first once 0 is masked
    EvalCase("b", history=np.array([1]), target=0),  # target 0 ranked 3rd after masking item 1
]
SCORES = {
    0: np.array([9.0, 5.0, 1.0, 2.0]),  # user a: history 0 masked -> order 1, 3, 2
    1: np.array([1.0, 9.0, 3.0, 2.0]),  # user b: history 1 masked -> order 2, 3, 0
}


def fake_batch(histories):
    return np.stack([SCORES[int(h[0])] for h in histories]), np.array([0, 1])


def test_aggregation_matches_hand_computed_values():
    result = rank_cases(fake_batch, CASES, batch_size=2, description="fake", n_labels=4)
    assert result.ranks.tolist() == [1, 3]
    assert [t.tolist() for t in result.top_lists] == [[1, 3, 2], [2, 3, 0]]
    popularity = np.array([1.0, 2.0, 3.0, 10.0])
    vectors = np.eye(4)
    row = summarise(result, n_items=4, popularity=popularity, vectors=vectors)
    assert row["HR@1"] == 0.5 and row["HR@5"] == 1.0
    assert row["NDCG@10"] == pytest.approx((1.0 + 1.0 / np.log2(4)) / 2)
    assert row["MRR@10"] == pytest.approx((1.0 + 1.0 / 3) / 2)
    assert row["coverage@10"] == 1.0  # items 0..3 all appear in some top-10
    assert row["diversity@10"] == pytest.approx(1.0)  # orthogonal item vectors
    assert row["first_place_A"] == 0.5 and row["first_place_uniform"] == 0.25
    assert row["users"] == 2


def test_outputs_are_written_and_deterministic(tmp_path):
    result = rank_cases(fake_batch, CASES, batch_size=1, description="fake")
    row = summarise(result, 4, np.ones(4), None)
    for folder in ("one", "two"):
        write_outputs({"fake": row}, {"users": 2, "seed": 0}, tmp_path / folder)
    first, second = (tmp_path / "one" / "metrics.json").read_bytes(), (tmp_path / "two" / "metrics.json").read_bytes()
    assert first == second and json.loads(first)["fake"]["NDCG@10"] == row["NDCG@10"]
    assert (tmp_path / "one" / "metrics.png").stat().st_size > 0
    assert "| fake |" in markdown_table({"fake": row}, {"users": 2})


def test_paired_differences_compare_llm_rows_with_the_retriever_and_zero_shot(tmp_path):
    def result(ranks):
        return MethodResult(np.array(ranks), [])

    results = {
        "hybrid": result([1, 2, 30]),
        "llm_zero_shot": result([2, 2, 30]),
        "llm_lora": result([1, 1, 30]),
        "pop": result([5, 5, 5]),
        "llm_lora_pure": None,  # skipped rows are left out
    }
    rows = paired_differences(results)
    assert [(r["method"], r["reference"]) for r in rows] == [
        ("llm_zero_shot", "hybrid"),
        ("llm_lora", "hybrid"),
        ("llm_lora", "llm_zero_shot"),
    ]
    assert rows[1]["wins"] == 1 and rows[1]["losses"] == 0 and rows[1]["difference"] > 0
    write_outputs({"hybrid": {"NDCG@10": 0.5}}, {"users": 3}, tmp_path, rows)
    assert "| llm_lora | llm_zero_shot |" in (tmp_path / "metrics.md").read_text()
    assert json.loads((tmp_path / "paired.json").read_text())[0]["reference"] == "hybrid"


def test_rating_report():
    report = rating_report([(4.0, 5.0), (3.0, 3.0)])
    assert report["RMSE"] == pytest.approx(np.sqrt(0.5)) and report["MAE"] == pytest.approx(0.5)


def test_llm_rows_differ_only_in_what_they_name():
    tuned = {"template": "rank_evidence", "llm_candidates": 20, "max_history": 3, "llm_weight": 0.4}
    assert llm_settings("llm_zero_shot", tuned, seed=5) == (False, {"llm_candidates": 20, "seed": 5, "llm_weight": 1.0})
    same_prompt = {**tuned, "seed": 5, "llm_weight": 1.0}
    assert llm_settings("llm_zero_shot_evidence", tuned, seed=5) == (False, same_prompt)
    assert llm_settings("llm_lora_pure", tuned, seed=5) == (True, same_prompt)
    assert llm_settings("llm_lora", tuned, seed=5) == (True, {**tuned, "seed": 5})
    assert llm_settings("llm_lora", tuned, seed=5, llm_candidates=8)[1]["llm_candidates"] == 8
