"""``recommender update``: append interactions and catalogue items; refresh the retriever incrementally.

recommender update --interactions new.csv                     # user_id,item_id,timestamp[,rating]
recommender update --interactions new.csv --items new_items.csv   # item_id,title[,year,genres,text]
recommender update --from-db ~/.cache/llm-recommender/feedback.sqlite   # the chat's likes / seen since last time
recommender update --status

Bad rows are refused with the file, line and field, and nothing is stored. The appended state is
written beside the previous one and switched to atomically (``recommender.update``); servers pick
it up with ``recommender.update.with_updates`` when they start.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "update",
        help="append interactions / items and refresh the retriever without a rebuild",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", default="ml-100k", help="base dataset: 'ml-100k' or a folder (default ml-100k)")
    parser.add_argument("--interactions", type=Path, default=None, help="CSV or JSONL of new interactions")
    parser.add_argument("--items", type=Path, default=None, help="CSV or JSONL of new catalogue items")
    parser.add_argument("--from-db", type=Path, default=None, help="feedback store: append its stored interactions")
    parser.add_argument("--state", type=Path, default=None, help="update state folder (default: in the cache)")
    parser.add_argument(
        "--no-sequential", action="store_true", help="refresh a first stage without the sequential model"
    )
    parser.add_argument("--status", action="store_true", help="print what has been appended so far and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recommender.data.loaders import load_dataset
    from recommender.data.updates import NewEvents, read_new_events, read_new_items
    from recommender.update import Updater, UpdateState, default_state_dir, events_from_store

    base = load_dataset(args.dataset)
    state_dir = args.state or default_state_dir(base)
    if args.status:
        appended = UpdateState(state_dir).read()
        print(f"{state_dir}: {len(appended.events)} interactions and {len(appended.items)} items appended "
              f"in {len(appended.info.get('updates', []))} updates")  # fmt: skip
        print(retrain_status(base, len(appended.events), len(appended.items)))
        return 0
    if args.interactions is None and args.items is None and args.from_db is None:
        raise ValueError("give --interactions, --items or --from-db (or --status).")
    # Read and check the files before anything heavy loads: a bad line fails in a moment.
    catalog = base.catalog
    appended_items = UpdateState(state_dir).read().items
    if appended_items:
        from recommender.data.updates import extend_catalog

        catalog = extend_catalog(catalog, appended_items)
    items = read_new_items(args.items, catalog) if args.items else []
    events = read_new_events(args.interactions, catalog, items) if args.interactions else NewEvents.empty()
    note: dict = {"files": [str(p) for p in (args.interactions, args.items) if p]}
    if args.from_db is not None:
        from recommender.store import FeedbackStore

        if not args.from_db.expanduser().is_file():
            raise FileNotFoundError(f"{args.from_db}: no feedback store here.")
        after = int(UpdateState(state_dir).read().info.get("store_applied_until", 0))
        stored, last = events_from_store(FeedbackStore(args.from_db), after)
        known = set(catalog.index) | {item.id for item in items}
        keep = [i for i, item in enumerate(stored.items.tolist()) if item in known]
        if len(keep) < len(stored):
            print(f"skipped {len(stored) - len(keep)} stored interactions whose item is not in the catalogue")
        events = events.concat(stored.select(keep))
        note["store_applied_until"] = last

    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig

    retriever = build_default_retriever(base, sequential=None if args.no_sequential else SequentialConfig())
    updater = Updater(base, retriever, state_dir)
    report = updater.update(events, items, note=note)
    for line in report.lines():
        print(line)
    print(f"state: {state_dir}")
    return 0


def retrain_status(base, new_events: int, new_items: int) -> str:
    """When the sequential model (trained on the base data's train split) should be retrained."""
    from recommender.data.split import LeaveOneOutSplit
    from recommender.retrieval.incremental import retrain_outlook

    trained_events = int(len(LeaveOneOutSplit(base.interactions).train_csr()[1]))
    return retrain_outlook(trained_events, len(base.catalog), new_events, new_items)
