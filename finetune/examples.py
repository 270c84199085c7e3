"""SFT examples from the TRAIN split only, rendered by the same prompt functions as serving.

Each example is a prefix of one user's training sequence: history = the events before
position t (the last ``max_history`` shown), target = the event at t. Validation and test
events are never read (``LeaveOneOutSplit.train``), so they appear neither as targets nor
inside histories. Tasks:

- ``rank``: candidates = retriever top-N for the prefix (leave-user-out scores, see
  ``recommender.llm.evidence.PrefixScorer``) + optional random items. In ``retriever`` order the
  prompt is ``rank_evidence`` (a 0-9 recent co-watch digit per candidate; line-scored, so the
  completion letter only names the target's line); a target outside the top-N is dropped or put
  at a random slot. In ``shuffle`` order the prompt is the serving
  ``rank`` template and a seeded permutation makes the target's letter uniform.
- ``rating``: rated history + target + the train split's evidence -> its rating digit (``RatingPrompt``,
  the serving object; the example's own rating is left out of the item's evidence).
- ``explain``: the serving explanation prompt (``explain.explain_messages``) over evidence from data
  (the shown history items most co-watched with the target stand in for measured influences; shared
  genres, decade, co-watching counts without the user's own pair) -> ``because_sentence`` of that
  evidence, the same builder the served explanation falls back on.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.data import Catalog
from recommender.data.split import EvalCase, LeaveOneOutSplit
from recommender.evaluation.metrics import top_k
from recommender.finetune.config import DataConfig
from recommender.llm.evidence import PrefixScorer, recent_strength
from recommender.llm.prompting import RATING_VALUES, rank_completion, rating_completion
from recommender.llm.ranking_prompts import RankingPrompt, RankingRequest, ranking_prompt
from recommender.llm.rating_prompt import RatingPrompt, RatingStatistics
from recommender.prompts import template_version

TASKS = ("rank", "rating", "explain")


@dataclass(frozen=True)
class Example:
    """One SFT example: prompt messages + the assistant's completion."""

    task: str
    user: str
    target: int  # catalogue row of the target item
    history: tuple[int, ...]  # every catalogue row the prompt was built from, oldest first (the shown tail as shown)
    messages: list[dict[str, str]]
    completion: str  # the answer; for line-scored prompts the target's label
    choices: tuple[str, ...] = ()  # one-token answers the completion is one of ("" task: free text)
    template: str = ""
    template_version: str = ""
    variants: tuple[Example, ...] = ()  # (removed, reordered) for the influence term (``finetune.counterfactual``)


def task_weights(mix: dict) -> dict[str, float]:
    unknown = set(mix) - set(TASKS)
    if unknown:
        raise ValueError(f"data.task_mix names unknown task(s) {sorted(unknown)}; known: {', '.join(TASKS)}.")
    total = float(sum(mix.values()))
    if total <= 0 or any(v < 0 for v in mix.values()):
        raise ValueError("data.task_mix needs non-negative shares with a positive sum.")
    return {task: float(mix.get(task, 0.0)) / total for task in TASKS}


def sample_positions(n_events: int, cfg: DataConfig, rng: np.random.Generator) -> np.ndarray:
    """Target positions t (history = events[:t]) of one user's train sequence."""
    positions = np.arange(cfg.min_history, n_events)
    if cfg.prefixes_per_user and len(positions) > cfg.prefixes_per_user:
        positions = np.sort(rng.choice(positions, cfg.prefixes_per_user, replace=False))
    return positions


def build_examples(
    catalog: Catalog,
    split: LeaveOneOutSplit,
    scorer: PrefixScorer | None,
    cfg: DataConfig,
    seed: int = 0,
    users: Sequence[str] | None = None,
) -> list[Example]:
    """Examples from prefixes of each user's train sequence, in a seeded random order.

    Args:
        scorer: leave-user-out retriever scores (needed for rank and explain tasks).
        users: restrict to these users (default: all).
    """
    prompt = ranking_prompt(cfg.template, cfg.max_history)
    weights = task_weights(cfg.task_mix)
    tasks, probabilities = list(weights), np.array(list(weights.values()))
    rng = np.random.default_rng(seed)
    order_rng = np.random.default_rng([seed, 1])  # its own stream: the other draws stay as they were
    out: list[Example] = []
    for user in users if users is not None else split.users:
        sequence = split.train(user)  # never the validation or test events
        ratings = split.ratings.get(user)
        for t in sample_positions(len(sequence), cfg, rng):
            task = tasks[rng.choice(len(tasks), p=probabilities)]
            if task == "rating" and ratings is None:
                task = "rank"
            history, target = sequence[:t], int(sequence[t])
            if task == "rank":
                example = _rank_example(catalog, scorer, prompt, cfg, rng, user, sequence, history, target, order_rng)
            elif task == "rating":
                example = _rating_example(catalog, split, user, history, ratings[: len(sequence)], t, target)
            else:
                example = _explain_example(catalog, scorer, cfg, user, sequence, history, target)
            if example is not None:
                out.append(example)
    order = rng.permutation(len(out))
    return [out[i] for i in order[: cfg.max_examples or len(out)]]


