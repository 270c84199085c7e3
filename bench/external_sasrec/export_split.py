"""Write this project's ML-100k leave-one-out split to plain files for an external library.

Runs in the PROJECT venv (it reads the data with ``recommender``); the training script runs in
a separate venv and reads only these files, so both sides see exactly the same split.

    .venv/bin/python bench/external_sasrec/export_split.py runs/external_sasrec

Files written under the folder (tab-separated, with a header):
    items.tsv   row, item_id               the catalogue in row order (row = our item index)
    train.tsv   user_id, item_id, position  training events; position 0, 1, 2, ... per user,
                                            strictly increasing in our (stable) time order
    valid.tsv   user_id, item_id            each evaluated user's validation target
    test.tsv    user_id, item_id            each evaluated user's test target
    meta.json   counts and the dataset fingerprint
The validation input is the user's train events; the test input is train + the validation item.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# The package root re-exports both under the old flat layout and the data/ subpackage layout.
from recommender import LeaveOneOutSplit, load_dataset  # noqa: E402


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="runs/external_sasrec", help="folder to write the split to")
    parser.add_argument("--dataset", default="ml-100k", help="'ml-100k' or a folder load_dataset reads")
    return parser


def export(dataset_name: str, out: Path) -> dict:
    """Write the split files of ``dataset_name`` under ``out``; returns the meta record."""
    dataset = load_dataset(dataset_name)
    split = LeaveOneOutSplit(dataset.interactions)
    ids = dataset.catalog.ids
    out.mkdir(parents=True, exist_ok=True)

    lines = ["row\titem_id"] + [f"{row}\t{item_id}" for row, item_id in enumerate(ids)]
    (out / "items.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    lines = ["user_id\titem_id\tposition"]
    for user in split.users:
        lines += [f"{user}\t{ids[int(row)]}\t{position}" for position, row in enumerate(split.train(user))]
    (out / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    for name in ("valid", "test"):
        cases = split.cases(name)
        # The validation item must be the last event before the test item, and every input
        # must be exactly train (+ validation item for test): check rather than assume.
        for case in cases:
            expected = split.train(case.user) if name == "valid" else split.sequences[case.user][:-1]
            if len(case.history) != len(expected) or (case.history != expected).any():
                raise RuntimeError(f"user {case.user}: {name} input is not the train events (+ validation item)")
        lines = ["user_id\titem_id"] + [f"{case.user}\t{ids[case.target]}" for case in cases]
        (out / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    meta = {
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "n_items": len(ids),
        "n_users": len(split.users),
        "n_eval_users": len(split.eval_users),
        "n_train_events": sum(len(split.train(user)) for user in split.users),
        "split": "leave-one-out: last event = test, second-to-last = validation (stable time sort)",
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    meta = export(args.dataset, Path(args.out))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
