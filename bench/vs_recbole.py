"""RecBole's SASRec and Pop on OUR ML-100k leave-one-out split, scored with OUR metrics.

One run: write our split as a temporary RecBole atomic dataset (per-user rank timestamps,
see bench/recbole_split.py), train SASRec and Pop with the same seed, check from RecBole's
own test data that every user's test item and history are ours (the mismatch count must
be 0), then rank all items for every user and report HR/NDCG/MRR twice: unmasked (as
RecBole's sequential evaluation does, ``repeatable: True``) and with the user's known
history masked (our rule; the target is never masked). RecBole's own evaluator numbers
are printed beside them, plus popularity with true counts from our train split.
RecBole's checkpoints and logs stay in a temporary folder.

    .venv/bin/python -m bench.vs_recbole --epochs 2      # end-to-end check
    recommender evaluate --first-stage hybrid --methods cooccurrence,hybrid --output runs/eval-hybrid  # our rows
    nohup .venv/bin/python -m bench.vs_recbole --epochs 12 --ours runs/eval-hybrid/metrics.json \\
        > /tmp/vs_recbole.log 2>&1 &                     # default length, in the background

An SASRec epoch takes about 166 s on 2 idle cores (12 epochs, the default, fit in 40 minutes);
measured 835 s per epoch when the 2 cores were shared with other jobs (load average ~8-12).
``--ours`` adds the rows of a ``recommender evaluate`` metrics.json ({method: {metric: value}})
and is skipped with a note when the file is absent. Exit status 1 when any user's split differs.

Needs the ``bench`` extra and ``pip install --no-deps recbole==1.2.1`` (make install does both).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import recbole_split
from recommender.data.loaders import load_dataset
from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.metrics import ranking_report, target_rank

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR@10")
UNMASKED = "unmasked (RecBole's rule)"
MASKED = "history masked (ours)"
DATASET_NAME = "ours_ml100k"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--epochs", type=int, default=12, help="SASRec training epochs (about 166 s each on 2 idle cores)"
    )
    parser.add_argument("--dataset", default="ml-100k", help="'ml-100k' or a folder load_dataset reads")
    parser.add_argument("--seed", type=int, default=2020, help="seed for RecBole (data, model init, training)")
    parser.add_argument("--max-len", type=int, default=50, help="RecBole MAX_ITEM_LIST_LENGTH (SASRec's window)")
    parser.add_argument("--ours", type=Path, default=None, help="metrics.json from `recommender evaluate`, optional")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/vs_recbole.md", help="markdown table")
    return parser


@dataclass
class Row:
    method: str
    rule: str
    metrics: dict[str, float]
    note: str = ""


@dataclass
class ModelRun:
    """What one RecBole model produced: rows for the table plus the facts the report states."""

    rows: list[Row] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    valid_curve: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0


@contextlib.contextmanager
def _inside(folder: Path):
    """RecBole writes log_tensorboard/ into the working directory: run it inside the temp folder."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _config(model_class, folder: Path, args, extra: dict):
    import torch
    from recbole.config import Config

    config_dict = (
        recbole_split.split_config(folder / "data", DATASET_NAME)
        | {
            "seed": args.seed,
            "reproducibility": True,
            "use_gpu": torch.cuda.is_available(),
            "checkpoint_dir": str(folder / "saved"),
            "show_progress": False,
            "MAX_ITEM_LIST_LENGTH": args.max_len,
            "metrics": ["Hit", "NDCG", "MRR"],
            "topk": [1, 5, 10, 20],  # RecBole's torch.topk needs at least 20 items
            "valid_metric": "NDCG@10",
            "eval_batch_size": 256,
        }
        | extra
    )
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config would also read our --flags
    try:
        return Config(model=model_class, dataset=DATASET_NAME, config_dict=config_dict)
    finally:
        sys.argv = argv


def _recording_trainer(config, model, run: ModelRun):
    from recbole.trainer import Trainer

    class RecordingTrainer(Trainer):
        """Keeps every validation score, so the report can say whether it was still rising."""

        def _valid_epoch(self, valid_data, show_progress=False):
            score, result = super()._valid_epoch(valid_data, show_progress)
            run.valid_curve.append(float(score))
            run.epoch_seconds.append(time.perf_counter())
            return score, result

    return RecordingTrainer(config, model)


def _ranks(split: LeaveOneOutSplit, scores: dict[str, np.ndarray], masked: bool) -> list[int]:
    ranks = []
    for user in split.eval_users:
        case = split.case(user, "test")
        ranks.append(target_rank(scores[user], case.target, case.history if masked else ()))
    return ranks


