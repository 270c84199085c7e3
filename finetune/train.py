"""Offline LoRA fine-tuning of the ranking LLM on behaviour sequences (train split only).

    recommender finetune --config finetune/configs/ml100k_cpu.yaml              # < 40 min on 2 CPU cores
    recommender finetune --config finetune/configs/ml100k_cpu.yaml --max_steps 50 --set lora.r=8
    recommender finetune --config finetune/configs/ml100k_cpu.yaml --resume     # continue from the last checkpoint
    recommender finetune --config finetune/configs/ml100k_cpu_long.yaml        # the shipped adapter
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
import json
import math
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.finetune.config import ConfigError, FinetuneConfig, config_dict, help_lines, leaf_paths, load_config

RUN_FILE = "run.json"  # written first into the output folder: which run owns it
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class Encoded:
    """A tokenised example: ``ids`` = prompt + completion; the last ``n_completion`` ids are the answer."""

    ids: list[int]
    n_completion: int
    choice_ids: tuple[int, ...] = ()  # token ids of the allowed one-token answers (empty: free text)
    target: int = -1  # index of the answer in ``choice_ids`` (or in ``readouts``)
    readouts: tuple[int, ...] = ()  # line-scored prompts: token index of each candidate line's end


# ------------------------------------------------------------------------------------- output folder


def run_identity(config: FinetuneConfig, data_fingerprint: str = "") -> dict:
    """What makes two runs the same run (resuming with more steps is the same run)."""
    resolved = config_dict(config)
    resolved.pop("output_dir")
    resolved["train"].pop("max_steps")
    resolved["eval"].pop("report_users")
    return json.loads(json.dumps({"config": resolved, "data_fingerprint": data_fingerprint}))  # tuples -> lists


def claim_output(folder: Path, identity: dict, overwrite: bool, resume: bool) -> None:
    """Refuse a folder that holds another run (or unknown files) unless ``overwrite``."""
    marker = folder / RUN_FILE
    if folder.exists() and any(folder.iterdir()):
        if overwrite:
            shutil.rmtree(folder)
        elif not marker.is_file():
            raise ConfigError(f"output folder {folder} is not empty and holds no {RUN_FILE}; pass --overwrite.")
        else:
            previous = json.loads(marker.read_text())
            if previous != identity:
                raise ConfigError(
                    f"output folder {folder} holds a different run (other config or data); "
                    "pass --overwrite to replace it or choose another output_dir."
                )
            if not resume and (folder / CHECKPOINTS).is_dir():
                shutil.rmtree(folder / CHECKPOINTS)  # same run started afresh
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(identity, indent=1, sort_keys=True))


def check_quantize(quantize: str) -> None:
    """Fail fast, before loading anything, when 4-bit is asked for and cannot work."""
    if quantize == "4bit":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError(
                "train.quantize is '4bit' but bitsandbytes is not installed; "
                'install it with `pip install "llm-recommender[cuda]"` or set quantize=none.'
            ) from None
        import torch

        if not torch.cuda.is_available():
            warnings.warn("4-bit QLoRA on CPU runs, but slower than float32 LoRA.", UserWarning, stacklevel=2)


# ------------------------------------------------------------------------------------- model


def add_lora(model, config: FinetuneConfig, quantized: bool):
    """Wrap ``model`` with a trainable LoRA adapter (base weights frozen)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = LoraConfig(
        layers_to_transform=lora_layers(model, config),
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def lora_layers(model, config: FinetuneConfig) -> list[int] | None:
    """The decoder layers that get LoRA: the last ``lora.top_layers`` (None = all)."""
    if not config.lora.top_layers:
        return None
    total = model.config.num_hidden_layers
    return list(range(max(0, total - config.lora.top_layers), total))


def start_from_adapter(model, config: FinetuneConfig, prompt) -> Path | None:
    """Copy a trained adapter's LoRA weights into the fresh LoRA (``train.init_adapter``: a re-tune).
    An adapter of another shape or prompt is refused in one sentence: its weights would not fit, or
    would be re-taught a prompt it was not trained on."""
    if not config.train.init_adapter:
        return None
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from recommender.pipeline import _tuned_settings, shipped_adapter

    name = config.train.init_adapter
    folder = shipped_adapter() if name == "default" else Path(name).expanduser()
    if folder is None:
        raise ConfigError("train.init_adapter is 'default' but no shipped adapter is installed.")
    # The prompt settings serving reads from the adapter; a missing folder or metadata file fails here, naming it.
    recorded = _tuned_settings(folder)
    if not (folder / "adapter_config.json").is_file() or not (folder / "adapter_model.safetensors").is_file():
        raise ConfigError(f"train.init_adapter {folder} holds no adapter_config.json + adapter_model.safetensors.")
    shape = json.loads((folder / "adapter_config.json").read_text())
    wanted = {
        "lora.r": (shape.get("r"), config.lora.r),
        "lora.alpha": (shape.get("lora_alpha"), config.lora.alpha),
        "lora.target_modules": (sorted(shape.get("target_modules") or []), sorted(config.lora.target_modules)),
        "lora.top_layers": (shape.get("layers_to_transform"), lora_layers(model.get_base_model(), config)),
        "data.max_history": (recorded.get("max_history"), config.data.max_history),
        "data.n_candidates": (recorded.get("llm_candidates"), config.data.n_candidates),
        "data.candidate_order": (recorded.get("template"), prompt.name),
    }
    for key, (theirs, ours) in wanted.items():
        if theirs != ours:
            raise ConfigError(
                f"train.init_adapter {folder} was trained with {key} = {theirs!r} but this recipe has {ours!r}; "
                "set the recipe to match or leave init_adapter empty."
            )
    loaded = set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    if loaded.unexpected_keys:
        raise ConfigError(f"train.init_adapter {folder}: weights {loaded.unexpected_keys[:3]} do not fit this LoRA.")
    return folder


def encode_examples(examples: Sequence, tokenizer) -> list[Encoded]:
    """Token ids of each example through the tokenizer's chat template (as the serving scorer does)."""
    from recommender.llm.ranking_prompts import PROMPTS
    from recommender.llm.scoring import line_readouts, single_token_id

    end = tokenizer.eos_token or ""
    out = []
    answer_ids: dict[str, int] = {}  # checked once per answer: one token right after the assistant prompt
    for example in examples:
        prompt = PROMPTS.get(example.template)
        if prompt is not None and prompt.readout == "line":
            prompt, readouts = line_readouts(tokenizer, example.messages, len(example.choices))
            out.append(Encoded(prompt, 0, target=example.choices.index(example.completion), readouts=tuple(readouts)))
            continue
        text = tokenizer.apply_chat_template(example.messages, tokenize=False, add_generation_prompt=True)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        if example.choices:
            for choice in example.choices:
                if choice not in answer_ids:
                    answer_ids[choice] = single_token_id(tokenizer, text, choice)
            choice_ids = tuple(answer_ids[c] for c in example.choices)
            target = example.choices.index(example.completion)
            out.append(Encoded(prompt + [choice_ids[target]], 1, choice_ids, target))
        else:
            completion = tokenizer(example.completion + end, add_special_tokens=False)["input_ids"]
            out.append(Encoded(prompt + completion, len(completion)))
    return out


def batch_loss(model, batch: Sequence[Encoded], pad_id: int, choice_loss: str = "labels", answer_ids=None):
    """Mean completion-only loss of a micro-batch.

    Line-scored examples: cross-entropy over the candidates' line scores (``scoring.line_scores``,
    ``answer_ids`` = the "Yes"/"No" token ids), exactly what the serving scorer ranks by.
    One-token answers with ``choice_loss='labels'``: cross-entropy over the allowed answers'
    logits; otherwise token cross-entropy over the completion.
    """
    import torch
    import torch.nn.functional as F

    from recommender.llm.scoring import left_pad, line_scores

    lined = [e for e in batch if e.readouts]
    rest = [e for e in batch if not e.readouts]
    losses = []
    if lined:
        if answer_ids is None:
            raise ValueError("line-scored examples need answer_ids (the Yes/No token ids)")
        margins = line_scores(model, [e.ids for e in lined], [e.readouts for e in lined], answer_ids, pad_id)
        for row, example in enumerate(lined):
            scores = margins[row, : len(example.readouts)]  # [K]
            losses.append(F.cross_entropy(scores[None], torch.tensor([example.target], device=scores.device)))
    if not rest:
        return torch.stack(losses).mean()
    batch = rest
    ids, mask, positions = left_pad([e.ids for e in batch], pad_id)
    device = next(p for p in model.parameters()).device
    keep = max(e.n_completion for e in batch) + 1
    logits = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        logits_to_keep=keep,
        use_cache=False,
    ).logits.float()  # [B, keep, V]
    for row, example in enumerate(batch):
        c = example.n_completion
        predictions = logits[row, keep - 1 - c : keep - 1]  # [c, V] predict the completion tokens
        if example.choice_ids and choice_loss == "labels":
            allowed = predictions[0, list(example.choice_ids)]  # [n]
            losses.append(F.cross_entropy(allowed[None], torch.tensor([example.target], device=device)))
        else:
            targets = torch.tensor(example.ids[-c:], device=device)
            losses.append(F.cross_entropy(predictions, targets))
    return torch.stack(losses).mean()


