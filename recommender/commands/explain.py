"""``recommender explain``: why an item fits a user, from drop-one influences of their history.

recommender explain --user 1 --item 50
recommender explain --user 1 --item "Star Wars" --adapter none --json

The history is the user's events before they first met the item (all events when they never
did), so "why item 50 for user 1" reads as "why would we have recommended it then". The item is
explained among the retriever's top ``--candidates`` for that history (it replaces the last one
when the retriever did not return it); the LLM sees the last ``--history`` items and the last
``--window`` of them are ablated.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from recommender.commands.recommend import add_model_arguments
from recommender.data import Catalog, Item
from recommender.explain import DEFAULT_WINDOW, explain_item
from recommender.llm.prompting import DEFAULT_MAX_HISTORY


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("explain", help="explain one item for a user: influences and a grounded sentence")
    parser.add_argument("--user", required=True, help="a user id of the dataset")
    parser.add_argument("--item", required=True, help="the item to explain: an id or an exact title")
    parser.add_argument("--candidates", type=int, default=20, help="retriever candidates in the rank prompt (<= 26)")
    parser.add_argument("--history", type=int, default=DEFAULT_MAX_HISTORY, help="history items the LLM sees")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="most recent history items ablated")
    parser.add_argument("--top", type=int, default=5, help="influencers shown in the table")
    parser.add_argument("--json", action="store_true", help="print the whole Explanation as JSON")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def user_case(
    catalog: Catalog, split, retriever, user: str, item_id: str, k: int = 20, max_history: int | None = None
) -> tuple[list[Item], Item, list[Item]]:
    """(history, item, candidates) to explain ``item_id`` for a dataset ``user``.

    The history stops before the user's first event on the item and keeps its last ``max_history``
    items; candidates are the retriever's top ``k`` for the whole history, with the item included.
    """
    if str(user) not in split.sequences:
        raise ValueError(f"user id {user!r} is not in the dataset ({len(split.users)} users).")
    item = catalog[item_id]
    rows = list(split.sequences[str(user)])
    target_row = catalog.row(item.id)
    if target_row in rows:
        rows = rows[: rows.index(target_row)]
    history = [catalog.items[r] for r in rows]
    found = retriever.retrieve([h.id for h in history], k=k)
    candidates = [catalog.items[r] for r in found.items]
    if item.id not in {c.id for c in candidates}:
        candidates = candidates[: max(k - 1, 0)] + [item]
    shown = history if max_history is None else history[max(0, len(history) - max_history) :]
    return shown, item, candidates


def _resolve_item(recommender, reference: str) -> str:
    found, _ = recommender.resolve_items([reference])
    if not found:
        raise ValueError(f"item {reference!r} matches no item id or exact title of the catalogue.")
    return found[0]


def _table(influences: Sequence[tuple[str, str, float]], top: int) -> list[str]:
    lines = [f"{'influence':>10}  {'item':>5}  title"]
    lines += [f"{value:+10.4f}  {item_id:>5}  {title}" for item_id, title, value in influences[:top]]
    return lines


def run(args: argparse.Namespace) -> int:
    from recommender.pipeline import Recommender

    recommender = Recommender.from_pretrained(
        args.dataset, model=args.model, adapter=args.adapter, quantize=args.quantize, device=args.device
    )
    catalog = recommender.catalog
    item_id = _resolve_item(recommender, args.item)
    history, item, candidates = user_case(
        catalog, recommender.split, recommender.retriever, args.user, item_id, args.candidates, args.history
    )
    cooccurrence = getattr(recommender.retriever, "components", {}).get("cooccurrence")
    scorer = recommender.scorer
    explanation = explain_item(
        scorer, scorer, catalog, history, item, candidates, window=args.window, max_history=None,
        cooccurrence=cooccurrence,
    )  # fmt: skip
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=1))
        return 0
    print(f"{item.display_title()} for user {args.user} ({scorer.loaded.describe()})\n")
    print(explanation.text)
    print(f"\npath: {explanation.path}" + (f" ({explanation.reason})" if explanation.reason else ""))
    print(f"score: log P({item.title}) among {len(candidates)} candidates = {explanation.evidence['base_score']:.4f}\n")
    print("\n".join(_table(explanation.influences, args.top)))
    return 0
