"""bench/synthetic.py: seeded, loadable, and with the structure it claims (tiny sizes, milliseconds)."""

import numpy as np
import pytest

from bench.synthetic import SyntheticConfig, generate, item_model
from recommender import load_dataset
from recommender.data.split import LeaveOneOutSplit

TINY = SyntheticConfig(users=400, items=300, events=20_000, seed=3, topics=6, chunk_users=150)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic") / "tiny"
    generate(TINY, folder)
    return folder


def test_seeded_and_loadable(tiny, tmp_path):
    again = tmp_path / "tiny"
    generate(TINY, again)
    for suffix in (".inter", ".item"):
        assert (again / f"tiny{suffix}").read_bytes() == (tiny / f"tiny{suffix}").read_bytes()
    other = tmp_path / "other" / "tiny"
    generate(SyntheticConfig(**{**TINY.__dict__, "seed": 4}), other)
    assert (other / "tiny.inter").read_bytes() != (tiny / "tiny.inter").read_bytes()
    dataset = load_dataset(tiny)
    assert (dataset.interactions.n_users, len(dataset.catalog), len(dataset.interactions)) == (400, 300, 20_000)
    assert dataset.report.unknown_item_events == 0 and dataset.report.short_history_users == 0
    item = dataset.catalog.items[0]
    assert item.title and item.genres and 1930 <= item.year <= 2025  # the text path has something to read
    assert set(dataset.interactions.ratings.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_structure_popularity_topics_and_next_items(tiny):
    dataset = load_dataset(tiny)
    split = LeaveOneOutSplit(dataset.interactions)
    model = item_model(TINY, np.random.default_rng(TINY.seed))  # generate() draws the items first
    rows = np.array([int(i) - 1 for i in dataset.catalog.ids])  # catalogue row -> generator item
    counts = np.sort(np.bincount(dataset.interactions.items, minlength=300))[::-1]
    assert counts[:30].sum() > 0.3 * counts.sum()  # power law: the top 10% of items carry far more than 10%
    position = np.empty(300, dtype=np.int64)
    position[model.by_topic] = np.arange(300)
    same_topic = follows = pairs = 0
    for user in split.users:
        sequence = rows[split.sequences[user]]
        before, after = sequence[:-1], sequence[1:]
        same = model.topic[before] == model.topic[after]
        nxt = position[after] == position[before] + 1
        same_topic, follows, pairs = same_topic + same.sum(), follows + (same & nxt).sum(), pairs + len(before)
    # Topics persist (Markov stay 0.85) and the topic's next item follows often: a random
    # walk would give ~1/6 same-topic pairs and ~1/300 successors. (Ties may swap a few pairs.)
    assert same_topic / pairs > 0.8
    assert follows / pairs > 0.3


def test_knowledge_graph_and_user_files(tiny, tmp_path):
    dataset = load_dataset(tiny)
    graph, users = dataset.knowledge, dataset.users
    assert graph is not None and users is not None and len(users) == 400
    assert 0.9 * 300 < graph.n_links < 300 and graph.unknown_item_links == 0
    per_item = np.diff(graph.features.indptr)[np.diff(graph.features.indptr) > 0]
    assert 15 <= np.median(per_item) <= 21  # about 20 entities per item (repeats collapse)
    assert {"director", "writer", "cast", "producer", "subject", "language"} <= set(graph.relations)
    df = np.bincount(graph.features.indices)
    assert df.max() > 20 * np.median(df)  # a heavy tail: a few entities on many items
    bare = tmp_path / "tiny"
    generate(SyntheticConfig(**{**TINY.__dict__, "entities": 0, "user_file": "no"}), bare)
    assert sorted(path.suffix for path in bare.iterdir()) == [".inter", ".item"]
    assert (bare / "tiny.inter").read_bytes() == (tiny / "tiny.inter").read_bytes()
    with pytest.raises(ValueError, match="--entities must be 0"):
        generate(SyntheticConfig(**{**TINY.__dict__, "entities": 5}), tmp_path / "x")


def test_too_few_events_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 3 x --users"):
        generate(SyntheticConfig(users=10, items=10, events=20), tmp_path / "x")