# ------------------------------------------------------------------------------------- the loop


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def micro_batch(n_examples: int, step: int, micro: int, config: FinetuneConfig, rank: int = 0, world: int = 1):
    """Example indices of one micro-batch: a seeded permutation per epoch, so resuming at step s
    sees exactly the batches an uninterrupted run would have seen."""
    size = config.train.batch_size * world
    start = (step * config.train.grad_accum + micro) * size
    indices = []
    for position in range(start, start + size):
        epoch, offset = divmod(position, n_examples)
        order = np.random.default_rng([config.train.seed, epoch]).permutation(n_examples)
        indices.append(int(order[offset]))
    return indices[rank::world]


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted((folder / CHECKPOINTS).glob("step-*"))
    return found[-1] if found else None


def full_state_dict(accelerator, model) -> dict:
    """The model's weights as whole tensors on the main process (possibly {} on the others).

    EVERY process must call it: under FSDP (and DeepSpeed ZeRO-3) each process holds a shard of
    every weight and ``accelerator.get_state_dict`` gathers them (a collective); the main
    process's own module would give its shard only. Elsewhere it is the unwrapped state dict."""
    if accelerator is None:
        raise ValueError("full_state_dict needs the accelerator the model was prepared with.")
    return accelerator.get_state_dict(model)