def _rank_example(catalog, scorer, prompt, cfg, rng, user, sequence, history, target, order_rng) -> Example | None:
    if scorer is None:
        raise ValueError("rank examples need a PrefixScorer (the retriever's scores).")
    scores, sims = scorer.scores(history, user_items=sequence)
    n_hard = cfg.n_candidates - cfg.random_negatives
    candidates = [int(c) for c in top_k(scores, n_hard, mask=history)]
    if cfg.random_negatives:
        pool = np.setdiff1d(np.arange(len(catalog)), np.concatenate([history, candidates, [target]]))
        candidates += [int(c) for c in rng.choice(pool, min(cfg.random_negatives, len(pool)), replace=False)]
    if target not in candidates:
        if cfg.missing_target == "drop" and cfg.candidate_order == "retriever":
            return None
        # Replace the weakest hard negative, then put the target at a uniformly random slot.
        candidates.pop(n_hard - 1)
        candidates.insert(int(rng.integers(len(candidates) + 1)), target)
    if prompt.shuffle:
        candidates = [candidates[i] for i in rng.permutation(len(candidates))]
    evidence = {"recent": recent_strength(sims, np.asarray(candidates))} if "recent" in prompt.evidence else {}
    shown = shown_order(history, prompt.max_history, cfg.shuffle_shown, order_rng)
    return rank_example(catalog, prompt, user, shown, candidates, target, evidence)


def shown_order(history: Sequence[int], shown: int | None, share: float, rng: np.random.Generator) -> list[int]:
    """``history`` with its last ``shown`` items (those the prompt shows) in a random order for a
    ``share`` of the calls, else as it is. Training on such orders teaches the ranking score not to
    hang on the order of the shown titles, which is what the explanations' noise floor measures;
    the evidence digits are computed on the true order before this."""
    history = [int(h) for h in history]
    if share <= 0 or rng.random() >= share:
        return history
    start = 0 if shown is None else max(0, len(history) - shown)
    tail = history[start:]
    return history[:start] + [tail[i] for i in rng.permutation(len(tail))]


def rank_example(
    catalog: Catalog,
    prompt: RankingPrompt,
    user: str,
    history: Sequence[int],
    candidates: Sequence[int],
    target: int,
    evidence: dict | None = None,
) -> Example:
    """A ranking example rendered by the serving prompt object; the completion names the target."""
    rendered = prompt.render(
        RankingRequest(
            [catalog.items[int(h)] for h in history], [catalog.items[int(c)] for c in candidates], evidence or {}
        )
    )
    label = rendered.label_of(catalog.items[target].id)
    return Example(
        "rank",
        user,
        target,
        tuple(int(h) for h in history),
        rendered.messages,
        rank_completion(label),
        rendered.labels,
        rendered.template,
        rendered.template_version,
    )


def validation_examples(
    catalog: Catalog,
    split: LeaveOneOutSplit,
    retriever,
    evidence,
    prompt: RankingPrompt,
    n_candidates: int,
    users: Sequence[str],
    shuffle_shown: float = 0.0,
    seed: int = 0,
    counterfactual: float = 0.0,
) -> list[Example]:
    """One ranking example per user: the whole train sequence as history, the VALIDATION event
    as the target, the candidates exactly as served (``retriever``'s top-N, history masked) and
    the served evidence (``CowatchEvidence``). Every model of stage one was trained on the train
    split only, so the candidate lists carry no memory of the target (unlike train prefixes,
    which a sequential model has already seen). Users whose target is not retrieved are skipped.
    """
    cases = split.cases("valid", list(users))
    return served_examples(
        catalog, cases, retriever, evidence, prompt, n_candidates, shuffle_shown, seed, counterfactual=counterfactual
    )


def held_out_cases(split: LeaveOneOutSplit, drop: int) -> list[EvalCase]:
    """(history, target) at each of the ``drop`` TRAIN positions before a user's validation
    event: the events a first stage built on ``without_last_events(dataset, drop + 2)`` never
    trained on (its own validation and test events among them)."""
    cases = []
    for user in split.eval_users:
        sequence = split.sequences[user]
        for t in range(max(1, len(sequence) - 2 - drop), len(sequence) - 2):
            cases.append(EvalCase(user, sequence[:t], int(sequence[t])))
    return cases


