"""Fine-tuning configuration: frozen dataclasses with ``help`` metadata, read from a YAML
recipe and overridden from the command line (``--set lora.r=8`` or ``--max_steps 50``).

Every unknown key, in the file or on the command line, fails with one sentence naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A recipe or override is wrong; the message names the key."""


def _choice(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(map(repr, allowed))}, got {value!r}.")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = field(default="ml-100k", metadata={"help": "dataset name or folder for recommender.data.loaders"})
    prefixes_per_user: int = field(default=12, metadata={"help": "train-sequence prefixes sampled per user (0 = all)"})
    min_history: int = field(default=5, metadata={"help": "shortest prefix (history length) used as an example"})
    max_history: int = field(default=10, metadata={"help": "most recent history items shown in a prompt"})
    n_candidates: int = field(default=10, metadata={"help": "candidates per ranking prompt (retriever top-N)"})
    examples: str = field(
        default="prefixes",
        metadata={
            "help": "'prefixes' of train sequences (train split); 'validation': one example per user, its "
            "validation event as the target, candidates and evidence exactly as served (selection users excluded); "
            "'held_out': those plus the last data.held_out train events of every user, their candidates from a first "
            "stage built without those events"
        },
    )
    held_out: int = field(
        default=6, metadata={"help": "with examples=held_out: train events per user the shadow first stage never sees"}
    )
    sequential: bool = field(
        default=False,
        metadata={"help": "put the sequential model into the first stage (needs data.examples=validation)"},
    )
    candidate_order: str = field(
        default="retriever",
        metadata={"help": "'retriever': the rank_evidence prompt (best first, evidence shown); 'shuffle': 'rank'"},
    )
    missing_target: str = field(
        default="drop",
        metadata={"help": "target not in the retriever top-N: 'drop' the example or put it at a 'random_slot'"},
    )
    random_negatives: int = field(default=0, metadata={"help": "random catalogue items among the candidates"})
    shuffle_shown: float = field(
        default=0.0,
        metadata={
            "help": "share of ranking examples whose shown history titles appear in a random order (the evidence "
            "digits still read the true order): the score learns not to hang on the order of the titles"
        },
    )
    counterfactual: float = field(
        default=0.0,
        metadata={
            "help": "share of ranking examples that also carry two variants for train.influence_weight: the shown film "
            "most co-watched with the target removed (the next-older one enters), and two shown films that trade "
            "places without changing the evidence"
        },
    )
    task_mix: dict = field(
        default_factory=lambda: {"rank": 1.0, "rating": 0.0, "explain": 0.0},
        metadata={"help": "share of each task among examples: rank, rating, explain"},
    )
    max_examples: int = field(default=4000, metadata={"help": "cap on training examples after the mix"})
    feedback: str | None = field(
        default=None,
        metadata={
            "help": "chat feedback to learn from: the SQLite store or JSONL records with a 'shown' list; a liked item "
            "is the positive of the list it was shown in, disliked items of that session hard negatives (added after "
            "max_examples)"
        },
    )

    def __post_init__(self):
        _choice("data.examples", self.examples, ("prefixes", "validation", "held_out"))
        _choice("data.candidate_order", self.candidate_order, ("retriever", "shuffle"))
        _choice("data.missing_target", self.missing_target, ("drop", "random_slot"))
        if self.sequential and self.examples == "prefixes":
            raise ConfigError(
                "config key 'data.sequential' needs data.examples=validation: the sequential model was trained on "
                "the train sequences, so on their prefixes it already knows the next item (set data.sequential=false "
                "for prefix examples)."
            )
        if not 2 <= self.n_candidates <= 26 or not 0 <= self.random_negatives < self.n_candidates:
            raise ConfigError("config keys 'data.n_candidates' must be 2..26 and 'data.random_negatives' below it.")
        if not 0.0 <= self.shuffle_shown <= 1.0:
            raise ConfigError(f"config key 'data.shuffle_shown' is a share from 0 to 1, got {self.shuffle_shown}.")
        if not 0.0 <= self.counterfactual <= 1.0:
            raise ConfigError(f"config key 'data.counterfactual' is a share from 0 to 1, got {self.counterfactual}.")
        if self.counterfactual > 0 and (self.shuffle_shown > 0 or self.examples == "prefixes"):
            raise ConfigError(
                "config key 'data.counterfactual' needs data.examples=validation or held_out and data.shuffle_shown=0 "
                "(its variants are built from the served evidence on the true order)."
            )

    @property
    def template(self) -> str:
        """The ranking prompt the examples are rendered with."""
        return "rank_evidence" if self.candidate_order == "retriever" else "rank"


