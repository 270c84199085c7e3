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
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from recommender.data import Catalog, Dataset
from recommender.data.split import EvalCase, LeaveOneOutSplit
from recommender.evaluation.metrics import full_ranks, hit_rate, ndcg
from recommender.retrieval.base import BaseRetriever

CACHE_FORMAT = 1  # bump when the saved layout or the model code changes what the weights mean
SCORE_BATCH = 256  # users per inference forward pass
# Automatic settings for big logs (fields left at None); below these sizes nothing changes.
SCALE_USERS = 50_000  # more users than this: each epoch trains on a seeded sample of this many
SCALE_SEQUENCES = 50_000  # ... and training stops after this many sequences in all (one sampled epoch)
VALID_USERS = 2_000  # more validation users than this: a seeded sample of them chooses the epoch
FULL_SOFTMAX_ITEMS = 20_000  # more items than this: sampled softmax with NEGATIVES uniform negatives
NEGATIVES = 2_048
SCALE_FIELDS = ("epoch_users", "max_sequences", "valid_users", "negatives")  # 0 = off; left out of keys when off
# Fields added after models were cached: left out of the cache key when 0 / False (off), so those keys stay valid.
KEYED_WHEN_ON = (*SCALE_FIELDS, "text_init")


@dataclass(frozen=True)
class SequentialConfig:
    """Architecture and training recipe of the sequential model; every field is part of the cache key."""

    hidden: int = field(default=64, metadata={"help": "item embedding and transformer width"})
    layers: int = field(default=2, metadata={"help": "number of causal transformer blocks"})
    heads: int = field(default=1, metadata={"help": "attention heads per block (hidden must divide by it)"})
    inner: int = field(default=256, metadata={"help": "width of each block's feed-forward layer"})
    # dropout 0.1 and text_init were chosen on validation users (bench/results/sequential_sweep.md)
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings, attention and residuals"})
    max_len: int = field(default=200, metadata={"help": "most recent history items the model reads"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    batch_size: int = field(default=128, metadata={"help": "training sequences per step"})
    max_epochs: int = field(default=60, metadata={"help": "epoch cap"})
    patience: int = field(default=5, metadata={"help": "epochs without a better validation NDCG@10 before stopping"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation, dropout and batch order"})
    epoch_users: int | None = field(
        default=None, metadata={"help": f"users sampled per epoch (seeded); 0 all; None: all up to {SCALE_USERS:,}"}
    )
    max_sequences: int | None = field(
        default=None,
        metadata={
            "help": f"training sequences over all epochs; 0 no cap; "
            f"None: {SCALE_SEQUENCES:,} above {SCALE_USERS:,} users"
        },
    )
    valid_users: int | None = field(
        default=None, metadata={"help": f"validation users choosing the epoch; 0 all; None: all up to {VALID_USERS:,}"}
    )
    negatives: int | None = field(
        default=None,
        metadata={
            "help": f"uniform negatives of a sampled softmax; 0 full softmax; "
            f"None: {NEGATIVES} above {FULL_SOFTMAX_ITEMS:,} items"
        },
    )
    text_init: bool = field(
        default=True, metadata={"help": "start the item table from a projection of the item-text vectors"}
    )

    def __post_init__(self):
        for name in SCALE_FIELDS:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"SequentialConfig.{name} must be None or an integer >= 0, got {value!r}.")
        for name in ("hidden", "layers", "heads", "inner", "max_len", "batch_size", "max_epochs", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"SequentialConfig.{name} must be a positive integer, got {value!r}.")
        if self.hidden % self.heads:
            raise ValueError(f"SequentialConfig.hidden ({self.hidden}) must be divisible by heads ({self.heads}).")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SequentialConfig.dropout must be within [0, 1), got {self.dropout!r}.")
        if not self.lr > 0:
            raise ValueError(f"SequentialConfig.lr must be positive, got {self.lr!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"SequentialConfig.seed must be an integer, got {self.seed!r}.")
        if not isinstance(self.text_init, bool):
            raise ValueError(f"SequentialConfig.text_init must be true or false, got {self.text_init!r}.")

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}

    def resolved(self, n_users: int, n_items: int, n_valid: int) -> SequentialConfig:
        """This config with every automatic (None) scale field set for a log of this size."""
        auto = {
            "epoch_users": SCALE_USERS if n_users > SCALE_USERS else 0,
            "max_sequences": SCALE_SEQUENCES if n_users > SCALE_USERS else 0,
            "valid_users": VALID_USERS if n_valid > VALID_USERS else 0,
            "negatives": NEGATIVES if n_items > FULL_SOFTMAX_ITEMS else 0,
        }
        return replace(self, **{name: auto[name] for name in SCALE_FIELDS if getattr(self, name) is None})

    def key(self) -> dict[str, object]:
        """Fields that define the model; scale fields and options that are off are left out, so the
        keys of models trained before they existed (ML-100k) are unchanged."""
        return {k: v for k, v in asdict(self).items() if not (k in KEYED_WHEN_ON and not v)}


# ---------------------------------------------------------------- the model


def text_projection(vectors: np.ndarray, width: int, std: float = 0.02) -> np.ndarray:
    """[N, width] initial item rows from [N, D] item-text vectors: their top principal components
    (columns zero-padded when D < width), scaled to the random initialisation's ``std``, so items
    with similar text start close and an item seen rarely in training keeps a text-based row."""
    centred = np.asarray(vectors, dtype=np.float64) - np.mean(vectors, axis=0)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)
    k = min(width, len(singular))
    rows = np.zeros((len(centred), width))
    rows[:, :k] = left[:, :k] * singular[:k]
    return (rows * std / max(rows.std(), 1e-12)).astype(np.float32)


def build_model(n_items: int, config: SequentialConfig, item_vectors: np.ndarray | None = None):
    """A ``SASRec`` module for ``n_items`` catalogue rows (row ``n_items`` is padding); with
    ``item_vectors`` [N, D] (item text) the item rows start from ``text_projection`` of them."""
    import torch
    from transformers import GPT2Config, GPT2Model

    class SASRec(torch.nn.Module):
        """Item table -> GPT2 blocks -> tied output; ``forward`` returns the mean loss."""

        def __init__(self):
            super().__init__()
            self.n_items = n_items
            self.items = torch.nn.Embedding(n_items + 1, config.hidden, padding_idx=n_items)  # [N + 1, D]
            torch.nn.init.normal_(self.items.weight, std=0.02)
            with torch.no_grad():
                if item_vectors is not None:
                    self.items.weight[:n_items] = torch.from_numpy(text_projection(item_vectors, config.hidden))
                self.items.weight[n_items].zero_()
            body = GPT2Config(
                vocab_size=1,  # unused: items come in as inputs_embeds
                bos_token_id=None,
                eos_token_id=None,
                n_positions=config.max_len,
                n_embd=config.hidden,
                n_layer=config.layers,
                n_head=config.heads,
                n_inner=config.inner,
                activation_function="gelu",
                resid_pdrop=config.dropout,
                embd_pdrop=config.dropout,
                attn_pdrop=config.dropout,
                # Eager attention: the same arithmetic whatever the padded length, so a user scores
                # the same alone and in a batch (and at 64 dims it is as fast as SDPA).
                attn_implementation="eager",
            )
            self.body = GPT2Model(body)

        def hidden(self, ids, positions, mask):
            """[B, T, D] causal states of right-padded ``ids`` [B, T]."""
            out = self.body(inputs_embeds=self.items(ids), position_ids=positions, attention_mask=mask)
            return out.last_hidden_state

        def logits(self, states):
            return states @ self.items.weight[: self.n_items].T  # [..., N], tied to the input table

        def forward(self, ids, positions, mask, labels, negatives=None):
            """Mean cross-entropy over every non-padding position: full softmax over the catalogue,
            or (``negatives`` [S] item rows) a sampled softmax of the target against those rows."""
            states = self.hidden(ids, positions, mask)  # [B, T, D]
            keep = labels >= 0
            states, targets = states[keep], labels[keep]  # [M, D], [M]: only real positions pay
            if negatives is None:
                return torch.nn.functional.cross_entropy(self.logits(states).float(), targets)
            table = self.items.weight
            positive = (states * table[targets]).sum(-1, keepdim=True)  # [M, 1]
            negative = states @ table[negatives].T  # [M, S]
            negative = negative.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))  # accidental hits
            logits = torch.cat([positive, negative], dim=1).float()
            return torch.nn.functional.cross_entropy(logits, torch.zeros_like(targets))

    return SASRec()


