"""``recommender finetune``: offline LoRA fine-tuning (see finetune/train.py for the recipes)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from recommender.finetune.train import add_arguments

    parser = subparsers.add_parser(
        "finetune",
        help="LoRA fine-tune the ranking LLM on the train split (finetune/configs/*.yaml)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recommender.finetune.train import run as run_finetune

    return run_finetune(args)
