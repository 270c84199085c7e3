"""Incremental updates: checked files, refresh equal to a rebuild, cold-start items, atomic state
(a process killed mid-update), the store's appended interactions and its additive migration."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.data import DataError, Dataset, Interactions, Item, LoadReport
from recommender.data.catalog import Catalog
from recommender.data.split import LeaveOneOutSplit
from recommender.data.updates import NewEvents, extend_dataset, read_new_events, read_new_items
from recommender.retrieval.base import BaseRetriever, CooccurrenceRetriever, HybridRetriever
from recommender.retrieval.incremental import FoldedSequential, refresh_cooccurrence, refresh_hybrid
from recommender.store import FeedbackStore
from recommender.update import CRASH_ENV, Updater, UpdateState, online_history, record_interactions

TOPICS = ("space pirates galaxy", "romance paris love", "zombie horror night", "detective crime city")


class HashEncoder:
    """Bag of words hashed into 32 dims, unit length; counts what it encodes."""

    name = "hash-bow"

    def __init__(self):
        self.encoded = 0

    def encode(self, texts):
        self.encoded += len(texts)
        out = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(".", " ").replace(",", " ").split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 32] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def small_dataset(n_users: int = 40, n_items: int = 30, events: int = 12, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    items = [Item(str(i), f"Film {i}", 1990 + i % 10, ("Drama",), TOPICS[i % 4]) for i in range(1, n_items + 1)]
    users, rows, times = [], [], []
    for u in range(1, n_users + 1):
        topic = u % 4  # each user mostly watches one topic: co-occurrence has structure
        pool = [r for r in range(n_items) if r % 4 == topic] + list(rng.choice(n_items, 3, replace=False))
        for t, r in enumerate(rng.choice(pool, min(events, len(set(pool))), replace=False)):
            users.append(str(u)), rows.append(int(r)), times.append(1000.0 * u + t)
    interactions = Interactions(np.array(users), np.array(rows), np.array(times), np.ones(len(rows), np.float32))
    return Dataset("tiny", Catalog(items), interactions, LoadReport())


def build(dataset: Dataset, cache: Path, encoder=None):
    from recommender.retrieval.hybrid import build_default_retriever

    return build_default_retriever(dataset, encoder=encoder or HashEncoder(), cache_dir=cache)


def some_events(dataset: Dataset, n: int = 25, seed: int = 1, new_user: bool = True) -> NewEvents:
    rng = np.random.default_rng(seed)
    users = [str(u) for u in rng.integers(1, dataset.interactions.n_users + 1, n)]
    if new_user:
        users[-3:] = ["new-user"] * 3
    items = [dataset.catalog.ids[int(r)] for r in rng.integers(0, len(dataset.catalog), n)]
    return NewEvents.of(users, items, 1e6 + np.arange(n), source="test")


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_CACHE", str(tmp_path / "cache"))
    dataset = small_dataset()
    return dataset, build(dataset, tmp_path / "cache")


# ---------------------------------------------------------------- files are checked


def test_bad_rows_name_the_file_line_and_field(tmp_path):
    catalog = small_dataset().catalog
    bad_item = tmp_path / "new.csv"
    bad_item.write_text("user_id,item_id,timestamp\n1,2,100\n\n1,999,101\n")
    with pytest.raises(DataError, match=r"new.csv, line 4: field 'item_id': item '999' is not in the catalogue"):
        read_new_events(bad_item, catalog)
    bad_time = tmp_path / "time.csv"
    bad_time.write_text("user_id,item_id,timestamp\n1,2,100\n1,3,soon\n")
    with pytest.raises(DataError, match=r"time.csv, line 3: field 'timestamp'"):
        read_new_events(bad_time, catalog)
    bad_json = tmp_path / "new.jsonl"
    bad_json.write_text(
        '{"user_id": "1", "item_id": "2", "timestamp": 5}\n{"user_id": "", "item_id": "2", "timestamp": 5}\n'
    )
    with pytest.raises(DataError, match=r"new.jsonl, line 2: field 'user_id' is empty"):
        read_new_events(bad_json, catalog)
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,text\n500,Star Raiders,space pirates\n3,Again,x\n")
    with pytest.raises(DataError, match=r"items.csv, line 3: field 'item_id': item '3' is already in the catalogue"):
        read_new_items(items, catalog)


def test_new_items_then_their_events_are_read(tmp_path):
    catalog = small_dataset().catalog
    (tmp_path / "items.csv").write_text("item_id,title,year,genres,text\n500,Star Raiders,2001,Sci-Fi|Action,space\n")
    (tmp_path / "new.csv").write_text("user_id,item_id,timestamp,rating\n7,500,100,4\n8,2,101,5\n")
    items = read_new_items(tmp_path / "items.csv", catalog)
    assert items == [Item("500", "Star Raiders", 2001, ("Sci-Fi", "Action"), "space")]
    events = read_new_events(tmp_path / "new.csv", catalog, items)
    assert events.items.tolist() == ["500", "2"] and events.ratings.tolist() == [4.0, 5.0]
    assert events.sources.tolist() == ["file:new.csv"] * 2


# ---------------------------------------------------------------- refresh == rebuild


def test_incremental_refresh_equals_a_full_rebuild(world, tmp_path):
    dataset, hybrid = world
    events = some_events(dataset)
    grown = extend_dataset(dataset, [], events)
    old_split, new_split = LeaveOneOutSplit(dataset.interactions), LeaveOneOutSplit(grown.interactions)
    refreshed, _, report = refresh_hybrid(
        hybrid, grown.catalog, old_split, new_split, sorted(set(events.users.tolist()))
    )
    assert report.exact_cooccurrence and report.rows_touched > 0 and report.encoded_items == 0
    rebuilt = build(grown, tmp_path / "cache2")
    for name in ("pop", "cooccurrence", "embedding"):
        histories = [new_split.sequences[u] for u in new_split.users]
        np.testing.assert_allclose(
            refreshed.components[name].score_batch(histories), rebuilt.components[name].score_batch(histories),
            rtol=1e-12, atol=1e-12,
        )  # fmt: skip
    assert refreshed.weights == hybrid.weights  # the tuned blend is kept
    assert hybrid.components["pop"].counts.sum() == old_split.item_popularity(30).sum()  # the old one untouched


def test_pruned_cooccurrence_recomputes_the_rows_it_touches(world):
    dataset, _ = world
    split = LeaveOneOutSplit(dataset.interactions)
    old = CooccurrenceRetriever(dataset.catalog, csr=split.train_csr(), neighbours=5)
    events = some_events(dataset, n=4, new_user=False)
    grown = extend_dataset(dataset, [], events)
    new_split = LeaveOneOutSplit(grown.interactions)
    refreshed, touched, exact = refresh_cooccurrence(old, grown.catalog, split, new_split, sorted(set(events.users)))
    rebuilt = CooccurrenceRetriever(grown.catalog, csr=new_split.train_csr(), neighbours=5)
    assert not exact and touched > 0
    changed = np.flatnonzero(np.diff((rebuilt.similarity != old.similarity).tocsr().indptr))
    rows = np.intersect1d(changed, np.flatnonzero(np.diff(refreshed.similarity.indptr)))
    np.testing.assert_allclose(refreshed.similarity[rows].toarray(), rebuilt.similarity[rows].toarray(), atol=0.2)
    assert (np.diff(refreshed.similarity.indptr) <= 5).all()


class FixedSequential(BaseRetriever):
    name = "sequential"

    def score_batch(self, histories, queries=None):
        return np.tile(np.arange(len(self.catalog), dtype=np.float64), (len(histories), 1))


def test_sequential_model_folds_new_items_in_without_retraining(world):
    dataset, hybrid = world
    components = {**hybrid.components, "sequential": FixedSequential(dataset.catalog)}
    with_seq = HybridRetriever(dataset.catalog, components, {"cooccurrence": 0.5, "sequential": 0.5}, hybrid.text)
    item = Item("900", "Moon Pirates", 2020, ("Sci-Fi",), "space pirates galaxy")
    grown = extend_dataset(dataset, [item], NewEvents.of(["1"], ["900"], [1e7]))
    split = LeaveOneOutSplit(dataset.interactions)
    refreshed, vectors, report = refresh_hybrid(
        with_seq, grown.catalog, split, LeaveOneOutSplit(grown.interactions), ["1"], encoder=HashEncoder()
    )
    folded = refreshed.components["sequential"]
    assert isinstance(folded, FoldedSequential) and vectors.shape == (1, 32) and report.encoded_items == 1
    scores = folded.score_batch([np.array([0, 30])])  # row 30 (the new item) is left out of its input
    assert scores.shape == (1, 31) and scores[0, 30] == scores[0, :30].min()


# ---------------------------------------------------------------- cold start and persistence


def test_new_items_are_recommendable_at_once_by_text(world, tmp_path):
    from recommender.pipeline import Recommender

    dataset, hybrid = world
    encoder = HashEncoder()
    updater = Updater(dataset, hybrid, tmp_path / "state", encoder=encoder)
    item = Item("900", "Nebula Corsairs", 2024, ("Sci-Fi",), "space pirates galaxy nebula corsairs")
    report = updater.update(NewEvents.empty(), [item])
    assert report.new_items == 1 and encoder.encoded == 1  # only the new item was embedded
    rec = updater.recommender(Recommender(dataset, hybrid))
    top = rec.recommend(history=[], query="nebula corsairs", k=3)
    assert top[0].item_id == "900"
    warm = rec.recommend(user_id="1", query="nebula corsairs", k=5)
    assert "900" in [r.item_id for r in warm]


def test_state_survives_a_restart_and_equals_the_live_one(world, tmp_path):
    dataset, hybrid = world
    first = Updater(dataset, hybrid, tmp_path / "state", encoder=HashEncoder())
    first.update(some_events(dataset, seed=1))
    item = Item("900", "Nebula Corsairs", 2024, ("Sci-Fi",), "space pirates")
    first.update(some_events(dataset, seed=2).concat(NewEvents.of(["2"], ["900"], [2e6])), [item])
    encoder = HashEncoder()
    again = Updater(dataset, hybrid, tmp_path / "state", encoder=encoder)
    assert encoder.encoded == 0  # the stored vectors are reused
    assert again.dataset.fingerprint() == first.dataset.fingerprint()
    histories = [again.split.sequences[u] for u in again.split.users[:10]]
    np.testing.assert_allclose(again.retriever.score_batch(histories), first.retriever.score_batch(histories))
    assert len(again.appended.events) == 51 and [v for v in os.listdir(tmp_path / "state") if v.startswith("v")]


CRASH_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_update import small_dataset, build, some_events, HashEncoder
from recommender.data import Item
from recommender.update import Updater
dataset = small_dataset()
updater = Updater(dataset, build(dataset, Path({cache!r})), {state!r}, encoder=HashEncoder())
updater.update(some_events(dataset, seed=7), [Item("901", "Late Film", 2020, (), "zombie")])
print("finished")
"""


