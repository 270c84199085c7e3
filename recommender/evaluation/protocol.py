"""Offline evaluation: leave-one-out, full ranking with the user's history masked, one row
per method, written as ``metrics.json``, ``metrics.md`` and a PNG chart.

    recommender evaluate --dataset ml-100k --split test --users 200 --output runs/eval
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from recommender.data.split import EvalCase, LeaveOneOutSplit
from recommender.evaluation import metrics

RETRIEVAL_METHODS = ("pop", "cooccurrence", "embedding", "sequential", "hybrid")


class LLMVariant(NamedTuple):
    """One LLM row of the evaluation table."""

    loads_adapter: bool  # the adapter's weights are loaded
    adapter_prompt: bool  # the adapter's recorded prompt settings (template, N, history) are used
    weight: float | None  # LLM weight in the blend; None = the one tuned and recorded with the adapter


# The "_evidence" zero-shot row asks the base model the adapter's own prompt, so adapter vs
# zero-shot differ by the weights only.
LLM_VARIANTS = {
    "llm_zero_shot": LLMVariant(False, False, 1.0),  # serving `rank` prompt, 20 shuffled candidates
    "llm_zero_shot_evidence": LLMVariant(False, True, 1.0),
    "llm_lora_pure": LLMVariant(True, True, 1.0),
    "llm_lora": LLMVariant(True, True, None),  # what serving uses: adapter + retrieval blend
}
LLM_METHODS = tuple(LLM_VARIANTS)


def llm_settings(method: str, tuned: dict, seed: int, llm_candidates: int | None = None) -> tuple[bool, dict]:
    """Whether ``method`` loads the adapter, and its ``PipelineConfig`` keyword arguments.

    Args:
        tuned: the adapter's recorded settings (``pipeline.tuned_settings``); {} without one.
        llm_candidates: overrides the top-N the LLM reranks.
    """
    variant = LLM_VARIANTS[method]
    settings = {"llm_candidates": 20, "seed": seed, **(tuned if variant.adapter_prompt else {})}
    if variant.weight is not None:
        settings["llm_weight"] = variant.weight
    if llm_candidates is not None:
        settings["llm_candidates"] = llm_candidates
    return variant.loads_adapter, settings


METHODS = RETRIEVAL_METHODS + LLM_METHODS
CUTOFF = 10


@dataclass(frozen=True)
class MethodResult:
    """Per-user ranks and top-10 lists of one method, plus LLM first-place positions."""

    ranks: np.ndarray  # [U] 1-based rank of each user's target
    top_lists: list[np.ndarray]  # U x [10] catalogue rows
    first_place: np.ndarray | None = None  # [U] label position of the LLM's pick (0 = A)
    n_labels: int = 0


def sample_users(split: LeaveOneOutSplit, users: int | None, seed: int, exclude: Sequence[str] = ()) -> list[str]:
    """A seeded sample of evaluable users outside ``exclude``, in dataset order (all when
    ``users`` is None). Fine-tuning draws its validation users with this same function."""
    excluded = set(exclude)
    pool = [user for user in split.eval_users if user not in excluded]
    if users is None or users >= len(pool):
        return pool
    picked = set(np.random.default_rng(seed).choice(len(pool), size=users, replace=False).tolist())
    return [user for position, user in enumerate(pool) if position in picked]


def selection_users(adapter_meta: dict, split: LeaveOneOutSplit) -> list[str]:
    """The validation users an adapter has seen: those it was selected and blended on (its
    recipe's ``eval.users`` and ``eval.seed``) and, when it trained on validation events
    (``data.examples`` 'validation' or 'held_out'), every other one except its report users;
    [] when the metadata does not say."""
    config = adapter_meta.get("config", {})
    settings = config.get("eval", {})
    if not isinstance(settings.get("users"), int) or not isinstance(settings.get("seed"), int):
        return []
    chosen = sample_users(split, settings["users"], settings["seed"])
    if config.get("data", {}).get("examples") in ("validation", "held_out"):
        report = set(sample_users(split, settings.get("report_users", 0), settings["seed"] + 1, exclude=chosen))
        return [user for user in split.eval_users if user not in report]
    return chosen


def rank_cases(
    score_batch: Callable[[list[np.ndarray]], tuple[np.ndarray, np.ndarray | None]],
    cases: Sequence[EvalCase],
    batch_size: int,
    description: str,
    n_labels: int = 0,
) -> MethodResult:
    """Run a batched full-catalogue scorer over cases; history rows are masked in the ranking."""
    ranks, tops, firsts = [], [], []
    for start in tqdm(range(0, len(cases), batch_size), desc=description, unit="batch", leave=False):
        chunk = cases[start : start + batch_size]
        scores, first = score_batch([case.history for case in chunk])
        ranks.extend(metrics.full_ranks(scores, chunk).tolist())
        tops.extend(metrics.top_k(row, CUTOFF, case.history) for case, row in zip(chunk, scores))
        if first is not None:
            firsts.extend(first.tolist())
    return MethodResult(np.array(ranks), tops, np.array(firsts) if firsts else None, n_labels)


def summarise(result: MethodResult, n_items: int, popularity: np.ndarray, vectors: np.ndarray | None) -> dict:
    """The metric row of one method, names as in the README table."""
    row = metrics.ranking_report(result.ranks, cutoffs=(1, 5, 10, 20))
    row["coverage@10"] = metrics.coverage(result.top_lists, n_items, CUTOFF)
    row["popularity_bias@10"] = metrics.popularity_bias(result.top_lists, popularity, CUTOFF)
    if vectors is not None:
        row["diversity@10"] = metrics.intra_list_diversity(result.top_lists, vectors, CUTOFF)
    if result.first_place is not None and len(result.first_place) and result.n_labels > 0:
        row["first_place_A"] = float(np.mean(result.first_place == 0))
        row["first_place_uniform"] = 1.0 / result.n_labels
    row["users"] = len(result.ranks)
    return {key: round(float(value), 6) for key, value in row.items()}


# Each LLM row is compared user by user with these, in this order (a later one against an earlier
# one too): the retriever it reranks and the base model without fine-tuning.
PAIRED_REFERENCES = ("hybrid", "llm_zero_shot", "llm_zero_shot_evidence")


def paired_differences(results: dict[str, MethodResult | None], seed: int = 0) -> list[dict]:
    """NDCG@10 difference of each LLM method to each reference on the same users, with its
    paired-bootstrap 95% interval (``metrics.paired_ndcg_difference``)."""
    present = {m: r for m, r in results.items() if r is not None}
    rows = []
    for method in (m for m in present if m in LLM_METHODS):
        for reference in (r for r in PAIRED_REFERENCES if r in present and r != method):
            if method in PAIRED_REFERENCES and PAIRED_REFERENCES.index(method) < PAIRED_REFERENCES.index(reference):
                continue  # that pair is already listed the other way round
            ranks, reference_ranks = present[method].ranks, present[reference].ranks
            difference = metrics.paired_ndcg_difference(ranks, reference_ranks, CUTOFF, seed=seed)
            rows.append({"method": method, "reference": reference, **difference})
    return rows


def paired_table(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    lines = ["", "Paired NDCG@10 differences on the same users (95% paired bootstrap interval, 2,000 resamples):", ""]
    lines.append("| method | minus | difference | 95% interval | users better / worse |")
    lines.append("| --- | --- | ---: | ---: | ---: |")
    for row in rows:
        cells = [row["method"], row["reference"], f"{row['difference']:+.4f}"]
        cells += [f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]", f"{row['wins']} / {row['losses']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(results: dict[str, dict], header: dict, folder: str | Path, paired: Sequence[dict] = ()) -> Path:
    """``metrics.json`` ({method: {metric: value}}), ``metrics.md``, ``metrics.png`` and, with
    paired comparisons, ``paired.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    (folder / "metrics.md").write_text(markdown_table(results, header) + paired_table(paired))
    if paired:
        (folder / "paired.json").write_text(json.dumps(list(paired), indent=1) + "\n")
    plot(results, folder / "metrics.png")
    return folder


def markdown_table(results: dict[str, dict], header: dict) -> str:
    columns = ["HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR@10"]
    columns += ["coverage@10", "popularity_bias@10", "diversity@10", "first_place_A"]
    lines = [" · ".join(f"{key}: {value}" for key, value in header.items()), ""]
    lines.append("| method | " + " | ".join(columns) + " |")
    lines.append("| --- |" + " ---: |" * len(columns))
    for method, row in results.items():
        cells = [f"{row[c]:.4f}" if c in row else "" for c in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["HR@10", "NDCG@10", "HR@20", "NDCG@20"]
    methods = list(results)
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(methods), 1)
    for index, method in enumerate(methods):
        values = [results[method].get(name, 0.0) for name in names]
        axis.bar(np.arange(len(names)) + index * width, values, width, label=method)
    axis.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    axis.set_ylabel("score")
    axis.legend(fontsize=8)
    axis.set_title("Leave-one-out, full ranking, history masked")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def rating_report(pairs: Sequence[tuple[float, float]]) -> dict[str, float]:
    """RMSE and MAE of (predicted, true) rating pairs."""
    predicted, true = np.array(pairs, dtype=np.float64).reshape(-1, 2).T
    error = predicted - true
    return {"RMSE": float(np.sqrt(np.mean(error**2))), "MAE": float(np.mean(np.abs(error))), "users": len(error)}
