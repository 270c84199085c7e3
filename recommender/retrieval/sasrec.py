"""The SASRec-class network and its batches: an item table, GPT-2 causal blocks, a tied output.

``build_model`` makes the module, ``pad_batch`` / ``collate`` its right-padded, end-aligned inputs,
``SequencePairs`` + ``LengthBuckets`` the training stream, ``score_histories`` the next-item scores.
torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender.retrieval.item_similarity import sequences_to_csr
from recommender.retrieval.sequential_config import SequentialConfig

SCORE_BATCH = 256  # users per inference forward pass


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
