"""What "less violent" does to a list: the served first stage with ``Filters(avoid=(word,))`` at several
weights, on seeded users of a split (validation by default: the weight was chosen there).

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.avoid --users 200 --split valid --md bench/results/avoid.md

For each avoided word, the genres it points at (by the catalogue's own labels, so the check is not the
text similarity it measures): the share of the top 10 in those genres, and what it costs the ranking
of the held-out film (NDCG@10, full catalogue, seen films excluded), at weight 0 (the plain list), the
served ``AVOID_WEIGHT`` and the others of ``--weights``. No film is dropped at any weight.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

VIOLENT = ("Action", "Crime", "Horror", "War", "Thriller")
WORD_GENRES = {"violent": VIOLENT, "violence": VIOLENT, "bloody": VIOLENT, "gory": ("Horror",),
               "scary": ("Horror",), "sappy": ("Romance",), "depressing": ("Drama",), "silly": ("Comedy",),
               "cartoonish": ("Animation", "Children's")}  # fmt: skip


def measure(retriever, catalog, cases, word: str, weight: float, genres: tuple[str, ...]) -> tuple[float, float]:
    """(share of top-10 films in ``genres``, NDCG@10 of the held-out film) with ``word`` avoided at ``weight``."""
    from recommender.protocols import Filters
    from recommender.retrieval import base

    base.AVOID_WEIGHT, served = weight, base.AVOID_WEIGHT
    try:
        filters = Filters(avoid=(word,) if weight else ())
        lists = retriever.retrieve_batch([[catalog.ids[row] for row in c.history] for c in cases], 10, None, filters)
    finally:
        base.AVOID_WEIGHT = served
    wanted = set(genres)
    share = np.mean([np.mean([bool(wanted & set(catalog.items[r].genres)) for r in found.items]) for found in lists])
    gains = [next((1 / np.log2(n + 2) for n, row in enumerate(found.items) if row == c.target), 0.0)
             for found, c in zip(lists, cases)]  # fmt: skip
    return float(share), float(np.mean(gains))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.25, 1.0])
    parser.add_argument("--md", default=None, help="also write the table here")
    args = parser.parse_args(argv)

    from recommender.evaluation.protocol import sample_users
    from recommender.pipeline import Recommender
    from recommender.retrieval.base import AVOID_WEIGHT

    rec = Recommender.from_pretrained(retrieval_only=True)
    cases = [rec.split.case(user, args.split) for user in sample_users(rec.split, args.users, args.seed)]
    weights = sorted({0.0, AVOID_WEIGHT, *args.weights})
    lines = [f"# Avoided words ({len(cases)} {args.split} users, seed {args.seed}, served first stage)", "",
             "Share of the top 10 in the genres the word points at / NDCG@10 of the held-out film; "
             f"served weight {AVOID_WEIGHT}.", "",
             "| word | genres | " + " | ".join(f"w={w:g}" for w in weights) + " |",
             "|---|---|" + "---:|" * len(weights)]  # fmt: skip
    for word, genres in WORD_GENRES.items():
        cells = [measure(rec.retriever, rec.catalog, cases, word, w, genres) for w in weights]
        lines.append(f"| {word} | {', '.join(genres)} | " + " | ".join(f"{s:.2f} / {g:.4f}" for s, g in cells) + " |")
        print(lines[-1], flush=True)
    report = "\n".join(lines) + "\n"
    if args.md:
        Path(args.md).write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
