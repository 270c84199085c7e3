"""Offline LoRA fine-tuning of the ranking LLM on behaviour sequences (train split only).

    recommender finetune --config finetune/configs/ml100k_cpu.yaml              # < 40 min on 2 CPU cores
    recommender finetune --config finetune/configs/ml100k_cpu.yaml --max_steps 50 --set lora.r=8
    recommender finetune --config finetune/configs/ml100k_cpu.yaml --resume     # continue from the last checkpoint
    recommender finetune --config finetune/configs/ml100k_seq_wide_cpu.yaml    # the shipped adapter
    recommender finetune --config finetune/configs/ml100k_qlora_gpu.yaml       # one GPU, 4-bit QLoRA, bf16
    accelerate launch --config_file finetune/accelerate/ddp.yaml -m recommender.finetune.train \
        --config finetune/configs/ml100k_qlora_gpu.yaml --set train.quantize=none
    accelerate launch --config_file finetune/accelerate/fsdp.yaml -m recommender.finetune.train \
        --config finetune/configs/ml100k_qlora_gpu.yaml --set train.quantize=none

Why a plain accelerate loop and not TRL's SFTTrainer: the ranking prompt (``rank_evidence``) is
LINE-SCORED: the loss is cross-entropy over twenty scores read at twenty positions of one
sequence (the "Yes" minus "No" logit at the end of each candidate line,
``recommender.llm.scoring.line_scores``, exactly what the serving scorer ranks by), which is not a
completion loss. Rank and rating answers of the letter-scored templates are ONE token; their loss
is cross-entropy over the allowed answers at the last position, and ``logits_to_keep`` computes
the vocabulary projection for a handful of positions instead of the whole sequence (49,152 x
~400 logits per example). The loop also runs the two-stage validation, early stopping and
best-adapter keeping in a few lines.

Output folder: ``adapter_model.safetensors`` + ``adapter_config.json`` (peft, best evaluation),
``recommender_adapter.json`` (``recommender.llm.loading.write_adapter_metadata``: base model, template
versions, data fingerprint, resolved config, every evaluation, blend weight, final report),
``curves.png``, and ``checkpoints/`` while training.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from recommender.finetune.checkpoints import (  # noqa: F401  (re-exported: tests and callers import them from here)
    CHECKPOINTS,
    RUN_FILE,
    claim_output,
    full_state_dict,
    latest_checkpoint,
    load_checkpoint,
    run_identity,
    save_adapter,
    save_checkpoint,
)
from recommender.finetune.config import ConfigError, FinetuneConfig, config_dict, leaf_paths, load_config
from recommender.finetune.encoding import Encoded, batch_loss, encode_examples  # noqa: F401  (re-exported)
from recommender.finetune.loop import TrainerState, lr_factor, micro_batch, train_loop  # noqa: F401  (re-exported)
from recommender.finetune.model_setup import (  # noqa: F401  (re-exported)
    add_lora,
    check_quantize,
    lora_layers,
    start_from_adapter,
)
from recommender.finetune.plots import plot_curves
from recommender.finetune.training_data import TrainingData, build_training_data  # noqa: F401  (re-exported)


@dataclass
class Trainable:
    """The base model loaded for training, its LoRA-wrapped model and the tokenised examples."""

    loaded: Any  # recommender.llm.loading.LoadedModel of the base model
    model: Any  # the peft model (LoRA on ``loaded.model``)
    encoded: list[Encoded]
    trained_in: dict[str, str]  # weights dtype, quantization, mixed precision: recorded with the figures
    started_from: Path | None  # a re-tune's starting adapter (train.init_adapter)


def make_accelerator(config: FinetuneConfig) -> tuple[Any, str]:
    """The ``Accelerator`` of this run and its mixed precision ('bf16' on CUDA unless set, else 'fp32')."""
    import torch
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    precision = config.train.precision if config.train.precision != "auto" else ("bf16" if cuda else "fp32")
    accelerator = Accelerator(
        gradient_accumulation_steps=config.train.grad_accum,
        mixed_precision="bf16" if precision == "bf16" else "no",
        cpu=not cuda,
    )
    return accelerator, precision


def load_trainable(config: FinetuneConfig, accelerator, precision: str, data: TrainingData, log) -> Trainable:
    """Load the base model (4-bit when asked), tokenise the examples, add the LoRA (from a trained
    adapter when re-tuning)."""
    import torch

    from recommender.llm.loading import load_model

    # Trainable weights stay float32 (accelerate autocasts to bf16 when asked); a 4-bit base on CUDA
    # computes in bf16, the QLoRA recipe.
    weights = "bfloat16" if config.train.quantize == "4bit" and torch.cuda.is_available() else "float32"
    device = str(accelerator.device)
    loaded = load_model(config.train.model, quantize=config.train.quantize, device=device, dtype=weights)
    trained_in = {"weights": loaded.dtype, "quantization": loaded.quantization, "mixed_precision": precision}
    encoded = encode_examples(data.examples, loaded.tokenizer)
    lengths = [len(e.ids) for e in encoded]
    log(f"tokens per example: median {int(np.median(lengths))}, max {max(lengths)}")
    model = add_lora(loaded.model, config, config.train.quantize == "4bit")
    started_from = start_from_adapter(model, config, data.prompt)
    if started_from is not None:
        log(f"re-tuning the adapter in {started_from} (step 0 evaluates it as it was)")
    model.print_trainable_parameters()
    return Trainable(loaded, model, encoded, trained_in, started_from)


def main(config: FinetuneConfig, overwrite: bool = False, resume: bool = False) -> dict:
    """Build the SFT set, train the LoRA adapter, validate, save adapter + metadata + curves."""
    check_quantize(config.train.quantize)
    from recommender.finetune.examples import task_weights

    task_weights(config.data.task_mix)  # bad mixes fail before anything loads
    import torch

    from recommender.finetune.validate import evaluate_logits
    from recommender.llm.loading import LoadedModel, write_adapter_metadata
    from recommender.llm.scoring import LLMScorer

    started = time.perf_counter()
    torch.set_num_threads(config.train.threads)
    accelerator, precision = make_accelerator(config)
    log = accelerator.print
    data = build_training_data(config)
    folder = Path(config.output_dir)
    claim_output(folder, run_identity(config, data.dataset.fingerprint()), overwrite, resume)
    counts = {task: sum(e.task == task for e in data.examples) for task in ("rank", "rating", "explain")}
    counts["with_counterfactual"] = sum(bool(e.variants) for e in data.examples)
    log(
        f"{len(data.examples)} training examples {counts} ({config.data.examples}); "
        f"{len(data.eval_set)} + {len(data.report_set)} validation users"
    )
    if not data.examples:
        raise ConfigError("no training examples were built; lower data.min_history or raise data.prefixes_per_user.")
    run = load_trainable(config, accelerator, precision, data, log)
    loaded = run.loaded

    def llm_logits(net, items) -> list[np.ndarray]:
        wrapped = LoadedModel(net, loaded.tokenizer, loaded.base_name, None, device=str(accelerator.device))
        return data.prompt.raw_scores(LLMScorer(wrapped, batch_size=config.eval.batch_size), [i.prompt for i in items])

    versions = {example.template: example.template_version for example in data.examples}
    versions[data.prompt.name] = data.prompt.version

    def save_best(net, metrics: dict) -> None:  # called on every process
        save_adapter(accelerator, net, folder)  # the full LoRA weights, also under FSDP
        if accelerator.is_main_process:
            write_adapter_metadata(
                folder, loaded.base_name, versions, status="training", best=metrics, precision=run.trained_in
            )

    state = train_loop(
        run.model,
        run.encoded,
        config,
        folder,
        loaded.tokenizer.pad_token_id,
        evaluate=lambda net: evaluate_logits(data.eval_set, llm_logits(net, data.eval_set)),
        save_best=save_best,
        resume=resume,
        accelerator=accelerator,
        log=log,
        answer_ids=LLMScorer(loaded).yes_no_ids,
    )
    # Final report on OTHER validation users: the LLM weight comes from the selection users.
    net = restore_best(accelerator, run.model, folder, state)
    final = final_report(net, data.report_set, llm_logits, state, log)
    minutes = (time.perf_counter() - started) / 60
    if accelerator.is_main_process:
        record = run_record(config, data, run, state, counts, final)
        write_adapter_metadata(folder, loaded.base_name, versions, status="done", **record,
                               minutes=round(minutes, 1), device=str(accelerator.device))  # fmt: skip
        title = f"{loaded.base_name} LoRA on {data.dataset.name}"
        plot_curves(state, folder / "curves.png", title, chance_loss=float(np.log(config.data.n_candidates)))
        # checkpoints/ stays until the next run of this folder; it is never shipped.
    log(f"done in {minutes:.1f} min; adapter, metadata and curves in {folder}")
    return {"state": state, "report": final, "folder": str(folder)}


def restore_best(accelerator, model, folder: Path, state: TrainerState):
    """The unwrapped model with the kept (best) adapter's weights; saves the last ones when no
    evaluation kept an adapter (the state is the same on every process)."""
    net = accelerator.unwrap_model(model)
    if state.best is None:
        save_adapter(accelerator, net, folder)
    elif (folder / "adapter_model.safetensors").is_file():
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(net, load_file(str(folder / "adapter_model.safetensors")))
    return net


def final_report(net, report_set, llm_logits, state: TrainerState, log) -> dict:
    """Zero-shot and adapter metrics on the report users, with the LLM weight chosen on the selection users."""
    if not report_set:
        return {}
    from recommender.finetune.validate import evaluate_logits

    net.eval()
    zero_weight = state.evals[0]["llm_weight"] if state.evals and state.evals[0]["step"] == 0 else None
    with net.disable_adapter():
        zero = evaluate_logits(report_set, llm_logits(net, report_set), zero_weight)
    tuned = evaluate_logits(report_set, llm_logits(net, report_set), (state.best or {}).get("llm_weight"))
    log(
        f"report on {len(report_set)} other validation users: NDCG@10 retriever order "
        f"{tuned['retriever_NDCG@10']:.4f} | zero-shot {zero['NDCG@10']:.4f} (blend {zero['blend_NDCG@10']:.4f}) | "
        f"adapter {tuned['NDCG@10']:.4f} (blend {tuned['blend_NDCG@10']:.4f}, LLM weight {tuned['llm_weight']})"
    )
    return {"users": len(report_set), "zero_shot": zero, "adapter": tuned}


def run_record(
    config: FinetuneConfig, data: TrainingData, run: Trainable, state: TrainerState, counts: dict, final: dict
) -> dict:
    """What ``recommender_adapter.json`` records of a finished run (beside base model and template versions)."""
    return {
        "precision": run.trained_in,  # the validation figures below were measured in it
        "data_fingerprint": data.dataset.fingerprint(),
        "dataset": data.dataset.name,
        "config": config_dict(config),
        "n_examples": counts,
        "feedback_examples": data.feedback_examples,
        "init_adapter": str(run.started_from) if run.started_from is not None else None,
        "steps": state.step,
        "stopped_early": state.stopped_early,
        "evaluations": state.evals,
        "best": state.best,
        "llm_weight": (state.best or {}).get("llm_weight"),
        "rerank_candidates": config.data.n_candidates,
        "max_history": config.data.max_history,
        "template": data.prompt.name,
        "first_stage": "hybrid+sequential" if config.data.sequential else "hybrid",
        "selection_users": list(eval_users_of(data)),
        "report": final,
        "train_loss": state.losses,
    }


def eval_users_of(data: TrainingData) -> list[str]:
    """The selection users (``recommender evaluate`` leaves them out by default)."""
    return [item.user for item in data.eval_set]


# ------------------------------------------------------------------------------------- command line


def key_help(path: str) -> str:
    """The help line of a config key, with its default, as argparse prints it."""
    node: Any = FinetuneConfig()
    *parents, leaf = path.split(".")
    for name in parents:
        node = getattr(node, name)
    entry = next(f for f in fields(node) if f.name == leaf)
    text = f"{entry.metadata.get('help', '')} (default {getattr(node, leaf)!r})"
    return text.replace("%", "%%")  # argparse %-formats help strings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--config, --set KEY=VALUE, --overwrite, --resume, and --KEY VALUE for every config key."""
    parser.add_argument("--config", help="YAML recipe (finetune/configs/*.yaml); defaults when left out")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--overwrite", action="store_true", help="replace an output folder holding another run")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in output_dir")
    paths = list(leaf_paths())
    leaves: dict[str, list[str]] = {}
    for path in paths:
        leaves.setdefault(path.rsplit(".", 1)[-1], []).append(path)
    # Forty-odd config flags would fill the usage line; they are listed under "config keys".
    parser.usage = "%(prog)s [-h] [--config CONFIG] [--set KEY=VALUE] [--overwrite] [--resume] [--KEY VALUE ...]"
    group = parser.add_argument_group(
        "config keys",
        "Each overrides the recipe, as --set KEY=VALUE does; the short name (--max_steps)\n"
        "works where the key's last part is unique.",
    )
    for path in paths:
        names = [f"--{path}"]
        leaf = path.rsplit(".", 1)[-1]
        if len(leaves[leaf]) == 1 and leaf != path:
            names.append(f"--{leaf}")
        group.add_argument(*names, dest=f"override__{path}", metavar="VALUE", default=None, help=key_help(path))


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    overrides = list(args.set)
    for name, value in vars(args).items():
        if name.startswith("override__") and value is not None:
            overrides.append(f"{name.removeprefix('override__')}={value}")
    return load_config(args.config, overrides)


def run(args: argparse.Namespace) -> int:
    try:
        main(config_from_args(args), overwrite=args.overwrite, resume=args.resume)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finetune.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


if __name__ == "__main__":
    sys.exit(run(make_parser().parse_args()))
