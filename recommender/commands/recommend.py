"""``recommender recommend``: top-K for a dataset user or a typed history.

recommender recommend --user 1 -k 10
recommender recommend --history "Toy Story; Fargo" --query "something funny" --json
recommender recommend --user 1 --calibration 0.5     # the list's genre mix nearer the history's
"""

from __future__ import annotations

import argparse
import json


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every model-loading command shares."""
    parser.add_argument("--dataset", default="ml-100k", help="built-in name or a data folder (default: ml-100k)")
    parser.add_argument("--model", default=None, help="HF model folder/id or .gguf file (default: SmolLM2-135M)")
    parser.add_argument(
        "--adapter", default="default", help="LoRA adapter folder; 'default' = the shipped ml-100k one, 'none' = off"
    )
    parser.add_argument("--quantize", default="auto", choices=("auto", "none", "4bit"), help="4-bit NF4 (CUDA)")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: CUDA when available)")
    parser.add_argument(
        "--dtype", default="auto", choices=("auto", "float32", "bfloat16", "int8"),
        help="scoring precision; auto: bf16 on CUDA and CPUs with AVX512-BF16/AMX, else float32",
    )  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("recommend", help="recommend items for a user or a history")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--user", default=None, help="a user id of the dataset")
    who.add_argument("--history", default=None, help='item titles or ids separated by ";", oldest first')
    parser.add_argument("-k", type=int, default=10, help="number of items (default 10)")
    parser.add_argument("--query", default=None, help="free text blended into retrieval")
    parser.add_argument("--diversity", type=float, default=0.0, help="0..1 maximal-marginal-relevance re-ranking")
    parser.add_argument(
        "--calibration", type=float, default=0.0,
        help="0..1 genre-calibrated re-ranking toward the history's genre mix (Steck 2018; not with --diversity)",
    )  # fmt: skip
    parser.add_argument("--retrieval-only", action="store_true", help="skip the LLM stage")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def load_checked(args: argparse.Namespace, user: str | None = None):
    """The dataset, with ``user`` checked against it: a wrong id is told before the model loads."""
    from recommender.data.loaders import load_dataset
    from recommender.data.lookup import check_user

    dataset = load_dataset(args.dataset)
    if user is not None:
        check_user(dataset, user)
    return dataset


def run(args: argparse.Namespace) -> int:
    from recommender.pipeline import Recommender

    dataset = load_checked(args, args.user)
    recommender = Recommender.from_pretrained(
        dataset, model=args.model, adapter=args.adapter, quantize=args.quantize, device=args.device,
        dtype=args.dtype, retrieval_only=args.retrieval_only,
    )  # fmt: skip
    history = [part.strip() for part in args.history.split(";") if part.strip()] if args.history else None
    results = recommender.recommend(
        user_id=args.user, history=history, k=args.k, query=args.query, diversity=args.diversity,
        calibration=args.calibration,
    )  # fmt: skip
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
        return 0
    if results.unknown_history:
        print(f"note: {results.unknown_history} history entries matched no catalogue item and were ignored")
    if not results:
        print(f"no recommendations: {results.reason}")
        return 0
    print(f"{'#':>2}  {'item':>5}  {'score':>7}  {'retr.':>7}  {'llm':>7}  title")
    for position, r in enumerate(results, start=1):
        llm = f"{r.llm_score:7.3f}" if r.llm_score is not None else "      -"
        title = f"{r.title} ({r.year})" if r.year else r.title
        print(f"{position:>2}  {r.item_id:>5}  {r.score:7.3f}  {r.retrieval_score:7.3f}  {llm}  {title}")
    return 0
