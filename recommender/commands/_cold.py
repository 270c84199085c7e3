"""The cold-start half of ``recommender evaluate`` (``--protocol cold-items | cold-users``), one run.

recommender evaluate --protocol cold-items --cold-share 0.1 --seed 0 --output runs/cold-items
recommender evaluate --protocol cold-items --cold-variant newest --output runs/cold-items-newest
recommender evaluate --protocol cold-users --cold-share 0.2 --cold-sizes 0,1,3,5 --output runs/cold-users

Every fitted part (popularity, co-occurrence, the sequential model, blend weights tuned on the
reduced data's own validation events) is built on ``cold_start``'s ``train_dataset``: no cold
film's and no cold person's event reaches it. Ties are broken at a seeded random position
(``random_tie_ranks``). Rows:
- cold items, on the new-releases shelf (every event of a cold film, the person's earlier warm
  events as history, ranked among the cold films) and on the whole catalogue (test events whose
  target is cold); LLM rows on a seeded sample of the shelf (``--shelf-sample``), the same for all;
- cold users, for each history size n: the chosen people's test events with their first n events.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from recommender.evaluation import metrics

RETRIEVAL_ROWS = (
    "pop",
    "pop_by_group",
    "cooccurrence",
    "embedding",
    "llm_content",
    "sequential",
    "knowledge",
    "hybrid",
    "served",
)
LLM_ROWS = ("llm_zero_shot", "llm_lora")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocol", default="warm", choices=("warm", "cold-items", "cold-users"),
        help="warm: leave-one-out on every user; cold-items: a seeded share of films has no training event "
        "(--cold-share, --cold-variant, --shelf-sample); cold-users: test users cut to their first n events "
        "(--cold-sizes)",
    )  # fmt: skip
    parser.add_argument("--cold-share", type=float, default=None, help="share of items (0.1) or users (0.2) made cold")
    parser.add_argument("--cold-variant", default="random", choices=("random", "newest"), help="cold-items: which")
    parser.add_argument("--cold-sizes", default="0,1,3,5", help="cold-users: history sizes n")
    parser.add_argument("--shelf-sample", type=int, default=1000, help="cold-items: shelf events the LLM rows score")


def run(args: argparse.Namespace) -> int:
    from recommender.data.loaders import load_dataset
    from recommender.evaluation.cold_start import choose_cold_items, cold_item_split, cold_user_split

    started = time.time()
    dataset = load_dataset(args.dataset)
    header = {"dataset": dataset.name, "protocol": args.protocol, "seed": args.seed}
    if args.protocol == "cold-items":
        share = args.cold_share or 0.1
        cold = choose_cold_items(dataset, share, args.seed, args.cold_variant)
        split = cold_item_split(dataset, cold)
        header.update({"cold share": share, "variant": args.cold_variant, **split.params})
        tables = _cold_items(args, split, header)
    else:
        share = args.cold_share or 0.2
        sizes = tuple(int(n) for n in args.cold_sizes.split(","))
        split = cold_user_split(dataset, share, args.seed, sizes)
        header.update({"sizes": list(sizes), **split.params})
        tables = _cold_users(args, split, header)
    header["seconds"] = round(time.time() - started)
    return _write(args, header, tables)


def _first_stage(train_dataset, llm):
    """The served first stage fitted on ``train_dataset`` (hybrid + sequential), its components, the
    LLM content retriever, and the cold bridge over MiniLM + LLM content vectors."""
    from recommender.data.split import LeaveOneOutSplit
    from recommender.retrieval.hybrid import attach_cold_bridge, build_default_retriever
    from recommender.retrieval.llm_content import LLMContentRetriever, llm_item_vectors, unit_rows
    from recommender.retrieval.sequential import SequentialConfig

    split = LeaveOneOutSplit(train_dataset.interactions)
    hybrid = build_default_retriever(train_dataset, split, sequential=SequentialConfig())
    content = llm_item_vectors(train_dataset.catalog, llm)
    rows = dict(hybrid.components)
    rows["llm_content"] = LLMContentRetriever(train_dataset.catalog, content)
    if train_dataset.knowledge is not None:
        from recommender.retrieval.knowledge import KnowledgeRetriever

        rows["knowledge"] = KnowledgeRetriever(train_dataset.catalog, train_dataset.knowledge)
    rows["hybrid"] = hybrid
    served = copy.copy(hybrid)  # the same fitted components and weights, plus the bridge
    attach_cold_bridge(served, unit_rows(hybrid.text.vectors, content))
    rows["served"] = served
    return rows


def _setup(args, train_dataset, header: dict) -> tuple[dict, dict]:
    """The first-stage rows fitted on ``train_dataset`` and, when asked for, the LLM rows over the
    served one; the base model is loaded once (content encoder and zero-shot row)."""
    from recommender.llm.loading import load_model

    llm = load_model(args.model, adapter=None, device=args.device, dtype=args.dtype)
    first = _first_stage(train_dataset, llm)
    wanted = [m for m in args.methods.split(",") if m]
    pipelines, precisions = _pipelines(args, train_dataset, first["served"], llm) if _wants_llm(wanted) else ({}, {})
    header["precision"] = precisions or "no LLM row"
    return first, pipelines


def _pipelines(args, dataset, first_stage, base):
    """The LLM rows over the served first stage: the base model (``base``) zero-shot, and an adapter only when
    ``--adapter PATH`` names one. The shipped adapter is never used here: it was trained on the full
    train split, i.e. on the very events the cold protocols remove (a fitted part they must not
    reach); train one on the cold split (``recommender finetune`` on its data) and pass it."""
    from recommender.evaluation.protocol import llm_settings
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer
    from recommender.pipeline import PipelineConfig, Recommender, resolve_adapter, tuned_settings

    explicit = args.adapter not in (None, "default", "none")
    adapter = resolve_adapter(args.adapter, dataset, args.model) if explicit else None
    out, precisions = {}, {}
    for method in LLM_ROWS:
        if method == "llm_lora" and adapter is None:
            continue
        loads, settings = llm_settings(method, tuned_settings(adapter) if adapter else {}, args.seed)
        loaded = load_model(args.model, adapter=adapter, device=args.device, dtype=args.dtype) if loads else base
        precisions[method] = loaded.precision
        scorer = LLMScorer(loaded, batch_size=args.batch_size)
        out[method] = Recommender(dataset, first_stage, scorer, PipelineConfig(**settings))
    return out, precisions


def random_tie_ranks(scores: np.ndarray, cases, seed: int) -> np.ndarray:
    """[B] ``metrics.full_ranks`` with the target at a seeded random position among its ties. New
    films tie in bulk (zero popularity and co-occurrence), and the warm protocol's rule (earlier
    catalogue rows first) would rank them by item id, which MovieLens assigned roughly by popularity."""
    targets = sum(int(case.target) for case in cases)
    return metrics.full_ranks(scores, cases, rng=np.random.default_rng([seed, len(cases), targets]))


def _rank(score_batch, cases, allowed=None, batch: int = 64, description: str = "", seed: int = 0) -> np.ndarray:
    """[C] 1-based target ranks; ``allowed(case)`` -> [N] bool restricts each case's ranking."""
    from tqdm.auto import tqdm

    ranks = []
    for start in tqdm(range(0, len(cases), batch), desc=description, unit="batch", leave=False):
        chunk = cases[start : start + batch]
        mask = np.stack([allowed(c) for c in chunk]) if allowed is not None else None
        scores = score_batch([c.history for c in chunk], mask)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        ranks.extend(random_tie_ranks(scores, chunk, seed + start).tolist())
    return np.array(ranks)