@pytest.mark.parametrize(
    "point, survives", [("events-written", 25), ("version-written", 25), ("before-switch", 25), ("after-switch", 50)]
)
def test_a_process_killed_mid_update_leaves_a_loadable_state(world, tmp_path, point, survives):
    dataset, hybrid = world
    state = tmp_path / "state"
    Updater(dataset, hybrid, state, encoder=HashEncoder()).update(some_events(dataset, seed=1))
    script = CRASH_SCRIPT.format(tests=str(Path(__file__).parent), cache=str(tmp_path / "cache"), state=str(state))
    env = {**os.environ, CRASH_ENV: point, "RECOMMENDER_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]  # SIGKILL: no cleanup ran
    reloaded = Updater(dataset, hybrid, state, encoder=HashEncoder())
    assert len(reloaded.appended.events) == survives
    assert len(reloaded.dataset.interactions) == len(dataset.interactions) + survives
    # A later update goes through and cleans what the killed one left.
    reloaded.update(some_events(dataset, seed=3))
    assert not [p for p in os.listdir(state) if ".tmp-" in p]
    assert len(UpdateState(state).read().events) == survives + 25


def test_a_refused_update_changes_nothing(world, tmp_path):
    dataset, hybrid = world
    updater = Updater(dataset, hybrid, tmp_path / "state", encoder=HashEncoder())
    before = updater.dataset
    with pytest.raises(DataError, match="not in the catalogue"):
        updater.update(NewEvents.of(["1"], ["nope"], [1.0]))
    with pytest.raises(DataError, match="already in the catalogue"):
        updater.update(NewEvents.empty(), [Item("3", "Dup")])
    assert updater.dataset is before and UpdateState(tmp_path / "state").version() is None


# ---------------------------------------------------------------- online, per user, and the store


def test_liked_items_join_a_known_users_history_in_later_sessions(world, tmp_path):
    from recommender.pipeline import Recommender

    dataset, hybrid = world
    rec = Recommender(dataset, hybrid)
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    session = store.start_session(user_id="1")
    unseen = [i for i in dataset.catalog.ids if i not in rec.user_history("1")][:2]
    record_interactions(store, "1", [unseen[0]], "chat:like", session_id=session)
    record_interactions(FeedbackStore(store.path), "1", [unseen[1], "not-an-item"], "chat:seen")  # a later session
    history = online_history(rec, store, "1")
    assert history[:-2] == rec.user_history("1") and history[-2:] == unseen
    listed = [r.item_id for r in rec.recommend(history=history, k=10, filters=None)]
    assert not set(unseen) & set(listed)  # seen items are masked from then on
    assert online_history(rec, store, "stranger") == []
    rows = store.appended_interactions(user_id="1")
    assert [r["source"] for r in rows] == ["chat:like", "chat:seen", "chat:seen"] and rows[0]["session_id"] == session
    with pytest.raises(ValueError, match="user_id"):
        record_interactions(store, "", ["1"], "chat:like")


V1_SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id TEXT, created REAL NOT NULL, updated REAL NOT NULL, state TEXT);
CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id),
    time REAL NOT NULL, message TEXT NOT NULL, reply TEXT NOT NULL, model TEXT, template_version TEXT);
