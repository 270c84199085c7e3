"""The Recommender facade with a hand-written scorer: ordering, blending, filters, bad input."""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from recommender.data import Catalog, Dataset, Interactions, Item, LoadReport
from recommender.llm.scoring import ScoredItems
from recommender.pipeline import PipelineConfig, Recommender, shared_genre_reasons
from recommender.protocols import Filters
from recommender.retrieval.base import PopularityRetriever

ITEMS = [
    Item("1", "Toy Story", 1995, ("Animation", "Comedy")),
    Item("2", "Fargo", 1996, ("Crime", "Drama")),
    Item("3", "Alien", 1979, ("Horror", "Sci-Fi")),
    Item("4", "Heat", 1995, ("Crime", "Thriller")),
    Item("5", "Babe", 1995, ("Comedy",)),
    Item("6", "Usual Suspects, The", 1995, ("Crime", "Thriller")),
]


TITLE_IDS = {item.display_title(): item.id for item in ITEMS}


def read_prompt(messages):
    """(history ids, candidate ids) of a rendered ``rank`` prompt, read back from its text."""
    text = messages[-1]["content"]
    history = [TITLE_IDS[m.split(" - ")[0]] for m in re.findall(r"(?m)^- (.+)$", text)]
    candidates = [TITLE_IDS[m.split(" - ")[0]] for m in re.findall(r"(?m)^[A-Z]\. (.+)$", text)]
    return history, candidates


class ReverseScorer:
    """A ``protocols.Scorer`` whose label logits follow the catalogue id: the LLM 'prefers' higher ids."""

    def __init__(self):
        self.calls = []

    def logits(self, history, candidates):
        return np.array([float(c) for c in candidates])

    def score_labels(self, conversations, n_labels):
        self.calls.append(conversations)
        return [self.logits(*read_prompt(messages)) for messages in conversations]

    def pointwise(self, history, candidates):
        return ScoredItems(tuple(c.id for c in candidates), np.full(len(candidates), 0.5), "pointwise", "v")

    def rating_logits(self, conversations):  # P(3) = P(4) = 1/2: an expected rating of 3.5
        return [np.array([-1e9, -1e9, 0.0, 0.0, -1e9]) for _ in conversations]


@pytest.fixture
def dataset():
    catalog = Catalog(ITEMS)
    events = [("u1", 0, 1), ("u1", 1, 2), ("u1", 2, 3), ("u2", 1, 1), ("u2", 3, 2), ("u2", 4, 3)]
    users, rows, times = zip(*events)
    interactions = Interactions(np.array(users, dtype=object), np.array(rows), np.array(times, dtype=float))
    return Dataset("toy", catalog, interactions, LoadReport())


def make(dataset, scorer=None, **config):
    popularity = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # retrieval prefers low ids
    return Recommender(dataset, PopularityRetriever(dataset.catalog, popularity), scorer, PipelineConfig(**config))


def test_retrieval_only_keeps_retrieval_order_and_masks_seen(dataset):
    results = make(dataset).recommend(user_id="u1", k=3)
    assert [r.item_id for r in results] == ["4", "5", "6"]
    assert all(r.llm_score is None for r in results)


def test_llm_alone_reorders_the_top_n_and_rest_keep_retrieval_order(dataset):
    recommender = make(dataset, ReverseScorer(), llm_candidates=2, llm_weight=1.0)
    results = recommender.recommend(user_id="u1", k=3)
    assert [r.item_id for r in results] == ["5", "4", "6"]
    assert results[2].llm_score is None and results[0].llm_score == pytest.approx(np.log(np.e / (1 + np.e)))
    assert results[0].score > results[1].score > results[2].score


def test_zero_llm_weight_keeps_retrieval_order(dataset):
    results = make(dataset, ReverseScorer(), llm_weight=0.0).recommend(user_id="u1", k=3)
    assert [r.item_id for r in results] == ["4", "5", "6"]


def test_history_by_titles_filters_and_unknown_entries(dataset):
    recommender = make(dataset)
    results = recommender.recommend(history=["Toy Story", "fargo (1996)", "Nonexistent"], k=2)
    assert [r.item_id for r in results] == ["3", "4"] and results.unknown_history == 1
    only_crime = recommender.recommend(history=[], k=5, filters=Filters(include_genres=("Crime",)))
    assert [r.item_id for r in only_crime] == ["2", "4", "6"]
    nothing = recommender.recommend(history=[], k=5, filters=Filters(include_genres=("Horror",), year_min=2000))
    assert len(nothing) == 0 and nothing.reason


def test_diversity_reranks_with_item_vectors(dataset):
    recommender = make(dataset)

    class Text:
        vectors = np.array([[1, 0], [1, 0.01], [1, 0.02], [0, 1], [1, 0.03], [0.7, 0.7]], dtype=float)

    recommender.retriever.text = Text()
    plain = [r.item_id for r in recommender.recommend(history=[], k=3)]
    diverse = [r.item_id for r in recommender.recommend(history=[], k=3, diversity=0.9)]
    assert plain == ["1", "2", "3"] and diverse[0] == "1" and "4" in diverse


def test_scoring_api_with_fake_scorer(dataset):
    recommender = make(dataset, ReverseScorer())
    ranked = recommender.rank(["1"], ["2", "Heat"])
    assert [item_id for item_id, _ in ranked] == ["4", "2"]
    assert [score for _, score in ranked] == pytest.approx([-np.log1p(np.exp(-2.0)), -np.log1p(np.exp(2.0))])
    assert recommender.score(["1"], ["2"], mode="pointwise").tolist() == [0.5]
    assert recommender.predict_rating(["1", "2"], "Heat", ratings=[5, 3]) == 3.5