def _score_rows(rows: dict, pipelines: dict, cases, llm_cases, allowed, batch_size: int) -> dict:
    """Ranks of every retrieval row on ``cases`` and of every row on ``llm_cases`` (a subset)."""
    out = {}
    for name, retriever in rows.items():
        scorer = lambda hs, mask, r=retriever: np.asarray(r.score_batch(hs), dtype=np.float64)  # noqa: E731
        out[name] = _rank(scorer, cases, allowed, description=name)
        if llm_cases is not cases:
            out[f"{name} (LLM sample)"] = _rank(scorer, llm_cases, allowed, description=name)
    for name, pipeline in pipelines.items():
        scorer = lambda hs, mask, p=pipeline: p.full_scores_batch(hs, mask)[0]  # noqa: E731
        out[name] = _rank(scorer, llm_cases, allowed, batch_size, description=name)
    return out


def _cold_items(args, split, header: dict) -> dict:
    first, pipelines = _setup(args, split.train_dataset, header)
    rng = np.random.default_rng(args.seed)
    sample = sorted(rng.choice(len(split.shelf), size=min(args.shelf_sample, len(split.shelf)), replace=False))
    llm_cases = [split.shelf[i] for i in sample]
    header["LLM sample"] = len(llm_cases)
    shelf = _score_rows(first, pipelines, split.shelf, llm_cases, split.shelf_allowed, args.batch_size)
    catalogue = _score_rows(first, pipelines, split.catalogue, split.catalogue, None, args.batch_size)
    return {"new-releases shelf": shelf, "whole catalogue": catalogue}


