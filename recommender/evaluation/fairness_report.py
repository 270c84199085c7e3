"""Write the fairness report of one evaluation run: per-group tables with intervals (too-small
groups flagged), each method's paired effect per group against its reference, the item-side
table, and a plot of NDCG@10 per group, as ``fairness.md``, ``fairness.json``, ``fairness.png``.

    recommender evaluate --split test --report fairness --output runs/eval-test
    HF_HUB_OFFLINE=1 .venv/bin/python bench/fairness.py --runs runs/eval-test   # from saved ranks and lists

The metrics are ``recommender.evaluation.fairness``; this module adds the user attributes, the
groupings of a run's users, markdown and matplotlib.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recommender.calibration import genre_matrix
from recommender.data.dataset import Dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.fairness import (
    MIN_USERS,
    Grouping,
    activity_terciles,
    adjust_over_groups,
    age_bands,
    categorical,
    group_quality,
    item_side,
    largest_gap,
    length_buckets,
    paired_by_group,
    popularity_buckets,
)

# ---------------------------------------------------------------------------------- groups of a run


def user_attributes(dataset: Dataset) -> dict[str, dict[str, str]]:
    """attribute -> {user id: value as text} of the grouping attributes the dataset's users have
    (``Dataset.users``, e.g. RecBole's ``.user``: age, gender, occupation); {} without any."""
    users = getattr(dataset, "users", None)
    if users is None:
        return {}
    out = {}
    for name in (c for c in ("gender", "age", "occupation") if c in users.columns):
        values = users.column(name)
        out[name] = {
            u: f"{v:.0f}" if isinstance(v, float) and float(v).is_integer() else str(v) for u, v in values.items()
        }
    return out


def groupings(
    users: Sequence[str], attributes: dict[str, dict[str, str]], train_events: Sequence[int], lengths: Sequence[int]
) -> list[Grouping]:
    """Gender, age band, occupation (those present in ``attributes``; missing users 'unknown'),
    activity tercile from train-event counts and history-length buckets, in ``users`` order."""
    out = []
    for name in ("gender", "age", "occupation"):
        if name not in attributes:
            continue
        values = [attributes[name].get(user, "unknown") for user in users]
        if name == "age" and all(v.isdigit() or v == "unknown" for v in values):
            out.append(age_bands([int(v) if v.isdigit() else None for v in values]))
        else:
            out.append(categorical(name, values))
    return out + [activity_terciles(train_events), length_buckets(lengths)]


# ---------------------------------------------------------------------------------- tables and plot


def _cell(value: float, interval: tuple[float, float] | None, signed: bool = False) -> str:
    """``0.1160 [0.0950, 0.1380]``, signed for differences; a flag instead of an interval for small groups."""
    form = "{:+.4f}" if signed else "{:.4f}"
    if interval is None:
        return form.format(value) + " (too few users)"
    return f"{form.format(value)} [{form.format(interval[0])}, {form.format(interval[1])}]"


def group_table(quality: dict[str, list[dict]], gaps: dict[str, dict | None], attribute: str) -> str:
    """Markdown: NDCG@10, HR@10 and the gap to the rest per method and group, then the largest gap."""
    lines = [
        f"### {attribute}",
        "",
        "| method | group | users | NDCG@10 [95%] | HR@10 [95%] | NDCG@10 gap to the rest [95%] |",
    ]
    lines.append("| --- | --- | ---: | ---: | ---: | ---: |")
    for method, rows in quality.items():
        for r in rows:
            cells = [method, r["group"], str(r["users"]), _cell(r["ndcg"], r["ndcg_ci"]), _cell(r["hr"], r["hr_ci"])]
            lines.append("| " + " | ".join(cells + [_cell(r["gap"], r["gap_ci"], signed=True)]) + " |")
    lines += [
        "",
        f"Largest {attribute} gap: best minus worst group of >= {MIN_USERS} users (the interval is that pair's, "
        "picked for being far apart; p: permutation test of the spread against no gap between any groups):",
        "",
    ]
    lines += ["| method | best | worst | NDCG@10 gap [95%] | p (no gap) |", "| --- | --- | --- | ---: | ---: |"]
    for method, gap in gaps.items():
        if gap is not None:
            cells = [method, gap["best"], gap["worst"], _cell(gap["gap"], gap["ci"], True), f"{gap['p']:.3f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_group_table(paired: dict[str, list[dict]], attribute: str) -> str:
    """Markdown: each method's paired NDCG@10 difference to its reference within each group."""
    lines = [f"#### {attribute}: paired NDCG@10 difference within each group", ""]
    lines += [
        "| method - reference | group | users | difference [95%] | better / worse | change of the group's gap [95%] "
        "| p | q (BH, all groups) |"
    ]
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for pair, rows in paired.items():
        for r in rows:
            cells = [pair, r["group"], str(r["users"]), _cell(r["difference"], r["ci"], True)]
            cells += [f"{r['wins']} / {r['losses']}", _cell(r["gap_change"], r["gap_change_ci"], True)]
            cells += [_p(r.get("p")), _p(r.get("q"))]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def item_table(items: dict[str, dict[str, float]]) -> str:
    """Markdown: the item-side row of each method."""
    columns = ["head_share", "mid_share", "tail_share", "gini", "coverage", "miscalibration"]
    lines = ["| method | head share | mid share | tail share | Gini of exposure | coverage@10 | miscalibration (KL) |"]
    lines.append("| --- |" + " ---: |" * len(columns))
    lines += [f"| {m} | " + " | ".join(f"{row[c]:.4f}" for c in columns) + " |" for m, row in items.items()]
    return "\n".join(lines) + "\n"


def plot_groups(quality: dict[str, dict[str, list[dict]]], path: Path) -> None:
    """NDCG@10 per group (x) and method (bars) with 95% interval bars, one panel per attribute;
    groups too small for an interval are drawn pale without a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(quality)
    attributes = list(quality[methods[0]]) if methods else []
    figure, axes = plt.subplots(len(attributes), 1, figsize=(12, 3.2 * len(attributes)), squeeze=False)
    width = 0.8 / max(len(methods), 1)
    for axis, attribute in zip(axes[:, 0], attributes):
        for index, method in enumerate(methods):
            rows = quality[method][attribute]
            x = np.arange(len(rows)) + index * width
            values = np.array([r["ndcg"] for r in rows])
            low = np.array([r["ndcg"] - r["ndcg_ci"][0] if r["ndcg_ci"] else 0.0 for r in rows])
            high = np.array([r["ndcg_ci"][1] - r["ndcg"] if r["ndcg_ci"] else 0.0 for r in rows])
            bars = axis.bar(x, values, width, yerr=[low, high], capsize=2, label=method)
            for bar, r in zip(bars, rows):
                bar.set_alpha(0.35 if r["too_small"] else 1.0)
        labels = [r["group"] for r in quality[methods[0]][attribute]]
        axis.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=30, ha="right", fontsize=7)
        axis.set_ylabel("NDCG@10")
        axis.set_title(attribute, fontsize=9)
    if methods:
        axes[0, 0].legend(fontsize=7, ncol=min(len(methods), 5))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------------------- the report


def write_report(
    folder: str | Path,
    ranks: dict[str, np.ndarray],
    lists: dict[str, Sequence[Sequence[int]]],
    groups: Sequence[Grouping],
    histories: Sequence[np.ndarray],
    buckets: np.ndarray,
    genres: np.ndarray,
    pairs: dict[str, str],
    header: dict,
    seed: int = 0,
    name: str = "fairness",
) -> Path:
    """Write ``<name>.md``, ``<name>.json`` and ``<name>.png`` into ``folder``.

    Args:
        ranks: method -> [U] 1-based target ranks, users in the order of ``groups`` and ``histories``.
        lists: method -> U top-10 lists of catalogue rows (item side; methods without lists skip it).
        pairs: method -> its reference (e.g. an LLM row -> 'hybrid', its own first stage).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quality = {m: {g.attribute: group_quality(r, g, seed=seed) for g in groups} for m, r in ranks.items()}
    gaps = {m: {g.attribute: largest_gap(r, g, seed=seed) for g in groups} for m, r in ranks.items()}
    paired = {
        f"{m} - {ref}": {g.attribute: paired_by_group(ranks[m], ranks[ref], g, seed=seed) for g in groups}
        for m, ref in pairs.items()
        if m in ranks and ref in ranks
    }
    for by_attribute in paired.values():
        adjust_over_groups([row for rows in by_attribute.values() for row in rows])
    items = {m: item_side(top, histories, buckets, genres) for m, top in lists.items()}
    share = {b: float(np.mean(buckets == b)) for b in ("head", "mid", "tail")}
    lines = [" · ".join(f"{k}: {v}" for k, v in header.items()), ""]
    lines += [
        f"Groups under {MIN_USERS} users keep their values, without an interval. Intervals: 95% percentile "
        "bootstrap, 2,000 resamples; a gap to the rest resamples the group and the rest independently. Paired "
        "differences within a group: p of a sign-flip permutation test, q adjusted over every group of every "
        "attribute (Benjamini-Hochberg): an interval that excludes zero with q above 0.05 may be chance.",
        "",
    ]
    for group in groups:
        lines.append(
            group_table(
                {m: q[group.attribute] for m, q in quality.items()},
                {m: g[group.attribute] for m, g in gaps.items()},
                group.attribute,
            )
        )
        if paired:
            lines.append(paired_group_table({p: rows[group.attribute] for p, rows in paired.items()}, group.attribute))
    if items:
        lines += [
            "### Items",
            "",
            "Popularity buckets by train interactions: head = the most popular items holding "
            "20% of them, tail = the least popular holding 20%, mid = the rest (catalogue shares: "
            + ", ".join(f"{b} {v:.1%}" for b, v in share.items())
            + "). Miscalibration: KL(p || q~), "
            "Steck 2018, a = 0.01, averaged over users.",
            "",
            item_table(items),
        ]
    (folder / f"{name}.md").write_text("\n".join(lines))
    record = {"header": header, "quality": quality, "largest_gap": gaps, "paired": paired, "items": items}
    (folder / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    plot_groups(quality, folder / f"{name}.png")
    return folder


def run_report(
    folder: str | Path,
    dataset: Dataset,
    split: LeaveOneOutSplit,
    split_name: str,
    users: Sequence[str],
    ranks: dict[str, np.ndarray],
    lists: dict[str, Sequence[Sequence[int]]],
    pairs: dict[str, str],
    header: dict,
    seed: int = 0,
    name: str = "fairness",
) -> Path:
    """``write_report`` for the users of an evaluation run: their attributes, activity (train
    events), the history each method saw on ``split_name``, train popularity and genres."""
    histories = [case.history for case in split.cases(split_name, list(users))]
    train_events = [int(split.train_ends[split.code(u)] - split.indptr[split.code(u)]) for u in users]
    groups = groupings(users, user_attributes(dataset), train_events, [len(h) for h in histories])
    buckets = popularity_buckets(split.item_popularity(len(dataset.catalog)))
    genres = genre_matrix([item.genres for item in dataset.catalog.items], dataset.catalog.genre_vocabulary)
    return write_report(folder, ranks, lists, groups, histories, buckets, genres, pairs, header, seed, name)
