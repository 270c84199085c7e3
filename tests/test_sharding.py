"""Batch jobs across processes (accelerate's PartialState, split_between_processes, gather_object):
two gloo processes, started by torchrun or by accelerate launch, write the same file as one process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.data.split import LeaveOneOutSplit
from recommender.evaluation.distributed import batches, gather_in_order, map_in_order
from recommender.evaluation.protocol import sample_users, selection_users

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


class FakeState:
    """What ``map_in_order`` uses of a PartialState, for one process of ``world``: its share of a round."""

    def __init__(self, rank: int, world: int):
        self.process_index, self.num_processes = rank, world

    def split_between_processes(self, values):
        from contextlib import nullcontext

        per, extra = divmod(len(values), self.num_processes)
        start = self.process_index * per + min(self.process_index, extra)
        return nullcontext(values[start : start + per + (self.process_index < extra)])


def test_batches_and_rounds_keep_order_and_do_not_depend_on_the_process_count():
    users = [str(u) for u in range(11)]
    groups = batches(users, 3)
    assert groups == [["0", "1", "2"], ["3", "4", "5"], ["6", "7", "8"], ["9", "10"]]
    with pytest.raises(ValueError, match="positive"):
        batches(users, 0)
    seen = []

    def work(group):
        seen.append(tuple(group))
        return [f"{u}!" for u in group]

    assert [line for out in map_in_order(FakeState(0, 1), work, groups) for line in out] == [f"{u}!" for u in users]

    # On 2 processes a round of per_round x 2 groups is split in contiguous halves, and gather_object
    # puts rank 0's half before rank 1's: round by round, the groups come back in order.
    def shares(per_round):
        return [[out[0][:-1] for out in map_in_order(FakeState(rank, 2), work, groups, per_round)] for rank in range(2)]

    assert shares(1) == [["0", "6"], ["3", "9"]]  # rounds (g0 | g1), (g2 | g3)
    assert shares(3) == [["0", "3"], ["6", "9"]]  # one round (g0 g1 | g2 g3)
    assert gather_in_order(FakeState(0, 1), {"a": 1}) == [{"a": 1}]


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


# ---------------------------------------------------------------- batched two-stage = one user at a time


@pytest.fixture(scope="module")
def ml100k():
    from recommender import load_dataset

    return load_dataset("ml-100k")


def _recommender(dataset, scorer):
    from recommender.pipeline import PipelineConfig, Recommender
    from recommender.retrieval.base import CooccurrenceRetriever

    retriever = CooccurrenceRetriever(dataset.catalog, csr=LeaveOneOutSplit(dataset.interactions).train_csr())
    return Recommender(dataset, retriever, scorer, PipelineConfig(llm_candidates=5, template="rank"))


def test_batched_recommendations_equal_one_user_at_a_time(ml100k, tiny_llama_dir):
    from recommender.commands.batch_recommend import recommend_batch
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    users = ["1", "2", "3", "4", "5"]
    plain = _recommender(ml100k, None)
    assert recommend_batch(plain, users, 7) == [[r.to_dict() for r in plain.recommend(user_id=u, k=7)] for u in users]
    scorer = LLMScorer(load_model(tiny_llama_dir, adapter=None, quantize="none", device="cpu"), batch_size=8)
    rec = _recommender(ml100k, scorer)
    batched = recommend_batch(rec, users, 7)  # 5 prompts, one scorer call
    for user, cards in zip(users, batched):
        alone = [r.to_dict() for r in rec.recommend(user_id=user, k=7)]
        assert [c["item_id"] for c in cards] == [c["item_id"] for c in alone]
        assert [c["llm_score"] is None for c in cards] == [False] * 5 + [True] * 2  # the reranked block first
        # Left padding in a batch of prompts moves LLM scores by float noise only.
        for key in ("score", "llm_score"):
            got = [np.nan if c[key] is None else c[key] for c in cards]
            np.testing.assert_allclose(got, [np.nan if c[key] is None else c[key] for c in alone], atol=1e-4)


# ---------------------------------------------------------------- the same command on 1 and 2 processes


def run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def torchrun(*args: str) -> list[str]:
    # --standalone: a free rendezvous port, so parallel runs on one machine do not collide.
    return [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "recommender.cli", *args]


def accelerate_launch(*args: str) -> list[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return [
        # --multi_gpu, not --cpu: accelerate 1.15 starts ONE process with --cpu; without GPUs these are gloo processes.
        str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
        "-m", "recommender.cli", *args,
    ]  # fmt: skip


def test_batch_recommend_two_processes_match_one(tmp_path, tiny_llama_dir):
    """The two-stage path with a tiny random Llama, in fixed batches of 2 users: the LLM scores the
    same batches on 1 and 2 processes. Lists, order and every field match; LLM scores match to
    float noise (~1e-9: a CPU matmul need not round the same in another process, e.g. with other
    buffer alignment), which retrieval-only output does not have (it is byte-identical)."""
    common = ["batch-recommend", "--users", "1,2,3,4,5,6,7", "-k", "5", "--batch-size", "2"]
    common += ["--model", str(tiny_llama_dir), "--adapter", "none", "--quantize", "none"]
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "one.jsonl")], tmp_path)
    assert "(2 process(es))" in run(torchrun(*common, "--output", str(tmp_path / "two.jsonl")), tmp_path)
    one, two = (
        [json.loads(line) for line in (tmp_path / f).read_text().splitlines()] for f in ("one.jsonl", "two.jsonl")
    )
    assert [line["user_id"] for line in one] == [line["user_id"] for line in two] == [str(u) for u in range(1, 8)]
    assert all(line["items"][0]["llm_score"] is not None for line in one)  # the LLM stage ran
    floats = ("score", "llm_score", "retrieval_score")
    for a, b in zip(one, two):
        assert [{k: v for k, v in c.items() if k not in floats} for c in a["items"]] == [
            {k: v for k, v in c.items() if k not in floats} for c in b["items"]
        ]
        for key in floats:
            got = [np.nan if c[key] is None else c[key] for c in b["items"]]
            np.testing.assert_allclose(got, [np.nan if c[key] is None else c[key] for c in a["items"]], rtol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl", "two.jsonl"]  # no shard files


def test_evaluate_two_processes_match_one(tmp_path):
    common = ["evaluate", "--users", "40", "--methods", "pop,cooccurrence"]
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "one")], tmp_path)
    assert "40 users over 2 processes" in run(accelerate_launch(*common, "--output", str(tmp_path / "two")), tmp_path)
    one, two = (tmp_path / "one" / "metrics.json").read_text(), (tmp_path / "two" / "metrics.json").read_text()
    assert json.loads(one) == json.loads(two)
    assert json.loads(one)["pop"]["users"] == 40
    ranks_one, ranks_two = (json.loads((tmp_path / f / "ranks.json").read_text()) for f in ("one", "two"))
    assert ranks_one == ranks_two and len(ranks_one["users"]) == len(ranks_one["ranks"]["cooccurrence"]) == 40
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


@pytest.mark.slow
def test_evaluate_is_deterministic_with_the_llm(tmp_path):
    common = ["evaluate", "--users", "8", "--methods", "hybrid,llm_zero_shot"]
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "a")], tmp_path)
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "b")], tmp_path)
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()
    record = json.loads((tmp_path / "a" / "ranks.json").read_text())  # the precision is recorded with the ranks
    assert record["precision"]["llm_zero_shot"]["dtype"] == "float32"  # pinned by RECOMMENDER_DTYPE in conftest
    assert "precision" in (tmp_path / "a" / "metrics.md").read_text()


def test_evaluate_twice_with_one_seed_writes_identical_json(tmp_path):
    common = ["evaluate", "--users", "100", "--seed", "3", "--methods", "pop,cooccurrence,embedding,hybrid"]
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "a")], tmp_path)
    run([str(BIN / "recommender"), *common, "--output", str(tmp_path / "b")], tmp_path)
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (tmp_path / "b" / "metrics.json").read_bytes()
