"""How much a reranker of the first stage's top-N can gain from each kind of evidence (no LLM).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.evidence_signal --first-stage hybrid+sequential
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.evidence_signal --first-stage hybrid --candidates 20

Before asking a 135M model to learn from a number in its prompt, check that the number carries
information beyond the first stage's order. For each feature set a conditional-logit model
(softmax over one list's candidates, a few weights) is fitted on training lists and scored on
all validation users: the first stage's top-N is reordered by the model, the rest keeps its rank
(the two-stage pipeline), full ranking with the history masked, with a paired bootstrap interval
against the first stage's own order. Test users are never read. The fitted model is the ceiling
of what a prompt line could teach an LLM with these numbers, if the LLM learned them perfectly.

Training lists are built the way the adapters' examples are:
- ``hybrid`` (pop + co-occurrence + embeddings): prefixes of train sequences, scored by
  ``PrefixScorer`` with the user's own later items removed from the co-occurrence counts;
- ``hybrid+sequential`` (the served first stage): the user's last ``--held-out`` train events,
  ranked by a "shadow" first stage built and cached without them (a sequential model has already
  seen every train prefix, so prefixes would leak), exactly as ``finetune`` with ``examples:
  held_out`` does. Its components' own scores and ranks are features too.

Features per candidate (``recent`` by ``recommender.llm.evidence``, the rest from the catalogue
and the first stage):
- ``position`` and ``score``: place in the first stage's list (0 = best) and its z-scored score;
- ``cowatch``: rank_evidence-v1's count, how many of the last 10 history items have the
  candidate among their 50 nearest co-occurrence neighbours (prefix lists only);
- ``recent``: the 0-9 digit of rank_evidence-v2/v3, co-occurrence with the last 3 items;
- ``genres`` / ``genres_all``: share of the candidate's genres found in the last 3 / all history items;
- ``popularity``: z-scored log train count; ``year gap``: distance to the median year of the last 10;
- ``<component>``: each first-stage component's z-score within the list, and
  ``sequential rank`` / ``co-occurrence rank``: the candidate's place by that component alone.
"""

from __future__ import annotations

import argparse
import platform
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from recommender.data.loaders import load_dataset
from recommender.data.split import EvalCase, LeaveOneOutSplit, without_last_events
from recommender.evaluation.metrics import hit_rate, ndcg, paired_ndcg_difference, target_rank, top_k
from recommender.llm.evidence import CowatchEvidence, PrefixScorer, recent_strength
from recommender.retrieval.hybrid import build_default_retriever
from recommender.retrieval.sequential import SequentialConfig