@dataclass(frozen=True)
class LoraSettings:
    r: int = field(default=16, metadata={"help": "LoRA rank"})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    target_modules: tuple = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"), metadata={"help": "module names that get LoRA"}
    )
    top_layers: int = field(
        default=0,
        metadata={"help": "LoRA only in the last N decoder layers (0 = all); backward then stops there (faster)"},
    )


@dataclass(frozen=True)
class TrainSettings:
    model: str | None = field(default=None, metadata={"help": "base model (None = embedded SmolLM2-135M GGUF)"})
    quantize: str = field(default="none", metadata={"help": "'none' or '4bit' (bitsandbytes NF4 QLoRA)"})
    precision: str = field(default="auto", metadata={"help": "'auto' (bf16 on CUDA, fp32 on CPU), 'fp32', 'bf16'"})
    seed: int = field(default=0, metadata={"help": "seed of sampling, shuffling, LoRA init and dropout"})
    max_steps: int = field(default=150, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "examples per micro-batch (per process)"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=10, metadata={"help": "linear warm-up steps, then cosine decay to 10%"})
    choice_loss: str = field(
        default="labels", metadata={"help": "one-token answers: CE over the allowed 'labels' only, or full 'vocab'"}
    )
    influence_weight: float = field(
        default=0.0,
        metadata={
            "help": "weight of the influence term on examples with data.counterfactual variants: a hinge that wants "
            "the target's score to fall by train.influence_margin without its most co-watched shown film, plus the "
            "absolute change of that score when two shown films trade places (0 = plain ranking loss)"
        },
    )
    influence_margin: float = field(
        default=0.1, metadata={"help": "nats the target's log-probability should lose without that film"}
    )
    influence_order_weight: float = field(
        default=1.0,
        metadata={
            "help": "weight of the reorder change inside the influence term (0: the removal hinge alone, and the "
            "reordered prompt is not scored)"
        },
    )
    checkpoint_every: int = field(default=25, metadata={"help": "steps between resumable checkpoints"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    init_adapter: str | None = field(
        default=None,
        metadata={
            "help": "re-tune: start from this adapter's LoRA weights ('default' = the shipped one) instead of a fresh "
            "LoRA; its rank, target modules and prompt must match this recipe's"
        },
    )

    def __post_init__(self):
        _choice("train.quantize", self.quantize, ("none", "4bit"))
        _choice("train.precision", self.precision, ("auto", "fp32", "bf16"))
        _choice("train.choice_loss", self.choice_loss, ("labels", "vocab"))
        if min(self.influence_weight, self.influence_margin, self.influence_order_weight) < 0:
            raise ConfigError(
                "config keys 'train.influence_weight', 'train.influence_margin' and 'train.influence_order_weight' "
                "must be >= 0."
            )


@dataclass(frozen=True)
class EvalSettings:
    every: int = field(default=25, metadata={"help": "steps between validation runs (0 = only at the end)"})
    users: int = field(default=200, metadata={"help": "fixed validation users sampled for selection and blending"})
    report_users: int = field(default=300, metadata={"help": "other validation users for the final report (0 = skip)"})
    batch_size: int = field(default=16, metadata={"help": "prompts per scoring forward pass"})
    metric: str = field(default="blend_NDCG@10", metadata={"help": "selection metric: NDCG@10 or blend_NDCG@10"})
    patience: int = field(default=3, metadata={"help": "evaluations without improvement before stopping"})
    seed: int = field(default=1234, metadata={"help": "seed of the validation user samples"})

    def __post_init__(self):
        _choice("eval.metric", self.metric, ("NDCG@10", "blend_NDCG@10"))


@dataclass(frozen=True)
class FinetuneConfig:
    output_dir: str = field(default="runs/ml100k-cpu", metadata={"help": "folder for adapter, metadata, curves"})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "training examples"})
    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "LoRA adapter"})
    train: TrainSettings = field(default_factory=TrainSettings, metadata={"help": "optimisation"})
    eval: EvalSettings = field(default_factory=EvalSettings, metadata={"help": "validation while training"})


