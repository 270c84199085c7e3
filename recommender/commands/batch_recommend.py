"""``recommender batch-recommend``: top-K for every user (or a list), one JSON line each.

    recommender batch-recommend --output recs.jsonl -k 10
    accelerate launch --cpu --num_processes 2 -m recommender.cli batch-recommend --output recs.jsonl
    torchrun --nproc_per_node 2 -m recommender.cli batch-recommend --output recs.jsonl

Under a launcher each process takes a contiguous block of users; the main process merges
the shards in user order, so the file is the same for any number of processes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm.auto import tqdm

from recommender.commands.recommend import add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("batch-recommend", help="top-K for many users to a JSONL file (shardable)")
    parser.add_argument("--output", required=True, help="JSONL file to write")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--users", default=None, help="comma-separated user ids (default: every user)")
    parser.add_argument("--retrieval-only", action="store_true", help="skip the LLM stage")
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recommender.evaluation.distributed import Shards
    from recommender.pipeline import Recommender

    shards = Shards()
    recommender = Recommender.from_pretrained(
        args.dataset, model=args.model, adapter=args.adapter, quantize=args.quantize, device=args.device,
        retrieval_only=args.retrieval_only,
    )  # fmt: skip
    users = [u.strip() for u in args.users.split(",") if u.strip()] if args.users else recommender.split.users
    for user in users:
        recommender.user_history(user)  # unknown ids fail here, before any work
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    mine = shards.mine(users)
    with shards.shard_path(output).open("w", encoding="utf-8") as shard:
        for user in tqdm(mine, desc=f"process {shards.rank}", unit="user", disable=len(mine) < 2):
            results = recommender.recommend(user_id=user, k=args.k)
            items = [r.to_dict() for r in results]
            shard.write(json.dumps({"user_id": user, "items": items}) + "\n")
    shards.wait()
    shards.merge_text(output)
    if shards.is_main:
        print(f"wrote {len(users)} users to {output} ({shards.world} process(es))")
    return 0
