"""Conversations measured end to end (issue 28): simulated people who want one film talk to the
real chat path, with the ranking in three settings.

Each person is a real user's held-out film (``recommender.evaluation.simulator``): warm people keep
that user's history before the target, cold ones (every other person, seeded) have none. Every turn
goes through ``recommender.chat.turn.run_turn`` and ``give_feedback`` (what the Gradio app calls),
with the conversation state, the parser and a SQLite feedback store in a temporary folder; replies
are templated (the LLM reply changes no card), influences are off. Settings: ``retrieval`` (no
LLM), ``zero_shot`` (SmolLM2 without an adapter, as ``recommender chat --adapter none`` serves it)
and ``adapter`` (the shipped LoRA adapter, as ``recommender chat`` serves it).

Metrics: success rate by turn t (SR@t: the target in the top 10 by turn t), mean turns to success
(failures count turns + 1), the target's hit rate in each turn's list among people still talking,
constraint violations shown (a card breaking what the conversation state says it applies, checked
here from the catalogue, never through the filter code; and, reported apart, a card breaking what
the person firmly said), and median turn latency. Settings are compared on the same people with
a paired bootstrap (SR through ``metrics.paired_ndcg_difference`` with success as rank 1 at k=1).

    nice -n 10 .venv/bin/python -m bench.conversations --people 500 --turns 5 --seed 0
    nice -n 10 .venv/bin/python -m bench.conversations --people 500 --settings retrieval,zero_shot,adapter \\
        --llm-people 50 --subset-only --seed 0 --name conversations-llm   # all settings on a seeded subset
    nice -n 10 .venv/bin/python -m bench.conversations --split valid --people 100 --name conversations-valid
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from recommender.chat.turn import finish_turn, give_feedback, open_session, run_turn  # noqa: E402
from recommender.data.titles import fold  # noqa: E402
from recommender.evaluation import metrics  # noqa: E402
from recommender.evaluation.bootstrap import paired_mean_difference  # noqa: E402
from recommender.evaluation.simulator import CoWatch, Person, SimulatedPerson, make_person  # noqa: E402

SETTINGS = ("retrieval", "zero_shot", "adapter")
RESULTS = Path(__file__).parent / "results"
K = 10  # cards per turn, the app's default


@dataclass(frozen=True)
class ConversationsConfig:
    """What one run measures."""

    people: int = field(default=500, metadata={"help": "simulated people (one per sampled user)"})
    turns: int = field(default=5, metadata={"help": "lists a person sees at most"})
    seed: int = field(default=0, metadata={"help": "seed of the user sample, warm/cold and the people's words"})
    split: str = field(default="test", metadata={"help": "'test' (table of record) or 'valid' (choosing)"})
    settings: tuple[str, ...] = field(default=("retrieval",), metadata={"help": "ranking settings to run"})
    llm_people: int = field(default=50, metadata={"help": "seeded subset of the people for the LLM settings"})
    cold_share: float = field(default=0.5, metadata={"help": "share of people without history"})
    subset_only: bool = field(default=False, metadata={"help": "every setting on the LLM subset (paired with it)"})
    name: str = field(default="conversations", metadata={"help": "file stem under bench/results"})


class HeldOut:
    """A pipeline whose known users' histories end before their target (what the person had seen)."""

    def __init__(self, pipeline: Any, histories: dict[str, list[str]]):
        self._pipeline, self._histories = pipeline, histories

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def user_history(self, user_id: str) -> list[str]:
        return list(self._histories[str(user_id)])


def state_violations(item: Any, state: Any) -> list[str]:
    """What a card breaks of the constraints the conversation state holds, from the catalogue alone."""
    out = []
    genres = set(item.genres)
    if state.include_genres and not genres & set(state.include_genres):
        out.append("genre not asked for")
    if genres & set(state.exclude_genres):
        out.append("excluded genre")
    if state.year_min is not None and (item.year is None or item.year < state.year_min):
        out.append("before the asked years")
    if state.year_max is not None and (item.year is None or item.year > state.year_max):
        out.append("after the asked years")
    if item.id in {*state.exclude_items, *state.disliked, *state.seen}:
        out.append("excluded, disliked or seen film")
    if item.id in {*state.history, *state.liked, *state.anchors}:
        out.append("a film of the history")
    title = f" {fold(item.title)} "
    if any(f" {fold(fragment)} " in title for fragment in getattr(state, "exclude_fragments", ())):
        out.append("excluded title fragment")
    return out


