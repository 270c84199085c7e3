"""``recommender batch-recommend``: top-K for every user (or a list), one JSON line each.

    recommender batch-recommend --output recs.jsonl -k 10
    accelerate launch --multi_gpu --num_processes 2 -m recommender.cli batch-recommend --output recs.jsonl  # CPU: gloo
    torchrun --nproc_per_node 2 -m recommender.cli batch-recommend --output recs.jsonl
    accelerate launch --num_processes 8 -m recommender.cli batch-recommend --output recs.jsonl    # 8 GPUs
    accelerate launch --config_file finetune/accelerate/multi_node.yaml --machine_rank R \
        -m recommender.cli batch-recommend --output recs.jsonl                                   # N machines

Users go in fixed batches of ``--batch-size``: one retrieval call and ONE batched LLM call
(every user's ranking prompt together) per batch. Under a launcher each process takes a share of
the batches on its own device (``recommender.evaluation.distributed``), the results come back
through accelerate's ``gather_object`` and the main process writes them in user order. A batch is
the same whatever the number of processes, so the file is too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from recommender.commands.recommend import add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("batch-recommend", help="top-K for many users to a JSONL file (shardable)")
    parser.add_argument("--output", required=True, help="JSONL file to write")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--users", default=None, help="comma-separated user ids (default: every user)")
    parser.add_argument("--retrieval-only", action="store_true", help="skip the LLM stage")
    parser.add_argument(
        "--batch-size", type=int, default=8,
        help="users per retrieval call and per batched LLM call (their prompts scored together)",
    )  # fmt: skip
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from recommender.evaluation.distributed import batches, map_in_order, process_device, process_state
    from recommender.pipeline import Recommender

    if not isinstance(args.k, int) or args.k <= 0:
        raise ValueError(f"-k must be a positive integer, got {args.k!r}.")
    state = process_state(args.device)
    recommender = Recommender.from_pretrained(
        args.dataset, model=args.model, adapter=args.adapter, quantize=args.quantize, dtype=args.dtype,
        device=process_device(state, args.device), retrieval_only=args.retrieval_only,
    )  # fmt: skip
    users = [u.strip() for u in args.users.split(",") if u.strip()] if args.users else recommender.split.users
    for user in users:
        recommender.user_history(user)  # unknown ids fail here, on every process, before any work
    groups = batches(users, args.batch_size)
    output = Path(args.output)

    def work(group: list[str]) -> list[str]:
        return [
            json.dumps({"user_id": u, "items": items})
            for u, items in zip(group, recommend_batch(recommender, group, args.k))
        ]

    bar = tqdm(total=len(users), unit="user", desc="batch-recommend", disable=not state.is_main_process)
    out = None
    if state.is_main_process:  # only the main process writes; the others hand it their lines
        output.parent.mkdir(parents=True, exist_ok=True)
        out = output.open("w", encoding="utf-8")
    try:
        for group_lines in map_in_order(state, work, groups, per_round=8):  # every process joins every gather
            if out is not None:
                out.write("".join(line + "\n" for line in group_lines))
                bar.update(len(group_lines))
    finally:
        if out is not None:
            out.close()
    bar.close()
    if state.is_main_process:
        print(f"wrote {len(users)} users to {output} ({state.num_processes} process(es))")
    return 0


def recommend_batch(recommender, users: list[str], k: int) -> list[list[dict]]:
    """Per user, what ``recommender.recommend(user_id=u, k=k)`` returns (as dicts), for many users
    at once: one ``retrieve_batch`` call and one ``llm_scores`` call with every user's prompt.

    With ``permutations`` > 1 the candidate shuffles are seeded by a user's position in the batch
    (``score_requests``), so scores can differ from one-user ``recommend`` calls; they are the
    same for any number of processes, because batches are.
    """
    from recommender.pipeline import shared_genre_reasons
    from recommender.protocols import Recommendation
    from recommender.ranking import rerank_block, stable_order

    catalog, config = recommender.catalog, recommender.config
    histories = [recommender.user_history(user) for user in users]
    pool = max(k, config.llm_candidates)
    retrieved = recommender.retriever.retrieve_batch(histories, pool)
    finals = [np.asarray(c.scores, dtype=np.float64).copy() for c in retrieved]
    llms = [np.full(len(c), np.nan) for c in retrieved]
    # Users whose top block the LLM reranks: all their prompts go to the scorer in one call.
    llm_on = recommender.scorer is not None
    reranked = [u for u, c in enumerate(retrieved) if llm_on and min(config.llm_candidates, len(c)) >= 2]
    if reranked:
        rows = [np.array([catalog.index[i] for i in histories[u]], dtype=np.int64) for u in reranked]
        tops = [retrieved[u].items[: config.llm_candidates] for u in reranked]
        for u, scored in zip(reranked, recommender.llm_scores(rows, tops)):
            llms[u][: len(scored)] = scored
            finals[u] = rerank_block(finals[u], scored, config.llm_weight)
    reranked_users = set(reranked)
    version = recommender.prompt.version if recommender.scorer is not None else "retrieval-only"
    out = []
    for u, candidates in enumerate(retrieved):
        order = stable_order(finals[u]) if u in reranked_users else np.arange(len(candidates))
        history_items = [catalog[item_id] for item_id in histories[u]]
        results = []
        for position in order[:k]:
            item = catalog.items[int(candidates.items[position])]
            llm = llms[u][position]
            results.append(
                Recommendation(
                    item_id=item.id,
                    title=item.title,
                    score=float(finals[u][position]),
                    retrieval_score=float(candidates.scores[position]),
                    llm_score=None if np.isnan(llm) else float(llm),
                    template_version=version,
                    year=item.year,
                    genres=item.genres,
                    reasons=tuple(shared_genre_reasons(item, history_items)),
                ).to_dict()
            )
        out.append(results)
    return out
