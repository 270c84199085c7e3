"""Build the default hybrid retriever: tune its blend weights on the validation split only
and cache them beside the item embeddings, keyed by the data and model fingerprints.

    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig
    retriever = build_default_retriever(dataset, split)        # tunes once, then loads
    retriever = build_default_retriever(dataset, split, sequential=SequentialConfig())  # + the SASRec-class model
    retriever.retrieve(["50", "181"], k=20, query="something funny")
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recommender.data import Dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.metrics import full_ranks, hit_rate, ndcg
from recommender.protocols import Encoder
from recommender.retrieval.base import (
    BaseRetriever,
    CooccurrenceRetriever,
    EmbeddingRetriever,
    HybridRetriever,
    PopularityRetriever,
    weighted_sum,
)

if TYPE_CHECKING:
    from recommender.retrieval.sequential import SequentialConfig

WEIGHT_STEP = 0.1
TUNE_METRIC = "HR@20"
MAX_GRID = 300  # weightings tried exhaustively; above this (5 components: 1,001) a coarse grid + coordinate ascent
COARSE_FACTOR = 2  # the coarse grid's step is this many fine steps (5 components at 0.2: 126 weightings)


def ranking_metrics(ranks: np.ndarray) -> dict[str, float]:
    return {
        "HR@10": hit_rate(ranks, 10),
        "HR@20": hit_rate(ranks, 20),
        "HR@50": hit_rate(ranks, 50),
        "NDCG@10": ndcg(ranks, 10),
        "NDCG@20": ndcg(ranks, 20),
    }


def weight_grid(names: Sequence[str], step: float = WEIGHT_STEP) -> list[dict[str, float]]:
    """All weightings of ``names`` on the simplex with the given step."""
    units = round(1 / step)
    grid = []
    for combo in itertools.product(range(units + 1), repeat=len(names)):
        if sum(combo) == units:
            grid.append({name: round(c * step, 6) for name, c in zip(names, combo)})
    return grid


def tune_weights(
    hybrid: HybridRetriever, split: LeaveOneOutSplit, metric: str = TUNE_METRIC, step: float = WEIGHT_STEP
) -> tuple[dict[str, float], dict[str, float]]:
    """Blend weights tuned on the VALIDATION split; returns (weights, their metrics).

    Every weighting of the ``step`` grid is tried when there are at most ``MAX_GRID`` of them
    (3 components: 66); otherwise the best of a ``COARSE_FACTOR * step`` grid is refined by coordinate
    ascent, moving ``step`` of weight from one component to another while that helps.
    Ties prefer higher NDCG@10, then the earlier weighting.
    """
    cases = split.cases("valid")
    parts = hybrid.component_scores([case.history for case in cases])  # name -> [B, N]
    names = list(hybrid.components)
    seen: dict[tuple[float, ...], tuple[tuple[float, float], dict[str, float]]] = {}

    def evaluate(weights: dict[str, float]) -> tuple[tuple[float, float], dict[str, float]]:
        point = tuple(weights[name] for name in names)
        if point not in seen:
            report = ranking_metrics(full_ranks(weighted_sum(parts, weights, len(cases), len(hybrid.catalog)), cases))
            seen[point] = ((report[metric], report["NDCG@10"]), report)
        return seen[point]

    grid = weight_grid(names, step)
    if len(grid) <= MAX_GRID:
        return _best(grid, evaluate)
    start, _ = _best(weight_grid(names, COARSE_FACTOR * step), evaluate)
    tuned = coordinate_ascent(start, evaluate, step)
    return tuned, evaluate(tuned)[1]


def _best(grid: list[dict[str, float]], evaluate: Callable) -> tuple[dict[str, float], dict[str, float]]:
    best = None
    for weights in grid:
        key, report = evaluate(weights)
        if best is None or key > best[0]:
            best = (key, weights, report)
    assert best is not None
    return best[1], best[2]


def coordinate_ascent(weights: dict[str, float], evaluate: Callable, step: float = WEIGHT_STEP) -> dict[str, float]:
    """Move ``step`` of weight between two components while the best such move improves
    ``evaluate(weights)[0]``; weights stay on the simplex and non-negative."""
    units = {name: round(value / step) for name, value in weights.items()}
    current = evaluate(weights)[0]
    while True:
        moves = []
        for source in units:
            for target in units:
                if source != target and units[source] > 0:
                    moved = {**units, source: units[source] - 1, target: units[target] + 1}
                    candidate = {name: round(count * step, 6) for name, count in moved.items()}
                    moves.append((evaluate(candidate)[0], moved))
        best_key, best_units = max(moves, key=lambda move: move[0]) if moves else (current, units)
        if best_key <= current:
            return {name: round(count * step, 6) for name, count in units.items()}
        current, units = best_key, best_units


def build_components(
    dataset: Dataset,
    split: LeaveOneOutSplit,
    encoder: Encoder | None = None,
    cache_dir: str | Path | None = None,
    sequential: SequentialConfig | None = None,
) -> dict[str, BaseRetriever]:
    """Popularity, co-occurrence (train split only) and embedding retrievers for ``dataset``,
    plus the sequential model (trained on the train split once, then loaded from ``cache_dir``)
    when ``sequential`` gives its config."""
    from recommender.retrieval.embeddings import SentenceEncoder, item_embeddings

    catalog = dataset.catalog
    encoder = encoder if encoder is not None else SentenceEncoder()
    popularity = split.item_popularity(len(catalog))
    components: dict[str, BaseRetriever] = {
        "pop": PopularityRetriever(catalog, popularity),
        "cooccurrence": CooccurrenceRetriever(catalog, split.train_sequences()),
        "embedding": EmbeddingRetriever(
            catalog, item_embeddings(catalog, encoder, cache_dir), encoder=encoder, popularity=popularity
        ),
    }
    if sequential is not None:
        from recommender.retrieval.sequential import load_or_train

        components["sequential"] = load_or_train(dataset, split, sequential, cache_dir)
    return components


def build_default_retriever(
    dataset: Dataset,
    split: LeaveOneOutSplit | None = None,
    encoder: Encoder | None = None,
    cache_dir: str | Path | None = None,
    retune: bool = False,
    sequential: SequentialConfig | None = None,
) -> HybridRetriever:
    """The hybrid retriever the pipeline serves: pop + co-occurrence + embeddings (+ the
    sequential model when ``sequential`` gives its config, e.g. ``SequentialConfig()``).

    Weights are tuned on the validation split the first time and stored as JSON in
    ``cache_dir`` under a key of the data fingerprint, the encoder and every component's
    config, so later calls only load the cached embeddings, model and weights.
    ``retune=True`` ignores the stored weights.
    """
    from recommender.retrieval.embeddings import default_cache_dir, encoder_name

    split = split if split is not None else LeaveOneOutSplit(dataset.interactions)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    components = build_components(dataset, split, encoder, folder, sequential)
    text = components["embedding"]
    assert isinstance(text, EmbeddingRetriever)
    hybrid = HybridRetriever(dataset.catalog, components, {"cooccurrence": 1.0}, text=text)
    configs = {name: retriever.config() for name, retriever in sorted(components.items())}
    key = f"{dataset.fingerprint()}|{encoder_name(text.encoder)}|{configs}|{TUNE_METRIC}|{WEIGHT_STEP}"
    if len(weight_grid(list(components))) > MAX_GRID:
        key += f"|coarse{COARSE_FACTOR}+coordinate"  # the 3-component key (exhaustive grid) is unchanged
    path = folder / f"hybrid-weights-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    stored = _read_weights(path, key)
    if stored is None or retune:
        weights, report = tune_weights(hybrid, split)
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "weights": weights, "valid": report}, indent=1))
        stored = weights
    hybrid.weights = stored
    return hybrid


def _read_weights(path: Path, key: str) -> dict[str, float] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record["weights"] if record.get("key") == key else None
