"""The ``recommender`` command line. Each subcommand lives in ``recommender/commands/``
as a module with ``register(subparsers)``; it is found by name, so adding one touches no
other file.

    recommender assets
    recommender --help
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import recommender.commands as commands
from recommender.data import DataError


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recommender", description="LLM-prompted conversational recommender.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (DataError, FileNotFoundError, ValueError) as error:
        # Bad input ends with one sentence, not a traceback.
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