def converse(pipeline: Any, store: Any, person: Person, seed: int, turns: int) -> dict[str, Any]:
    """One conversation through the app's turn handler; the record of every turn."""
    catalog = pipeline.catalog
    talk = SimulatedPerson(person, catalog, seed)
    session, _ = open_session(pipeline, store, person.user if person.warm else None)
    said, records, success = talk.opening(), [], None
    for turn in range(1, turns + 1):
        for item_id, action in said.feedback:
            session, _ = give_feedback(pipeline, store, session, item_id, action)
        started = time.perf_counter()
        last = finish_turn(run_turn(pipeline, store, session, said.message, K, llm_reply=False, influences=False))
        latency = time.perf_counter() - started
        session = last.session
        shown = [rec.item_id for rec in last.recommendations]
        state = session.state
        records.append({
            "turn": turn, "message": said.message, "kind": said.kind, "clicks": [list(c) for c in said.feedback],
            "source": last.source, "shown": shown, "hit": person.target in shown, "latency_s": latency,
            "violations": [[i, why] for i in shown for why in state_violations(catalog[i], state)],
            "said_broken": [[i, f.kind, str(f.value)] for i in shown for f in talk.broken(i)],
        })  # fmt: skip
        if person.target in shown:
            success = turn
            break
        said = talk.react(shown)
    return {"user": person.user, "target": person.target, "warm": person.warm, "success": success, "turns": records}


def sample_people(dataset: Any, config: ConversationsConfig) -> tuple[list[Person], dict[str, list[str]]]:
    """Seeded people: users of the split, their target and history; every other one cold."""
    from recommender.data.split import LeaveOneOutSplit
    from recommender.evaluation.protocol import sample_users

    split = LeaveOneOutSplit(dataset.interactions)
    catalog = dataset.catalog
    cowatch = CoWatch.from_split(split, len(catalog))
    users = sample_users(split, config.people, config.seed)
    cold = set(np.random.default_rng(config.seed + 1).permutation(len(users))[: round(config.cold_share * len(users))])
    people, histories = [], {}
    for n, user in enumerate(users):
        case = split.case(user, config.split)
        history = [catalog.ids[row] for row in case.history]
        histories[user] = history
        people.append(make_person(user, catalog.ids[case.target], history, catalog, cowatch, warm=n not in cold))
    return people, histories


def load_setting(name: str) -> Any:
    """The pipeline a setting serves, as the chat command builds it."""
    from recommender.pipeline import Recommender

    if name == "retrieval":
        return Recommender.from_pretrained(retrieval_only=True)
    return Recommender.from_pretrained(adapter="none" if name == "zero_shot" else "default")


def run_setting(name: str, people: list[Person], histories: dict[str, list[str]], config: ConversationsConfig):
    """Every person's conversation under one setting (a fresh store in a temporary folder)."""
    from recommender.store import FeedbackStore

    pipeline = HeldOut(load_setting(name), histories)
    out = []
    with tempfile.TemporaryDirectory() as folder:
        store = FeedbackStore(Path(folder) / "feedback.sqlite")
        for n, person in enumerate(people, 1):
            out.append(converse(pipeline, store, person, config.seed, config.turns))
            if n % 10 == 0:
                print(f"  {name}: {n}/{len(people)} people", flush=True)
    return out


def success_turns(records: list[dict], turns: int) -> np.ndarray:
    """[P] the turn of success, ``turns + 1`` for a failure."""
    return np.array([r["success"] or turns + 1 for r in records], dtype=np.int64)