CREATE TABLE shown (turn_id INTEGER NOT NULL REFERENCES turns(id), rank INTEGER NOT NULL, item_id TEXT NOT NULL,
    score REAL, PRIMARY KEY (turn_id, rank));
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT REFERENCES sessions(id), user_id TEXT,
    item_id TEXT NOT NULL, action TEXT NOT NULL CHECK (action IN ('like', 'dislike', 'seen')), time REAL NOT NULL,
    model TEXT, template_version TEXT);
PRAGMA user_version = 1;
INSERT INTO sessions VALUES ('s1', '196', 1.0, 1.0, '{"page": 0}');
INSERT INTO feedback (session_id, user_id, item_id, action, time) VALUES ('s1', '196', '100', 'like', 2.0);
"""


def test_a_version_1_store_migrates_additively(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
    store = FeedbackStore(path)
    assert store.schema_version() == 3
    assert store.load_state("s1") == '{"page": 0}' and store.feedback()[0]["item_id"] == "100"
    store.record_interactions("196", ["100"], "chat:like", session_id="s1")
    counts = {"sessions": 1, "turns": 0, "shown": 0, "feedback": 1, "interactions": 1, "turn_history": 0}
    assert FeedbackStore(path).counts() == counts


def test_update_command_refuses_a_bad_line_before_loading_anything(tmp_path, capsys):
    from recommender.cli import main

    bad = tmp_path / "new.csv"
    bad.write_text("user_id,item_id,timestamp\n1,50,100\n1,50,\n")
    assert main(["update", "--interactions", str(bad), "--state", str(tmp_path / "state")]) == 2
    assert "new.csv, line 3: field 'timestamp'" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


# ---------------------------------------------------------------- feedback -> fine-tuning examples


def feedback_store(path: Path) -> FeedbackStore:
    store = FeedbackStore(path)
    session = store.start_session(user_id="1")
    store.record_turn(session, "something", "Here", shown=["3", "5", "7", "9", "13"])
    store.record_feedback(session, "1", "7", "dislike")
    store.record_feedback(session, "1", "11", "dislike")  # shown elsewhere: still a hard negative of the session
    store.record_feedback(session, "1", "5", "like")
    store.record_feedback(None, None, "2", "like")  # no list was shown with it: no example
    return store


def test_feedback_becomes_ranking_examples_rendered_by_the_serving_prompt(tmp_path):
    from recommender.finetune.examples import feedback_examples, load_feedback, rank_example
    from recommender.llm.ranking_prompts import ranking_prompt

    dataset = small_dataset()
    split = LeaveOneOutSplit(dataset.interactions)
    store = feedback_store(tmp_path / "feedback.sqlite")
    prompt = ranking_prompt("rank", 5)
    (example,) = feedback_examples(dataset.catalog, split, load_feedback(store.path), prompt, n_candidates=4)
    index = dataset.catalog.index
    assert example.target == index["5"] and example.history == tuple(int(r) for r in split.train("1"))
    rows = [index[i] for i in ("3", "5", "7", "11")]  # the weakest shown entries gave way to the dislikes
    expected = rank_example(dataset.catalog, prompt, "1", split.train("1"), rows, index["5"])
    assert example.messages == expected.messages and example.completion == expected.completion
    store.export_feedback(tmp_path / "f.jsonl")  # the export trains exactly like the store
    assert feedback_examples(dataset.catalog, split, load_feedback(tmp_path / "f.jsonl"), prompt, 4) == [example]


def test_a_feedback_record_that_carries_its_history_is_rendered_with_it(tmp_path):
    import json

    from recommender.finetune.examples import feedback_examples, load_feedback
    from recommender.llm.ranking_prompts import ranking_prompt

    dataset = small_dataset()
    split = LeaveOneOutSplit(dataset.interactions)
    shown = ["3", "5", "7"]
    records = [
        {"session_id": "s", "user_id": "1", "item_id": "5", "label": 1, "shown": shown, "history": ["9", "x"]},
        {"session_id": "s", "user_id": "1", "item_id": "7", "label": 1, "shown": shown},
    ]
    path = tmp_path / "replayed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with_history, without = feedback_examples(dataset.catalog, split, load_feedback(path), ranking_prompt("rank", 5), 4)
    assert with_history.history == (dataset.catalog.index["9"],)  # unknown ids dropped
    assert without.history == tuple(int(r) for r in split.train("1"))


def test_two_lora_steps_on_feedback_examples(tmp_path, tiny_llama_dir):
    import torch

    from recommender.finetune.config import load_config
    from recommender.finetune.examples import feedback_examples, load_feedback
    from recommender.finetune.train import add_lora, encode_examples, train_loop
    from recommender.llm.loading import load_model
    from recommender.llm.ranking_prompts import ranking_prompt

    dataset = small_dataset()
    store = feedback_store(tmp_path / "feedback.sqlite")
    examples = feedback_examples(
        dataset.catalog, LeaveOneOutSplit(dataset.interactions), load_feedback(store.path), ranking_prompt("rank", 3), 4
    )
    loaded = load_model(tiny_llama_dir, adapter=None, quantize="none", device="cpu")
    overrides = ["lora.r=4", "eval.every=0", "max_steps=2", "train.batch_size=1", "lr=0.01", "warmup_steps=1"]
    config = load_config(None, [f"output_dir={tmp_path}/run", f"data.feedback={store.path}", *overrides])
    model = add_lora(loaded.model, config, quantized=False)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if "lora_B" in name}
    encoded = encode_examples(examples, loaded.tokenizer)
    state = train_loop(model, encoded, config, tmp_path / "run", loaded.tokenizer.pad_token_id, log=lambda _: None)
    assert state.step == 2 and all(np.isfinite(loss) for _, loss in state.losses)
    after = dict(model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)


def test_status_says_how_far_a_retrain_is_and_when_it_is_due():
    from recommender.commands.update import retrain_status

    dataset = small_dataset()
    trained = int(len(LeaveOneOutSplit(dataset.interactions).train_csr()[1]))
    quiet = retrain_status(dataset, new_events=0, new_items=0)
    assert quiet.startswith("sequential model: no retrain due")
    assert f"{int(np.ceil(0.1 * trained))} more interactions" in quiet
    due = retrain_status(dataset, new_events=trained, new_items=0)
    assert due.startswith("sequential model: retrain due") and f"of the {trained} it trained on" in due


def test_the_cold_item_bridge_survives_an_update(world):
    """Films without events keep their bridge through an incremental update: one that gains events
    leaves it, the others keep their neighbours, and a new film with no event joins it."""
    from recommender.retrieval.hybrid import attach_cold_bridge

    dataset, hybrid = world
    split = LeaveOneOutSplit(dataset.interactions)
    hybrid.components["pop"].counts[[3, 7]] = 0  # two films read as never trained on (the bridge's input)
    attach_cold_bridge(hybrid, hybrid.text.vectors)
    assert sorted(hybrid.cold_bridge.cold_rows.tolist()) == [3, 7]
    new_item = Item("900", "Nebula Corsairs", 2024, ("Sci-Fi",), "space pirates galaxy nebula corsairs")
    events = NewEvents.of(["1", "2"], [dataset.catalog.ids[7]] * 2, [2e6, 2e6 + 1], source="test")
    grown = extend_dataset(dataset, [new_item], events)
    new_split = LeaveOneOutSplit(grown.interactions)
    popularity = new_split.item_popularity(len(grown.catalog))
    popularity[3] = 0  # as the stubbed counts above: film 3 still without a training event
    refreshed, _, _ = refresh_hybrid(hybrid, grown.catalog, split, new_split, ["1", "2"], encoder=HashEncoder())
    bridge = hybrid.cold_bridge.refreshed(popularity > 0, len(dataset.catalog), refreshed.text.vectors)
    assert sorted(bridge.cold_rows.tolist()) == [3, len(dataset.catalog)]  # 7 gained events; the new film joined
    old = hybrid.cold_bridge
    kept = int(np.flatnonzero(old.cold_rows == 3)[0])
    np.testing.assert_array_equal(bridge.neighbour_rows[0], old.neighbour_rows[kept][: bridge.neighbour_rows.shape[1]])
    assert refreshed.cold_bridge is not None  # refresh_hybrid carries a bridge
    history = [new_split.sequences["1"]]
    bridged = refreshed.score_batch(history)[0]
    refreshed.cold_bridge = None
    plain = refreshed.score_batch(history)[0]
    new_row = len(dataset.catalog)
    assert np.isfinite(bridged[new_row]) and bridged[new_row] != plain[new_row]  # scored through its neighbours
