"""Share of chat turns whose LLM-written reply passes the reply gate, on seeded conversations.

Each conversation is a dataset user or a new user saying 1-4 messages drawn (seeded) from a pool
written as people type; every turn runs ``recommender.chat.turn.run_turn`` with the real default
model (SmolLM2-135M + the shipped adapter), exactly as the app serves it, except that the cards'
influences are skipped (they are not part of the reply). Reports the pass share, the reasons for
refusals, whether any SHOWN reply names a film outside the list and the history, and the times to
first cards and to the full reply.

    HF_HUB_OFFLINE=1 nice -n 5 .venv/bin/python bench/chat_replies.py --turns 100 \
        --output bench/results/chat_replies.md
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from recommender.chat.turn import REPLY_TOKENS  # noqa: E402 - pure, no model

MESSAGES = [
    "something funny",
    "a 90s thriller, no horror",
    "sci-fi",
    "not too old",
    "more like Fargo",
    "show me more",
    "something for the kids",
    "a romantic comedy",
    "no romance",
    "what should I watch next?",
    "I liked Toy Story",
    "a heist with a twist",
    "classic westerns",
    "from the 80s",
    "something scary",
    "a war film",
    "something like Star Wars but not too long ago",
    "nothing animated",
    "a good drama please",
    "crime, from the 70s",
    "mystery",
    "an action movie with a lot of explosions",
    "a film noir",
    "something to cry to",
]


def conversations(n_turns: int, users: list[str], seed: int) -> list[tuple[str | None, list[str]]]:
    """Seeded (user or None, messages) pairs with ``n_turns`` messages in all, half of them new users."""
    rng = random.Random(seed)
    out, total = [], 0
    while total < n_turns:
        user = rng.choice(users) if rng.random() < 0.5 else None
        length = min(rng.randint(1, 4), n_turns - total)
        out.append((user, [rng.choice(MESSAGES) for _ in range(length)]))
        total += length
    return out


def bare_reply(draft: str, recs) -> bool:
    """True for a shown reply that is only the asked-for opening ("I recommend Fargo (1996).") and no reason."""
    rest = draft.replace("I recommend", " ")
    for rec in recs[:3]:
        rest = rest.replace(rec.title, " ").replace(f"({rec.year})", " ")
    return len(re.findall(r"[A-Za-z]{3,}", rest)) < 3


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100, help="chat turns in all (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=REPLY_TOKENS, help=f"max new reply tokens ({REPLY_TOKENS})")
    parser.add_argument("-k", type=int, default=10, help="cards per turn")
    parser.add_argument("--adapter", default="default", help="'default' (shipped), 'none' or a folder")
    parser.add_argument("--reply-model", default="base", choices=("base", "ranker"),
                        help="who writes: the base model without the adapter (default) or the ranker")  # fmt: skip
    parser.add_argument("--output", default=None, help="write the markdown report here too")
    parser.add_argument("--show", type=int, default=12, help="sample replies to list in the report")
    return parser


def main(args: argparse.Namespace) -> int:
    from recommender.chat.replies import check_reply_names_only, names_a_shown_item
    from recommender.chat.state import allowed_titles
    from recommender.chat.turn import open_session, run_turn
    from recommender.evaluation.protocol import sample_users
    from recommender.llm.prompting import template_version
    from recommender.pipeline import Recommender
    from recommender.ui.server import ChatServerConfig, reply_writer

    started = time.perf_counter()
    pipeline = Recommender.from_pretrained("ml-100k", adapter=args.adapter)
    writer = reply_writer(pipeline, ChatServerConfig(adapter=args.adapter, reply_model=args.reply_model))
    load_s = time.perf_counter() - started
    writer_name = "base model (no adapter)" if writer is not None else "the ranking model"
    users = [str(u) for u in sample_users(pipeline.split, 50, args.seed)]
    pipeline.recommend(user_id=users[0], k=args.k)  # warm-up
    rows, first_cards, full = [], [], []
    for user, messages in conversations(args.turns, users, args.seed):
        session, _ = open_session(pipeline, None, user)
        for message in messages:
            start, first = time.perf_counter(), None
            last = None
            for update in run_turn(pipeline, None, session, message, args.k, influences=False,
                                   reply_tokens=args.tokens, writer=writer):  # fmt: skip
                if first is None and update.recommendations:
                    first = time.perf_counter() - start
                last = update
            full.append(time.perf_counter() - start)
            if first is not None:
                first_cards.append(first)
            session = last.session
            recs = last.recommendations
            shown_outside = last.source == "llm" and not check_reply_names_only(
                last.reply, allowed_titles(recs, session.state, pipeline.catalog), pipeline.catalog
            )
            rows.append({
                "user": user or "new", "message": message, "source": last.source, "draft": last.draft,
                "rejected": last.rejected, "outside": shown_outside, "cards": len(recs),
                "names_shown": bool(last.draft) and names_a_shown_item(last.draft, recs, pipeline.catalog),
                "bare": last.source == "llm" and bare_reply(last.draft, recs),
            })  # fmt: skip
            print(f"{len(rows):3d} {last.source:8s} {last.rejected or 'ok':28s} {message!r}: {last.draft[:110]!r}",
                  flush=True)  # fmt: skip

    with_llm = [r for r in rows if r["draft"] or r["rejected"]]
    passed = sum(r["source"] == "llm" for r in rows)
    reasons = Counter(r["rejected"] for r in rows if r["rejected"])
    lines = [
        "# Chat replies: share of LLM-written replies that pass the gate",
        "",
        f"`HF_HUB_OFFLINE=1 nice -n 5 .venv/bin/python bench/chat_replies.py --turns {args.turns} --seed {args.seed}"
        f" --tokens {args.tokens} --reply-model {args.reply_model}`",
        "",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; model: {pipeline.scorer.loaded.describe()}; "
        f"replies written by {writer_name}; prompt {template_version('chat_system')}; load {load_s:.1f} s",
        "",
        "| turns | with cards | LLM reply written | passed the gate (shown) | share of all turns | "
        "shown replies naming a film outside list+history |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {len(rows)} | {sum(r['cards'] > 0 for r in rows)} | {len(with_llm)} | {passed} | "
        f"{passed / max(1, len(rows)):.0%} | {sum(r['outside'] for r in rows)} |",
        "",
        f'Shown replies that are only the asked-for opening ("I recommend <title> (<year>)", no reason): '
        f"{sum(r['bare'] for r in rows)} of {passed}.",
        "",
        "Refusals by reason: " + (", ".join(f"{why} {n}" for why, n in reasons.most_common()) or "none"),
        "",
        f"Time per turn (no influences, {args.tokens} new tokens at most): first cards median "
        f"{statistics.median(first_cards):.2f} s, full turn median {statistics.median(full):.2f} s "
        f"(p95 {sorted(full)[int(0.95 * (len(full) - 1))]:.2f} s).",
        "",
        "Sample replies (the first few of each outcome):",
        "",
        "| message | outcome | LLM draft |",
        "| --- | --- | --- |",
    ]
    shown = [r for r in rows if r["source"] == "llm"][: args.show // 2]
    shown += [r for r in rows if r["rejected"]][: args.show - len(shown)]
    for r in shown:
        draft = r["draft"].replace("|", "/").replace("\n", " ")[:220]
        lines.append(f"| {r['message']} | {r['rejected'] or 'shown'} | {draft} |")
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if args.output:
        Path(args.output).write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