def summary(records: list[dict], turns: int) -> dict[str, Any]:
    """SR@t, mean turns, per-turn hit rates, violations and latency of one setting."""
    done = success_turns(records, turns)
    reached = [[r for r in records if len(r["turns"]) >= t] for t in range(1, turns + 1)]
    all_turns = [t for r in records for t in r["turns"]]
    return {
        "people": len(records),
        "sr": [float((done <= t).mean()) for t in range(1, turns + 1)],
        "mean_turns": float(done.mean()),
        "hit_rate": [
            float(np.mean([r["turns"][t]["hit"] for r in reach])) if reach else 0.0 for t, reach in enumerate(reached)
        ],  # fmt: skip
        "talking": [len(reach) for reach in reached],
        "cards": sum(len(t["shown"]) for t in all_turns),
        "violations": sum(len(t["violations"]) for t in all_turns),
        "said_broken": sum(len(t["said_broken"]) for t in all_turns),
        "help_turns": sum(t["source"] == "help" for t in all_turns),
        "latency_median_s": statistics.median(t["latency_s"] for t in all_turns) if all_turns else 0.0,
        "latency_p90_s": float(np.percentile([t["latency_s"] for t in all_turns], 90)) if all_turns else 0.0,
    }


def sr_interval(records: list[dict], turns: int, t: int, reference: list[dict] | None = None) -> dict[str, float]:
    """SR@t (or its difference from ``reference`` on the same people) with a bootstrap interval:
    success by turn t is rank 1 at k=1, so ``metrics.paired_ndcg_difference`` bootstraps it."""
    ranks = np.where(success_turns(records, turns) <= t, 1, 2)
    base = np.where(success_turns(reference, turns) <= t, 1, 2) if reference is not None else np.full(len(ranks), 2)
    return metrics.paired_ndcg_difference(ranks, base, k=1)


def reading(interval: dict[str, float]) -> str:
    if interval["ci_low"] > 0:
        return "helps"
    if interval["ci_high"] < 0:
        return "hurts"
    return "cannot be told apart"


def report(results: dict[str, list[dict]], config: ConversationsConfig, seconds: dict[str, float]) -> str:
    """The markdown table of one run."""
    t_max = config.turns
    lines = [f"# Conversations end to end ({config.split} users, seed {config.seed})", "",
             f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; {config.turns} turns, {K} cards, templated replies, "
             f"cold share {config.cold_share}; LLM settings on a seeded subset of {config.llm_people} of the same "
             "people",
             "", "| setting | people | " + " | ".join(f"SR@{t} [95% CI]" for t in range(1, t_max + 1))
             + " | mean turns | violations / cards | said-broken | help turns | median turn s | run s |",
             "|---|---|" + "---|" * t_max + "---|---|---|---|---|---|"]  # fmt: skip
    for name, records in results.items():
        s = summary(records, t_max)
        cells = []
        for t in range(1, t_max + 1):
            iv = sr_interval(records, t_max, t)
            cells.append(f"{s['sr'][t - 1]:.3f} [{iv['ci_low']:.3f}, {iv['ci_high']:.3f}]")
        lines.append(f"| {name} | {s['people']} | " + " | ".join(cells) + f" | {s['mean_turns']:.2f} | "
                     f"{s['violations']} / {s['cards']} | {s['said_broken']} | {s['help_turns']} | "
                     f"{s['latency_median_s']:.3f} | {seconds[name]:.0f} |")  # fmt: skip
    lines += ["", "SR@t: share of people whose target was in a list's top 10 by turn t (bootstrap 95% CI). Mean turns: "
              f"the turn of success, {t_max + 1} for a failure. Violations: cards breaking a constraint the "
              "conversation state holds (genres, years, excluded / disliked / seen films, title fragments, the "
              "history), checked from the catalogue, not by the filter code. Said-broken: cards breaking what the "
              "person firmly said (a genre named as a genre, a decade, an exclusion, a film turned down), i.e. "
              "misreadings. Help turns: messages the parser read as nothing. Turn s: the turn handler with "
              "templated replies (cards only), median.",
              "", "Hit rate of the target in each turn's list (people still talking at that turn):", "",
              "| setting | " + " | ".join(f"turn {t}" for t in range(1, t_max + 1)) + " |",
              "|---|" + "---|" * t_max]  # fmt: skip
    for name, records in results.items():
        s = summary(records, t_max)
        lines.append(f"| {name} | " + " | ".join(f"{h:.3f} ({n})" for h, n in zip(s["hit_rate"], s["talking"])) + " |")
    lines += _paired_lines(results, config)
    return "\n".join(lines) + "\n"


