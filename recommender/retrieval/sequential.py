"""A SASRec-class sequential recommender as a first-class retriever.

    from recommender.retrieval.sequential import SequentialConfig, load_or_train
    retriever = load_or_train(dataset, split)            # trains once (minutes on 2 cores), then loads
    retriever.score_batch([history_rows])                # [1, N] next-item scores
    accelerate launch --multi_gpu --num_processes 2 bench/sequential.py   # DDP by config, same code

The model is built from the field's parts, not a hand-rolled attention stack: a transformers
``GPT2Model`` (learned positions, causal pre-LN blocks) fed ``inputs_embeds`` from an item table
with one extra padding row; its output is tied to the same table (``hidden @ items.T``), and it
learns with full-softmax cross-entropy over the catalogue at every position (SASRec+ recipe).
With ``text_init`` (the default) the item table starts from the top principal components of
the items' text vectors, so rarely seen items sit beside items with similar text.

Only the TRAIN split is seen in training (``LeaveOneOutSplit.train_sequences()``); the epoch is
chosen on validation NDCG@10 with the history masked. Weights are cached beside the item
embeddings under a key of ``dataset.fingerprint()`` and the config, with a training curve
(JSON + PNG); a cache whose data or config differs is refused and the model retrained.

Positions are aligned to the END of each history (the newest item always sits at position
``max_len - 1``, as in SASRec), and batches are right-padded, so a user's scores do not depend
on who else is in the batch.

Rooms: ``sequential_config`` (the recipe), ``sasrec`` (the network, its batches and scoring), this
module (training, the retriever, the cache); the names of all three are importable from here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recommender.data import Catalog, Dataset
from recommender.data.split import EvalCase, LeaveOneOutSplit, tuning_users
from recommender.evaluation.metrics import full_ranks, hit_rate, ndcg
from recommender.retrieval.base import BaseRetriever
from recommender.retrieval.sasrec import (  # noqa: F401  (re-exported: the public names stay importable from here)
    SCORE_BATCH,
    LengthBuckets,
    SequencePairs,
    build_model,
    collate,
    pad_batch,
    score_histories,
    text_projection,
    training_pairs,
)
from recommender.retrieval.sequential_config import (  # noqa: F401  (re-exported)
    FULL_SOFTMAX_ITEMS,
    KEYED_WHEN_ON,
    NEGATIVES,
    SCALE_FIELDS,
    SCALE_SEQUENCES,
    SCALE_USERS,
    VALID_USERS,
    SequentialConfig,
)

CACHE_FORMAT = 1  # bump when the saved layout or the model code changes what the weights mean


def validation_report(model, cases: Sequence[EvalCase], max_len: int) -> dict[str, float]:
    ranks = full_ranks(score_histories(model, [c.history for c in cases], max_len), cases)
    return {"NDCG@10": ndcg(ranks, 10), "HR@10": hit_rate(ranks, 10), "HR@20": hit_rate(ranks, 20)}


# ---------------------------------------------------------------- training


def train_model(
    train_sequences: Sequence[np.ndarray] | SequencePairs,
    valid_cases: Sequence[EvalCase],
    n_items: int,
    config: SequentialConfig,
    progress: bool = True,
    max_steps: int | None = None,
    item_vectors: np.ndarray | None = None,
):
    """Train on ``train_sequences`` only; keep the epoch with the best validation NDCG@10.

    Args:
        train_sequences: catalogue rows per user, oldest first (the TRAIN split), or ``SequencePairs``
            of the training CSR. ``config``'s scale fields must be resolved (``SequentialConfig.resolved``).
        valid_cases: validation users (history = the train sequence, target = the next event).
        max_steps: stop after this many optimiser steps (tests); None trains to early stopping.
        item_vectors: [N, D] item-text vectors the item table starts from (``config.text_init``).

    Returns:
        (model on CPU in eval mode, info dict with the curve, best epoch and seconds).
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    # bf16 autocast on CUDA unless `accelerate launch` configured otherwise; fp32 on CPU (bf16 is slower there).
    precision = os.environ.get("ACCELERATE_MIXED_PRECISION") or ("bf16" if torch.cuda.is_available() else "no")
    accelerator = Accelerator(mixed_precision=precision)
    set_seed(config.seed)
    model = build_model(n_items, config, item_vectors)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    pairs = train_sequences if isinstance(train_sequences, SequencePairs) else SequencePairs.of(train_sequences)
    if config.max_sequences:  # big logs: a budget of sequences over all epochs
        budget = -(-config.max_sequences // config.batch_size)
        max_steps = budget if max_steps is None else min(max_steps, budget)
    sampler = np.random.default_rng([config.seed, 2])  # sampled-softmax negatives
    model, optimizer, loader = accelerator.prepare(model, optimizer, training_loader(pairs, config, n_items))
    started, cpu_started = time.perf_counter(), time.process_time()
    curve: list[dict[str, float]] = []
    best_state, best_epoch, best_ndcg, waited, steps = None, 0, -1.0, 0, 0
    bar = tqdm(range(1, config.max_epochs + 1), desc="sequential model", unit="epoch", disable=not progress)
    for epoch in bar:
        losses, steps = train_epoch(model, loader, optimizer, accelerator, config, sampler, steps, max_steps)
        plain = accelerator.unwrap_model(model)
        report = validation_report(plain, valid_cases, config.max_len) if valid_cases else {"NDCG@10": 0.0}
        curve.append(
            {"epoch": epoch, "loss": float(np.mean(losses)), **report, "seconds": time.perf_counter() - started}
        )
        bar.set_postfix(loss=f"{curve[-1]['loss']:.3f}", ndcg10=f"{report['NDCG@10']:.4f}", best=best_epoch)
        if report["NDCG@10"] > best_ndcg:
            best_ndcg, best_epoch, waited = report["NDCG@10"], epoch, 0
            best_state = copy.deepcopy(plain.state_dict())
        else:
            waited += 1
        if waited >= config.patience or (max_steps is not None and steps >= max_steps):
            break
    plain = accelerator.unwrap_model(model).to("cpu")
    plain.load_state_dict({k: v.to("cpu") for k, v in best_state.items()})
    plain.eval()
    info = {
        "best_epoch": best_epoch,
        "best_valid_NDCG@10": best_ndcg,
        "epochs_run": len(curve),
        "steps": steps,
        "train_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),  # this process's CPU time (all threads)
        "processes": accelerator.num_processes,
        "mixed_precision": precision,
        "curve": curve,
    }
    return plain, info


def training_loader(pairs: SequencePairs, config: SequentialConfig, n_items: int):
    """Length-bucketed batches of (inputs, next items), collated to right-padded tensors."""
    import torch

    return torch.utils.data.DataLoader(
        pairs,
        batch_sampler=LengthBuckets(
            pairs.lengths(config.max_len), config.batch_size, config.seed, config.epoch_users or 0
        ),
        collate_fn=lambda batch: collate(batch, config.max_len, n_items),
    )


def train_epoch(
    model, loader, optimizer, accelerator, config: SequentialConfig, sampler, steps: int, max_steps: int | None
) -> tuple[list[float], int]:
    """One pass over ``loader`` (or up to ``max_steps`` steps in all): (the batch losses, steps taken so far)."""
    import torch

    model.train()
    losses = []
    n_items = accelerator.unwrap_model(model).n_items
    for ids, positions, mask, labels in loader:
        negatives = None
        if config.negatives:
            negatives = torch.from_numpy(sampler.integers(0, n_items, config.negatives)).to(ids.device)
        loss = model(ids, positions, mask, labels, negatives)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        steps += 1
        if max_steps is not None and steps >= max_steps:
            break
    return losses, steps


# ---------------------------------------------------------------- the retriever


class SequentialRetriever(BaseRetriever):
    """Next-item scores of a trained SASRec-class model: the last position's logits over the
    catalogue, reading the last ``max_len`` items of each history. Ignores free-text queries;
    an empty history scores ``log1p(popularity)`` (or zeros without popularity)."""

    name = "sequential"

    def __init__(
        self,
        catalog: Catalog,
        model,
        settings: SequentialConfig,
        popularity: np.ndarray | None = None,
        info: dict | None = None,
    ):
        super().__init__(catalog)
        if model.n_items != len(catalog):
            raise ValueError(f"the sequential model knows {model.n_items} items, the catalogue has {len(catalog)}.")
        self.model, self.settings, self.info = model.eval(), settings, info or {}
        self.popularity = None if popularity is None else np.asarray(popularity, dtype=np.float64)

    def config(self) -> dict[str, object]:
        return self.settings.key()

    def score_batch(self, histories: Sequence[np.ndarray], queries: Sequence[str | None] | None = None) -> np.ndarray:
        histories = [np.asarray(h, dtype=np.int64) for h in histories]
        out = score_histories(self.model, histories, self.settings.max_len).astype(np.float64)  # [B, N]
        if self.popularity is not None:
            for b, history in enumerate(histories):
                if not len(history):
                    out[b] = np.log1p(self.popularity)
        return out


# ---------------------------------------------------------------- cache


def cache_key(dataset: Dataset, config: SequentialConfig, text_encoder: str | None = None) -> dict[str, object]:
    """What the cached weights must match: the data, the catalogue size, the config and (with
    ``text_init``) the encoder of the item texts the item table started from."""
    key = {
        "format": CACHE_FORMAT,
        "fingerprint": dataset.fingerprint(),
        "n_items": len(dataset.catalog),
        "config": config.key(),
    }
    return key if text_encoder is None else {**key, "text_encoder": text_encoder}


def cache_stem(key: dict[str, object]) -> str:
    return "sequential-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def load_or_train(
    dataset: Dataset,
    split: LeaveOneOutSplit | None = None,
    config: SequentialConfig | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    retrain: bool = False,
    encoder=None,
) -> SequentialRetriever:
    """The sequential retriever for ``dataset``: loaded from the cache, or trained on the train
    split (early stopping on validation) and cached with its curve (``<stem>.json``, ``.png``).
    ``encoder`` embeds the item texts that ``config.text_init`` starts from (default: the
    shipped sentence encoder); its name is part of the cache key then."""
    import torch

    from recommender.retrieval.embeddings import SentenceEncoder, default_cache_dir, encoder_name, item_embeddings

    split = split if split is not None else LeaveOneOutSplit(dataset.interactions)
    config = (config or SequentialConfig()).resolved(len(split.users), len(dataset.catalog), len(split.eval_users))
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if config.text_init and encoder is None:
        encoder = SentenceEncoder()
    key = cache_key(dataset, config, encoder_name(encoder) if config.text_init else None)
    path = folder / f"{cache_stem(key)}.pt"
    popularity = split.item_popularity(len(dataset.catalog))
    stored = None if retrain else _read(path, key)
    if stored is not None:
        model = build_model(len(dataset.catalog), config)
        model.load_state_dict(stored["state"])
        return SequentialRetriever(dataset.catalog, model, config, popularity, json.loads(stored["info"]))
    valid = split.cases("valid", tuning_users(split, config.valid_users or len(split.eval_users), config.seed))
    vectors = item_embeddings(dataset.catalog, encoder, folder, progress=progress) if config.text_init else None
    pairs = SequencePairs(*split.train_csr())
    model, info = train_model(pairs, valid, len(dataset.catalog), config, progress, item_vectors=vectors)
    from accelerate import PartialState

    if PartialState().is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"key": json.dumps(key, sort_keys=True), "info": json.dumps(info), "state": model.state_dict()}, tmp)
        os.replace(tmp, path)  # a crash never leaves a half-written cache
        path.with_suffix(".json").write_text(json.dumps({"key": key, **info}, indent=1))
        plot_curve(info["curve"], path.with_suffix(".png"), info["best_epoch"])
    return SequentialRetriever(dataset.catalog, model, config, popularity, info)


def _read(path: Path, key: dict[str, object]) -> dict | None:
    """The stored record when it exists, is readable and was built for exactly ``key``."""
    import torch

    if not path.is_file():
        return None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unreadable or truncated: retrain rather than fail
        return None
    if not isinstance(record, dict) or record.get("key") != json.dumps(key, sort_keys=True):
        return None
    return record


def plot_curve(curve: list[dict[str, float]], path: Path, best_epoch: int) -> None:
    """Training loss and validation NDCG@10 against epochs, the chosen epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in curve]
    figure, loss_axis = plt.subplots(figsize=(7, 4))
    loss_axis.plot(epochs, [row["loss"] for row in curve], color="tab:blue", label="train loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train cross-entropy", color="tab:blue")
    metric_axis = loss_axis.twinx()
    metric_axis.plot(epochs, [row["NDCG@10"] for row in curve], color="tab:orange", label="valid NDCG@10")
    metric_axis.set_ylabel("validation NDCG@10 (history masked)", color="tab:orange")
    metric_axis.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
    loss_axis.set_title(f"Sequential model: best epoch {best_epoch}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
