"""Build the default hybrid retriever: tune its blend weights on the validation split only
and cache them beside the item embeddings, keyed by the data and model fingerprints.

    from recommender.retrieval.hybrid import build_default_retriever
    retriever = build_default_retriever(dataset, split)        # tunes once, then loads
    retriever.retrieve(["50", "181"], k=20, query="something funny")
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

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
    blend,
)

WEIGHT_STEP = 0.1
TUNE_METRIC = "HR@20"


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
    """Grid-search blend weights on the VALIDATION split; returns (weights, their metrics)."""
    cases = split.cases("valid")
    parts = hybrid.component_scores([case.history for case in cases])  # name -> [B, N]
    best: tuple[tuple[float, float], dict[str, float], dict[str, float]] | None = None
    for weights in weight_grid(list(hybrid.components), step):
        ranks = full_ranks(blend(parts, weights, len(cases), len(hybrid.catalog)), cases)
        report = ranking_metrics(ranks)
        key = (report[metric], report["NDCG@10"])
        if best is None or key > best[0]:
            best = (key, weights, report)
    assert best is not None
    return best[1], best[2]


def build_components(
    dataset: Dataset, split: LeaveOneOutSplit, encoder: Encoder | None = None, cache_dir: str | Path | None = None
) -> dict[str, BaseRetriever]:
    """Popularity, co-occurrence (train split only) and embedding retrievers for ``dataset``."""
    from recommender.retrieval.embeddings import SentenceEncoder, item_embeddings

    catalog = dataset.catalog
    encoder = encoder if encoder is not None else SentenceEncoder()
    popularity = split.item_popularity(len(catalog))
    return {
        "pop": PopularityRetriever(catalog, popularity),
        "cooccurrence": CooccurrenceRetriever(catalog, split.train_sequences()),
        "embedding": EmbeddingRetriever(
            catalog, item_embeddings(catalog, encoder, cache_dir), encoder=encoder, popularity=popularity
        ),
    }


def build_default_retriever(
    dataset: Dataset,
    split: LeaveOneOutSplit | None = None,
    encoder: Encoder | None = None,
    cache_dir: str | Path | None = None,
    retune: bool = False,
) -> HybridRetriever:
    """The hybrid retriever the pipeline serves: pop + co-occurrence + embeddings.

    Weights are tuned on the validation split the first time and stored as JSON in
    ``cache_dir`` under a key of the data fingerprint and the encoder, so later calls only
    load the cached embeddings and weights. ``retune=True`` ignores the stored weights.
    """
    from recommender.retrieval.embeddings import default_cache_dir, encoder_name

    split = split if split is not None else LeaveOneOutSplit(dataset.interactions)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    components = build_components(dataset, split, encoder, folder)
    text = components["embedding"]
    assert isinstance(text, EmbeddingRetriever)
    hybrid = HybridRetriever(dataset.catalog, components, {"cooccurrence": 1.0}, text=text)
    configs = {name: retriever.config() for name, retriever in sorted(components.items())}
    key = f"{dataset.fingerprint()}|{encoder_name(text.encoder)}|{configs}|{TUNE_METRIC}|{WEIGHT_STEP}"
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
