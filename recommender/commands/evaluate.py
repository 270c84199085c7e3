"""``recommender evaluate``: every method side by side on one split, one seed, one user sample.

recommender evaluate --dataset ml-100k --split test --users 200 --output runs/eval-test
recommender evaluate --split test --report fairness --output runs/eval-test   # + per-group tables, item side
recommender evaluate --task rating --split test --output runs/rating   # add --adapter PATH for a rating adapter
accelerate launch --multi_gpu --num_processes 2 -m recommender.cli evaluate ...   # users split over 2 processes
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from recommender.commands import _cold as evaluate_cold
from recommender.commands.recommend import add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="leave-one-out evaluation of every method, one table")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--users", type=int, default=None, help="seeded sample of users (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample and the LLM shuffles")
    parser.add_argument("--task", default="ranking", choices=("ranking", "rating"))
    parser.add_argument(
        "--methods",
        default="pop,cooccurrence,embedding,sequential,hybrid,llm_zero_shot,llm_zero_shot_evidence,llm_lora",
        help="comma-separated subset of: pop, cooccurrence, embedding, sequential, hybrid (the first stage), "
        "llm_zero_shot (base model, `rank` "
        "prompt), llm_zero_shot_evidence (base model, the adapter's prompt), llm_lora_pure (adapter alone), "
        "llm_lora (adapter + the retrieval blend it was tuned with)",
    )  # fmt: skip
    parser.add_argument(
        "--llm-candidates", type=int, default=None,
        help="first-stage top-N the LLM reranks (default: 20 zero-shot, the adapter's recorded count for llm_lora)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-selection-users", action="store_true",
        help="with --split valid, keep the validation users the adapter was selected and blended on "
        "(left out by default, so an adapter is never scored on users it was tuned on)",
    )  # fmt: skip
    parser.add_argument(
        "--first-stage", default="hybrid+sequential", choices=("hybrid", "hybrid+sequential"),
        help="the retriever whose top-N the LLM reranks (and the 'hybrid' row): with or without the sequential model",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--blend-users", type=int, default=100,
        help="--task rating: validation users that tune each LLM row's blend weight with SVD (0: no blend rows)",
    )  # fmt: skip
    parser.add_argument("--output", default="runs/eval", help="folder for metrics.json, metrics.md, metrics.png")
    parser.add_argument(
        "--report", default=None, choices=("fairness",),
        help="fairness: also write fairness.md/.json/.png (quality per user group, each LLM row's effect per group "
        "against the hybrid, exposure by popularity bucket, genre calibration), recommender.evaluation.fairness_report",
    )  # fmt: skip
    evaluate_cold.add_arguments(parser)
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recommender.data.loaders import load_dataset
    from recommender.data.split import LeaveOneOutSplit
    from recommender.evaluation.distributed import process_device, process_state
    from recommender.evaluation.protocol import METHODS, paired_differences, sample_users, summarise, write_outputs
    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig

    if args.protocol != "warm":
        return evaluate_cold.run(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}.")
    started = time.time()
    dataset = load_dataset(args.dataset)
    split = LeaveOneOutSplit(dataset.interactions)
    keep = args.split == "test" or args.keep_selection_users
    excluded = [] if keep else _selection_users(args, methods, dataset, split)
    users = sample_users(split, args.users, args.seed, exclude=excluded)
    state = process_state(args.device)  # accelerate's PartialState: rank, world size, this process's device
    args.device = process_device(state, args.device)  # N processes on N GPUs, never all on cuda:0
    with state.split_between_processes(users) as mine:  # a contiguous block of users per process
        cases = split.cases(args.split, mine)
    if state.num_processes > 1 and state.is_main_process:
        print(f"{len(users)} users over {state.num_processes} processes ({state.device} on the main one)")
    sequential = SequentialConfig() if args.first_stage == "hybrid+sequential" else None
    retriever = build_default_retriever(dataset, split, sequential=sequential)
    if args.task == "rating":
        return _rating(args, dataset, split, retriever, cases, state)
    popularity = split.item_popularity(len(dataset.catalog))
    vectors = retriever.text.vectors if retriever.text is not None else None
    raw, precisions = {}, {}  # precisions: each LLM row's {"dtype", "reason", "device"}, recorded in the header
    for method in methods:
        raw[method] = _rank_method(method, args, dataset, retriever, cases, precisions)
    merged = _gather(raw, state)
    if not state.is_main_process:
        return 0
    results = {m: summarise(r, len(dataset.catalog), popularity, vectors) for m, r in merged.items() if r is not None}
    header = {
        "dataset": dataset.name, "split": args.split, "users": len(users), "seed": args.seed,
        "protocol": "leave-one-out, full ranking, history masked",
        "llm": "first-stage top-N reranked (N = 20 for llm_zero_shot, the adapter's own N and prompt for the others)",
        "first stage": args.first_stage,
        "excluded selection users": len(excluded), "seconds": round(time.time() - started),
        "precision": precisions or "no LLM row",
    }  # fmt: skip
    folder = write_outputs(results, header, args.output, paired_differences(merged, args.seed))
    # Per-user target ranks in user order, for paired comparisons with methods run elsewhere
    # (``recommender.evaluation.metrics.paired_ndcg_difference``; bench/external_sasrec keeps the same).
    ranks = {m: r.ranks.astype(int).tolist() for m, r in merged.items() if r is not None}
    record = {"users": [str(u) for u in users], "split": args.split, "seed": args.seed, "ranks": ranks,
              "precision": precisions}  # fmt: skip
    (folder / "ranks.json").write_text(json.dumps(record) + "\n")
    lists = {m: r.top_lists for m, r in merged.items() if r is not None}
    np.savez_compressed(folder / "lists.npz", **{m: _padded(top) for m, top in lists.items()})  # [U, 10], -1 pads
    if args.report == "fairness":
        from recommender.evaluation.fairness_report import run_report
        from recommender.evaluation.protocol import LLM_METHODS

        pairs = {m: "hybrid" for m in lists if m in LLM_METHODS}  # each LLM row against its own first stage
        arrays = {m: r.ranks for m, r in merged.items() if r is not None}
        run_report(folder, dataset, split, args.split, users, arrays, lists, pairs, header, args.seed)
    print((folder / "metrics.md").read_text())
    print(f"written to {folder}/metrics.json, metrics.md, metrics.png, ranks.json, lists.npz")
    return 0


def _padded(top_lists: list[np.ndarray], k: int = 10) -> np.ndarray:
    """[U, k] catalogue rows of each top-k list, -1 where a list is shorter."""
    block = np.full((len(top_lists), k), -1, dtype=np.int64)
    for u, row in enumerate(top_lists):
        block[u, : len(row)] = np.asarray(row, dtype=np.int64)[:k]
    return block


def _selection_users(args, methods, dataset, split) -> list[str]:
    """Validation users the evaluated adapter was selected on ([] without an adapter)."""
    from recommender.evaluation.protocol import LLM_VARIANTS, selection_users
    from recommender.llm.loading import read_adapter_metadata
    from recommender.pipeline import resolve_adapter

    if not any(m in LLM_VARIANTS and LLM_VARIANTS[m].adapter_prompt for m in methods):
        return []
    adapter = resolve_adapter(args.adapter, dataset, args.model)
    return selection_users(read_adapter_metadata(adapter), split) if adapter is not None else []


def _rank_method(method, args, dataset, retriever, cases, precisions: dict):
    from recommender.evaluation.protocol import LLM_VARIANTS, llm_settings, rank_cases
    from recommender.pipeline import PipelineConfig, Recommender, resolve_adapter, tuned_settings

    if method in retriever.components or method in ("hybrid", "sequential"):
        if method == "hybrid":
            scorer = retriever
        elif method in retriever.components:
            scorer = retriever.components[method]
        else:  # the served hybrid has no sequential component: the same cached model, trained once
            from recommender.retrieval.sequential import load_or_train

            scorer = load_or_train(dataset)
        return rank_cases(lambda hs: (scorer.score_batch(hs), None), cases, 64, method)
    needs_adapter = LLM_VARIANTS[method].adapter_prompt
    adapter = resolve_adapter(args.adapter, dataset, args.model) if needs_adapter else None
    if needs_adapter and adapter is None:
        print(f"{method} skipped: no adapter (pass --adapter PATH or ship finetune/adapters/)")
        return None
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    loads_adapter, settings = llm_settings(method, tuned_settings(adapter), args.seed, args.llm_candidates)
    weights = adapter if loads_adapter else None
    loaded = load_model(args.model, adapter=weights, quantize=args.quantize, device=args.device, dtype=args.dtype)
    precisions[method] = loaded.precision
    scorer = LLMScorer(loaded, batch_size=args.batch_size)
    pipeline = Recommender(dataset, retriever, scorer, PipelineConfig(**settings))
    n_labels = pipeline.config.llm_candidates
    return rank_cases(pipeline.full_scores_batch, cases, args.batch_size, method, n_labels=n_labels)


def _gather(raw: dict, state) -> dict:
    """Every process's results merged in rank order, i.e. user order, on the main process ({} on
    the others; a no-op for one process). accelerate's ``gather_object`` carries them."""
    if state.num_processes == 1:
        return raw
    from recommender.evaluation.distributed import gather_in_order
    from recommender.evaluation.protocol import MethodResult

    parts = gather_in_order(state, raw)  # [processes] of {method: MethodResult | None}
    if not state.is_main_process:
        return {}
    merged = {}
    for method in raw:
        pieces = [p[method] for p in parts]
        if any(piece is None for piece in pieces):
            merged[method] = None
            continue
        firsts = [p.first_place for p in pieces if p.first_place is not None]
        merged[method] = MethodResult(
            np.concatenate([p.ranks for p in pieces]),
            [row for p in pieces for row in p.top_lists],
            np.concatenate(firsts) if firsts else None,
            pieces[0].n_labels,
        )
    return merged


