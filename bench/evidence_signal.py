"""How much a reranker of the retriever's top-N can gain from each kind of evidence (no LLM).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.evidence_signal --candidates 20

Before asking a 135M model to learn from a number in its prompt, check that the number carries
information beyond the retriever's order. For each feature set, a conditional-logit model
(softmax over one list's candidates, a few weights) is fitted on TRAIN-split prefixes (the
user's later items removed from the co-occurrence counts, as in fine-tuning) and scored on
validation users: the retriever's top-N is reordered by the model, the rest keeps its rank
(the two-stage pipeline), full ranking with the history masked. Test users are never read.

Features per candidate (all computed by ``recommender.llm.evidence`` or from the catalogue):
- ``order``: position in the retriever's list (0 = best) and the z-scored retrieval score;
- ``co-watch count``: the evidence of rank_evidence-v1, how many of the last 10 history items
  have the candidate among their 50 nearest co-occurrence neighbours;
- ``recent digit``: the 0-9 digit of rank_evidence-v2 (``recent_strength``), co-occurrence
  with the last 3 items scaled within the list;
- ``genre overlap``: share of the candidate's genres found in the last 3 history items.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np

from recommender.data.loaders import load_dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.metrics import hit_rate, ndcg, target_rank, top_k
from recommender.llm.evidence import PrefixScorer, recent_strength
from recommender.retrieval.hybrid import build_default_retriever

FEATURE_SETS = {
    "retriever order only": ("position", "score"),
    "+ co-watch count (rank_evidence-v1)": ("position", "score", "cowatch"),
    "+ recent digit (rank_evidence-v2)": ("position", "score", "recent"),
    "+ recent digit + genre overlap": ("position", "score", "recent", "genres"),
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k", help="dataset name or folder (load_dataset)")
    parser.add_argument("--candidates", type=int, default=20, help="retriever top-N that is reordered")
    parser.add_argument("--prefixes", type=int, default=8, help="train prefixes sampled per user for fitting")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prefix sample")
    return parser


def cowatch_counts(sims: np.ndarray, seen: np.ndarray, candidates: np.ndarray, neighbours: int = 50) -> np.ndarray:
    """[K] rank_evidence-v1's count: recent history items having the candidate among their
    ``neighbours`` nearest unseen items by co-occurrence."""
    if len(sims) == 0:
        return np.zeros(len(candidates))
    masked = sims.copy()
    masked[:, seen] = -np.inf
    threshold = -np.partition(-masked, neighbours - 1, axis=1)[:, neighbours - 1 : neighbours]
    return ((masked >= threshold) & (masked > 0))[:, candidates].sum(axis=0).astype(np.float64)


def features(genres: np.ndarray, history: np.ndarray, candidates: np.ndarray, scores, sims) -> dict[str, np.ndarray]:
    """Every feature of every candidate, each [K]."""
    shown = scores[candidates]
    recent_genres = genres[history[-3:]].max(axis=0)  # [G] genres of the last 3 items
    return {
        "position": np.arange(len(candidates)) / len(candidates),
        "score": (shown - shown.mean()) / (shown.std() + 1e-9),
        "cowatch": cowatch_counts(sims, history, candidates) / 10.0,
        "recent": recent_strength(sims, candidates) / 9.0,
        "genres": genres[candidates] @ recent_genres / np.maximum(genres[candidates].sum(axis=1), 1.0),
    }


def fit_conditional_logit(lists: list[np.ndarray], targets: np.ndarray, steps: int = 600, lr: float = 0.5):
    """Weights [F] maximising the mean log-softmax of each list's target (full-batch gradient
    ascent; lists share one length). Returns the weights and the mean negative log-likelihood."""
    x = np.stack(lists)  # [L, K, F]
    weights = np.zeros(x.shape[2])
    rows = np.arange(len(x))
    for _ in range(steps):
        logits = x @ weights
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        gradient = (x * p[..., None]).sum(axis=1) - x[rows, targets]  # [L, F] of the NLL
        weights -= lr * gradient.mean(axis=0)
    return weights, float(-np.log(p[rows, targets]).mean())


def main(args: argparse.Namespace) -> None:
    dataset = load_dataset(args.dataset)
    split = LeaveOneOutSplit(dataset.interactions)
    scorer = PrefixScorer(build_default_retriever(dataset, split), split.train_sequences())
    names = sorted({g for item in dataset.catalog.items for g in item.genres})
    genres = np.array([[g in item.genres for g in names] for item in dataset.catalog.items], dtype=np.float64)
    k, rng = args.candidates, np.random.default_rng(args.seed)

    train_lists, train_targets = [], []
    for user in split.users:
        sequence = split.train(user)
        positions = np.arange(5, len(sequence))
        for t in rng.choice(positions, min(args.prefixes, len(positions)), replace=False) if len(positions) else ():
            history, target = sequence[:t], int(sequence[t])
            scores, sims = scorer.scores(history, user_items=sequence)
            candidates = top_k(scores, k, mask=history)
            if target in candidates:
                train_lists.append(features(genres, history, candidates, scores, sims))
                train_targets.append(int(np.flatnonzero(candidates == target)[0]))

    valid = []  # (retrieval rank, features or None when the target is outside the top-N)
    for case in split.cases("valid"):
        scores, sims = scorer.scores(case.history)
        rank = target_rank(scores, case.target, mask=case.history)
        candidates = top_k(scores, k, mask=case.history)
        valid.append((rank, features(genres, case.history, candidates, scores, sims) if rank <= k else None))

    print(
        f"{args.dataset}, top {k} reordered; fitted on {len(train_lists)} train-prefix lists "
        f"({args.prefixes} prefixes per user, seed {args.seed}, target in the top {k}); "
        f"scored on all {len(valid)} validation users; {platform.machine()} CPU\n"
    )
    print(f"| features | weights | train NLL (uniform {np.log(k):.3f}) | valid NDCG@10 | valid HR@10 |")
    print("|---|---|---:|---:|---:|")
    for label, columns in FEATURE_SETS.items():
        lists = [np.stack([f[c] for c in columns], axis=1) for f in train_lists]
        weights, nll = fit_conditional_logit(lists, np.asarray(train_targets))
        ranks = []
        for rank, f in valid:
            if f is None:
                ranks.append(rank)
                continue
            z = np.stack([f[c] for c in columns], axis=1) @ weights
            ranks.append(target_rank(z, rank - 1))  # rank - 1: the target's index in the list
        shown = ", ".join(f"{c} {w:+.2f}" for c, w in zip(columns, weights))
        print(f"| {label} | {shown} | {nll:.3f} | {ndcg(ranks, 10):.4f} | {hit_rate(ranks, 10):.4f} |")


if __name__ == "__main__":
    main(make_parser().parse_args())