def served_examples(
    catalog: Catalog,
    cases: Sequence[EvalCase],
    retriever,
    evidence,
    prompt: RankingPrompt,
    n_candidates: int,
    shuffle_shown: float = 0.0,
    seed: int = 0,
    batch_size: int = 256,
    counterfactual: float = 0.0,
) -> list[Example]:
    """Ranking examples whose candidates and evidence are computed exactly as served, by a
    first stage that never trained on the targets (a ``shuffle_shown`` share of them with the shown
    titles in a random order, ``shown_order``; a ``counterfactual`` share with the two variants of
    ``finetune.counterfactual``). Cases whose target is not retrieved are skipped."""
    order_rng = np.random.default_rng([seed, 1])
    variant_rng = np.random.default_rng([seed, 2])  # its own stream: the other draws stay as they were
    out = []
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        scores = retriever.score_batch([case.history for case in chunk])  # [B, N]
        for case, row in zip(chunk, scores):
            candidates = top_k(row, n_candidates, mask=case.history)
            if case.target not in set(candidates.tolist()):
                continue
            extra = served_evidence(prompt, evidence, case.history, candidates)
            shown = shown_order(case.history, prompt.max_history, shuffle_shown, order_rng)
            example = rank_example(catalog, prompt, case.user, shown, candidates, case.target, extra)
            if counterfactual > 0 and variant_rng.random() < counterfactual:
                example = with_variants(example, catalog, prompt, candidates, evidence, variant_rng)
            out.append(example)
    return out


def with_variants(example: Example, catalog: Catalog, prompt: RankingPrompt, candidates, evidence, rng) -> Example:
    """``example`` carrying its removed and reordered variants (``finetune.counterfactual``), each
    rendered by the same prompt with the same candidates and its own evidence digits; unchanged
    when the example has none."""
    from recommender.finetune.counterfactual import counterfactual

    found = counterfactual(example.history, example.target, candidates, evidence, prompt.max_history, rng)
    if found is None:
        return example
    variants = tuple(
        rank_example(catalog, prompt, example.user, history, candidates, example.target,
                     served_evidence(prompt, evidence, history, candidates))
        for history in (found.removed, found.reordered)
    )  # fmt: skip
    return dataclasses.replace(example, variants=variants)


def served_evidence(prompt: RankingPrompt, evidence, history, candidates) -> dict:
    """The evidence arrays ``prompt`` shows for ``history`` (the served "recent" digits), none when it shows none."""
    return {"recent": evidence.recent(history, candidates)} if "recent" in prompt.evidence else {}


@functools.lru_cache(maxsize=1)
def _rating_statistics(split: LeaveOneOutSplit, n_items: int) -> RatingStatistics:
    return RatingStatistics.from_split(split, n_items)  # once per split, not once per example


def _rating_example(catalog, split, user, history, ratings, t, target) -> Example:
    """The serving rating prompt (``RatingPrompt`` with the train split's evidence) for the train
    event at ``t``; its own rating is left out of the item's mean and similarities (``own_rating``)."""
    stats = _rating_statistics(split, len(catalog))
    request = stats.request(catalog, history, ratings[:t], target, own_rating=float(ratings[t]))
    prompt = RatingPrompt().render(request)
    completion = rating_completion(float(ratings[t]))
    return Example(
        "rating",
        user,
        target,
        tuple(int(h) for h in history),
        prompt.messages,
        completion,
        RATING_VALUES,
        prompt.template,
        prompt.template_version,
    )


class _OwnPairRemoved:
    """Co-watching counts of the train split (``PrefixScorer.co``) as serving sees them for a user
    whose history is this prefix: the user's own (history item, target) pair is taken out, since at
    serving time the recommended item is not in the user's events."""

    source = "train split"

    def __init__(self, scorer: PrefixScorer, target: int):
        self.scorer, self.target = scorer, target

    def both(self, row_a: int, row_b: int) -> int:
        own = 1 if row_b == self.target else 0
        return max(0, int(self.scorer.co[row_a, row_b]) - own)

    def watched(self, row: int) -> int:
        return int(self.scorer.counts[row])