def _cold_users(args, split, header: dict) -> dict:
    first, pipelines = _setup(args, split.train_dataset, header)
    first.pop("knowledge", None)
    group_scores = _group_popularity(split.train_dataset, split.users)
    if group_scores is not None:
        header["pop_by_group"] = "popularity among training users of the same gender and age band"
    tables = {}
    for n, cases in split.cases.items():
        active = pipelines if n > 0 else {}  # no history: nothing for an LLM to read
        tables[f"history n={n}"] = _score_rows(first, active, cases, cases, None, args.batch_size)
        if group_scores is not None:
            scores = np.stack([group_scores[c.user] for c in cases])
            tables[f"history n={n}"]["pop_by_group"] = random_tie_ranks(scores, cases, args.seed)
    return tables


def _group_popularity(train_dataset, users: list[str]) -> dict[str, np.ndarray] | None:
    """user -> [N] log counts of the items among training users of the same gender and age band
    (plus a thousandth of overall popularity to order ties); None without user attributes."""
    attributes = train_dataset.users
    if attributes is None or "gender" not in attributes.columns or "age" not in attributes.columns:
        return None
    from recommender.data.users import age_band

    def group(user: str) -> tuple:
        return attributes.value(user, "gender"), age_band(attributes.value(user, "age"))

    events, n = train_dataset.interactions, len(train_dataset.catalog)
    keys = [group(u) for u in events.user_ids.tolist()]  # per user code
    event_keys = np.array([hash(keys[c]) for c in range(len(keys))])[events.user_codes]
    overall = np.bincount(events.items, minlength=n).astype(np.float64)
    out = {}
    for user in users:
        mine = event_keys == hash(group(user))
        counts = np.bincount(events.items[mine], minlength=n).astype(np.float64)
        out[user] = np.log1p(counts) + 1e-3 * np.log1p(overall)
    return out


def _wants_llm(methods: list[str]) -> bool:
    return any(m in LLM_ROWS or m.startswith("llm_lora") for m in methods)