# Short override names accepted as --max_steps etc.: unique leaf names.
def leaf_paths(cls: type = FinetuneConfig, prefix: str = "") -> dict[str, str]:
    """Dotted path of every leaf key, e.g. {"lora.r": "lora.r", ...}."""
    out = {}
    for f in fields(cls):
        path = f"{prefix}{f.name}"
        if is_dataclass(f.type if isinstance(f.type, type) else _field_type(cls, f.name)):
            out.update(leaf_paths(_field_type(cls, f.name), path + "."))
        else:
            out[path] = path
    return out


def _field_type(cls: type, name: str) -> Any:
    return {f.name: f.default_factory for f in fields(cls) if f.default_factory is not dataclasses.MISSING}.get(
        name, type(None)
    )


def _build(cls: type, values: dict, where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"unknown config key '{where}{key}'; known keys under '{where or 'top level'}': {', '.join(known)}."
            )
        sub = _field_type(cls, key)
        if isinstance(sub, type) and is_dataclass(sub):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"config key '{where}{key}' must be a mapping of {', '.join(f.name for f in fields(sub))}."
                )
            kwargs[key] = _build(sub, value, f"{where}{key}.")
        else:
            kwargs[key] = _coerce(value, known[key], f"{where}{key}", cls)
    return cls(**kwargs)


def _coerce(value: Any, f: dataclasses.Field, path: str, cls: type) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"config key '{path}' must be true or false, got {value!r}.")
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if default is not None and value is not None and not isinstance(value, type(default)):
        kind = _KIND_WORDS.get(type(default), f"a {type(default).__name__}")
        raise ConfigError(f"config key '{path}' must be {kind}, got {value!r}.")
    return value


# What a YAML writer should type, in words ("must be a int" reads as a slip).
_KIND_WORDS = {
    int: "a whole number",
    float: "a number",
    str: "text",
    tuple: "a list",
    list: "a list",
    dict: "a mapping",
}


def load_config(path: str | Path | None, overrides: list[str] = ()) -> FinetuneConfig:
    """The recipe at ``path`` (or the defaults) with ``key=value`` overrides applied.

    Keys are dotted (``lora.r=8``) or a unique leaf name (``max_steps=50``); values are YAML
    (``lora.target_modules=[q_proj,v_proj]``, ``data.task_mix={rank: 0.8, rating: 0.2}``).
    """
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist.")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}.") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a mapping of config keys.")
    paths = leaf_paths()
    by_leaf: dict[str, list[str]] = {}
    for dotted in paths:
        by_leaf.setdefault(dotted.rsplit(".", 1)[-1], []).append(dotted)
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override {override!r} must look like key=value.")
        key, text = override.split("=", 1)
        key = key.strip().lstrip("-")
        if key not in paths:
            matches = by_leaf.get(key, [])
            if len(matches) != 1:
                raise ConfigError(
                    f"unknown config key '{key}'"
                    + (f" (ambiguous: {', '.join(matches)})." if matches else "; run with --help to list the keys.")
                )
            key = matches[0]
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(text)
    return _build(FinetuneConfig, raw, "")


def config_dict(config: Any) -> dict:
    """The resolved config as plain JSON-able data."""
    return dataclasses.asdict(config)
