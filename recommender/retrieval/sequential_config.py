"""The sequential model's recipe: architecture, training and the automatic settings for big logs.

Every field is part of the cached model's key (``SequentialConfig.key``). Pure: no torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

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