def save_adapter(accelerator, model, folder: Path) -> None:
    """Write ``adapter_model.safetensors`` + ``adapter_config.json`` from the full LoRA weights.

    Call it on EVERY process (see ``full_state_dict``); the main process writes, and all of them
    wait until the files are there, so any process can read them right after."""
    state_dict = full_state_dict(accelerator, model)
    if accelerator.is_main_process:
        # peft keeps only the adapter's entries of the full state dict it is given.
        accelerator.unwrap_model(model).save_pretrained(str(folder), state_dict=state_dict)
    accelerator.wait_for_everyone()


def save_checkpoint(folder: Path, step: int, model, optimizer, scheduler, state: dict, weights=None) -> Path:
    """Main process: the adapter (``weights``: the full state dict, default the model's own), the
    optimizer, scheduler and RNG state. Under FSDP the optimizer state saved is the main process's shard."""
    import torch
    from peft import get_peft_model_state_dict

    path = folder / CHECKPOINTS / f"step-{step:06d}"
    path.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "adapter": get_peft_model_state_dict(model, state_dict=weights),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        path / "state.pt",
    )
    (path / "trainer_state.json").write_text(json.dumps({**state, "step": step}, indent=1))
    for old in sorted((folder / CHECKPOINTS).glob("step-*"))[:-2]:  # keep the last two
        shutil.rmtree(old)
    return path


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    import torch
    from peft import set_peft_model_state_dict

    saved = torch.load(path / "state.pt", weights_only=False)
    set_peft_model_state_dict(model, saved["adapter"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    return json.loads((path / "trainer_state.json").read_text())


def train_loop(
    model,
    encoded: Sequence[Encoded],
    config: FinetuneConfig,
    folder: Path,
    pad_id: int,
    evaluate: Callable[[object], dict] | None = None,
    save_best: Callable[[object, dict], None] | None = None,
    resume: bool = False,
    accelerator=None,
    log: Callable[[str], None] = print,
    answer_ids=None,
) -> dict:
    """Optimise the LoRA weights of a peft ``model``; evaluate, keep the best, stop early, checkpoint.

    One step is one global batch of ``train.batch_size`` x processes examples, the same under
    any launcher (``micro_batch``); the learning-rate schedule advances once per step.

    Args:
        evaluate: metrics of the unwrapped model; run on every process, the main process's
            numbers are kept everywhere.
        save_best: ``(net, metrics)`` when an evaluation is the best so far, called on EVERY
            process (write files on the main one; ``save_adapter`` gathers FSDP shards).
        answer_ids: the "Yes"/"No" token ids that line-scored examples are read with.

    Returns the trainer state: ``step``, ``losses`` ([step, loss] pairs, the loss of the global
    batch), ``lrs`` ([step, learning rate used]), ``evals`` (metrics per evaluation), ``best``
    (the best evaluation), ``stopped_early``.
    """
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    train = config.train
    accelerator = accelerator or Accelerator(gradient_accumulation_steps=train.grad_accum, cpu=True)
    torch.manual_seed(train.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    # The scheduler stays OUT of accelerator.prepare: accelerate's AcceleratedScheduler (1.15) steps
    # the wrapped scheduler num_processes times per optimizer step (it assumes the per-process batch
    # is the global one), so under ddp.yaml warm-up and decay would run N times too fast. Here one
    # step = one global batch of batch_size x processes examples (``micro_batch``): it is stepped
    # once per optimizer step below, the same schedule for any number of processes.
    model, optimizer = accelerator.prepare(model, optimizer)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer,
        lambda s: lr_factor(s, train.warmup_steps, train.max_steps),
    )
    state: dict = {
        "step": 0, "losses": [], "lrs": [], "evals": [], "best": None, "bad_evals": 0, "stopped_early": False,
    }  # fmt: skip
    checkpoint = latest_checkpoint(folder) if resume else None
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, accelerator.unwrap_model(model), optimizer, scheduler)
        state.setdefault("lrs", [])
        log(f"resumed from {checkpoint} at step {state['step']}")
    metric = config.eval.metric

    def run_eval(step: int) -> bool:
        """Evaluate; keep the adapter when it is the best so far; True when patience ran out."""
        if evaluate is None:
            return False
        model.eval()
        metrics = {"step": step, **evaluate(accelerator.unwrap_model(model))}
        model.train()
        if accelerator.num_processes > 1:  # one decision everywhere (keep, stop), even if floats differ
            from accelerate.utils import broadcast_object_list

            metrics = broadcast_object_list([metrics])[0]
        state["evals"].append(metrics)
        log("eval " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
        if step == 0 and not config.train.init_adapter:
            return False  # a fresh LoRA's step 0 is the zero-shot model: a point on the curve, never the one kept
        # (a re-tune's step 0 is the adapter it started from: kept unless a later step beats it)
        best = state["best"]
        if best is None or metrics[metric] > best[metric] + 1e-9:
            state["best"], state["bad_evals"] = metrics, 0
            if save_best is not None:  # on every process: saving gathers FSDP shards (``save_adapter``)
                save_best(accelerator.unwrap_model(model), metrics)
        else:
            state["bad_evals"] += 1
        return state["bad_evals"] >= config.eval.patience

    model.train()
    if state["step"] == 0 and not state["evals"] and config.eval.every:
        run_eval(0)  # the zero-shot model: the curve's starting point
    bar = tqdm(
        total=train.max_steps, initial=state["step"], desc="fine-tuning", disable=not accelerator.is_main_process
    )
    step_started, first_step = time.perf_counter(), state["step"]  # after a resume, time only this run's steps
    while state["step"] < train.max_steps:
        step = state["step"]
        total = torch.zeros((), device=accelerator.device)
        learning_rate = scheduler.get_last_lr()[0]  # the rate this step's update uses
        for micro in range(train.grad_accum):
            indices = micro_batch(
                len(encoded), step, micro, config, accelerator.process_index, accelerator.num_processes
            )
            with accelerator.accumulate(model):  # gradients all-reduced on the last micro-batch only
                loss = batch_loss(model, [encoded[i] for i in indices], pad_id, train.choice_loss, answer_ids)
                accelerator.backward(loss)
                optimizer.step()  # a real step once per grad_accum micro-batches
                optimizer.zero_grad()
            total += loss.detach().float() / train.grad_accum
        if not getattr(optimizer, "step_was_skipped", False):  # fp16 overflow skips a step; so does the schedule
            scheduler.step()
        total = float(accelerator.reduce(total, reduction="mean"))  # the global batch's loss
        state["step"] = step = step + 1
        state["losses"].append([step, total])
        state["lrs"].append([step, learning_rate])
        bar.update(1)
        bar.set_postfix(
            loss=f"{total:.3f}", s_per_step=f"{(time.perf_counter() - step_started) / (step - first_step):.1f}"
        )
        stop = False
        if config.eval.every and step % config.eval.every == 0:
            stop = run_eval(step)
        if train.checkpoint_every and (step % train.checkpoint_every == 0 or stop):
            weights = full_state_dict(accelerator, model)  # every process (FSDP gathers); the main one writes
            if accelerator.is_main_process:
                save_checkpoint(folder, step, accelerator.unwrap_model(model), optimizer, scheduler, state, weights)
            accelerator.wait_for_everyone()
        if stop:
            state["stopped_early"] = True
            log(f"early stop at step {step}: {metric} did not improve for {config.eval.patience} evaluations")
            break
    bar.close()
    if evaluate is not None and (not state["evals"] or state["evals"][-1]["step"] != state["step"]):
        run_eval(state["step"])
    return state


# ------------------------------------------------------------------------------------- main


def plot_curves(state: dict, path: Path, title: str, chance_loss: float | None = None) -> None:
    """Training loss and validation NDCG@10 (LLM rerank, blend, retriever order) against steps;
    ``chance_loss`` (ln of the candidate count) is drawn as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    if state["losses"]:
        steps, losses = np.array(state["losses"]).T
        left.plot(steps, losses, alpha=0.3, label="loss (per step)")
        window = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        left.plot(steps[window - 1 :], smooth, label=f"loss ({window}-step mean)")
    if chance_loss is not None:
        left.axhline(chance_loss, color="grey", linestyle="--", label=f"uniform guess ({chance_loss:.2f})")
    left.set_xlabel("step")
    left.set_ylabel("completion cross-entropy")
    left.legend()
    if state["evals"]:
        steps = [e["step"] for e in state["evals"]]
        for key, label in (
            ("NDCG@10", "LLM rerank"),
            ("blend_NDCG@10", "LLM + retrieval blend"),
            ("retriever_NDCG@10", "retriever order"),
        ):
            right.plot(steps, [e[key] for e in state["evals"]], marker="o", label=label)
    right.set_xlabel("step")
    right.set_ylabel(f"validation NDCG@10 ({state['evals'][0]['users'] if state['evals'] else 0} users)")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


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
    from recommender.finetune.examples import build_examples, validation_examples
    from recommender.finetune.validate import build_eval_set
    from recommender.llm.evidence import CowatchEvidence, PrefixScorer, recent_strength
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
        # Served candidates and evidence for everyone: the retriever as served, sparse co-watch digits.
        served = CowatchEvidence.for_retriever(hybrid, split)
        kept_out = set(eval_users) | set(report_users)
        train_users = [u for u in split.users if u not in kept_out]
        examples = validation_examples(
            dataset.catalog, split, hybrid, served, prompt, config.data.n_candidates, train_users
        )
        if config.data.examples == "held_out":
            examples += shadow_examples(config, dataset, split, prompt)
        examples = [examples[i] for i in np.random.default_rng(config.train.seed).permutation(len(examples))]
        examples = examples[: config.data.max_examples or len(examples)]

        def candidates(history):
            return hybrid.score_rows(history)

        def evidence(history, rows):
            return {"recent": served.recent(history, rows)}
    else:
        prefix = PrefixScorer(hybrid, split.train_sequences())
        examples = build_examples(dataset.catalog, split, prefix, config.data, config.train.seed)

        def candidates(history):
            return prefix.scores(history)[0]  # serving view: the history is the whole train sequence

        def evidence(history, rows):
            return {"recent": recent_strength(prefix.similarities(history), rows)}

    def build(users):
        return build_eval_set(
            dataset.catalog, split.cases("valid", users), candidates, evidence, prompt, config.data.n_candidates
        )

    eval_set, report_set = build(eval_users), build(report_users)
    feedback = []
    if config.data.feedback:
        from recommender.finetune.examples import feedback_examples, load_feedback

        records = load_feedback(config.data.feedback)
        feedback = feedback_examples(
            dataset.catalog, split, records, prompt, config.data.n_candidates, lambda h, rows: evidence(h, rows)
        )
    if limit is not None:
        limit.unregister()
    return TrainingData(dataset, feedback + examples, eval_set, report_set, prompt, len(feedback))


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
    return served_examples(dataset.catalog, cases, stage, evidence, prompt, config.data.n_candidates)


def final_report(net, report_set, llm_logits, state: dict, log) -> dict:
    """Zero-shot and adapter metrics on the report users, with the LLM weight chosen on the selection users."""
    if not report_set:
        return {}
    from recommender.finetune.validate import evaluate_logits

    net.eval()
    zero_weight = state["evals"][0]["llm_weight"] if state["evals"] and state["evals"][0]["step"] == 0 else None
    with net.disable_adapter():
        zero = evaluate_logits(report_set, llm_logits(net, report_set), zero_weight)
    tuned = evaluate_logits(report_set, llm_logits(net, report_set), (state["best"] or {}).get("llm_weight"))
    log(
        f"report on {len(report_set)} other validation users: NDCG@10 retriever order "
        f"{tuned['retriever_NDCG@10']:.4f} | zero-shot {zero['NDCG@10']:.4f} (blend {zero['blend_NDCG@10']:.4f}) | "
        f"adapter {tuned['NDCG@10']:.4f} (blend {tuned['blend_NDCG@10']:.4f}, LLM weight {tuned['llm_weight']})"
    )
    return {"users": len(report_set), "zero_shot": zero, "adapter": tuned}


def main(config: FinetuneConfig, overwrite: bool = False, resume: bool = False) -> dict:
    """Build the SFT set, train the LoRA adapter, validate, save adapter + metadata + curves."""
    check_quantize(config.train.quantize)
    from recommender.finetune.examples import task_weights

    task_weights(config.data.task_mix)  # bad mixes fail before anything loads
    import torch
    from accelerate import Accelerator

    from recommender.finetune.validate import evaluate_logits
    from recommender.llm.loading import LoadedModel, load_model, write_adapter_metadata
    from recommender.llm.scoring import LLMScorer

    started = time.perf_counter()
    torch.set_num_threads(config.train.threads)
    cuda = torch.cuda.is_available()
    precision = config.train.precision if config.train.precision != "auto" else ("bf16" if cuda else "fp32")
    accelerator = Accelerator(
        gradient_accumulation_steps=config.train.grad_accum,
        mixed_precision="bf16" if precision == "bf16" else "no",
        cpu=not cuda,
    )
    log = accelerator.print
    data = build_training_data(config)
    folder = Path(config.output_dir)
    claim_output(folder, run_identity(config, data.dataset.fingerprint()), overwrite, resume)
    counts = {task: sum(e.task == task for e in data.examples) for task in ("rank", "rating", "explain")}
    log(
        f"{len(data.examples)} training examples {counts} ({config.data.examples}); "
        f"{len(data.eval_set)} + {len(data.report_set)} validation users"
    )
    if not data.examples:
        raise ConfigError("no training examples were built; lower data.min_history or raise data.prefixes_per_user.")

    # Trainable weights stay float32 (accelerate autocasts to bf16 when asked); a 4-bit base on CUDA
    # computes in bf16, the QLoRA recipe.
    weights = "bfloat16" if config.train.quantize == "4bit" and cuda else "float32"
    device = str(accelerator.device)
    loaded = load_model(config.train.model, quantize=config.train.quantize, device=device, dtype=weights)
    trained_in = {"weights": loaded.dtype, "quantization": loaded.quantization, "mixed_precision": precision}
    tokenizer = loaded.tokenizer
    encoded = encode_examples(data.examples, tokenizer)
    lengths = [len(e.ids) for e in encoded]
    log(f"tokens per example: median {int(np.median(lengths))}, max {max(lengths)}")
    model = add_lora(loaded.model, config, config.train.quantize == "4bit")
    started_from = start_from_adapter(model, config, data.prompt)
    if started_from is not None:
        log(f"re-tuning the adapter in {started_from} (step 0 evaluates it as it was)")
    model.print_trainable_parameters()

    def llm_logits(net, items) -> list[np.ndarray]:
        wrapped = LoadedModel(net, tokenizer, loaded.base_name, None, device=str(accelerator.device))
        return data.prompt.raw_scores(LLMScorer(wrapped, batch_size=config.eval.batch_size), [i.prompt for i in items])

    versions = {example.template: example.template_version for example in data.examples}
    versions[data.prompt.name] = data.prompt.version

    def save_best(net, metrics: dict) -> None:  # called on every process
        save_adapter(accelerator, net, folder)  # the full LoRA weights, also under FSDP
        if accelerator.is_main_process:
            write_adapter_metadata(
                folder, loaded.base_name, versions, status="training", best=metrics, precision=trained_in
            )

    state = train_loop(
        model,
        encoded,
        config,
        folder,
        tokenizer.pad_token_id,
        evaluate=lambda net: evaluate_logits(data.eval_set, llm_logits(net, data.eval_set)),
        save_best=save_best,
        resume=resume,
        accelerator=accelerator,
        log=log,
        answer_ids=LLMScorer(loaded).yes_no_ids,
    )

    # Final report on OTHER validation users: the LLM weight comes from the selection users.
    net = accelerator.unwrap_model(model)
    if state["best"] is None:  # no evaluation kept an adapter (state is the same on every process)
        save_adapter(accelerator, net, folder)
    elif (folder / "adapter_model.safetensors").is_file():
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(net, load_file(str(folder / "adapter_model.safetensors")))
    final = final_report(net, data.report_set, llm_logits, state, log)
    minutes = (time.perf_counter() - started) / 60
    if accelerator.is_main_process:
        write_adapter_metadata(
            folder,
            loaded.base_name,
            versions,
            status="done",
            precision=trained_in,  # the validation figures below were measured in it
            data_fingerprint=data.dataset.fingerprint(),
            dataset=data.dataset.name,
            config=config_dict(config),
            n_examples=counts,
            feedback_examples=data.feedback_examples,
            init_adapter=str(started_from) if started_from is not None else None,
            steps=state["step"],
            stopped_early=state["stopped_early"],
            evaluations=state["evals"],
            best=state["best"],
            llm_weight=(state["best"] or {}).get("llm_weight"),
            rerank_candidates=config.data.n_candidates,
            max_history=config.data.max_history,
            template=data.prompt.name,
            first_stage="hybrid+sequential" if config.data.sequential else "hybrid",
            selection_users=list(eval_users_of(data)),
            report=final,
            train_loss=state["losses"],
            minutes=round(minutes, 1),
            device=str(accelerator.device),
        )
        title = f"{loaded.base_name} LoRA on {data.dataset.name}"
        plot_curves(state, folder / "curves.png", title, chance_loss=float(np.log(config.data.n_candidates)))
        # checkpoints/ stays until the next run of this folder; it is never shipped.
    log(f"done in {minutes:.1f} min; adapter, metadata and curves in {folder}")
    return {"state": state, "report": final, "folder": str(folder)}


def eval_users_of(data: TrainingData) -> list[str]:
    """The selection users (``recommender evaluate`` leaves them out by default)."""
    return [item.user for item in data.eval_set]


# ------------------------------------------------------------------------------------- command line


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
    group = parser.add_argument_group("config keys (each also accepted as --set key=value)", "\n".join(help_lines()))
    for path in paths:
        names = [f"--{path}"]
        leaf = path.rsplit(".", 1)[-1]
        if len(leaves[leaf]) == 1 and leaf != path:
            names.append(f"--{leaf}")
        group.add_argument(*names, dest=f"override__{path}", metavar="VALUE", default=None, help=argparse.SUPPRESS)


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
