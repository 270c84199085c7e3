"""Retrieval math with hand-written vectors and a fake encoder: no model, milliseconds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.data import Catalog, Dataset, Interactions, Item, LoadReport
from recommender.data.split import EvalCase, LeaveOneOutSplit
from recommender.evaluation.metrics import full_ranks, target_rank
from recommender.protocols import Filters
from recommender.retrieval.base import (
    CooccurrenceRetriever,
    EmbeddingRetriever,
    HybridRetriever,
    PopularityRetriever,
    VectorIndex,
    check_k,
    standardise_rows,
    weighted_sum,
)
from recommender.retrieval.hybrid import build_default_retriever, coordinate_ascent, tune_weights, weight_grid

ITEMS = [
    Item("a", "Toy Tale", 1995, ("Animation", "Children's")),
    Item("b", "Scream Night", 1996, ("Horror",)),
    Item("c", "Laugh Riot", 1990, ("Comedy",)),
    Item("d", "Ghost Laughs", 1988, ("Horror", "Comedy")),
    Item("e", "Space War", 1977, ("Sci-Fi", "Action")),
    Item("f", "Old Reel", None, ("Drama",)),
]
# One axis per theme: kids, horror, comedy, space.
VECTORS = np.array(
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0.7, 0.7, 0], [0, 0, 0, 1], [0.5, 0, 0, 0.5]], dtype=np.float32
)
VECTORS /= np.linalg.norm(VECTORS, axis=1, keepdims=True)
POPULARITY = np.array([5.0, 1.0, 3.0, 0.0, 10.0, 2.0])


class FakeEncoder:
    """Maps texts onto the four theme axes by keyword; counts calls."""

    name = "fake-encoder"
    words = (("kid", "animat", "toy"), ("horror", "scary", "scream"), ("funny", "comedy", "laugh"), ("space", "war"))

    def __init__(self):
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for t, text in enumerate(texts):
            lower = text.lower()
            for axis, words in enumerate(self.words):
                out[t, axis] = sum(lower.count(w) for w in words)
            out[t] = out[t] if out[t].any() else 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(ITEMS)


@pytest.fixture
def embedding(catalog) -> EmbeddingRetriever:
    return EmbeddingRetriever(catalog, VECTORS, encoder=FakeEncoder(), popularity=POPULARITY)


def ids(candidates, catalog) -> list[str]:
    return [catalog.ids[row] for row in candidates.items]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("k", [0, -3, 1.5, True, "5"])
def test_bad_k_is_one_clear_sentence(embedding, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        embedding.retrieve(["a"], k)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        check_k(k)


def test_unknown_history_ids_are_ignored_and_counted(embedding, catalog):
    got = embedding.retrieve(["zzz", "b", "404"], 2)
    assert got.unknown_history == 2
    assert ids(got, catalog) == ["d", "a"] or ids(got, catalog)[0] == "d"
    assert embedding.retrieve(["zzz"], 2).reason == "no history and no query: most popular items"


def test_history_must_not_be_a_bare_string(embedding):
    with pytest.raises(ValueError, match="sequence of item ids"):
        embedding.retrieve("ab", 2)


def test_empty_catalogue_gives_empty_candidates_with_reason():
    empty = Catalog([])
    retrievers = [
        EmbeddingRetriever(empty, np.zeros((0, 4)), encoder=FakeEncoder()),
        PopularityRetriever(empty, np.zeros(0)),
        CooccurrenceRetriever(empty, []),
    ]
    for retriever in retrievers:
        got = retriever.retrieve(["a"], 5, query="funny")
        assert len(got) == 0 and got.reason == "the catalogue is empty" and got.unknown_history == 1


def test_contradictory_filters_give_empty_candidates_with_reason(embedding):
    got = embedding.retrieve(["a"], 3, filters=Filters(include_genres=("Horror",), exclude_genres=("horror",)))
    assert len(got) == 0 and "both included and excluded" in got.reason
    got = embedding.retrieve(["a"], 3, filters=Filters(year_min=2000, year_max=1990))
    assert len(got) == 0 and "year_min 2000 is after year_max 1990" in got.reason
    got = embedding.retrieve([], 3, filters=Filters(include_genres=("Western",)))
    assert len(got) == 0 and got.reason.startswith("no item passes the filters")
    for retriever in (PopularityRetriever(embedding.catalog, POPULARITY),):
        assert retriever.retrieve(["a"], 3, filters=Filters(year_min=2000)).reason.startswith("no item passes")


def test_very_long_query_works(embedding):
    got = embedding.retrieve(["a"], 3, query="funny " * 1666 + "abcd")
    assert len(got) == 3 and got.items[0] == 2  # "Laugh Riot"


def test_blank_query_counts_as_no_query(embedding):
    assert np.array_equal(embedding.retrieve(["b"], 3, query="   ").items, embedding.retrieve(["b"], 3).items)


# ---------------------------------------------------------------- filters before top-K


def test_filters_apply_before_top_k(embedding, catalog):
    # The best matches for a horror fan are horror items; excluding horror still returns k items.
    got = embedding.retrieve(["b"], 3, filters=Filters(exclude_genres=("Horror",)))
    assert len(got) == 3 and not {"b", "d"} & set(ids(got, catalog)) and got.reason == ""
    got = embedding.retrieve(["a"], 2, filters=Filters(include_genres=("comedy",)))
    assert set(ids(got, catalog)) == {"c", "d"}


def test_year_filter_drops_unknown_years_and_short_list_has_reason(embedding, catalog):
    got = embedding.retrieve([], 5, query="space war", filters=Filters(year_max=1980))
    assert ids(got, catalog) == ["e"] and got.reason == "only 1 items pass the filters"
    got = embedding.retrieve([], 6, query="kids", filters=Filters(year_min=1900))
    assert "f" not in ids(got, catalog)


def test_seen_items_excluded_by_default_and_exclude_items(embedding, catalog):
    assert "a" not in ids(embedding.retrieve(["a"], 6), catalog)
    assert ids(embedding.retrieve(["a"], 1, filters=Filters(exclude_seen=False)), catalog) == ["a"]
    got = embedding.retrieve(["a"], 6, filters=Filters(exclude_items=("f", "nope")))
    assert "f" not in ids(got, catalog) and len(got) == 4


def test_a_film_listed_twice_is_seen_under_both_ids():
    # MovieLens-100k lists "Chasing Amy (1997)" as 246 and 268: whoever watched one must not be offered the other.
    twins = Catalog(
        [Item("246", "Chasing Amy", 1997, ("Drama",)), Item("268", "Chasing  amy ", 1997, ("Comedy",)),
         Item("9", "Chasing Amy", 1995), Item("10", "Fargo"), Item("11", "Fargo")]
    )  # fmt: skip
    assert twins.film_rows.tolist() == [0, 0, 2, 3, 4]  # another year, or no year: another film
    popular = PopularityRetriever(twins, np.array([5.0, 4.0, 3.0, 2.0, 1.0]))
    assert ids(popular.retrieve(["268"], 5), twins) == ["9", "10", "11"]
    assert ids(popular.retrieve(["268"], 2, filters=Filters(exclude_seen=False)), twins) == ["246", "268"]
    assert ids(popular.retrieve(["10"], 5), twins) == ["246", "268", "9", "11"]
    assert ids(popular.retrieve([], 5, filters=Filters(exclude_items=("246",))), twins) == [
        "9",
        "10",
        "11",
    ]  # "seen it"


# ---------------------------------------------------------------- embedding profile


def test_profile_is_recency_weighted(embedding):
    profile = embedding.profile(np.array([1, 2]))  # horror, then comedy
    assert profile[2] > profile[1] > 0 and np.linalg.norm(profile) == pytest.approx(1.0)


def test_query_blends_with_history_and_cold_start(embedding, catalog):
    assert ids(embedding.retrieve(["b"], 1), catalog) == ["d"]  # horror fan: the horror-comedy
    assert ids(embedding.retrieve([], 1, query="a kids cartoon with toys"), catalog) == ["a"]
    blended = embedding.profile(np.array([1]), "comedy")
    assert blended[1] == pytest.approx(blended[2])


def test_no_history_no_query_falls_back_to_popularity(embedding, catalog):
    got = embedding.retrieve([], 3)
    assert ids(got, catalog) == ["e", "a", "c"] and "popular" in got.reason
    assert np.argmax(embedding.score_rows(np.array([], dtype=np.int64))) == 4


def test_batch_matches_single(embedding):
    histories = [["a"], ["b", "c"], []]
    queries = [None, "space", "funny"]
    batch = embedding.retrieve_batch(histories, 3, queries)
    for history, query, got in zip(histories, queries, batch):
        assert np.array_equal(got.items, embedding.retrieve(history, 3, query).items)
    scores = embedding.score_batch([np.array([0]), np.array([1, 2])])
    assert scores.shape == (2, 6)
    assert np.allclose(scores[1], embedding.score_rows(np.array([1, 2])))


# ---------------------------------------------------------------- FAISS vs numpy


def test_faiss_gives_same_top_k_as_numpy():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    exact, fast = VectorIndex(vectors), VectorIndex(vectors, threshold=1)
    assert (exact.backend, fast.backend) == ("numpy", "faiss")
    allowed = rng.random(500) < 0.3
    for query in rng.normal(size=(5, 16)):
        for mask in (None, allowed):
            rows_np, scores_np = exact.search(query, 10, mask)
            rows_fa, scores_fa = fast.search(query, 10, mask)
            assert np.array_equal(rows_np, rows_fa)
            assert np.allclose(scores_np, scores_fa, atol=1e-4)


def test_embedding_retriever_faiss_path_matches(catalog):
    pytest.importorskip("faiss")
    vectors = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)  # no ties
    slow = EmbeddingRetriever(catalog, vectors, encoder=FakeEncoder())
    fast = EmbeddingRetriever(catalog, vectors, encoder=FakeEncoder(), faiss_threshold=1)
    assert fast.index.backend == "faiss"
    for history, query, filters in [(["b"], None, None), ([], "funny", Filters(exclude_genres=("Horror",)))]:
        assert np.array_equal(
            slow.retrieve(history, 3, query, filters).items, fast.retrieve(history, 3, query, filters).items
        )
    assert len(fast.retrieve(["a"], 3, filters=Filters(year_min=3000))) == 0


# ---------------------------------------------------------------- co-occurrence, popularity, hybrid


def test_cooccurrence_scores_items_seen_together(catalog):
    sequences = {"u1": np.array([0, 2]), "u2": np.array([0, 2, 4]), "u3": np.array([1, 3])}
    retriever = CooccurrenceRetriever(catalog, sequences)
    scores = retriever.score_rows(np.array([0]))
    assert scores[2] > scores[4] > 0 and scores[1] == scores[3] == 0
    assert retriever.similarity.nnz == 8  # sparse: only co-occurring pairs
    assert retriever.config()["window"] == 10
    assert CooccurrenceRetriever(catalog, sequences, window=1).score_rows(np.array([1, 0]))[3] == 0


def test_cooccurrence_neighbour_pruning(catalog):
    sequences = {"u1": np.arange(6)}
    assert CooccurrenceRetriever(catalog, sequences, neighbours=2).similarity.getrow(0).nnz == 2


def test_popularity_order_ignores_history(catalog):
    retriever = PopularityRetriever(catalog, POPULARITY)
    assert retriever.retrieve(["e"], 2).items.tolist() == [0, 2]
    with pytest.raises(ValueError, match="popularity counts have shape"):
        PopularityRetriever(catalog, np.ones(3))


def test_standardise_rows():
    out = standardise_rows(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert out[0].mean() == pytest.approx(0) and out[0].std() == pytest.approx(1) and not out[1].any()
    assert standardise_rows(np.zeros((0, 4))).shape == (0, 4)


def test_weighted_sum_skips_zero_weights():
    parts = {"a": np.ones((2, 3)), "b": np.full((2, 3), 2.0), "c": np.full((2, 3), np.nan)}
    assert weighted_sum(parts, {"a": 0.5, "b": 0.25, "c": 0.0}, 2, 3).tolist() == [[1.0] * 3] * 2


def test_hybrid_blends_and_takes_query(catalog, embedding):
    pop = PopularityRetriever(catalog, POPULARITY)
    only_pop = HybridRetriever(catalog, {"pop": pop, "embedding": embedding}, {"pop": 1.0}, text=embedding)
    assert only_pop.retrieve(["b"], 1).items.tolist() == [4]
    mixed = HybridRetriever(catalog, {"pop": pop, "embedding": embedding}, {"pop": 0.1, "embedding": 0.9})
    assert mixed.retrieve(["b"], 1).items.tolist() == [3]
    with pytest.raises(ValueError, match="no text component"):
        mixed.retrieve(["b"], 1, query="funny")
    assert only_pop.retrieve([], 1, query="kids toys").items.tolist() == [0]  # cold start follows the query
    with pytest.raises(ValueError, match="unknown components"):
        HybridRetriever(catalog, {"pop": pop}, {"cooc": 1.0})


def test_a_component_the_blend_weighs_zero_is_not_computed(catalog, embedding, monkeypatch):
    pop = PopularityRetriever(catalog, POPULARITY)
    hybrid = HybridRetriever(catalog, {"pop": pop, "embedding": embedding}, {"pop": 1.0, "embedding": 0.0})
    expected = HybridRetriever(catalog, {"pop": pop}, {"pop": 1.0}).score_batch([np.array([1])])

    def refuse(histories):
        raise AssertionError("a zero-weight component was scored")

    monkeypatch.setattr(embedding, "standardised_batch", refuse)
    np.testing.assert_array_equal(hybrid.score_batch([np.array([1])]), expected)
    with pytest.raises(AssertionError):  # tuning still reads every component
        hybrid.component_scores([np.array([1])])


# ---------------------------------------------------------------- evaluation helpers and tuning


def test_full_ranks_match_target_rank():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(6, 9)).astype(float)  # many ties
    cases = [EvalCase(str(b), rng.choice(9, size=3, replace=False), int(rng.integers(9))) for b in range(6)]
    expected = [target_rank(s, c.target, c.history[c.history != c.target]) for s, c in zip(scores, cases)]
    assert full_ranks(scores, cases).tolist() == expected


def test_weight_grid_is_on_the_simplex():
    grid = weight_grid(["a", "b", "c"], 0.5)
    assert len(grid) == 6 and all(sum(w.values()) == pytest.approx(1) for w in grid)


def test_coordinate_ascent_climbs_to_the_best_weighting_on_the_simplex():
    target = {"a": 0.1, "b": 0.6, "c": 0.0, "d": 0.3, "e": 0.0}
    calls = []

    def evaluate(weights):  # a concave score peaking at ``target``
        calls.append(weights)
        assert sum(weights.values()) == pytest.approx(1) and min(weights.values()) >= 0
        return (-sum((weights[k] - target[k]) ** 2 for k in target), 0.0), {}

    start = {"a": 0.2, "b": 0.2, "c": 0.2, "d": 0.2, "e": 0.2}
    assert coordinate_ascent(start, evaluate, 0.1) == target
    assert len(calls) < len(weight_grid(list(target), 0.1))  # cheaper than the 1,001-point grid


def test_five_components_are_tuned_without_the_full_grid(catalog, monkeypatch):
    dataset = tiny_dataset(catalog)
    split = LeaveOneOutSplit(dataset.interactions)
    pop = PopularityRetriever(catalog, POPULARITY)
    components = {name: pop for name in ("p1", "p2", "p3", "p4")}
    components["cooccurrence"] = CooccurrenceRetriever(catalog, split.train_sequences())
    evaluated = []
    real = weighted_sum
    monkeypatch.setattr("recommender.retrieval.hybrid.weighted_sum", lambda *a: evaluated.append(1) or real(*a))
    weights, report = tune_weights(HybridRetriever(catalog, components, {"p1": 1.0}), split)
    assert sum(weights.values()) == pytest.approx(1) and set(weights) == set(components)
    assert weights["cooccurrence"] > 0 and report["HR@20"] >= 0
    assert len(evaluated) < 300  # coarse grid (126) + a few coordinate rounds, not 1,001


def tiny_dataset(catalog) -> Dataset:
    """Users alternate two tastes so co-occurrence predicts their next item."""
    users, items, times = [], [], []
    for u in range(8):
        sequence = [0, 2, 5, 4] if u % 2 else [1, 3, 2, 5]
        for t, item in enumerate(sequence):
            users.append(str(u)), items.append(item), times.append(float(t))
    interactions = Interactions(np.array(users, dtype=object), np.array(items), np.array(times))
    return Dataset("tiny", catalog, interactions, LoadReport())


def test_build_default_retriever_tunes_on_valid_once_and_caches(catalog, tmp_path, monkeypatch):
    dataset = tiny_dataset(catalog)
    split = LeaveOneOutSplit(dataset.interactions)
    encoder = FakeEncoder()
    monkeypatch.setattr("recommender.retrieval.embeddings.item_embeddings", lambda catalog, encoder, cache_dir: VECTORS)
    hybrid = build_default_retriever(dataset, split, encoder=encoder, cache_dir=tmp_path)
    assert sum(hybrid.weights.values()) == pytest.approx(1) and set(hybrid.weights) == {
        "pop",
        "cooccurrence",
        "embedding",
    }
    (stored,) = tmp_path.glob("hybrid-weights-*.json")
    assert json.loads(stored.read_text())["weights"] == hybrid.weights

    def no_tuning(*args, **kwargs):
        raise AssertionError("weights should come from the cache")

    monkeypatch.setattr("recommender.retrieval.hybrid.tune_weights", no_tuning)
    again = build_default_retriever(dataset, split, encoder=encoder, cache_dir=tmp_path)
    assert again.weights == hybrid.weights
    assert len(again.retrieve(["a", "c"], 3, query="funny")) == 3


def test_tune_weights_uses_validation_cases_only(catalog, monkeypatch):
    dataset = tiny_dataset(catalog)
    split = LeaveOneOutSplit(dataset.interactions)
    asked = []
    original = split.cases
    monkeypatch.setattr(split, "cases", lambda name, users=None: asked.append(name) or original(name, users))
    hybrid = HybridRetriever(catalog, {"pop": PopularityRetriever(catalog, POPULARITY)}, {"pop": 1.0})
    tune_weights(hybrid, split)
    assert asked == ["valid"]


# ---------------------------------------------------------------- at scale: CSR build, pruning, sampled tuning


def _dict_cooccurrence(sequences: dict[str, np.ndarray], n: int):
    """The former dict-based build (before issue 16), kept here as the reference."""
    from scipy import sparse

    sequences = list(sequences.values())
    user_rows = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    items = np.concatenate(sequences).astype(np.int64)
    x = sparse.csr_matrix((np.ones(len(items)), (user_rows, items)), shape=(len(sequences), n))
    x.data[:] = 1.0
    co = (x.T @ x).tocsr().astype(np.float64)
    counts = co.diagonal().copy()
    co.setdiag(0.0)
    co.eliminate_zeros()
    rows, cols = co.nonzero()
    co.data = co.data / (np.sqrt(counts[rows] * counts[cols]) + 0.0)
    return co


def _random_split(n_users: int = 60, n_items: int = 40, seed: int = 0) -> tuple[Catalog, LeaveOneOutSplit]:
    rng = np.random.default_rng(seed)
    catalog = Catalog([Item(str(i), f"Item {i}") for i in range(n_items)])
    lengths = rng.integers(1, 15, n_users)
    users = np.repeat([f"u{u}" for u in range(n_users)], lengths).astype(object)
    items = rng.zipf(1.5, lengths.sum()) % n_items  # skewed, with repeated events
    interactions = Interactions(users, items, rng.integers(0, 50, lengths.sum()).astype(float))
    return catalog, LeaveOneOutSplit(interactions)


def test_cooccurrence_from_train_csr_equals_the_dict_build():
    catalog, split = _random_split()
    reference = _dict_cooccurrence(split.train_sequences(), len(catalog))
    for block_entries in (1, 50, 10**9):  # one row per block, a few rows, everything at once
        built = CooccurrenceRetriever(catalog, csr=split.train_csr(), block_entries=block_entries).similarity
        assert np.array_equal(built.toarray(), reference.toarray()) and built.nnz == reference.nnz
    from_dict = CooccurrenceRetriever(catalog, split.train_sequences())
    assert np.array_equal(from_dict.similarity.toarray(), reference.toarray())
    assert from_dict.neighbours is None  # "auto" leaves small catalogues unpruned


def test_pruning_keeps_exactly_the_top_n_per_row():
    from scipy import sparse

    from recommender.retrieval.base import keep_top_per_row

    rng = np.random.default_rng(1)
    dense = rng.integers(0, 6, (30, 25)).astype(float) * (rng.random((30, 25)) < 0.6)  # many ties and zeros
    matrix = sparse.csr_matrix(dense)
    for neighbours in (1, 3, 7, 25):
        pruned = keep_top_per_row(matrix, neighbours).toarray()
        expected = np.zeros_like(dense)
        for i in range(len(dense)):  # naive: best values first, ties to the lower column
            stored = np.flatnonzero(dense[i])
            best = sorted(stored, key=lambda j: (-dense[i, j], j))[:neighbours]
            expected[i, best] = dense[i, best]
        assert np.array_equal(pruned, expected)


def test_auto_pruning_applies_to_big_catalogues_only(monkeypatch):
    catalog, split = _random_split()
    monkeypatch.setattr("recommender.retrieval.base.AUTO_PRUNE_ITEMS", 10)
    monkeypatch.setattr("recommender.retrieval.base.AUTO_NEIGHBOURS", 3)
    retriever = CooccurrenceRetriever(catalog, csr=split.train_csr(), block_entries=20)
    assert retriever.neighbours == 3 and retriever.config()["neighbours"] == 3
    assert np.diff(retriever.similarity.indptr).max() == 3
    full = _dict_cooccurrence(split.train_sequences(), len(catalog)).toarray()
    kept = retriever.similarity.toarray()
    for i in range(len(full)):
        if np.count_nonzero(full[i]) > 3:
            assert np.sort(kept[i][kept[i] > 0]).tolist() == np.sort(full[i])[-3:].tolist()
    with pytest.raises(ValueError, match="neighbours must be"):
        CooccurrenceRetriever(catalog, csr=split.train_csr(), neighbours=0)


def test_tuning_on_a_sample_is_seeded_and_deterministic(monkeypatch):
    from recommender.data.split import tuning_users

    catalog, split = _random_split(n_users=120)
    assert tuning_users(split, 10**6) == split.eval_users  # few users: all, in order
    sample = tuning_users(split, 30, seed=3)
    assert sample == tuning_users(split, 30, seed=3) != tuning_users(split, 30, seed=4)
    assert len(sample) == 30 and sample == [u for u in split.eval_users if u in set(sample)]
    components = {
        "pop": PopularityRetriever(catalog, split.item_popularity(len(catalog))),
        "cooccurrence": CooccurrenceRetriever(catalog, csr=split.train_csr()),
    }
    hybrid = HybridRetriever(catalog, components, {"pop": 1.0})
    asked = []
    original = split.cases
    monkeypatch.setattr(split, "cases", lambda name, users=None: asked.append(users) or original(name, users))
    first = tune_weights(hybrid, split, users=30, seed=3)
    assert first == tune_weights(hybrid, split, users=30, seed=3) and asked[0] == sample


def test_candidate_tuning_path_matches_the_dense_ranks_when_candidates_cover_the_catalogue(monkeypatch):
    from recommender.retrieval.hybrid import CandidateTable

    catalog, split = _random_split(n_users=80)
    components = {
        "pop": PopularityRetriever(catalog, split.item_popularity(len(catalog))),
        "cooccurrence": CooccurrenceRetriever(catalog, csr=split.train_csr()),
    }
    hybrid = HybridRetriever(catalog, components, {"pop": 1.0})
    cases = split.cases("valid")
    parts = hybrid.component_scores([c.history for c in cases])
    table = CandidateTable.build(hybrid, cases, candidates=len(catalog), batch=7)
    narrow = CandidateTable.build(hybrid, cases, candidates=5, batch=7)
    for weights in weight_grid(list(components), 0.25):
        dense = full_ranks(weighted_sum(parts, weights, len(cases), len(catalog)), cases)
        assert np.array_equal(table.ranks(weights), dense)
        assert np.all(narrow.ranks(weights) <= dense)  # fewer candidates can only lift the target
    monkeypatch.setattr("recommender.retrieval.hybrid.DENSE_TUNE_BYTES", 0)  # force the candidate path
    monkeypatch.setattr("recommender.retrieval.hybrid.TUNE_CANDIDATES", len(catalog))
    dense_result = tune_weights(hybrid, split)
    monkeypatch.undo()
    assert tune_weights(hybrid, split) == dense_result


def test_big_catalogues_score_embeddings_in_float32(catalog, monkeypatch):
    retriever = EmbeddingRetriever(catalog, VECTORS, popularity=POPULARITY)
    histories = [np.array([0, 2]), np.array([], dtype=np.int64)]
    exact = retriever.score_batch(histories)
    monkeypatch.setattr("recommender.retrieval.base.EXACT_COSINE_ITEMS", 0)
    fast = EmbeddingRetriever(catalog, VECTORS, popularity=POPULARITY).score_batch(histories)
    np.testing.assert_allclose(fast, exact, atol=1e-6)
    assert np.array_equal(exact[0], VECTORS.astype(np.float64) @ retriever.profile(histories[0]))  # former numbers


def test_avoided_words_move_close_items_down_and_drop_none(catalog, embedding):
    history = [catalog.ids[2]]  # "Laugh Riot": the profile is the comedy axis, so the others tie at 0 but one
    plain = ids(embedding.retrieve(history, 5), catalog)
    away = ids(embedding.retrieve(history, 5, filters=Filters(avoid=("scary",))), catalog)
    assert sorted(plain) == sorted(away)  # moved, never dropped
    assert plain.index("b") < 4 and away[-1] == "b"  # the horror film goes to the bottom
    assert away.index("d") >= plain.index("d")  # the horror comedy does not rise


def test_avoided_words_are_ignored_by_a_retriever_that_reads_no_text(catalog):
    pop = PopularityRetriever(catalog, POPULARITY)
    assert ids(pop.retrieve([], 4, filters=Filters(avoid=("scary",))), catalog) == ids(pop.retrieve([], 4), catalog)
