"""The training loop: one global batch per step under any launcher, evaluation, early stopping,
best-adapter keeping and resumable checkpoints.

``TrainerState`` is everything the loop changes (saved in every checkpoint, returned at the end);
``_Run`` is everything it only reads. The helpers below take both explicitly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recommender.finetune.checkpoints import full_state_dict, latest_checkpoint, load_checkpoint, save_checkpoint
from recommender.finetune.config import FinetuneConfig
from recommender.finetune.encoding import Encoded, batch_loss


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


@dataclass
class TrainerState:
    """What a run has done so far: saved as ``trainer_state.json`` in every checkpoint, returned by ``train_loop``."""

    step: int = 0
    losses: list[list[float]] = field(default_factory=list)  # [step, loss of the global batch]
    lrs: list[list[float]] = field(default_factory=list)  # [step, learning rate the step used]
    evals: list[dict] = field(default_factory=list)  # metrics of every evaluation, with its "step"
    best: dict | None = None  # the evaluation whose adapter is kept
    bad_evals: int = 0  # evaluations since the best one
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> TrainerState:
        return cls(**{"lrs": [], **saved})  # checkpoints written before the schedule was recorded have no "lrs"

    def add_eval(self, metrics: dict, metric: str, patience: int, candidate: bool = True) -> tuple[bool, bool]:
        """Record an evaluation; returns (keep: it is the best so far, stop: patience ran out).
        A non-``candidate`` (a fresh LoRA's step 0: the zero-shot model) is a point on the curve only."""
        self.evals.append(metrics)
        if not candidate:
            return False, False
        keep = self.best is None or metrics[metric] > self.best[metric] + 1e-9
        if keep:
            self.best, self.bad_evals = metrics, 0
        else:
            self.bad_evals += 1
        return keep, self.bad_evals >= patience


@dataclass(frozen=True)
class _Run:
    """What every step of one ``train_loop`` call reads and never reassigns."""

    model: Any  # prepared by the accelerator (possibly DDP/FSDP-wrapped)
    optimizer: Any
    scheduler: Any
    accelerator: Any
    encoded: Sequence[Encoded]
    config: FinetuneConfig
    folder: Path
    pad_id: int
    evaluate: Callable[[object], dict] | None
    save_best: Callable[[object, dict], None] | None
    log: Callable[[str], None]
    answer_ids: Any


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
) -> TrainerState:
    """Optimise the LoRA weights of a peft ``model``; evaluate, keep the best, stop early, checkpoint.

    One step is one global batch of ``train.batch_size`` x processes examples, the same under
    any launcher (``micro_batch``); the learning-rate schedule advances once per step.

    Args:
        evaluate: metrics of the unwrapped model; run on every process, the main process's
            numbers are kept everywhere.
        save_best: ``(net, metrics)`` when an evaluation is the best so far, called on EVERY
            process (write files on the main one; ``save_adapter`` gathers FSDP shards).
        answer_ids: the "Yes"/"No" token ids that line-scored examples are read with.

    Returns the ``TrainerState``: ``step``, ``losses`` ([step, loss] pairs, the loss of the global
    batch), ``lrs`` ([step, learning rate used]), ``evals`` (metrics per evaluation), ``best``
    (the best evaluation), ``stopped_early``.
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    train = config.train
    accelerator = accelerator or Accelerator(gradient_accumulation_steps=train.grad_accum, cpu=True)
    model, optimizer, scheduler = _prepare(model, config, accelerator)
    run = _Run(
        model, optimizer, scheduler, accelerator, encoded, config, folder, pad_id, evaluate, save_best, log, answer_ids
    )
    state = TrainerState()
    checkpoint = latest_checkpoint(folder) if resume else None
    if checkpoint is not None:
        saved = load_checkpoint(checkpoint, accelerator.unwrap_model(model), optimizer, scheduler)
        state = TrainerState.from_dict(saved)
        log(f"resumed from {checkpoint} at step {state.step}")

    model.train()
    if state.step == 0 and not state.evals and config.eval.every:
        _evaluate(run, state, 0)  # the zero-shot model: the curve's starting point
    bar = tqdm(total=train.max_steps, initial=state.step, desc="fine-tuning", disable=not accelerator.is_main_process)
    step_started, first_step = time.perf_counter(), state.step  # after a resume, time only this run's steps
    while state.step < train.max_steps:
        loss, learning_rate = _train_step(run, state.step)
        state.step = step = state.step + 1
        state.losses.append([step, loss])
        state.lrs.append([step, learning_rate])
        bar.update(1)
        bar.set_postfix(
            loss=f"{loss:.3f}", s_per_step=f"{(time.perf_counter() - step_started) / (step - first_step):.1f}"
        )
        stop = False
        if config.eval.every and step % config.eval.every == 0:
            stop = _evaluate(run, state, step)
        if train.checkpoint_every and (step % train.checkpoint_every == 0 or stop):
            _checkpoint(run, state, step)
        if stop:
            state.stopped_early = True
            metric, patience = config.eval.metric, config.eval.patience
            log(f"early stop at step {step}: {metric} did not improve for {patience} evaluations")
            break
    bar.close()
    if evaluate is not None and (not state.evals or state.evals[-1]["step"] != state.step):
        _evaluate(run, state, state.step)
    return state


def _prepare(model, config: FinetuneConfig, accelerator):
    """(prepared model, prepared optimizer, scheduler) of a fresh AdamW over the trainable weights."""
    import torch

    train = config.train
    torch.manual_seed(train.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    # The scheduler stays OUT of accelerator.prepare: accelerate's AcceleratedScheduler (1.15) steps
    # the wrapped scheduler num_processes times per optimizer step (it assumes the per-process batch
    # is the global one), so under ddp.yaml warm-up and decay would run N times too fast. Here one
    # step = one global batch of batch_size x processes examples (``micro_batch``): it is stepped
    # once per optimizer step (``_train_step``), the same schedule for any number of processes.
    model, optimizer = accelerator.prepare(model, optimizer)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer,
        lambda s: lr_factor(s, train.warmup_steps, train.max_steps),
    )
    return model, optimizer, scheduler


def _train_step(run: _Run, step: int) -> tuple[float, float]:
    """One optimizer step over ``train.grad_accum`` micro-batches: (the global batch's loss, the learning rate used)."""
    import torch

    train, accelerator = run.config.train, run.accelerator
    total = torch.zeros((), device=accelerator.device)
    learning_rate = run.scheduler.get_last_lr()[0]  # the rate this step's update uses
    for micro in range(train.grad_accum):
        rank, world = accelerator.process_index, accelerator.num_processes
        indices = micro_batch(len(run.encoded), step, micro, run.config, rank, world)
        with accelerator.accumulate(run.model):  # gradients all-reduced on the last micro-batch only
            batch = [run.encoded[i] for i in indices]
            influence = (train.influence_weight, train.influence_margin, train.influence_order_weight)
            loss = batch_loss(run.model, batch, run.pad_id, train.choice_loss, run.answer_ids, influence)
            accelerator.backward(loss)
            run.optimizer.step()  # a real step once per grad_accum micro-batches
            run.optimizer.zero_grad()
        total += loss.detach().float() / train.grad_accum
    if not getattr(run.optimizer, "step_was_skipped", False):  # fp16 overflow skips a step; so does the schedule
        run.scheduler.step()
    return float(accelerator.reduce(total, reduction="mean")), learning_rate  # the global batch's loss


def _evaluate(run: _Run, state: TrainerState, step: int) -> bool:
    """Evaluate; keep the adapter when it is the best so far; True when patience ran out."""
    if run.evaluate is None:
        return False
    accelerator = run.accelerator
    run.model.eval()
    metrics = {"step": step, **run.evaluate(accelerator.unwrap_model(run.model))}
    run.model.train()
    if accelerator.num_processes > 1:  # one decision everywhere (keep, stop), even if floats differ
        from accelerate.utils import broadcast_object_list

        metrics = broadcast_object_list([metrics])[0]
    # A fresh LoRA's step 0 is the zero-shot model: a point on the curve, never the one kept
    # (a re-tune's step 0 is the adapter it started from: kept unless a later step beats it).
    candidate = step != 0 or bool(run.config.train.init_adapter)
    keep, stop = state.add_eval(metrics, run.config.eval.metric, run.config.eval.patience, candidate)
    run.log("eval " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
    if keep and run.save_best is not None:  # on every process: saving gathers FSDP shards (``save_adapter``)
        run.save_best(accelerator.unwrap_model(run.model), metrics)
    return stop


def _checkpoint(run: _Run, state: TrainerState, step: int) -> None:
    """Save a resumable checkpoint: every process gathers the weights (FSDP), the main one writes."""
    weights = full_state_dict(run.accelerator, run.model)
    if run.accelerator.is_main_process:
        model = run.accelerator.unwrap_model(run.model)
        save_checkpoint(run.folder, step, model, run.optimizer, run.scheduler, state.to_dict(), weights)
    run.accelerator.wait_for_everyone()