def _paired_lines(results: dict[str, list[dict]], config: ConversationsConfig) -> list[str]:
    """Each LLM setting minus retrieval only, on the people both ran."""
    if "retrieval" not in results or len(results) < 2:
        return []
    lines = ["", "Paired differences from retrieval only (same people; 2,000 bootstrap resamples):", "",
             "| setting | people | SR@1 | SR@" + str(config.turns) + " | mean turns | reading (SR@"
             + str(config.turns) + ") |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, records in results.items():
        if name == "retrieval":
            continue
        ids = {r["user"] for r in records}
        base = [r for r in results["retrieval"] if r["user"] in ids]
        first, last = (sr_interval(records, config.turns, t, base) for t in (1, config.turns))
        turns = paired_mean_difference(success_turns(records, config.turns) - success_turns(base, config.turns))
        cell = [f"{iv['difference']:+.3f} [{iv['ci_low']:+.3f}, {iv['ci_high']:+.3f}]" for iv in (first, last, turns)]
        lines.append(f"| {name} | {len(records)} | " + " | ".join(cell) + f" | {reading(last)} |")
    return lines


def plot(results: dict[str, list[dict]], config: ConversationsConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    turns = np.arange(1, config.turns + 1)
    for name, records in results.items():
        axis.plot(turns, summary(records, config.turns)["sr"], marker="o", label=f"{name} ({len(records)} people)")
    axis.set(xlabel="turn", ylabel="success rate (target in top 10)", xticks=turns,
             title=f"Simulated conversations, {config.split} users, seed {config.seed}")  # fmt: skip
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = ConversationsConfig()
    for name in ("people", "turns", "seed", "llm_people"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--split", choices=("test", "valid"), default=defaults.split)
    parser.add_argument("--settings", default=",".join(defaults.settings), help=f"comma list of {SETTINGS}")
    parser.add_argument("--cold-share", type=float, default=defaults.cold_share)
    parser.add_argument("--name", default=defaults.name)
    parser.add_argument("--subset-only", action="store_true", help="every setting on the seeded LLM subset")
    return parser


def main(config: ConversationsConfig) -> int:
    from recommender.data.loaders import load_dataset

    unknown = set(config.settings) - set(SETTINGS)
    if unknown:
        raise SystemExit(f"unknown settings {sorted(unknown)}; choose from {SETTINGS}.")
    people, histories = sample_people(load_dataset("ml-100k"), config)
    results, seconds = {}, {}
    subset = np.random.default_rng(config.seed + 2).permutation(len(people))[: config.llm_people]
    for name in config.settings:
        started = time.perf_counter()
        full = name == "retrieval" and not config.subset_only
        chosen = people if full else [people[i] for i in sorted(subset)]
        results[name] = run_setting(name, chosen, histories, config)
        seconds[name] = time.perf_counter() - started
        print(f"{name}: {len(chosen)} people in {seconds[name]:.0f} s", flush=True)
    text = report(results, config, seconds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{config.name}.md").write_text(text)
    (RESULTS / f"{config.name}.json").write_text(json.dumps({"config": asdict(config), "results": results}))
    plot(results, config, RESULTS / f"{config.name}.png")
    print(text)
    return 0


if __name__ == "__main__":
    args = make_parser().parse_args()
    settings = tuple(s.strip() for s in args.settings.split(",") if s.strip())
    config = ConversationsConfig(people=args.people, turns=args.turns, seed=args.seed, split=args.split,
                                 settings=settings, llm_people=args.llm_people, cold_share=args.cold_share,
                                 name=args.name, subset_only=args.subset_only)  # fmt: skip
    raise SystemExit(main(config))
