"""RecTools' SASRec on this project's exact ML-100k leave-one-out split, epoch chosen on validation.

Runs in the SEPARATE venv ``.venv-rectools`` (RecTools pins numpy<2 on Python 3.11) and reads only
the files ``export_split.py`` wrote, so it imports nothing from this project.

    .venv-rectools/bin/python bench/external_sasrec/train_rectools.py runs/external_sasrec

Recipe: softmax loss over the full catalogue (cross-entropy), 64 factors, 2 blocks, RecTools'
default 4 heads, dropout 0.2, session_max_len 200, padding keys masked in attention, lr 1e-3
(Adam), batch 128, seed 0, 2 torch threads. One Lightning fit with a callback: after every epoch
the callback scores the full catalogue for every user (input = train events, target = validation
item), computes validation NDCG@10 with history masked, keeps the best weights, and stops after
``--patience`` (10) epochs without improvement (cap ``--max-epochs``, 200: a cap of 60 stopped a
run that was still improving). The best weights are restored; test scores come from RecTools' own
``model.recommend`` (input = train events + validation item, every known item scored, nothing
filtered).

Writes under the split folder:
    ranks.json   settings, the validation curve, best epoch, seconds per epoch, and per-user
                 1-based test ranks for both rules (``masked``: history removed from the ranking,
                 the target never; ``unmasked``: every catalogue item competes)
    best_weights.pt  the selected epoch's torch_model state_dict
    scores.npz   float32 [U, N] validation and test scores in catalogue row order (-inf for items
                 the model never saw in training), so report.py can recompute the ranks with
                 recommender.metrics.
The rank rule is recommender.metrics.full_ranks': items scored strictly higher, plus tied items
earlier in catalogue order, plus 1.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rectools
import torch
from pytorch_lightning import Callback, Trainer, seed_everything
from rectools.dataset import Dataset
from rectools.models import SASRecModel
from rectools.models.nn.item_net import IdEmbeddingsItemNet

SETTINGS = {
    "loss": "softmax",
    "n_factors": 64,
    "n_blocks": 2,
    "n_heads": 4,
    "dropout_rate": 0.2,
    "session_max_len": 200,
    "lr": 1e-3,
    "batch_size": 128,
    # Padding keys masked out of attention, as in the SASRec authors' code and RecBole; RecTools'
    # default (False) lets the ~200-k left-padding positions of a short history take attention.
    "use_key_padding_mask": True,
}


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("split", nargs="?", default="runs/external_sasrec", help="folder export_split.py wrote")
    parser.add_argument("--seed", type=int, default=0, help="seed_everything: weights, shuffling, dropout")
    parser.add_argument("--max-epochs", type=int, default=200, help="epoch cap")
    parser.add_argument("--patience", type=int, default=10, help="epochs without a better validation NDCG@10")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    return parser


# ---------------------------------------------------------------- the split files


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def load_split(folder: Path) -> dict:
    """Catalogue ids in row order, per-user train sequences (external ids) and the targets."""
    items = [row["item_id"] for row in read_tsv(folder / "items.tsv")]
    train: dict[str, list[str]] = {}
    for row in read_tsv(folder / "train.tsv"):
        sequence = train.setdefault(row["user_id"], [])
        if int(row["position"]) != len(sequence):
            raise ValueError(f"train.tsv: user {row['user_id']} positions are not 0, 1, 2, ...")
        sequence.append(row["item_id"])
    targets = {
        name: {row["user_id"]: row["item_id"] for row in read_tsv(folder / f"{name}.tsv")} for name in ("valid", "test")
    }
    if list(targets["valid"]) != list(targets["test"]):
        raise ValueError("valid.tsv and test.tsv list different users")
    return {"items": items, "train": train, "valid": targets["valid"], "test": targets["test"]}


def interactions_frame(sequences: dict[str, list[str]]) -> pd.DataFrame:
    """RecTools interactions: one row per event, datetime = position (strictly increasing per user)."""
    rows = [(user, item, 1.0, position) for user, seq in sequences.items() for position, item in enumerate(seq)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "weight", "position"])
    frame["datetime"] = pd.to_datetime(frame.pop("position"), unit="s")
    return frame


# ---------------------------------------------------------------- scoring and ranks


def full_ranks(scores: np.ndarray, targets: np.ndarray, histories: list[np.ndarray] | None) -> np.ndarray:
    """[U] 1-based ranks, the rule of recommender.metrics.full_ranks (copied: this venv cannot
    import the project). ``histories`` None = unmasked."""
    scores = np.array(scores, dtype=np.float64)  # [U, N] copy: masking writes into it
    if histories is not None:
        for u, history in enumerate(histories):
            scores[u, history[history != targets[u]]] = -np.inf
    values = scores[np.arange(len(targets)), targets][:, None]  # [U, 1]
    higher = np.count_nonzero(scores > values, axis=1)
    earlier = np.arange(scores.shape[1])[None, :] < targets[:, None]
    tied = np.count_nonzero((scores == values) & earlier, axis=1)
    return higher + tied + 1


def ndcg_at(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)))


def catalogue_scores(torch_model, x: torch.Tensor, catalogue_internal: np.ndarray) -> np.ndarray:
    """[U, N] float32 scores of every catalogue item for the left-padded sessions ``x`` [U, L],
    computed as RecTools' recommend does (last position, dot product); -inf where the model has
    no item (``catalogue_internal`` -1)."""
    was_training = torch_model.training
    torch_model.eval()
    with torch.no_grad():
        item_embs = torch_model.item_model.get_all_embeddings()  # [I, D]
        sessions = torch_model.encode_sessions({"x": x}, item_embs)[:, -1, :]  # [U, D]
        sessions = torch_model.similarity_module.session_tower_forward(sessions)
        item_embs = torch_model.similarity_module.item_tower_forward(item_embs)
        logits = (sessions @ item_embs.T).numpy()  # [U, I]
    torch_model.train(was_training)
    known = catalogue_internal >= 0
    scores = np.full((len(x), len(catalogue_internal)), -np.inf, dtype=np.float32)
    scores[:, known] = logits[:, catalogue_internal[known]]
    return scores


class EpochValidation(Callback):
    """After each training epoch: full-catalogue validation NDCG@10 (history masked), best
    weights kept, stop after ``patience`` epochs without improvement."""

    def __init__(self, split: dict, users: list[str], patience: int, max_len: int):
        self.split, self.users, self.patience, self.max_len = split, users, patience, max_len
        self.row = {item: row for row, item in enumerate(split["items"])}
        self.curve: list[dict] = []
        self.best_ndcg, self.best_epoch, self.best_state = -1.0, 0, None
        self._inputs = None
        self._started = 0.0

    def _prepare(self, pl_module) -> None:
        internal_of = pl_module.data_preparator.item_id_map.to_internal.to_dict()  # external -> internal
        self.catalogue_internal = np.array([internal_of.get(item, -1) for item in self.split["items"]])  # -1: unseen
        x = np.zeros((len(self.users), self.max_len), dtype=np.int64)
        for u, user in enumerate(self.users):
            internal = [internal_of[item] for item in self.split["train"][user] if item in internal_of]
            internal = internal[-self.max_len :]
            x[u, len(x[u]) - len(internal) :] = internal  # left padding with 0, as RecTools does
        self._inputs = torch.from_numpy(x)
        self.targets = np.array([self.row[self.split["valid"][user]] for user in self.users])
        self.histories = [np.array([self.row[i] for i in self.split["train"][user]]) for user in self.users]

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        train_seconds = time.perf_counter() - self._started
        if self._inputs is None:
            self._prepare(pl_module)
        started = time.perf_counter()
        scores = catalogue_scores(pl_module.torch_model, self._inputs, self.catalogue_internal)
        masked = full_ranks(scores, self.targets, self.histories)
        unmasked = full_ranks(scores, self.targets, None)
        epoch = trainer.current_epoch + 1
        loss = trainer.callback_metrics.get("train_loss")
        point = {
            "epoch": epoch,
            "train_loss": None if loss is None else round(float(loss), 5),
            "valid_ndcg10_masked": round(ndcg_at(masked, 10), 5),
            "valid_hr10_masked": round(float(np.mean(masked <= 10)), 5),
            "valid_ndcg10_unmasked": round(ndcg_at(unmasked, 10), 5),
            "train_seconds": round(train_seconds, 2),
            "valid_seconds": round(time.perf_counter() - started, 2),
        }
        self.curve.append(point)
        if point["valid_ndcg10_masked"] > self.best_ndcg:
            self.best_ndcg, self.best_epoch = point["valid_ndcg10_masked"], epoch
            self.best_state = copy.deepcopy(pl_module.torch_model.state_dict())
        print(json.dumps(point), flush=True)
        if epoch - self.best_epoch >= self.patience:
            trainer.should_stop = True


# ---------------------------------------------------------------- main


def recommend_scores(model: SASRecModel, dataset: Dataset, users: list[str], items: list[str]) -> np.ndarray:
    """[U, N] float32 scores from RecTools' public recommend (every known item, none filtered)."""
    n_known = len(model.data_preparator.get_known_item_ids())
    recos = model.recommend(users=users, dataset=dataset, k=n_known, filter_viewed=False, add_rank_col=False)
    user_row = {user: u for u, user in enumerate(users)}
    item_row = {item: row for row, item in enumerate(items)}
    scores = np.full((len(users), len(items)), -np.inf, dtype=np.float32)
    scores[recos["user_id"].map(user_row).to_numpy(), recos["item_id"].map(item_row).to_numpy()] = recos["score"]
    return scores


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    folder = Path(args.split)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)  # Lightning's "no GPU / few workers" notes
    split = load_split(folder)
    users = list(split["valid"])
    row = {item: r for r, item in enumerate(split["items"])}

    seed_everything(args.seed, workers=True)
    validation = EpochValidation(split, users, args.patience, SETTINGS["session_max_len"])

    def make_trainer() -> Trainer:
        return Trainer(
            max_epochs=args.max_epochs,
            min_epochs=1,
            deterministic=True,
            accelerator="cpu",
            devices=1,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            logger=False,
            callbacks=[validation],
        )

    model = SASRecModel(
        **SETTINGS,
        epochs=args.max_epochs,
        deterministic=True,
        item_net_block_types=(IdEmbeddingsItemNet,),  # ids only: no item features
        get_trainer_func=make_trainer,
        recommend_torch_device="cpu",
    )
    train_dataset = Dataset.construct(interactions_frame(split["train"]))
    started = time.perf_counter()
    model.fit(train_dataset)
    fit_seconds = time.perf_counter() - started
    # Lightning deep-copies the trainer, callbacks included: read the copy that ran.
    ran = next(c for c in model.fit_trainer.callbacks if isinstance(c, EpochValidation))
    model.torch_model.load_state_dict(ran.best_state)

    # Validation again through RecTools' recommend: it must match what the callback measured.
    valid_scores = recommend_scores(model, train_dataset, users, split["items"])
    valid_targets = np.array([row[split["valid"][user]] for user in users])
    train_rows = [np.array([row[i] for i in split["train"][user]]) for user in users]
    valid_check = ndcg_at(full_ranks(valid_scores, valid_targets, train_rows), 10)
    if abs(valid_check - ran.best_ndcg) > 1e-3:
        raise RuntimeError(f"recommend() gives validation NDCG@10 {valid_check:.5f}, callback {ran.best_ndcg:.5f}")

    test_input = {user: split["train"][user] + [split["valid"][user]] for user in users}
    test_scores = recommend_scores(model, Dataset.construct(interactions_frame(test_input)), users, split["items"])
    test_targets = np.array([row[split["test"][user]] for user in users])
    test_rows = [np.array([row[i] for i in test_input[user]]) for user in users]
    masked = full_ranks(test_scores, test_targets, test_rows)
    unmasked = full_ranks(test_scores, test_targets, None)
    unknown = ~np.isfinite(test_scores[np.arange(len(users)), test_targets])

    torch.save(ran.best_state, folder / "best_weights.pt")  # the selected epoch's torch_model state_dict
    np.savez_compressed(folder / "scores.npz", users=np.array(users), valid=valid_scores, test=test_scores)
    train_seconds = [point["train_seconds"] for point in ran.curve]
    result = {
        "library": f"rectools {rectools.__version__}",
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__},
        "settings": {
            **SETTINGS,
            "seed": args.seed,
            "threads": args.threads,
            "max_epochs": args.max_epochs,
            "patience": args.patience,
            "item_net": "IdEmbeddingsItemNet",
            "adam_betas": [0.9, 0.98],
            "selection": "best validation NDCG@10 (history masked) over epochs",
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "best_epoch": ran.best_epoch,
        "epochs_run": len(ran.curve),
        "seconds_per_epoch": round(float(np.median(train_seconds)), 2),
        "fit_seconds": round(fit_seconds, 1),
        "valid_ndcg10_masked_best": ran.best_ndcg,
        "valid_ndcg10_masked_recommend": round(valid_check, 5),
        "test_targets_unknown_to_model": int(unknown.sum()),
        "curve": ran.curve,
        "ranks": {
            "masked": {user: int(r) for user, r in zip(users, masked)},
            "unmasked": {user: int(r) for user, r in zip(users, unmasked)},
        },
    }
    (folder / "ranks.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(
        f"best epoch {ran.best_epoch} of {len(ran.curve)}; test NDCG@10 masked {ndcg_at(masked, 10):.4f}, "
        f"unmasked {ndcg_at(unmasked, 10):.4f}; {result['seconds_per_epoch']} s per epoch; wrote {folder}/ranks.json"
    )


if __name__ == "__main__":
    main()
