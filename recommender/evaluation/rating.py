"""Rating prediction, evaluated: every baseline and every LLM row on the same rated events.

    recommender evaluate --task rating --split test --output runs/rating

Each evaluated user contributes one event: their validation event (``--split valid``) or their
test event (``--split test``) with its rating. A baseline learns from every event before the
evaluated ones: the train events of all users for validation, train + validation events for test.
The rows:

- ``global_mean``, ``user_mean``, ``item_mean`` (an item never rated falls back to the global mean);
- ``baseline_only``: user + item biases (scikit-surprise ``BaselineOnly``, its default ALS options);
- ``svd``: scikit-surprise ``SVD`` (biased matrix factorisation, SGD), seeded; its factors, epochs,
  learning rate and regularisation are picked by validation RMSE on a small grid (fit on the train
  events), then refit with those settings on the events before the evaluated ones (never tuned on test);
- the LLM rows (``recommender.commands.evaluate``): the rating prompt read as an expected value.

Every LLM row is compared user by user with SVD: ``paired_rmse_difference`` resamples users and
reports RMSE(LLM) - RMSE(SVD) with a 95% paired bootstrap interval (negative = the LLM is better).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.data.split import EvalCase, LeaveOneOutSplit
from recommender.evaluation.bootstrap import percentile_interval, resampled_means

# A first grid (factors 10-100, epochs 20-40, lr 0.005-0.01, reg 0.02-0.1) chose its corner
# (10 factors, 40 epochs, lr 0.01, reg 0.1), so this one reaches past it on every side.
SVD_GRID: dict[str, tuple] = {
    "n_factors": (5, 10, 50),
    "n_epochs": (20, 40),
    "lr_all": (0.005, 0.01, 0.02),
    "reg_all": (0.05, 0.1, 0.2),
}
BASELINES = ("global_mean", "user_mean", "item_mean", "baseline_only", "svd")


@dataclass(frozen=True)
class RatedEvents:
    """Rating events as parallel arrays."""

    users: np.ndarray  # [E] user ids (str)
    items: np.ndarray  # [E] catalogue rows
    ratings: np.ndarray  # [E] float64

    @classmethod
    def of_cases(cls, cases: Sequence[EvalCase]) -> RatedEvents:
        if any(case.target_rating is None for case in cases):
            raise ValueError("rating evaluation needs rated events; this dataset has no rating column.")
        return cls(
            np.array([c.user for c in cases], dtype=object),
            np.array([c.target for c in cases], dtype=np.int64),
            np.array([c.target_rating for c in cases], dtype=np.float64),
        )


def fit_events(split: LeaveOneOutSplit, which: str) -> RatedEvents:
    """Events a model may learn from before predicting ``which`` ('valid' or 'test') events:
    every user's train events, plus their validation event for 'test'."""
    if which not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {which!r}.")
    users, items, ratings = [], [], []
    evaluable = set(split.eval_users)
    for user in split.users:
        if user not in split.ratings:
            continue
        end = len(split.train(user))
        if which == "test" and user in evaluable:
            end = len(split.sequences[user]) - 1
        users.append(np.full(end, user, dtype=object))
        items.append(split.sequences[user][:end])
        ratings.append(split.ratings[user][:end])
    if not items:
        raise ValueError("rating evaluation needs rated events; this dataset has no rating column.")
    return RatedEvents(np.concatenate(users), np.concatenate(items).astype(np.int64), np.concatenate(ratings))


def mean_predictions(fit: RatedEvents, events: RatedEvents) -> dict[str, np.ndarray]:
    """Global, user and item mean predictions of ``events`` from ``fit`` ([E] each)."""
    mu = float(fit.ratings.mean())
    sums: dict = {}
    for key, value in zip(fit.users, fit.ratings):
        total, count = sums.get(key, (0.0, 0))
        sums[key] = (total + value, count + 1)
    n = int(max(fit.items.max(), events.items.max())) + 1
    item_counts = np.bincount(fit.items, minlength=n)
    item_sums = np.bincount(fit.items, weights=fit.ratings, minlength=n)
    user_mean = [sums[u][0] / sums[u][1] if u in sums else mu for u in events.users]
    item_mean = [item_sums[i] / item_counts[i] if item_counts[i] else mu for i in events.items]
    return {
        "global_mean": np.full(len(events.items), mu),
        "user_mean": np.array(user_mean, dtype=np.float64),
        "item_mean": np.array(item_mean, dtype=np.float64),
    }


def _surprise():
    try:
        import surprise
    except ImportError:
        raise ImportError(
            "the rating baselines need scikit-surprise: pip install 'llm-recommender[baselines]'."
        ) from None
    return surprise


def surprise_fit(name: str, fit: RatedEvents, params: dict | None = None, seed: int = 0):
    """A fitted scikit-surprise ``BaselineOnly`` (``name='baseline_only'``) or ``SVD``."""
    import pandas as pd

    surprise = _surprise()
    frame = pd.DataFrame({"user": fit.users.astype(str), "item": fit.items.astype(str), "rating": fit.ratings})
    data = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5)))
    trainset = data.build_full_trainset()
    if name == "baseline_only":
        algo = surprise.BaselineOnly(verbose=False)
    elif name == "svd":
        algo = surprise.SVD(random_state=seed, **(params or {}))
    else:
        raise ValueError(f"unknown surprise model {name!r}.")
    return algo.fit(trainset)


