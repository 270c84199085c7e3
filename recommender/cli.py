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
from recommender.quiet import quiet_third_party
from recommender.store import StoreError


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recommender", description="LLM-prompted conversational recommender.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    quiet_third_party()
    try:
        return int(args.run(args) or 0)
    except (StoreError, OSError, ValueError, KeyError) as error:
        # Bad input (DataError, ModelLoadError and ConfigError are ValueErrors) ends with one
        # sentence, not a traceback.
        print(f"error: {_sentence(error)}", file=sys.stderr)
        return 2


def _sentence(error: BaseException) -> str:
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])  # str(KeyError) wraps its message in quotes
    if isinstance(error, OSError) and error.filename and str(error.filename) not in str(error):
        return f"{error.filename}: {error.strerror or error}"
    return str(error)


if __name__ == "__main__":
    sys.exit(main())