def explanation_influences(
    catalog: Catalog, history: np.ndarray, target: int, co_row: np.ndarray | None, shown: int, k: int = 2
) -> list[tuple[int, float]]:
    """Training's stand-in for measured influences (no LLM runs while examples are built): the
    ``k`` shown history items most co-watched with the target (``co_row``: [N] similarity), else the
    most recent one sharing a genre with it. (history position, strength), strongest first."""
    start = max(0, len(history) - shown)
    positions = range(len(history) - 1, start - 1, -1)  # most recent first
    if co_row is not None:
        ranked = sorted((p for p in positions if co_row[int(history[p])] > 0), key=lambda p: -co_row[int(history[p])])
        if ranked:
            return [(p, float(co_row[int(history[p])])) for p in ranked[:k]]
    genres = set(catalog.items[target].genres) - {"unknown"}
    sharing = [p for p in positions if genres & set(catalog.items[int(history[p])].genres)]
    return [(sharing[0], 0.0)] if sharing else []


def _explain_example(catalog, scorer, cfg, user, sequence, history, target) -> Example | None:
    """The serving explanation prompt (``explain.explain_messages``) over evidence built by the serving
    ``build_evidence``; the completion is ``because_sentence`` of that evidence, the sentence the
    served explanation falls back on (one builder at train and serve time)."""
    from recommender.explain import explain_messages
    from recommender.explanation_evidence import EvidenceSources, because_sentence, build_evidence

    co_row, cowatch = None, None
    if scorer is not None:
        # Similarity of every item to the target, without this user's own events.
        _, sims = scorer.scores(np.append(history, target), user_items=np.append(sequence, target))
        co_row = sims[-1] if len(sims) else None
        cowatch = _OwnPairRemoved(scorer, target)
    shown = cfg.max_history or len(history)
    influences = explanation_influences(catalog, history, target, co_row, shown)
    if not influences:
        return None
    items = [catalog.items[int(h)] for h in history]
    item = catalog.items[target]
    evidence = build_evidence(EvidenceSources(catalog, cowatch), items, item, influences)
    if not any(entry["links"] for entry in evidence["influences"]):
        return None
    messages = explain_messages(items, item, evidence)
    return Example(
        "explain",
        user,
        target,
        tuple(int(h) for h in history),
        messages,
        because_sentence(evidence),
        (),
        "explain",
        template_version("explain"),
    )


def load_feedback(path) -> list[dict]:
    """Feedback records from the chat's SQLite store (with each item's shown list) or an exported
    JSONL file (records without a ``shown`` list give no example)."""
    import json
    from pathlib import Path

    from recommender.data import DataError
    from recommender.store import FeedbackStore

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no feedback file here (a feedback.sqlite store or an exported .jsonl).")
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        records = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise DataError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
        return records
    return FeedbackStore(path).feedback_records()


def feedback_examples(
    catalog: Catalog,
    split: LeaveOneOutSplit,
    records: Sequence[dict],
    prompt: RankingPrompt,
    n_candidates: int,
    evidence=None,
) -> list[Example]:
    """Ranking examples from chat feedback, rendered by the serving prompt object: each liked item is
    the positive (the completion) of the list it was shown in; the session's disliked items join
    that list as hard negatives (replacing its weakest other entries). History: the record's own
    ``history`` (item ids, oldest first: what the list was made from) when it carries one, else a
    known user's TRAIN events (the validation and test events stay unseen), else none.
    ``evidence(history, rows)`` gives the prompt's evidence arrays (``{"recent": ...}``) when it shows any."""
    disliked: dict[tuple, list[str]] = {}
    for record in records:
        if record.get("label") == 0:
            disliked.setdefault((record.get("session_id"), record.get("user_id")), []).append(str(record["item_id"]))
    out = []
    for record in records:
        liked = str(record.get("item_id"))
        shown = [str(i) for i in record.get("shown") or [] if str(i) in catalog.index]
        if record.get("label") != 1 or liked not in shown:
            continue
        negatives = [i for i in disliked.get((record.get("session_id"), record.get("user_id")), []) if i != liked]
        keep = [i for i in shown[:n_candidates] if i not in negatives]
        hard = [i for i in negatives if i in catalog.index][: n_candidates - 1]
        others = [i for i in keep if i != liked][: max(0, n_candidates - 1 - len(hard))]
        ids = [i for i in shown if i == liked or i in others or i in hard]  # shown order kept
        ids += [i for i in hard if i not in ids]
        if len(ids) < 2:
            continue
        user = str(record.get("user_id") or "")
        if record.get("history") is not None:
            history = np.array([catalog.index[i] for i in map(str, record["history"]) if i in catalog.index], np.int64)
        elif user in split.sequences:
            history = split.train(user)
        else:
            history = np.zeros(0, dtype=np.int64)
        rows = np.array([catalog.index[i] for i in ids], dtype=np.int64)
        extra = evidence(history, rows) if evidence is not None and prompt.evidence else {}
        out.append(rank_example(catalog, prompt, user, history, rows, catalog.index[liked], extra))
    return out
