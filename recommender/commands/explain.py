"""``recommender explain``: why an item fits a user, from drop-one influences of their history.

recommender explain --user 1 --item 50
recommender explain --user 1 --item "Star Wars" --adapter none --json
recommender explain --user 1 --item 50 --rating      # influence of each rated item on the predicted rating

The history is the user's events before they first met the item (all events when they never
did), so "why item 50 for user 1" reads as "why would we have recommended it then". The item is
scored among the LLM's candidates for that history, in the prompt the pipeline serves (its
adapter, template and evidence), and each history item the prompt shows is ablated one at a
time, in the served order and in each order neutral swaps of two shown items give: the same numbers
the chat cards show (``Recommender.explain``). An item is listed as an influence only when its mean
effect over the orders exceeds its threshold (a one-sided t-test at 5%, Bonferroni over the shown
items); the others are listed, unranked, as having no measurable effect.
"""

from __future__ import annotations

import argparse
import json

from recommender.commands.recommend import add_model_arguments, load_checked
from recommender.explain import DEFAULT_WINDOW, Explanation
from recommender.influence import threshold_text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("explain", help="explain one item for a user: influences and a grounded sentence")
    parser.add_argument("--user", required=True, help="a user id of the dataset")
    parser.add_argument("--item", required=True, help="the item to explain: an id or an exact title")
    parser.add_argument(
        "--window", type=int, default=None,
        help="most recent history items ablated (default: the items the served prompt shows; "
        f"--rating: {DEFAULT_WINDOW}); never more than the prompt shows",
    )  # fmt: skip
    parser.add_argument("--top", type=int, default=5, help="influences shown in the table")
    parser.add_argument("--json", action="store_true", help="print the whole Explanation as JSON")
    parser.add_argument(
        "--rating", action="store_true",
        help="explain the predicted RATING instead: drop-one influence of each rated history item on it "
        "(the rating prompt; --adapter default means the base model here, the shipped adapter ranks only)",
    )  # fmt: skip
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def history_before(recommender, user: str, item_id: str) -> list[str]:
    """The user's history up to (not including) their first event on ``item_id`` (all of it
    when they never met the item), oldest first."""
    history = recommender.user_history(user)
    return history[: history.index(item_id)] if item_id in history else history


def _table(explanation: Explanation, top: int) -> list[str]:
    """Measured influences (beyond their thresholds, strongest first), then the items with no measurable
    effect, unranked (most recent first)."""
    thresholds = explanation.thresholds
    orders = 1 + explanation.evidence.get("neutral_swaps", 0)
    head = (
        f"influence: the mean change of the score over {orders} orders of the shown films when one is left out; "
        "an influence beyond its threshold (t-test 5%, Bonferroni over the shown films)"
        if thresholds else "threshold: none (fewer than two shown items to swap), so no influence is claimed"
    )  # fmt: skip
    lines = [head, "", f"{'influence':>10}  {'threshold':>9}  {'item':>5}  title"]
    if not explanation.influences:
        lines.append(f"{'':>10}  {'':>9}  {'':>5}  (none beyond its threshold)")
    lines += [
        f"{value:+10.4f}  {threshold_text(thresholds, item_id):>9}  {item_id:>5}  {title}  "
        f"({'raised' if value > 0 else 'lowered'} the score)"
        for item_id, title, value in explanation.influences[:top]
    ]
    if explanation.no_effect:
        lines += ["", "no measurable effect (within the threshold, not ranked):"]
        lines += [
            f"{value:+10.4f}  {threshold_text(thresholds, item_id):>9}  {item_id:>5}  {title}"
            for item_id, title, value in explanation.no_effect
        ]
    return lines


def run(args: argparse.Namespace) -> int:
    from recommender.data.lookup import ItemLookup
    from recommender.pipeline import Recommender

    dataset = load_checked(args, args.user)
    item_id = ItemLookup(dataset.catalog).item(args.item)
    adapter = "none" if args.rating and args.adapter == "default" else args.adapter
    recommender = Recommender.from_pretrained(
        dataset, model=args.model, adapter=adapter, quantize=args.quantize, dtype=args.dtype, device=args.device
    )
    if args.rating:
        return _explain_rating(recommender, str(args.user), item_id, args)
    item = recommender.catalog[item_id]
    history = history_before(recommender, str(args.user), item_id)
    explanation = recommender.explain(history, item_id, window=args.window)
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=1))
        return 0
    evidence = explanation.evidence
    print(
        f"{item.display_title()} for user {args.user} ({recommender.scorer.loaded.describe()}, {evidence['prompt']})\n"
    )
    print(explanation.text)
    print(f"\npath: {explanation.path}" + (f" ({explanation.reason})" if explanation.reason else ""))
    rubric = explanation.rubric
    claims = "; ".join(f"{kind} ({detail})" for kind, detail in rubric.get("false_claims", [])) or "none"
    links = ", ".join(rubric.get("links", [])) or "no"
    named = "yes" if rubric.get("names_influence") else "no"
    verdict = "passes" if rubric.get("passes") else "does not pass"
    print(f"rubric: {verdict} (names a measured influence: {named}; supported link: {links}; false claims: {claims})")
    if evidence["base_score"] is not None:
        print(f"score: log P({item.title}) among {evidence['candidates']} candidates = {evidence['base_score']:.4f}\n")
    print("\n".join(_table(explanation, args.top)))
    return 0


def _explain_rating(recommender, user: str, item_id: str, args: argparse.Namespace) -> int:
    """The predicted rating of ``item_id`` for ``user`` (their rated events before it) and the
    drop-one influence of each of the last ``--window`` rated items on it, strongest first."""
    window = DEFAULT_WINDOW if args.window is None else args.window
    rating, influences = recommender.rating_influences(item_id, user_id=user, window=window)
    catalog = recommender.catalog
    rows = sorted(influences, key=lambda entry: -abs(entry[2]))
    if args.json:
        entries = [{"item": i, "title": catalog[i].display_title(), "rating": r, "influence": v} for i, r, v in rows]
        record = {"user": user, "item": item_id, "rating": rating, "prompt": recommender.rating_prompt.version}
        print(json.dumps({**record, "window": window, "influences": entries}, indent=1))
        return 0
    item = catalog[item_id]
    print(
        f"{item.display_title()} for user {user} ({recommender.scorer.loaded.describe()}, "
        f"{recommender.rating_prompt.version})\n"
    )
    print(f"predicted rating: {rating:.3f} (expected value over the digits 1-5)\n")
    print(f"{'influence':>10}  {'rated':>5}  {'item':>5}  title")
    for i, r, v in rows[: args.top]:
        print(f"{v:+10.4f}  {r:>5g}  {i:>5}  {catalog[i].display_title()}")
    return 0
