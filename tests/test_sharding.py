"""Sharded batch jobs: two gloo processes (torchrun) write the same file as one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.protocol import sample_users, selection_users, shard

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_shard_blocks_cover_users_in_order():
    users = [str(u) for u in range(11)]
    blocks = [shard(users, rank, 3) for rank in range(3)]
    assert sum(blocks, []) == users and [len(b) for b in blocks] == [4, 3, 4]
    assert shard(users[:1], 1, 2) == ["0"] or shard(users[:1], 0, 2) == ["0"]


def test_user_sample_is_seeded_and_ordered():
    from recommender import load_dataset

    split = LeaveOneOutSplit(load_dataset("ml-100k").interactions)
    first, again = sample_users(split, 50, seed=3), sample_users(split, 50, seed=3)
    assert first == again and len(first) == 50
    assert first == sorted(first, key=int) and first != sample_users(split, 50, seed=4)
    others = sample_users(split, 50, seed=3, exclude=first)
    assert len(others) == 50 and not set(others) & set(first)
    meta = {"config": {"eval": {"users": 50, "seed": 3}}}
    assert selection_users(meta, split) == first and selection_users({}, split) == []


def run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def torchrun(*args: str) -> list[str]:
    return [str(BIN / "torchrun"), "--nproc_per_node", "2", "-m", "recommender.cli", *args]


def test_batch_recommend_two_processes_match_one(tmp_path):
    common = ["batch-recommend", "--users", "1,2,3,4,5,6,7", "-k", "5", "--retrieval-only"]
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "one.jsonl")], tmp_path)
    run(torchrun(*common, "--output", str(tmp_path / "two.jsonl")), tmp_path)
    one, two = (tmp_path / "one.jsonl").read_text(), (tmp_path / "two.jsonl").read_text()
    assert one == two and len(one.splitlines()) == 7
    assert [json.loads(line)["user_id"] for line in one.splitlines()] == [str(u) for u in range(1, 8)]
    assert not list(tmp_path.glob("*.shard-*"))


def test_evaluate_two_processes_match_one(tmp_path):
    common = ["evaluate", "--users", "40", "--methods", "pop,cooccurrence"]
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "one")], tmp_path)
    run(torchrun(*common, "--output", str(tmp_path / "two")), tmp_path)
    one, two = (tmp_path / "one" / "metrics.json").read_text(), (tmp_path / "two" / "metrics.json").read_text()
    assert json.loads(one) == json.loads(two)
    assert json.loads(one)["pop"]["users"] == 40


@pytest.mark.slow
def test_evaluate_is_deterministic_with_the_llm(tmp_path):
    common = ["evaluate", "--users", "8", "--methods", "hybrid,llm_zero_shot"]
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "a")], tmp_path)
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "b")], tmp_path)
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()


def test_evaluate_twice_with_one_seed_writes_identical_json(tmp_path):
    common = ["evaluate", "--users", "100", "--seed", "3", "--methods", "pop,cooccurrence,embedding,hybrid"]
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "a")], tmp_path)
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "b")], tmp_path)
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()