def pad_batch(sequences: Sequence[np.ndarray], max_len: int, pad: int):
    """Right-padded ids [B, T], end-aligned positions [B, T] and the attention mask [B, T].

    Each row keeps its last ``max_len`` items; the newest sits at position ``max_len - 1``.
    Padding continues the positions (clipped) so they never restart inside a row.
    """
    import torch

    sequences = [np.asarray(s, dtype=np.int64)[-max_len:] for s in sequences]
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    width = max(int(lengths.max()) if len(lengths) else 1, 1)
    ids = np.full((len(sequences), width), pad, dtype=np.int64)
    for b, s in enumerate(sequences):
        ids[b, : len(s)] = s
    steps = np.arange(width)[None, :]
    positions = np.minimum(max_len - lengths[:, None] + steps, max_len - 1)
    mask = steps < lengths[:, None]
    return torch.from_numpy(ids), torch.from_numpy(positions), torch.from_numpy(mask.astype(np.int64)), lengths


def collate(pairs: list[tuple[np.ndarray, np.ndarray]], max_len: int, pad: int):
    """Training batch: inputs, positions, mask and labels (-100 on padding) from (inputs, targets) pairs."""
    import torch

    ids, positions, mask, _ = pad_batch([p[0] for p in pairs], max_len, pad)
    labels = torch.full(ids.shape, -100, dtype=torch.int64)
    for b, (_, targets) in enumerate(pairs):
        targets = np.asarray(targets, dtype=np.int64)[-max_len:]
        labels[b, : len(targets)] = torch.from_numpy(targets)
    return ids, positions, mask, labels


