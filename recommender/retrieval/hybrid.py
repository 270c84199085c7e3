"""Build the default hybrid retriever: tune its blend weights on the validation split only
and cache them beside the item embeddings, keyed by the data and model fingerprints.

    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig
    retriever = build_default_retriever(dataset, split)        # tunes once, then loads
    retriever = build_default_retriever(dataset, split, sequential=SequentialConfig())  # + the SASRec-class model
    retriever = build_default_retriever(dataset, split, knowledge=True)  # + the knowledge graph, when the data has one
    retriever.retrieve(["50", "181"], k=20, query="something funny")
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recommender.data import Dataset
from recommender.data.split import LeaveOneOutSplit, tuning_users
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


TUNE_USERS = 2_000  # validation users the blend is tuned on: a seeded sample when there are more (ML-100k: all 943)
TUNE_SEED = 0
TUNE_BATCH = 128  # users whose full-catalogue component scores are held at once on the candidate path
DENSE_TUNE_BYTES = 256 * 2**20  # below this, [users x items] float64 per component are kept (the exact former path)
TUNE_CANDIDATES = 500  # candidate path: each component's top items per user that the blend re-ranks


def tune_weights(
    hybrid: HybridRetriever,
    split: LeaveOneOutSplit,
    metric: str = TUNE_METRIC,
    step: float = WEIGHT_STEP,
    users: int = TUNE_USERS,
    seed: int = TUNE_SEED,
) -> tuple[dict[str, float], dict[str, float]]:
    """Blend weights tuned on the VALIDATION split; returns (weights, their metrics).

    Users: ``tuning_users`` (all of them up to ``users``, else a seeded sample). Every weighting of
    the ``step`` grid is tried when there are at most ``MAX_GRID`` of them (3 components: 66);
    otherwise the best of a ``COARSE_FACTOR * step`` grid is refined by coordinate ascent, moving
    ``step`` of weight from one component to another while that helps. Ties prefer higher NDCG@10,
    then the earlier weighting.

    Ranks: exact full-catalogue ranks when [users x items x components] float64 fits in
    ``DENSE_TUNE_BYTES`` (ML-100k: the former computation, unchanged); above it, component scores
    are computed ``TUNE_BATCH`` users at a time and only each user's candidates are kept (the union
    of every component's top ``TUNE_CANDIDATES`` unseen items, plus the target): the target's rank
    among them, i.e. items outside every component's top list are taken not to beat the target.
    """
    cases = split.cases("valid", tuning_users(split, users, seed))
    names = list(hybrid.components)
    n = len(hybrid.catalog)
    if len(cases) * n * len(names) * 8 <= DENSE_TUNE_BYTES:
        parts = hybrid.component_scores([case.history for case in cases])  # name -> [B, N]

        def ranks_of(weights: dict[str, float]) -> np.ndarray:
            return full_ranks(weighted_sum(parts, weights, len(cases), n), cases)

    else:
        table = CandidateTable.build(hybrid, cases, TUNE_CANDIDATES, TUNE_BATCH)
        ranks_of = table.ranks
    seen: dict[tuple[float, ...], tuple[tuple[float, float], dict[str, float]]] = {}

    def evaluate(weights: dict[str, float]) -> tuple[tuple[float, float], dict[str, float]]:
        point = tuple(weights[name] for name in names)
        if point not in seen:
            report = ranking_metrics(ranks_of(weights))
            seen[point] = ((report[metric], report["NDCG@10"]), report)
        return seen[point]

    grid = weight_grid(names, step)
    if len(grid) <= MAX_GRID:
        return _best(grid, evaluate)
    start, _ = _best(weight_grid(names, COARSE_FACTOR * step), evaluate)
    tuned = coordinate_ascent(start, evaluate, step)
    return tuned, evaluate(tuned)[1]


class CandidateTable:
    """Standardised component scores of each user's candidates, for re-ranking under many weightings.

    ``scores`` [C, U, K] (float64), ``valid`` [U, K] (False for padding and repeated candidates),
    ``before`` [U, K] (candidate row < target row: the tie rule of ``full_ranks``); column 0 is the
    target. Built ``batch`` users at a time: at most [batch, N] per component.
    """

    def __init__(self, names: list[str], scores: np.ndarray, valid: np.ndarray, before: np.ndarray):
        self.names, self.scores, self.valid, self.before = names, scores, valid, before

    @classmethod
    def build(cls, hybrid: HybridRetriever, cases, candidates: int, batch: int) -> CandidateTable:
        names = list(hybrid.components)
        n = len(hybrid.catalog)
        per = min(candidates, n)
        width = per * len(names) + 1
        scores = np.zeros((len(names), len(cases), width))
        valid = np.zeros((len(cases), width), dtype=bool)
        before = np.zeros((len(cases), width), dtype=bool)
        for start in range(0, len(cases), batch):
            chunk = cases[start : start + batch]
            parts = hybrid.component_scores([case.history for case in chunk])  # name -> [B, N]
            targets = np.array([case.target for case in chunk], dtype=np.int64)
            seen = np.zeros((len(chunk), n), dtype=bool)
            for b, case in enumerate(chunk):
                seen[b, case.history[case.history != case.target]] = True
            columns = [targets[:, None]]
            for name in names:
                masked = np.where(seen, -np.inf, parts[name])
                if per < n:
                    columns.append(np.argpartition(-masked, per - 1, axis=1)[:, :per])
                else:
                    columns.append(np.tile(np.arange(n), (len(chunk), 1)))
            rows = np.concatenate(columns, axis=1)  # [B, K]; column 0 is the target
            order = np.argsort(rows, axis=1, kind="stable")
            ordered = np.take_along_axis(rows, order, axis=1)
            repeated = np.zeros_like(ordered, dtype=bool)
            repeated[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
            first = np.ones_like(repeated)
            np.put_along_axis(
                first, order, ~repeated, axis=1
            )  # the first copy of each row stays (the target's is column 0)
            index = slice(start, start + len(chunk))
            valid[index] = first & ~np.take_along_axis(seen, rows, axis=1)
            valid[index, 0] = False  # the target is compared with, not counted
            before[index] = rows < targets[:, None]
            for c, name in enumerate(names):
                scores[c, index] = np.take_along_axis(parts[name], rows, axis=1)
        return cls(names, scores, valid, before)

    def ranks(self, weights: dict[str, float]) -> np.ndarray:
        """[U] 1-based target ranks among the candidates under ``weights``."""
        blend = np.zeros(self.valid.shape)
        for name, weight in weights.items():  # the order and arithmetic of ``weighted_sum``
            if weight:
                blend += weight * self.scores[self.names.index(name)]
        target = blend[:, :1]  # [U, 1]
        higher = np.count_nonzero(self.valid & (blend > target), axis=1)
        tied = np.count_nonzero(self.valid & (blend == target) & self.before, axis=1)
        return higher + tied + 1


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
    knowledge: bool = False,
) -> dict[str, BaseRetriever]:
    """Popularity, co-occurrence (train split only) and embedding retrievers for ``dataset``,
    plus the sequential model (trained on the train split once, then loaded from ``cache_dir``)
    when ``sequential`` gives its config, and the knowledge-graph retriever ("knowledge") when
    ``knowledge`` is set and the dataset has a graph (``dataset.knowledge``)."""
    from recommender.retrieval.embeddings import SentenceEncoder, item_embeddings

    catalog = dataset.catalog
    encoder = encoder if encoder is not None else SentenceEncoder()
    clock = time.perf_counter()
    popularity = split.item_popularity(len(catalog))
    components: dict[str, BaseRetriever] = {"pop": PopularityRetriever(catalog, popularity)}
    seconds = {"pop": time.perf_counter() - clock}
    builders: dict[str, Callable[[], BaseRetriever]] = {
        "cooccurrence": lambda: CooccurrenceRetriever(catalog, csr=split.train_csr()),
        "embedding": lambda: EmbeddingRetriever(
            catalog, item_embeddings(catalog, encoder, cache_dir), encoder=encoder, popularity=popularity
        ),
    }
    if sequential is not None:
        from recommender.retrieval.sequential import load_or_train

        builders["sequential"] = lambda: load_or_train(dataset, split, sequential, cache_dir, encoder=encoder)
    if knowledge and dataset.knowledge is not None:
        from recommender.retrieval.knowledge import KnowledgeRetriever

        graph = dataset.knowledge
        builders["knowledge"] = lambda: KnowledgeRetriever(catalog, graph)
    for name, build in builders.items():
        clock = time.perf_counter()
        components[name] = build()
        seconds[name] = time.perf_counter() - clock
    for name, retriever in components.items():
        retriever.build_seconds = seconds[name]  # read by bench/scale.py (cached parts load in a moment)
    return components


def build_default_retriever(
    dataset: Dataset,
    split: LeaveOneOutSplit | None = None,
    encoder: Encoder | None = None,
    cache_dir: str | Path | None = None,
    retune: bool = False,
    sequential: SequentialConfig | None = None,
    knowledge: bool = False,
) -> HybridRetriever:
    """The hybrid retriever the pipeline serves: pop + co-occurrence + embeddings (+ the
    sequential model when ``sequential`` gives its config, e.g. ``SequentialConfig()``; + the
    knowledge-graph retriever when ``knowledge`` is set and the dataset has a graph: off by
    default until its value is measured, so the served blend and its cached weights are the
    former ones).

    Weights are tuned on the validation split the first time and stored as JSON in
    ``cache_dir`` under a key of the data fingerprint, the encoder and every component's
    config, so later calls only load the cached embeddings, model and weights.
    ``retune=True`` ignores the stored weights.
    """
    from recommender.retrieval.embeddings import default_cache_dir, encoder_name

    split = split if split is not None else LeaveOneOutSplit(dataset.interactions)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    components = build_components(dataset, split, encoder, folder, sequential, knowledge)
    text = components["embedding"]
    assert isinstance(text, EmbeddingRetriever)
    hybrid = HybridRetriever(dataset.catalog, components, {"cooccurrence": 1.0}, text=text)
    configs = {name: retriever.config() for name, retriever in sorted(components.items())}
    key = f"{dataset.fingerprint()}|{encoder_name(text.encoder)}|{configs}|{TUNE_METRIC}|{WEIGHT_STEP}"
    if len(weight_grid(list(components))) > MAX_GRID:
        key += f"|coarse{COARSE_FACTOR}+coordinate"  # the 3-component key (exhaustive grid) is unchanged
    if len(split.eval_users) > TUNE_USERS:  # a sample tunes: the key of datasets tuned on all users is unchanged
        key += f"|users{TUNE_USERS}|seed{TUNE_SEED}|dense{DENSE_TUNE_BYTES}|candidates{TUNE_CANDIDATES}"
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


def unseen_items(hybrid: HybridRetriever) -> np.ndarray:
    """[N] bool: items without a training event (their popularity count, which the hybrid always
    holds, is zero)."""
    return hybrid.components["pop"].counts == 0


def attach_cold_bridge(hybrid: HybridRetriever, content: np.ndarray) -> HybridRetriever:
    """Give ``hybrid`` a ``retrieval.cold.ColdItemBridge`` over ``content`` ([N, D] item vectors) for
    its ``unseen_items`` (none: no bridge); returns ``hybrid``."""
    from recommender.retrieval.cold import ColdItemBridge

    unseen = unseen_items(hybrid)
    hybrid.cold_bridge = ColdItemBridge.build(content, ~unseen) if unseen.any() else None
    return hybrid