def _score_loader(model, test_data, columns: np.ndarray, n_items: int) -> dict[str, np.ndarray]:
    """Full-sort predictions for every test user, [n_items] each, in catalogue order."""
    import torch

    dataset = test_data._dataset
    scores: dict[str, np.ndarray] = {}
    model.eval()
    with torch.no_grad():
        for batch in test_data:
            interaction = batch[0].to(model.device)
            users = dataset.id2token(dataset.uid_field, interaction[dataset.uid_field].cpu().numpy())
            predicted = model.full_sort_predict(interaction).view(len(users), -1)  # [B, n_recbole]
            rows = recbole_split.to_catalog_scores(predicted.double().cpu().numpy(), columns, n_items)  # [B, N]
            scores.update({str(user): row for user, row in zip(users, rows)})
    return scores


def _recbole_row(method: str, result: dict) -> Row:
    names = {"HR": "hit", "NDCG": "ndcg", "MRR": "mrr"}
    metrics = {}
    for metric in METRICS:
        kind, k = metric.split("@")
        metrics[metric] = float(result[f"{names[kind]}@{k}"])
    return Row(f"{method} (RecBole evaluator)", UNMASKED, metrics, "RecBole's topk: ties broken by torch")


def _run_model(model_name: str, data, split, folder: Path, args) -> ModelRun:
    import torch
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import Pop
    from recbole.model.sequential_recommender import SASRec
    from recbole.utils import init_seed

    started = time.perf_counter()
    run = ModelRun()
    if model_name == "SASRec":
        config = _config(SASRec, folder, args, {"epochs": args.epochs, "train_neg_sample_args": None})
    else:
        # Pop only counts; without negatives its counts are positives only (RecBole's default
        # would sample one negative per positive into the same item field). repeatable: True
        # makes RecBole's evaluator rank unmasked, the rule its sequential models use.
        config = _config(Pop, folder, args, {"epochs": 1, "train_neg_sample_args": None, "repeatable": True})
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    if model_name == "SASRec":
        cases = recbole_split.sequential_cases(test_data)
    else:
        cases = recbole_split.general_cases(train_data.dataset, valid_data.dataset, test_data.dataset)
    run.mismatches = recbole_split.split_mismatches(split, data.catalog, cases, max_history=args.max_len)
    print(f"[{model_name}] users whose RecBole test item or history differs from ours: {len(run.mismatches)}")
    for line in run.mismatches[:10]:
        print("   ", line)

    init_seed(config["seed"], config["reproducibility"])
    model = (SASRec if model_name == "SASRec" else Pop)(config, train_data.dataset).to(config["device"])
    trainer = _recording_trainer(config, model, run)
    fit_started = time.perf_counter()
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    run.epoch_seconds = list(np.diff([fit_started] + run.epoch_seconds))
    # Best-validation checkpoint; RecBole's own loader fails on torch >= 2.6 (weights_only).
    checkpoint = torch.load(trainer.saved_model_file, map_location=config["device"], weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    result = trainer.evaluate(test_data, load_best_model=False)

    columns = recbole_split.catalog_columns(dataset, data.catalog)
    scores = _score_loader(model, test_data, columns, len(data.catalog))
    note = "Pop counts each item once per batch (RecBole)" if model_name == "Pop" else ""
    run.rows = [
        _recbole_row(model_name, result),
        Row(model_name, UNMASKED, ranking_report(_ranks(split, scores, masked=False)), note),
        Row(model_name, MASKED, ranking_report(_ranks(split, scores, masked=True)), note),
    ]
    run.seconds = time.perf_counter() - started
    return run


def _popularity_rows(split: LeaveOneOutSplit, n_items: int) -> list[Row]:
    counts = split.item_popularity(n_items)
    scores = dict.fromkeys(split.eval_users, counts)
    note = "true counts of our train split"
    return [
        Row("Popularity", UNMASKED, ranking_report(_ranks(split, scores, masked=False)), note),
        Row("Popularity", MASKED, ranking_report(_ranks(split, scores, masked=True)), note),
    ]


def _our_rows(path: Path | None) -> list[Row]:
    if path is None:
        return []
    if not path.is_file():
        print(f"--ours {path}: no such file, so our own rows are skipped.")
        return []
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SystemExit(f"--ours {path}: not valid JSON ({error.msg}, line {error.lineno}).") from None
    if not isinstance(report, dict):
        raise SystemExit(f"--ours {path}: expected a JSON object {{method: {{metric: value}}}}.")
    rows = []
    for method, metrics in report.items():
        if not isinstance(metrics, dict):
            raise SystemExit(f"--ours {path}: field {method!r} must be an object of metric values.")
        values = {m: float(metrics[m]) for m in METRICS if isinstance(metrics.get(m), (int, float))}
        rows.append(Row(f"ours: {method}", MASKED, values, f"from {path.name}"))
    return rows


def _machine() -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    threads = torch.get_num_threads()
    return f"{platform.node()}: {os.cpu_count()} cores, {device}, torch {torch.__version__}, {threads} torch threads"


def _table(rows: list[Row]) -> list[str]:
    lines = [
        "| method | masking rule | " + " | ".join(METRICS) + " | note |",
        "|---|---|" + "---:|" * len(METRICS) + "---|",
    ]
    for row in rows:
        values = " | ".join(f"{row.metrics[m]:.4f}" if m in row.metrics else "-" for m in METRICS)
        lines.append(f"| {row.method} | {row.rule} | {values} | {row.note} |")
    return lines


def render(rows: list[Row], facts: dict[str, str]) -> str:
    """The markdown report: the table, then one line per fact."""
    lines = ["# RecBole SASRec and Pop on our leave-one-out split", ""]
    lines += _table(rows)
    lines += [""] + [f"- **{key}**: {value}" for key, value in facts.items()]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    load_before = os.getloadavg()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    # RecBole 1.2.1 on pandas 3 / torch 2.13 warns about its own internals; nothing for us to act on.
    warnings.filterwarnings("ignore", module=r"recbole\..*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        recbole_split.import_recbole()
    except ImportError as error:
        print(f"recbole 1.2.1 or one of its dependencies cannot be imported ({error}); see the module docstring.")
        return 2
    data = load_dataset(args.dataset)
    split = LeaveOneOutSplit(data.interactions)
    print(f"{data.summary()}; evaluating {len(split.eval_users)} users")

    with tempfile.TemporaryDirectory(prefix="vs_recbole_") as temp, _inside(Path(temp)):
        folder = Path(temp)
        recbole_split.write_atomic_split(split, data.catalog, folder / "data", DATASET_NAME)
        sasrec = _run_model("SASRec", data, split, folder, args)
        pop = _run_model("Pop", data, split, folder, args)

    rows = sasrec.rows + pop.rows + _popularity_rows(split, len(data.catalog)) + _our_rows(args.ours)
    curve = sasrec.valid_curve
    best = int(np.argmax(curve)) + 1 if curve else 0
    rising = bool(curve) and best == len(curve)
    mismatches = len(sasrec.mismatches) + len(pop.mismatches)
    per_epoch = np.median(sasrec.epoch_seconds) if sasrec.epoch_seconds else float("nan")
    facts = {
        "users": f"{len(split.eval_users)} of {len(split.users)} in {data.name}, ranking all {len(data.catalog)} items",
        "split": (
            "ours: per user, stable sort by timestamp, last = test, second-to-last = validation; fed to RecBole "
            "as per-user rank timestamps with eval_args {split: {LS: valid_and_test}, order: TO, mode: full, "
            "group_by: user}"
        ),
        "split mismatches (RecBole vs ours, test item + history, every user)": (
            f"{mismatches} (SASRec {len(sasrec.mismatches)}, Pop {len(pop.mismatches)}; SASRec histories compared "
            f"over its last {args.max_len} items, Pop's as the train + validation item set)"
        ),
        "seed": f"{args.seed} (RecBole init_seed, reproducibility on)",
        "SASRec epochs run": f"{len(curve)} of {args.epochs} requested; best validation NDCG@10 at epoch {best}",
        "validation NDCG@10 per epoch": ", ".join(f"{v:.4f}" for v in curve),
        "validation still rising when training stopped": "yes (best epoch is the last): undertrained"
        if rising
        else "no",
        "SASRec model": (
            "RecBole 1.2.1 defaults (2 layers, 2 heads, hidden 64, CE loss, lr 0.001, batch 2048); "
            "tested on the best-validation checkpoint"
        ),
        "ties": (
            "our rows: tied items earlier in the catalogue rank ahead (recommender.evaluation.metrics.target_rank); "
            "RecBole's evaluator breaks ties by torch.topk"
        ),
        "wall time": (
            f"{time.perf_counter() - started:.0f} s in all; SASRec {sasrec.seconds:.0f} s "
            f"(median {per_epoch:.0f} s per epoch incl. validation), Pop {pop.seconds:.0f} s"
        ),
        "machine": (
            f"{_machine()}; load average {load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end "
            "(the cores are shared with other engineers' jobs, so times are slower than on an idle machine)"
        ),
    }
    report = render(rows, facts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    print(f"wrote {args.out}")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main(make_parser().parse_args()))