FEATURE_SETS = {
    "first-stage order only": ("position", "score"),
    "+ co-watch count (rank_evidence-v1)": ("position", "score", "cowatch"),
    "+ recent digit (rank_evidence-v2/v3)": ("position", "score", "recent"),
    "+ recent digit + genre overlap": ("position", "score", "recent", "genres"),
    "+ genre overlap with the whole history": ("position", "score", "genres_all"),
    "+ popularity": ("position", "score", "popularity"),
    "+ year gap": ("position", "score", "year gap"),
    "+ each component's z-score": ("position", "score", "pop", "cooccurrence", "embedding", "sequential"),
    "+ sequential and co-occurrence ranks": ("position", "score", "sequential rank", "cooccurrence rank"),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k", help="dataset name or folder (load_dataset)")
    parser.add_argument(
        "--first-stage", default="hybrid+sequential", choices=("hybrid", "hybrid+sequential"), help="list reordered"
    )
    parser.add_argument("--candidates", type=int, default=20, help="first-stage top-N that is reordered")
    parser.add_argument("--prefixes", type=int, default=8, help="hybrid: train prefixes sampled per user for fitting")
    parser.add_argument(
        "--held-out", type=int, default=6, help="hybrid+sequential: last train events per user fitted on"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the prefix sample and of the bootstrap")
    return parser


@dataclass
class Lists:
    """Feature lists of the cases whose target the first stage retrieved in its top-N, and the
    first stage's full-catalogue rank of every case's target."""

    k: int  # list length
    features: list[dict[str, np.ndarray]] = field(default_factory=list)  # one per retrieved case, each [K]
    targets: list[int] = field(default_factory=list)  # index of the target in its list
    ranks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # [cases] 1-based


class CatalogueFeatures:
    """Evidence from the items themselves: genres, popularity and year."""

    def __init__(self, dataset, split: LeaveOneOutSplit):
        items = dataset.catalog.items
        names = sorted({genre for item in items for genre in item.genres})
        self.genres = np.array([[g in item.genres for g in names] for item in items], dtype=np.float64)  # [N, G]
        self.log_counts = np.log1p(split.item_popularity(len(items)))  # [N]
        self.years = np.array([item.year or 0 for item in items], dtype=np.float64)  # [N], 0 = unknown

    def of(self, history: np.ndarray, candidates: np.ndarray) -> dict[str, np.ndarray]:
        shown = self.genres[candidates]  # [K, G]
        per_item = np.maximum(shown.sum(axis=1), 1.0)
        years = self.years[history[-10:]]
        years = years[years > 0]
        gap = np.abs(self.years[candidates] - np.median(years)) / 20.0 if len(years) else np.zeros(len(candidates))
        return {
            "genres": shown @ self.genres[history[-3:]].max(axis=0) / per_item,
            "genres_all": shown @ self.genres[history].mean(axis=0) / per_item,
            "popularity": zscore(self.log_counts[candidates]),
            "year gap": gap,
        }


def zscore(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() + 1e-9)


def places(values: np.ndarray) -> np.ndarray:
    """[K] each value's place when sorted best first, scaled to [0, 1)."""
    return np.argsort(np.argsort(-values, kind="stable"), kind="stable") / len(values)


def order_features(scores: np.ndarray, candidates: np.ndarray) -> dict[str, np.ndarray]:
    return {"position": np.arange(len(candidates)) / len(candidates), "score": zscore(scores[candidates])}


def cowatch_counts(sims: np.ndarray, seen: np.ndarray, candidates: np.ndarray, neighbours: int = 50) -> np.ndarray:
    """[K] rank_evidence-v1's count: recent history items having the candidate among their
    ``neighbours`` nearest unseen items by co-occurrence."""
    if len(sims) == 0:
        return np.zeros(len(candidates))
    masked = sims.copy()
    masked[:, seen] = -np.inf
    threshold = -np.partition(-masked, neighbours - 1, axis=1)[:, neighbours - 1 : neighbours]
    return ((masked >= threshold) & (masked > 0))[:, candidates].sum(axis=0).astype(np.float64)


def prefix_lists(
    scorer: PrefixScorer, catalogue: CatalogueFeatures, cases: list[EvalCase], k: int, train_rows=None
) -> Lists:
    """Lists scored by ``PrefixScorer`` (hybrid without a sequential model); ``train_rows`` gives
    each case's whole train sequence, whose later items are removed from the counts."""
    out, ranks = Lists(k), []
    for case in cases:
        history = np.asarray(case.history)
        scores, sims = scorer.scores(history, user_items=None if train_rows is None else train_rows[case.user])
        ranks.append(target_rank(scores, case.target, mask=history))
        if ranks[-1] <= k:
            candidates = top_k(scores, k, mask=history)
            out.features.append(
                {
                    **order_features(scores, candidates),
                    "cowatch": cowatch_counts(sims, history, candidates) / 10.0,
                    "recent": recent_strength(sims, candidates) / 9.0,
                    **catalogue.of(history, candidates),
                }
            )
            out.targets.append(ranks[-1] - 1)
    out.ranks = np.asarray(ranks)
    return out


def served_lists(stage, split, catalogue: CatalogueFeatures, cases: list[EvalCase], k: int, batch: int = 256) -> Lists:
    """Lists ranked by a served first stage (any components), with each component's scores."""
    evidence = CowatchEvidence.for_retriever(stage, split)
    out, ranks = Lists(k), []
    for start in range(0, len(cases), batch):
        chunk = cases[start : start + batch]
        histories = [np.asarray(case.history) for case in chunk]
        parts = {name: component.standardised_batch(histories) for name, component in stage.components.items()}
        totals = stage.score_batch(histories)  # [B, N]
        for row, (case, history) in enumerate(zip(chunk, histories)):
            ranks.append(target_rank(totals[row], case.target, mask=history))
            if ranks[-1] > k:
                continue
            candidates = top_k(totals[row], k, mask=history)
            features = {
                **order_features(totals[row], candidates),
                "recent": evidence.recent(history, candidates) / 9.0,
                **catalogue.of(history, candidates),
            }
            for name, part in parts.items():
                features[name] = zscore(part[row][candidates])
                features[f"{name} rank"] = places(part[row][candidates])
            out.features.append(features)
            out.targets.append(ranks[-1] - 1)
    out.ranks = np.asarray(ranks)
    return out


def prefix_training_lists(args, split, scorer: PrefixScorer, catalogue: CatalogueFeatures) -> tuple[Lists, str]:
    """Lists at sampled prefixes of train sequences (never a validation or test event), and a sentence
    saying how they were made."""
    rng = np.random.default_rng(args.seed)
    cases = []
    for user in split.users:
        sequence = split.train(user)
        positions = np.arange(5, len(sequence))
        for t in rng.choice(positions, min(args.prefixes, len(positions)), replace=False) if len(positions) else ():
            cases.append(EvalCase(user, sequence[:t], int(sequence[t])))
    lists = prefix_lists(scorer, catalogue, cases, args.candidates, train_rows=split.train_sequences())
    return lists, f"{len(lists.targets)} train-prefix lists ({args.prefixes} prefixes per user, seed {args.seed})"


def held_out_training_lists(args, dataset, split) -> tuple[Lists, str]:
    """Lists at each user's last ``--held-out`` train events, ranked by a shadow first stage built
    without them, and a sentence saying how they were made."""
    from recommender.finetune.examples import held_out_cases

    shadow = without_last_events(dataset, args.held_out + 2)
    shadow_split = LeaveOneOutSplit(shadow.interactions)
    stage = build_default_retriever(shadow, shadow_split, sequential=SequentialConfig())
    # Popularity from the shadow's own counts: the full split's would count each target once more.
    catalogue = CatalogueFeatures(dataset, shadow_split)
    lists = served_lists(stage, shadow_split, catalogue, held_out_cases(split, args.held_out), args.candidates)
    return lists, (
        f"{len(lists.targets)} lists at each user's last {args.held_out} train events, ranked by a shadow first stage "
        "built without them (as `finetune` with `examples: held_out`)"
    )


def fit_conditional_logit(lists: list[np.ndarray], targets: np.ndarray, tolerance: float = 1e-8):
    """Weights [F] minimising the mean negative log-softmax of each list's target (lists share one
    length). The objective is convex, so L-BFGS with the exact gradient reaches its minimum; a fit
    that stops short raises instead of being read as a ceiling. Returns the weights and the NLL."""
    x = np.stack(lists)  # [L, K, F]
    rows = np.arange(len(x))

    def nll_and_gradient(weights: np.ndarray) -> tuple[float, np.ndarray]:
        logits = x @ weights  # [L, K]
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        p = np.exp(log_p)
        gradient = (x * p[..., None]).sum(axis=1) - x[rows, targets]  # [L, F]
        return float(-log_p[rows, targets].mean()), gradient.mean(axis=0)

    fit = optimize.minimize(
        nll_and_gradient, np.zeros(x.shape[2]), jac=True, method="L-BFGS-B",
        options={"gtol": tolerance, "maxiter": 10_000},
    )  # fmt: skip
    if not fit.success:
        raise RuntimeError(f"the conditional logit did not converge: {fit.message}")
    return fit.x, float(fit.fun)


def reranked(valid: Lists, columns: tuple[str, ...], weights: np.ndarray) -> np.ndarray:
    """[cases] full ranks after reordering each retrieved list by the fitted model."""
    ranks = valid.ranks.copy()
    for i, features, target in zip(np.flatnonzero(valid.ranks <= valid.k), valid.features, valid.targets):
        ranks[i] = target_rank(np.stack([features[c] for c in columns], axis=1) @ weights, target)
    return ranks


def main(args: argparse.Namespace) -> None:
    dataset = load_dataset(args.dataset)
    split = LeaveOneOutSplit(dataset.interactions)
    catalogue = CatalogueFeatures(dataset, split)
    k = args.candidates
    if args.first_stage == "hybrid":
        scorer = PrefixScorer(build_default_retriever(dataset, split), split.train_sequences())  # built once
        train, how = prefix_training_lists(args, split, scorer, catalogue)
        valid = prefix_lists(scorer, catalogue, split.cases("valid"), k)
    else:
        train, how = held_out_training_lists(args, dataset, split)
        stage = build_default_retriever(dataset, split, sequential=SequentialConfig())
        valid = served_lists(stage, split, catalogue, split.cases("valid"), k)

    print(
        f"{args.dataset}, first stage {args.first_stage}, its top {k} reordered; fitted on {how}, target in the "
        f"top {k}; scored on all {len(valid.ranks)} validation users (the target is in the top {k} for "
        f"{len(valid.targets)}); paired bootstrap of 2,000 resamples, seed {args.seed}; {platform.machine()} CPU\n"
    )
    print(f"first-stage order: NDCG@10 {ndcg(valid.ranks, 10):.4f}, HR@10 {hit_rate(valid.ranks, 10):.4f}\n")
    print(
        f"| features | weights | train NLL (uniform {np.log(k):.3f}) | valid NDCG@10 | valid HR@10 "
        "| minus first-stage order [95% CI] |"
    )
    print("|---|---|---:|---:|---:|---|")
    available = tuple(train.features[0])
    for label, columns in [*FEATURE_SETS.items(), ("every feature at once", available)]:
        if not set(columns) <= set(available):
            continue
        lists = [np.stack([f[c] for c in columns], axis=1) for f in train.features]
        weights, nll = fit_conditional_logit(lists, np.asarray(train.targets))
        ranks = reranked(valid, columns, weights)
        paired = paired_ndcg_difference(ranks, valid.ranks, seed=args.seed)
        shown = ", ".join(f"{c} {w:+.2f}" for c, w in zip(columns, weights))
        print(
            f"| {label} | {shown} | {nll:.3f} | {ndcg(ranks, 10):.4f} | {hit_rate(ranks, 10):.4f} | "
            f"{paired['difference']:+.4f} [{paired['ci_low']:+.4f}, {paired['ci_high']:+.4f}] |"
        )


if __name__ == "__main__":
    main(make_parser().parse_args())