def surprise_predict(algo, events: RatedEvents) -> np.ndarray:
    """[E] predictions (surprise clips them to the rating scale; unknown users/items get the global mean)."""
    return np.array([algo.predict(str(u), str(i)).est for u, i in zip(events.users, events.items)], dtype=np.float64)


def rmse(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(truth)) ** 2)))


def tune_svd(split: LeaveOneOutSplit, seed: int = 0, grid: dict[str, tuple] = SVD_GRID) -> tuple[dict, list[dict]]:
    """SVD settings with the lowest RMSE on every evaluable user's VALIDATION event, each fitted
    on the train events. Returns the best settings and every tried row (settings + RMSE)."""
    fit, valid = fit_events(split, "valid"), RatedEvents.of_cases(split.cases("valid"))
    tried = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        algo = surprise_fit("svd", fit, params, seed)
        tried.append({**params, "valid_RMSE": rmse(surprise_predict(algo, valid), valid.ratings)})
    best = min(tried, key=lambda row: row["valid_RMSE"])
    return {key: best[key] for key in grid}, tried


def baseline_predictions(
    split: LeaveOneOutSplit, which: str, events: RatedEvents, svd_params: dict, seed: int = 0
) -> dict[str, np.ndarray]:
    """[E] predictions of every baseline for ``events`` of split ``which``, fitted on the events before them."""
    fit = fit_events(split, which)
    out = mean_predictions(fit, events)
    out["baseline_only"] = surprise_predict(surprise_fit("baseline_only", fit, seed=seed), events)
    out["svd"] = surprise_predict(surprise_fit("svd", fit, svd_params, seed), events)
    return out


def tune_blend(llm: np.ndarray, reference: np.ndarray, truth: np.ndarray, steps: int = 21) -> tuple[float, float]:
    """The weight w in [0, 1] (grid of ``steps``) minimising RMSE of w * llm + (1 - w) * reference
    on VALIDATION events, and that RMSE."""
    weights = np.linspace(0.0, 1.0, steps)
    errors = [rmse(w * llm + (1 - w) * reference, truth) for w in weights]
    best = int(np.argmin(errors))
    return float(weights[best]), float(errors[best])


def paired_rmse_difference(
    predicted: np.ndarray, reference: np.ndarray, truth: np.ndarray, resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """RMSE of ``predicted`` minus RMSE of ``reference`` on the SAME users, with a 95% paired
    bootstrap interval (users resampled with replacement; both RMSEs on each resample, from the
    per-user squared errors). ``wins`` / ``losses``: users with a smaller / larger absolute error."""
    truth = np.asarray(truth, dtype=np.float64)
    a = (np.asarray(predicted, dtype=np.float64) - truth) ** 2  # [U]
    b = (np.asarray(reference, dtype=np.float64) - truth) ** 2  # [U]
    if len(a) != len(b) or not len(a):
        raise ValueError(f"paired predictions need the same non-empty users: {len(a)} vs {len(b)}")
    means = resampled_means(np.stack([a, b], axis=1), resamples, seed)  # [R, 2], paired resamples
    low, high = percentile_interval(np.sqrt(means[:, 0]) - np.sqrt(means[:, 1]))
    return {
        "difference": float(np.sqrt(a.mean()) - np.sqrt(b.mean())),
        "ci_low": low,
        "ci_high": high,
        "wins": int((a < b).sum()),
        "losses": int((a > b).sum()),
        "users": len(a),
    }


def rating_table(results: dict[str, dict], paired: Sequence[dict], header: dict) -> str:
    """Markdown: one RMSE / MAE row per method, then the paired differences against SVD."""
    lines = [" · ".join(f"{key}: {value}" for key, value in header.items()), ""]
    lines += ["| method | RMSE | MAE | users |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {m} | {r['RMSE']:.4f} | {r['MAE']:.4f} | {r['users']} |" for m, r in results.items()]
    if paired:
        lines += ["", "Paired RMSE differences on the same users (95% paired bootstrap interval, 2,000 resamples):"]
        lines += ["", "| method | minus | RMSE difference | 95% interval | users better / worse |"]
        lines += ["| --- | --- | ---: | ---: | ---: |"]
        for row in paired:
            interval = f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
            lines.append(
                f"| {row['method']} | {row['reference']} | {row['difference']:+.4f} | {interval} "
                f"| {row['wins']} / {row['losses']} |"
            )
    return "\n".join(lines) + "\n"


__all__ = [
    "BASELINES",
    "SVD_GRID",
    "RatedEvents",
    "baseline_predictions",
    "fit_events",
    "mean_predictions",
    "paired_rmse_difference",
    "rating_table",
    "rmse",
    "surprise_fit",
    "surprise_predict",
    "tune_blend",
    "tune_svd",
]