class SequencePairs:
    """(inputs, next items) of every train sequence with at least two events, read from the
    training CSR (``split.train_csr()``) on demand: no list of a million arrays."""

    def __init__(self, indptr: np.ndarray, items: np.ndarray):
        self.indptr, self.items = np.asarray(indptr, dtype=np.int64), np.asarray(items, dtype=np.int64)
        self.users = np.flatnonzero(np.diff(self.indptr) >= 2)  # [P] user codes, in order

    @classmethod
    def of(cls, train_sequences: Sequence[np.ndarray]) -> SequencePairs:
        from recommender.retrieval.base import sequences_to_csr

        return cls(*sequences_to_csr(list(train_sequences)))

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        u = self.users[index]
        sequence = self.items[self.indptr[u] : self.indptr[u + 1]]
        return sequence[:-1], sequence[1:]

    def lengths(self, max_len: int) -> np.ndarray:
        return np.minimum(np.diff(self.indptr)[self.users] - 1, max_len)


def training_pairs(train_sequences: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(inputs, next items) of every train sequence with at least two events."""
    pairs = []
    for s in train_sequences:
        s = np.asarray(s, dtype=np.int64)
        if len(s) >= 2:
            pairs.append((s[:-1], s[1:]))
    return pairs


class LengthBuckets:
    """Batches of similar-length sequences in a new random order every epoch.

    Why: ML-100k train sequences have a median of ~60 items and a cap of 200, so random batches
    pad almost every row to 200; sorting by length plus noise before cutting batches roughly halves
    the tokens computed, and shuffling the batches keeps the order random.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, per_epoch: int = 0):
        self.lengths, self.batch_size, self.seed, self.epoch = np.asarray(lengths), batch_size, seed, 0
        self.per_epoch = per_epoch if 0 < per_epoch < len(self.lengths) else 0  # 0: every sequence each epoch

    def __len__(self) -> int:
        return -(-(self.per_epoch or len(self.lengths)) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        chosen = np.arange(len(self.lengths))
        if self.per_epoch:  # big logs: a new seeded sample of sequences every epoch
            chosen = np.sort(np.random.default_rng([self.seed, self.epoch, 1]).choice(chosen, self.per_epoch, False))
        lengths = self.lengths[chosen]
        noisy = lengths * rng.uniform(0.8, 1.25, len(lengths))  # neighbours in length mix
        order = chosen[np.argsort(noisy, kind="stable")]
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        for b in rng.permutation(len(batches)):
            yield batches[b]


def score_histories(model, histories: Sequence[np.ndarray], max_len: int, batch_size: int = SCORE_BATCH) -> np.ndarray:
    """[B, N] last-position logits of ``model`` for each history (empty histories score 0)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    out = np.zeros((len(histories), model.n_items), dtype=np.float32)
    # Longest first, so each forward pads its rows to similar lengths; results go back by index.
    present = sorted((b for b, h in enumerate(histories) if len(h)), key=lambda b: -min(len(histories[b]), max_len))
    with torch.no_grad():
        for start in range(0, len(present), batch_size):
            rows = present[start : start + batch_size]
            ids, positions, mask, lengths = pad_batch([histories[b] for b in rows], max_len, model.n_items)
            states = model.hidden(ids.to(device), positions.to(device), mask.to(device))  # [B, T, D]
            last = states[torch.arange(len(rows)), torch.from_numpy(lengths - 1).to(device)]  # [B, D]
            out[rows] = model.logits(last.float()).float().cpu().numpy()
    return out


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
    loader = torch.utils.data.DataLoader(
        pairs,
        batch_sampler=LengthBuckets(
            pairs.lengths(config.max_len), config.batch_size, config.seed, config.epoch_users or 0
        ),
        collate_fn=lambda batch: collate(batch, config.max_len, n_items),
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    started, cpu_started = time.perf_counter(), time.process_time()
    curve: list[dict[str, float]] = []
    best_state, best_epoch, best_ndcg, waited, steps = None, 0, -1.0, 0, 0
    bar = tqdm(range(1, config.max_epochs + 1), desc="sequential model", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        losses = []
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
    from recommender.retrieval.hybrid import tuning_users

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