def _write(args, header: dict, tables: dict) -> int:
    """metrics.md / metrics.json / ranks.json, with paired intervals of every row against the best
    non-LLM row (and of each LLM row against the served first stage) on the same cases."""
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [" · ".join(f"{k}: {v}" for k, v in header.items()), ""]
    record = {"header": header, "tables": {}}
    for title, ranks in tables.items():
        lines += [
            f"### {title}",
            "",
            "| method | cases | NDCG@10 | HR@10 | MRR@10 |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        rows = {m: metrics.ranking_report(r, cutoffs=(10,)) for m, r in ranks.items()}
        for method, row in rows.items():
            lines.append(
                f"| {method} | {len(ranks[method])} | {row['NDCG@10']:.4f} | {row['HR@10']:.4f} | {row['MRR@10']:.4f} |"
            )
        paired = _paired(ranks, args.seed)
        if paired:
            lines += ["", "| method | reference | NDCG@10 difference [95%] |", "| --- | --- | --- |"]
            lines += [f"| {p['method']} | {p['reference']} | {p['difference']:+.4f} "
                      f"[{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] |" for p in paired]  # fmt: skip
        lines.append("")
        record["tables"][title] = {
            "metrics": rows,
            "paired": paired,
            "ranks": {m: r.tolist() for m, r in ranks.items()},
        }
    if args.protocol == "cold-users":
        lines += _size_curve(record["tables"], folder)
    text = "\n".join(lines)
    (folder / "metrics.md").write_text(text + "\n")
    (folder / "metrics.json").write_text(json.dumps(record) + "\n")
    print(text)
    print(f"written to {folder}/metrics.md, metrics.json")
    return 0


def _size_curve(tables: dict, folder: Path) -> list[str]:
    """NDCG@10 of each method against the history size n (table lines + ``curve.png``), and the
    smallest n from which the served pipeline stays above popularity."""
    sizes = [int(title.split("=")[1]) for title in tables]
    methods = [m for m in next(iter(tables.values()))["metrics"] if "(LLM sample)" not in m]
    methods += [m for t in tables.values() for m in t["metrics"] if m not in methods and "(LLM sample)" not in m]
    curve = {m: [t["metrics"].get(m, {}).get("NDCG@10", np.nan) for t in tables.values()] for m in methods}
    lines = ["### NDCG@10 by history size", "", "| method | " + " | ".join(f"n={n}" for n in sizes) + " |",
             "| --- |" + " ---: |" * len(sizes)]  # fmt: skip
    lines += [f"| {m} | " + " | ".join("-" if np.isnan(v) else f"{v:.4f}" for v in values) + " |"
              for m, values in curve.items()]  # fmt: skip
    if "served" in curve and "pop" in curve:
        above = [n for n, a, b in zip(sizes, curve["served"], curve["pop"]) if a > b]
        first = next((n for i, n in enumerate(sizes) if all(s in above for s in sizes[i:])), None)
        lines += ["", f"the served first stage is above popularity from n = {first} on" if first is not None
                  else "the served first stage is not above popularity at the largest n"]  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for method, values in curve.items():
        axis.plot(sizes, values, marker="o", label=method, linewidth=2.5 if method.startswith(("served", "llm")) else 1)
    axis.set(xlabel="events in the new person's history (n)", ylabel="NDCG@10", xticks=sizes,
             title="Cold users: NDCG@10 by history size")  # fmt: skip
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(folder / "curve.png", dpi=120)
    plt.close(figure)
    return lines + ["", "plot: curve.png", ""]


def _paired(ranks: dict[str, np.ndarray], seed: int) -> list[dict]:
    """Each row against the best retrieval row other than itself (on the same cases), and each LLM
    row against the served first stage on the LLM sample."""
    plain = {m: r for m, r in ranks.items() if m in RETRIEVAL_ROWS and m != "served"}
    rows = []
    if plain and "served" in ranks:
        best = max(plain, key=lambda m: metrics.ndcg(plain[m], 10))
        rows.append({"method": "served", "reference": best,
                     **metrics.paired_ndcg_difference(ranks["served"], plain[best], 10, seed=seed)})  # fmt: skip
        if "llm_content" in plain and best != "llm_content":
            difference = metrics.paired_ndcg_difference(ranks["served"], plain["llm_content"], 10, seed=seed)
            rows.append({"method": "served", "reference": "llm_content", **difference})
    base = ranks.get("served (LLM sample)", ranks.get("served"))
    for method in (m for m in LLM_ROWS if m in ranks):
        if base is not None and len(base) == len(ranks[method]):
            rows.append({"method": method, "reference": "served (first stage)",
                         **metrics.paired_ndcg_difference(ranks[method], base, 10, seed=seed)})  # fmt: skip
    return rows
