"""What a fine-tuning run trains and validates on, built before any model loads: examples from the
train split (or served validation events), selection and report validation sets, chat feedback;
every prompt rendered by the serving ranking prompt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.finetune.config import FinetuneConfig


@dataclass
class TrainingData:
    """Everything ``main`` trains and validates on, built before any model loads."""

    dataset: Any
    examples: list
    eval_set: list  # selection users: checkpoints and the LLM weight are chosen on them
    report_set: list  # other validation users: the final report
    prompt: Any  # the RankingPrompt of the rank examples (the one serving will use)
    feedback_examples: int = 0  # of ``examples``, built from chat feedback (data.feedback)


def build_training_data(config: FinetuneConfig) -> TrainingData:
    """Examples from the train split (or the validation events of non-selection users) and the
    validation prompts, all rendered by the serving ranking prompt."""
    from recommender.data.loaders import load_dataset
    from recommender.data.split import LeaveOneOutSplit
    from recommender.evaluation.protocol import sample_users
    from recommender.finetune.validate import build_eval_set
    from recommender.llm.ranking_prompts import ranking_prompt
    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig

    dataset = load_dataset(config.data.dataset)
    split = LeaveOneOutSplit(dataset.interactions)
    hybrid = build_default_retriever(dataset, split, sequential=SequentialConfig() if config.data.sequential else None)
    prompt = ranking_prompt(config.data.template, config.data.max_history)
    eval_users = sample_users(split, config.eval.users, config.eval.seed)
    report_users = sample_users(split, config.eval.report_users, config.eval.seed + 1, exclude=eval_users)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    limit = threadpool_limits(1) if threadpool_limits else None  # one BLAS thread: 15x faster small matvecs
    if config.data.examples in ("validation", "held_out"):
        kept_out = set(eval_users) | set(report_users)
        examples, candidates, evidence = served_side(config, dataset, split, hybrid, prompt, kept_out)
    else:
        examples, candidates, evidence = prefix_side(config, dataset, split, hybrid)

    def build(users):
        return build_eval_set(
            dataset.catalog, split.cases("valid", users), candidates, evidence, prompt, config.data.n_candidates
        )

    eval_set, report_set = build(eval_users), build(report_users)
    feedback = []
    if config.data.feedback:
        from recommender.finetune.examples import feedback_examples, load_feedback

        records = load_feedback(config.data.feedback)
        feedback = feedback_examples(dataset.catalog, split, records, prompt, config.data.n_candidates, evidence)
    if limit is not None:
        limit.unregister()
    return TrainingData(dataset, feedback + examples, eval_set, report_set, prompt, len(feedback))


Side = tuple[list, Callable, Callable]  # (examples, candidates(history) -> [N], evidence(history, rows) -> dict)


def served_side(config: FinetuneConfig, dataset, split, hybrid, prompt, kept_out: set[str]) -> Side:
    """data.examples 'validation' / 'held_out': served candidates and evidence for everyone (the
    retriever as served, sparse co-watch digits); the selection and report users are kept out."""
    from recommender.finetune.examples import validation_examples
    from recommender.llm.evidence import CowatchEvidence

    served = CowatchEvidence.for_retriever(hybrid, split)
    train_users = [u for u in split.users if u not in kept_out]
    n_candidates, order = config.data.n_candidates, (config.data.shuffle_shown, config.train.seed)
    examples = validation_examples(
        dataset.catalog, split, hybrid, served, prompt, n_candidates, train_users, *order,
        counterfactual=config.data.counterfactual,
    )  # fmt: skip
    if config.data.examples == "held_out":
        examples += shadow_examples(config, dataset, split, prompt)
    examples = [examples[i] for i in np.random.default_rng(config.train.seed).permutation(len(examples))]
    examples = examples[: config.data.max_examples or len(examples)]

    def candidates(history):
        return hybrid.score_rows(history)

    def evidence(history, rows):
        return {"recent": served.recent(history, rows)}

    return examples, candidates, evidence


def prefix_side(config: FinetuneConfig, dataset, split, hybrid) -> Side:
    """data.examples 'prefixes': examples at sampled prefixes of the train sequences."""
    from recommender.finetune.examples import build_examples
    from recommender.llm.evidence import PrefixScorer, recent_strength

    prefix = PrefixScorer(hybrid, split.train_sequences())
    examples = build_examples(dataset.catalog, split, prefix, config.data, config.train.seed)

    def candidates(history):
        return prefix.scores(history)[0]  # serving view: the history is the whole train sequence

    def evidence(history, rows):
        return {"recent": recent_strength(prefix.similarities(history), rows)}

    return examples, candidates, evidence


def shadow_examples(config: FinetuneConfig, dataset, split, prompt) -> list:
    """Examples at each user's last ``data.held_out`` train events, ranked by a first stage built
    (and cached) without those events and the validation and test ones: the sequential model and
    the co-occurrence rows there have never seen the targets, exactly as at serving time."""
    from recommender.data.split import LeaveOneOutSplit, without_last_events
    from recommender.finetune.examples import held_out_cases, served_examples
    from recommender.llm.evidence import CowatchEvidence
    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig

    shadow = without_last_events(dataset, config.data.held_out + 2)
    shadow_split = LeaveOneOutSplit(shadow.interactions)
    sequential = SequentialConfig() if config.data.sequential else None
    stage = build_default_retriever(shadow, shadow_split, sequential=sequential)
    evidence = CowatchEvidence.for_retriever(stage, shadow_split)
    cases = held_out_cases(split, config.data.held_out)
    shuffle, seed = config.data.shuffle_shown, config.train.seed + 1
    return served_examples(
        dataset.catalog, cases, stage, evidence, prompt, config.data.n_candidates, shuffle, seed,
        counterfactual=config.data.counterfactual,
    )  # fmt: skip