def _rating(args, dataset, split, retriever, cases, state) -> int:
    """Every rating row on the same rated events (``recommender.evaluation.rating``): the mean
    baselines, BaselineOnly, SVD tuned on validation, the base LLM zero-shot, an adapter given
    with ``--adapter PATH``, and each LLM blended with SVD (weight tuned on validation users)."""
    from recommender.evaluation.protocol import rating_report, sample_users
    from recommender.evaluation.rating import (
        RatedEvents,
        baseline_predictions,
        fit_events,
        paired_rmse_difference,
        rating_table,
        surprise_fit,
        surprise_predict,
        tune_blend,
        tune_svd,
    )

    if state.num_processes > 1:
        raise ValueError("--task rating runs in one process.")
    if dataset.interactions.ratings is None:
        raise ValueError(f"{dataset.name} has no ratings.")
    started = time.time()
    events = RatedEvents.of_cases(cases)
    svd_params, tried = tune_svd(split, args.seed)
    print(f"SVD settings by validation RMSE: {svd_params}")
    predictions = baseline_predictions(split, args.split, events, svd_params, args.seed)
    blend_cases = split.cases("valid", sample_users(split, args.blend_users, args.seed)) if args.blend_users else []
    blend_events = RatedEvents.of_cases(blend_cases) if blend_cases else None
    svd_valid = None
    if blend_events is not None:
        svd_valid = surprise_predict(
            surprise_fit("svd", fit_events(split, "valid"), svd_params, args.seed), blend_events
        )
    # The shipped adapter was trained on ranking only: an adapter row needs an explicit --adapter PATH.
    rows = [("llm_zero_shot", None)]
    if args.adapter not in (None, "default", "none"):
        rows.append(("llm_adapter", args.adapter))
    blend_weights = {}
    for name, adapter in rows:
        recommender = _rating_recommender(args, dataset, retriever, adapter)
        predictions[name] = _llm_ratings(recommender, split, cases, name)
        if blend_events is not None:
            valid = _llm_ratings(recommender, split, blend_cases, f"{name} (blend, valid)")
            weight, _ = tune_blend(valid, svd_valid, blend_events.ratings)
            blend_weights[name] = weight
            predictions[f"{name}+svd"] = weight * predictions[name] + (1 - weight) * predictions["svd"]
    results = {name: rating_report(list(zip(p, events.ratings))) for name, p in predictions.items()}
    paired = [
        {
            "method": name,
            "reference": "svd",
            **paired_rmse_difference(p, predictions["svd"], events.ratings, seed=args.seed),
        }
        for name, p in predictions.items()
        if name.startswith("llm")
    ]
    header = {
        "dataset": dataset.name, "split": args.split, "users": len(cases), "seed": args.seed,
        "SVD (tuned on validation)": ", ".join(f"{k}={v}" for k, v in svd_params.items()),
        "blend weights (LLM share, tuned on validation)": ", ".join(f"{k} {v:.2f}" for k, v in blend_weights.items())
        or "none", "blend users": len(blend_cases), "seconds": round(time.time() - started),
    }  # fmt: skip
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    record = {"header": header, "results": results, "paired": paired, "svd_params": svd_params, "svd_grid": tried}
    (output / "rating.json").write_text(json.dumps(record, indent=1) + "\n")
    table = rating_table(results, paired, header)
    (output / "rating.md").write_text(table)
    print(table)
    print(f"written to {output}/rating.json, rating.md")
    return 0


def _rating_recommender(args, dataset, retriever, adapter):
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer
    from recommender.pipeline import Recommender

    loaded = load_model(args.model, adapter=adapter, quantize=args.quantize, device=args.device, dtype=args.dtype)
    return Recommender(dataset, retriever, LLMScorer(loaded, batch_size=args.batch_size))


def _llm_ratings(recommender, split, cases, description: str, chunk: int = 64) -> np.ndarray:
    """[U] expected ratings of the cases' targets through ``Recommender.rating_scores``."""
    from tqdm.auto import tqdm

    out = []
    for start in tqdm(range(0, len(cases), chunk), desc=description, unit="chunk"):
        part = cases[start : start + chunk]
        ratings = [split.ratings[c.user][: len(c.history)] for c in part]
        out.extend(recommender.rating_scores([c.history for c in part], ratings, [c.target for c in part]))
    return np.array(out, dtype=np.float64)
