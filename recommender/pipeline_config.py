"""How the ``Recommender``'s two stages combine (``PipelineConfig``), and the settings an adapter
recorded at training time for it (``tuned_settings``).

    config = PipelineConfig(llm_candidates=20, llm_weight=1.0, template="rank")
    config = PipelineConfig(**tuned_settings(adapter_path))   # as the adapter was trained and tuned
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from recommender.llm.ranking_prompts import ranking_prompt

MAX_LLM_CANDIDATES = 26  # one label (A..Z) per candidate


@dataclass(frozen=True)
class PipelineConfig:
    """How the two stages combine; checked when built."""

    llm_candidates: int = field(default=20, metadata={"help": "retriever top-N that the LLM reranks (2..26)"})
    llm_weight: float = field(
        default=1.0, metadata={"help": "weight of the LLM in the final score: 1 = LLM alone, 0 = retrieval order"}
    )
    permutations: int = field(default=1, metadata={"help": "candidate shuffles averaged against position bias"})
    template: str = field(
        default="rank",
        metadata={"help": "ranking prompt: 'rank' (shuffle-robust, any model) or 'rank_evidence' (adapters')"},
    )
    max_history: int | None = field(
        default=None, metadata={"help": "most recent history items shown in a prompt (None: the prompt's default)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the candidate shuffles"})
    pair_test: bool = field(
        default=False,
        metadata={"help": "explanations name the second influence only when it lowers the score once the first "
                  "is gone (influence.PairTest)"},
    )  # fmt: skip

    def __post_init__(self):
        if not isinstance(self.llm_candidates, int) or not 2 <= self.llm_candidates <= MAX_LLM_CANDIDATES:
            raise ValueError(
                f"llm_candidates must be an integer from 2 to {MAX_LLM_CANDIDATES}, got {self.llm_candidates!r}."
            )
        if not 0.0 <= float(self.llm_weight) <= 1.0:
            raise ValueError(f"llm_weight must be within [0, 1], got {self.llm_weight!r}.")
        if not isinstance(self.permutations, int) or self.permutations < 1:
            raise ValueError(f"permutations must be a positive integer, got {self.permutations!r}.")
        if self.max_history is not None and (not isinstance(self.max_history, int) or self.max_history < 0):
            raise ValueError(f"max_history must be a non-negative integer or None, got {self.max_history!r}.")
        ranking_prompt(self.template)  # an unknown template fails here, naming the known ones


def tuned_settings(adapter_path: Path | None) -> dict:
    """Pipeline settings recorded with an adapter at training time: the prompt template, how
    many candidates and history items it saw, and the blend weight tuned on validation users."""
    if adapter_path is None:
        return {}
    from recommender.llm.loading import read_adapter_metadata
    from recommender.llm.ranking_prompts import PROMPTS

    meta = read_adapter_metadata(adapter_path)
    settings = {}
    if meta.get("template") in PROMPTS:
        settings["template"] = meta["template"]
    if isinstance(meta.get("rerank_candidates"), int):
        settings["llm_candidates"] = meta["rerank_candidates"]
    if isinstance(meta.get("max_history"), int):
        settings["max_history"] = meta["max_history"]
    if isinstance(meta.get("pair_test"), bool):  # set by hand in the metadata of an adapter served with it
        settings["pair_test"] = meta["pair_test"]
    weight = meta.get("llm_weight", meta.get("blend_alpha"))  # adapters before 2026-11-30 wrote blend_alpha
    if isinstance(weight, (int, float)):
        settings["llm_weight"] = float(weight)
    return settings
