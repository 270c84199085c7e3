"""``recommender assets``: where each default asset was found, or how to install it."""

from __future__ import annotations

import argparse

from recommender.assets import default_assets


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("assets", help="show where the default model, embeddings and data were found")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    missing = 0
    for asset in default_assets():
        if asset.found:
            print(f"found    {asset.name}: {asset.path}")
        else:
            missing += 1
            print(f"MISSING  {asset.name}: install with `{asset.install}`")
    return 1 if missing else 0