def test_bad_input_has_clear_messages(dataset):
    recommender = make(dataset)
    with pytest.raises(ValueError, match="user id 'nobody' is not in toy"):
        recommender.recommend(user_id="nobody")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        recommender.recommend(user_id="u1", k=0)
    with pytest.raises(ValueError, match="diversity must be within"):
        recommender.recommend(user_id="u1", diversity=2)
    with pytest.raises(ValueError, match="not one string"):
        recommender.recommend(history="Toy Story")
    with pytest.raises(ValueError, match="built without an LLM"):
        recommender.rank(["1"], ["2"])
    with pytest.raises(ValueError, match="mode must be one of"):
        make(dataset, ReverseScorer()).score(["1"], ["2"], mode="listwise")
    with pytest.raises(ValueError, match="unknown candidate"):
        make(dataset, ReverseScorer()).score(["1"], ["Nope"])


def test_reasons_name_history_items_sharing_genres():
    reasons = shared_genre_reasons(ITEMS[3], [ITEMS[0], ITEMS[1]])
    assert reasons == ["Crime like Fargo (1996)"]


def test_explain_uses_retrieved_candidates_with_the_item(dataset, monkeypatch):
    seen = {}

    def fake_explain_item(generator, catalog, history, item, values, **options):
        seen.update(history=[h.id for h in history], item=item.id, values=np.asarray(values))
        return type("Explanation", (), {"evidence": {}})()

    monkeypatch.setattr("recommender.explain.explain_item", fake_explain_item)
    scorer = ReverseScorer()
    recommender = make(dataset, scorer, llm_candidates=3)
    explanation = recommender.explain(["Toy Story"], "Babe")
    assert seen["history"] == ["1"] and seen["item"] == "5"
    assert read_prompt(scorer.calls[-1][0])[1] == ["2", "3", "5"]  # the item takes the last slot
    assert explanation.evidence["candidates"] == 3 and explanation.evidence["prompt"] == "rank-v1"
    recommender.explain(["Toy Story"], "2")
    assert read_prompt(scorer.calls[-1][0])[1] == ["2", "3", "4"]


class LineScorer:
    """score_lines only (the line-scored evidence path): prefers the LAST candidate line."""

    def __init__(self):
        self.conversations = []

    def score_lines(self, conversations, n_lines):
        self.conversations.extend(conversations)
        return [np.arange(n, dtype=float) for n in n_lines]


def test_evidence_template_renders_retriever_order_with_evidence(dataset):
    from recommender.retrieval.base import CooccurrenceRetriever, HybridRetriever

    split_sequences = {"u1": np.array([0, 1, 2]), "u2": np.array([1, 3, 4])}
    catalog = dataset.catalog
    components = {
        "pop": PopularityRetriever(catalog, np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])),
        "cooccurrence": CooccurrenceRetriever(catalog, split_sequences),
    }
    hybrid = HybridRetriever(catalog, components, {"pop": 1.0, "cooccurrence": 0.0})
    scorer = LineScorer()
    config = PipelineConfig(template="rank_evidence", llm_candidates=3, llm_weight=1.0, max_history=2)
    recommender = Recommender(dataset, hybrid, scorer, config)
    results = recommender.recommend(history=["1"], k=4)
    # retrieval order 2, 3, 4 (pop) is reversed by the scorer; item 5 keeps its retrieval place
    assert [r.item_id for r in results] == ["4", "3", "2", "5"]
    prompt = scorer.conversations[-1][-1]["content"]
    assert "A. Fargo (1996) (recent " in prompt
    assert results[0].template_version.startswith("rank_evidence")
    scores, first = recommender.full_scores_batch([np.array([0])])
    assert first.tolist() == [2] and np.isneginf(scores[0, 0])


class HistoryScorer(ReverseScorer):
    """Candidate '5' (Babe) scores +1 for each Comedy in the history: Toy Story drives it."""

    def logits(self, history, candidates):
        comedies = sum("Comedy" in ITEMS[int(h) - 1].genres for h in history)
        return np.array([float(comedies if c == "5" else 0.0) for c in candidates])


def test_influences_name_the_history_items_that_moved_the_score(dataset):
    recommender = make(dataset, HistoryScorer(), llm_candidates=4)
    results = recommender.recommend(history=["Toy Story", "Fargo"], k=3, influence_window=2)
    babe = next(r for r in results if r.item_id == "5")
    assert babe.influences[0][0] == "1" and babe.influences[0][1] > 0
    assert all(item_id != "2" for item_id, _ in babe.influences)  # Fargo did not move it
    assert all(r.influences == () for r in make(dataset, HistoryScorer()).recommend(history=["1"], k=3))


def test_text_writer_is_the_scorer_without_an_adapter_and_the_base_model_once_with_one(dataset, monkeypatch):
    import recommender.llm.loading as loading
    import recommender.llm.scoring as scoring

    plain = SimpleNamespace(loaded=SimpleNamespace(adapter_path=None))
    assert make(dataset, plain).text_writer() is plain

    loads = []
    monkeypatch.setattr(loading, "load_model", lambda source, **kw: loads.append((source, kw)) or "base model")
    monkeypatch.setattr(scoring, "LLMScorer", lambda loaded: SimpleNamespace(loaded=loaded))
    tuned = SimpleNamespace(
        loaded=SimpleNamespace(adapter_path=Path("adapter"), source="my-model", quantization="none", device="cpu")
    )
    pipeline = make(dataset, tuned)
    writer = pipeline.text_writer()
    assert writer.loaded == "base model" and pipeline.text_writer() is writer
    assert loads == [("my-model", {"adapter": None, "quantize": "none", "device": "cpu", "dtype": "fast"})]
