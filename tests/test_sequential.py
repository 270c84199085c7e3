"""The sequential retriever on a tiny config: no model files, a few seconds in all."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from recommender.data import Catalog, Dataset, Interactions, Item, LoadReport  # noqa: E402
from recommender.data.split import LeaveOneOutSplit  # noqa: E402
from recommender.retrieval import sequential  # noqa: E402
from recommender.retrieval.sequential import (  # noqa: E402
    SequentialConfig,
    SequentialRetriever,
    build_model,
    collate,
    load_or_train,
    train_model,
    training_pairs,
)

N_ITEMS = 14
VALID_ITEM, TEST_ITEM = 12, 13  # every user's last two events: never a training event
TINY = SequentialConfig(
    hidden=16,
    layers=2,
    heads=2,
    inner=32,
    dropout=0.0,
    max_len=6,
    batch_size=4,
    max_epochs=2,
    patience=1,
    text_init=False,  # random item rows: no sentence encoder in these tests
)


def tiny_dataset(extra_event: bool = False) -> Dataset:
    """10 users walking the item ring from different starts, then the valid and test items."""
    catalog = Catalog([Item(str(i), f"Film {i}") for i in range(N_ITEMS)])
    users, items, times = [], [], []
    for u in range(10):
        walk = [(u + step) % VALID_ITEM for step in range(4 + u % 5)] + [VALID_ITEM, TEST_ITEM]
        for t, item in enumerate(walk):
            users.append(str(u)), items.append(item), times.append(float(t))
    if extra_event:
        users.append("0"), items.append(5), times.append(-1.0)
    interactions = Interactions(np.array(users, dtype=object), np.array(items), np.array(times))
    return Dataset("tiny", catalog, interactions, LoadReport())


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads spin against each other (2-3x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(N_ITEMS, TINY).eval()


def test_training_sees_train_events_only(monkeypatch, tmp_path):
    dataset = tiny_dataset()
    split = LeaveOneOutSplit(dataset.interactions)
    given, batches = {}, []

    real_train, real_collate = sequential.train_model, sequential.collate

    def spy_train(sequences, valid_cases, *args, **kwargs):
        given["sequences"], given["valid"] = sequences, valid_cases
        return real_train(sequences, valid_cases, *args, **kwargs)

    def spy_collate(pairs, *args):
        batch = real_collate(pairs, *args)
        batches.append(batch)
        return batch

    monkeypatch.setattr(sequential, "train_model", spy_train)
    monkeypatch.setattr(sequential, "collate", spy_collate)
    load_or_train(dataset, split, TINY, tmp_path, progress=False)
    train = split.train_sequences()
    pairs = given["sequences"]  # SequencePairs over split.train_csr()
    whole = [np.concatenate([inputs, targets[-1:]]).tolist() for inputs, targets in pairs]
    assert whole == [s.tolist() for s in train.values() if len(s) >= 2]
    assert [c.history.tolist() for c in given["valid"]] == [train[c.user].tolist() for c in given["valid"]]
    assert batches, "training ran no batch"
    for ids, _, mask, labels in batches:
        seen = set(ids[mask.bool()].tolist()) | set(labels[labels >= 0].tolist())
        assert VALID_ITEM not in seen and TEST_ITEM not in seen
    fed = {(tuple(ids[b][mask[b].bool()].tolist()), tuple(labels[b][labels[b] >= 0].tolist()))
           for ids, _, mask, labels in batches for b in range(len(ids))}  # fmt: skip
    expected = {(tuple(i.tolist()), tuple(t.tolist())) for i, t in training_pairs([s[-7:] for s in train.values()])}
    assert fed == expected  # every pair of the train sequences, nothing else (max_len 6 keeps the last 6 inputs)


def test_cache_loads_and_is_refused_when_data_or_config_changes(monkeypatch, tmp_path):
    dataset = tiny_dataset()
    trained = []
    real_train = sequential.train_model
    monkeypatch.setattr(sequential, "train_model", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    first = load_or_train(dataset, None, TINY, tmp_path, progress=False)
    assert len(trained) == 1 and first.info["best_epoch"] >= 1
    (stored,) = tmp_path.glob("sequential-*.pt")
    assert stored.with_suffix(".png").is_file() and "curve" in json.loads(stored.with_suffix(".json").read_text())
    again = load_or_train(dataset, None, TINY, tmp_path, progress=False)
    assert len(trained) == 1  # loaded, not retrained
    history = [np.array([1, 2, 3])]
    assert np.array_equal(again.score_batch(history), first.score_batch(history))
    load_or_train(dataset, None, replace(TINY, seed=1), tmp_path, progress=False)
    assert len(trained) == 2  # another config
    load_or_train(tiny_dataset(extra_event=True), None, TINY, tmp_path, progress=False)
    assert len(trained) == 3  # other data
    # A file under the right name but built for something else is refused too.
    record = torch.load(stored, weights_only=True)
    record["key"] = record["key"].replace('"seed": 0', '"seed": 7')
    torch.save(record, stored)
    load_or_train(dataset, None, TINY, tmp_path, progress=False)
    assert len(trained) == 4


def test_user_scores_the_same_alone_and_in_a_batch(model):
    catalog = Catalog([Item(str(i), f"Film {i}") for i in range(N_ITEMS)])
    retriever = SequentialRetriever(catalog, model, TINY, popularity=np.arange(N_ITEMS, dtype=float))
    histories = [np.array([3]), np.array([1, 2, 3, 4, 5, 6, 7, 8, 9]), np.array([], dtype=np.int64), np.array([5, 7])]
    batch = retriever.score_batch(histories)  # [4, N]: lengths 1, 9 (> max_len), 0, 2
    for b, history in enumerate(histories):
        alone = retriever.score_batch([history])[0]
        np.testing.assert_allclose(batch[b], alone, rtol=0, atol=1e-6)
        assert np.array_equal(np.argsort(-batch[b], kind="stable"), np.argsort(-alone, kind="stable"))
    assert np.array_equal(batch[2], np.log1p(np.arange(N_ITEMS)))  # empty history: popularity
    # Only the last max_len items count.
    np.testing.assert_allclose(batch[1], retriever.score_batch([np.arange(4, 10)])[0], atol=1e-6)
    assert retriever.score_rows(np.array([5, 7])).shape == (N_ITEMS,)


def test_two_training_steps_lower_the_loss():
    torch.manual_seed(0)
    net = build_model(N_ITEMS, TINY)
    split = LeaveOneOutSplit(tiny_dataset().interactions)
    batch = collate(training_pairs(list(split.train_sequences().values())), TINY.max_len, N_ITEMS)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    with torch.no_grad():
        before = float(net(*batch))
    for _ in range(2):
        loss = net(*batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():
        after = float(net(*batch))
    assert after < before


def test_train_model_stops_at_max_steps_and_returns_a_curve():
    split = LeaveOneOutSplit(tiny_dataset().interactions)
    net, info = train_model(
        list(split.train_sequences().values()), split.cases("valid"), N_ITEMS, TINY, progress=False, max_steps=2
    )
    assert info["steps"] == 2 and info["best_epoch"] == 1 and len(info["curve"]) == 1
    assert not net.training and 0.0 <= info["curve"][0]["NDCG@10"] <= 1.0


@pytest.mark.parametrize(
    "field, value, message",
    [("hidden", 0, "hidden must be a positive integer"), ("heads", 3, "divisible by heads"),
     ("dropout", 1.0, "dropout must be within"), ("lr", 0.0, "lr must be positive"),
     ("max_len", True, "max_len must be a positive integer")],
)  # fmt: skip
def test_config_is_validated(field, value, message):
    with pytest.raises(ValueError, match=message):
        replace(TINY, **{field: value})
    assert SequentialConfig.help()["max_len"]


def test_retriever_refuses_a_model_for_another_catalogue(model):
    with pytest.raises(ValueError, match="knows 14 items"):
        SequentialRetriever(Catalog([Item("a", "A")]), model, TINY)


class OneHotEncoder:
    name = "one-hot"

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.eye(4, dtype=np.float32)[[len(t) % 4 for t in texts]]


def test_hybrid_gains_a_sequential_component_tuned_on_validation(monkeypatch, tmp_path):
    from recommender.retrieval.hybrid import build_default_retriever

    vectors = np.eye(4, dtype=np.float32)[np.arange(N_ITEMS) % 4]
    monkeypatch.setattr("recommender.retrieval.embeddings.item_embeddings", lambda catalog, encoder, folder: vectors)
    dataset = tiny_dataset()
    hybrid = build_default_retriever(dataset, encoder=OneHotEncoder(), cache_dir=tmp_path, sequential=TINY)
    assert set(hybrid.components) == {"pop", "cooccurrence", "embedding", "sequential"}
    assert sum(hybrid.weights.values()) == pytest.approx(1)
    monkeypatch.setattr(sequential, "train_model", lambda *a, **k: pytest.fail("the model should load from cache"))
    again = build_default_retriever(dataset, encoder=OneHotEncoder(), cache_dir=tmp_path, sequential=TINY)
    assert again.weights == hybrid.weights and len(again.retrieve(["1", "2"], 3)) == 3


# ---------------------------------------------------------------- scale caps (issue 16)


def test_scale_caps_apply_to_big_logs_only_and_keep_small_keys():
    from dataclasses import asdict

    small = SequentialConfig().resolved(n_users=943, n_items=1682, n_valid=943)
    assert (small.epoch_users, small.max_sequences, small.valid_users, small.negatives) == (0, 0, 0, 0)
    unscaled = {k: v for k, v in asdict(SequentialConfig()).items() if k not in sequential.SCALE_FIELDS}
    assert small.key() == unscaled == SequentialConfig().key()  # scale fields that are off stay out of the key
    big = SequentialConfig().resolved(n_users=10**6, n_items=10**5, n_valid=10**6)
    assert big.epoch_users == sequential.SCALE_USERS and big.max_sequences == sequential.SCALE_SEQUENCES
    assert big.valid_users == sequential.VALID_USERS and big.negatives == sequential.NEGATIVES
    assert big.key()["negatives"] == sequential.NEGATIVES
    assert SequentialConfig(negatives=0).resolved(10**6, 10**5, 10**6).negatives == 0  # explicit beats auto
    with pytest.raises(ValueError, match="negatives must be None or an integer"):
        SequentialConfig(negatives=-1)


def test_epoch_samples_are_seeded_and_cover_the_requested_count():
    from recommender.retrieval.sequential import LengthBuckets

    lengths = np.arange(1, 101)
    first = list(LengthBuckets(lengths, 8, seed=3, per_epoch=40))
    again = list(LengthBuckets(lengths, 8, seed=3, per_epoch=40))
    assert first == again and sum(len(b) for b in first) == 40 and len(set(sum(first, []))) == 40
    full = LengthBuckets(lengths, 8, seed=3)
    assert sorted(sum(list(full), [])) == list(range(100)) and len(full) == 13


def test_sampled_softmax_trains_from_the_csr():
    split = LeaveOneOutSplit(tiny_dataset().interactions)
    config = replace(TINY, negatives=5, max_sequences=8, epoch_users=3, max_epochs=4)
    pairs = sequential.SequencePairs(*split.train_csr())
    net, info = train_model(pairs, split.cases("valid"), N_ITEMS, config, progress=False)
    assert info["steps"] <= -(-8 // config.batch_size) and np.isfinite(info["curve"][0]["loss"])


# ---------------------------------------------------------------- text-initialised item rows


def test_text_projection_keeps_text_neighbours_close_at_the_random_init_scale():
    from recommender.retrieval.sequential import text_projection

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(N_ITEMS, 8))
    vectors[3] = vectors[2] + 1e-3  # two items with near-identical text
    rows = text_projection(vectors, 16)  # wider than the text: the extra columns stay zero
    assert rows.shape == (N_ITEMS, 16) and np.allclose(rows[:, 8:], 0)
    assert rows.std() == pytest.approx(0.02, rel=1e-3)
    distances = np.linalg.norm(rows - rows[2], axis=1)
    assert np.argsort(distances)[1] == 3
    net = build_model(N_ITEMS, TINY, item_vectors=vectors)
    assert np.allclose(net.items.weight[:N_ITEMS].detach().numpy(), text_projection(vectors, TINY.hidden), atol=1e-7)
    assert not net.items.weight[N_ITEMS].any()  # padding row stays zero


def test_text_init_reads_the_item_vectors_and_has_its_own_cache_key(monkeypatch, tmp_path):
    seen = []
    vectors = np.random.default_rng(1).normal(size=(N_ITEMS, 4)).astype(np.float32)

    def fake_embeddings(catalog, encoder, folder, progress=True):
        seen.append(len(catalog))
        return vectors

    monkeypatch.setattr("recommender.retrieval.embeddings.item_embeddings", fake_embeddings)
    monkeypatch.setattr("recommender.retrieval.embeddings.SentenceEncoder", lambda: None)
    dataset, config = tiny_dataset(), replace(TINY, text_init=True)
    load_or_train(dataset, config=config, cache_dir=tmp_path, progress=False)
    assert seen == [N_ITEMS] and config.key()["text_init"] is True and "text_init" not in TINY.key()
    stored = json.loads(next(tmp_path.glob("sequential-*.json")).read_text())
    assert stored["key"]["text_encoder"] == "NoneType"  # the encoder of the starting vectors is part of the key
    with pytest.raises(ValueError, match="text_init must be true or false"):
        replace(TINY, text_init="yes")
