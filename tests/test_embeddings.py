"""Encoder wrapper and embedding cache; the real model only in tests marked slow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from recommender.data import Catalog, Item
from recommender.retrieval.embeddings import (
    SentenceEncoder,
    cache_key,
    default_cache_dir,
    item_embeddings,
    render_item_text,
)


class CountingEncoder:
    def __init__(self, name: str = "counting", dim: int = 3):
        self.name, self.dim, self.texts = name, dim, 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        out = np.ones((len(texts), self.dim), dtype=np.float32)
        out[:, 0] = [len(t) for t in texts]
        return out / np.linalg.norm(out, axis=1, keepdims=True)


ITEMS = [Item("1", "Toy Story", 1995, ("Animation", "Children's")), Item("2", "Heat", None, (), "A heist.")]


def test_render_item_text_fills_and_tidies_fields():
    assert render_item_text(ITEMS[0]) == "Toy Story (1995). Genres: Animation, Children's"
    assert render_item_text(ITEMS[1]) == "Heat. A heist"
    assert render_item_text(ITEMS[0], "{title} [{genres}]") == "Toy Story [Animation, Children's]"


def test_item_embeddings_are_cached_and_never_stale(tmp_path):
    encoder = CountingEncoder()
    first = item_embeddings(Catalog(ITEMS), encoder, tmp_path, progress=False)
    assert first.shape == (2, 3) and encoder.texts == 2
    again = item_embeddings(Catalog(ITEMS), encoder, tmp_path, progress=False)
    assert encoder.texts == 2 and np.array_equal(first, again)
    # A changed item changes the catalogue fingerprint: recomputed, not the old file.
    changed = Catalog([ITEMS[0], Item("2", "Heat", 1995)])
    item_embeddings(changed, encoder, tmp_path, progress=False)
    assert encoder.texts == 4
    # Another model: another key.
    other = CountingEncoder("other")
    item_embeddings(Catalog(ITEMS), other, tmp_path, progress=False)
    assert other.texts == 2
    assert cache_key(Catalog(ITEMS), encoder) != cache_key(Catalog(ITEMS), other)


def test_corrupt_cache_is_recomputed(tmp_path):
    encoder = CountingEncoder()
    item_embeddings(Catalog(ITEMS), encoder, tmp_path, progress=False)
    for meta in tmp_path.glob("*.json"):
        meta.write_text("{not json")
    item_embeddings(Catalog(ITEMS), encoder, tmp_path, progress=False)
    assert encoder.texts == 4


def test_empty_catalogue_embeds_to_no_rows(tmp_path):
    assert item_embeddings(Catalog([]), CountingEncoder(), tmp_path, progress=False).shape == (0, 3)


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOMMENDER_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("RECOMMENDER_CACHE")
    assert default_cache_dir().name == "llm-recommender"


def test_missing_model_path_is_one_sentence(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^embedding model folder '.*nope' does not exist\.$"):
        SentenceEncoder(tmp_path / "nope")


def test_retrieval_never_imports_torch():
    code = (
        "import sys, recommender.retrieval.base, recommender.retrieval.hybrid, recommender.retrieval.embeddings; "
        "heavy = {'torch', 'sentence_transformers', 'faiss'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def ml100k_embedding(tmp_path_factory):
    from recommender.data.loaders import load_dataset
    from recommender.data.split import LeaveOneOutSplit
    from recommender.retrieval.base import EmbeddingRetriever

    dataset = load_dataset("ml-100k")
    split = LeaveOneOutSplit(dataset.interactions)
    encoder = SentenceEncoder()
    vectors = item_embeddings(dataset.catalog, encoder, tmp_path_factory.mktemp("cache"), progress=False)
    popularity = split.item_popularity(len(dataset.catalog))
    return dataset, EmbeddingRetriever(dataset.catalog, vectors, encoder=encoder, popularity=popularity)


@pytest.mark.slow
def test_cold_start_query_finds_kids_films(ml100k_embedding):
    dataset, retriever = ml100k_embedding
    got = retriever.retrieve([], 10, query="animated movie for kids")
    genres = [set(dataset.catalog.items[row].genres) for row in got.items]
    kids = sum(bool(g & {"Animation", "Children's"}) for g in genres)
    assert kids >= 6, [dataset.catalog.items[row].display_title() for row in got.items]


@pytest.mark.slow
def test_real_model_takes_a_10000_character_query_and_unknown_ids(ml100k_embedding):
    _, retriever = ml100k_embedding
    got = retriever.retrieve(["1", "not-an-id"], 5, query="x" * 10_000)
    assert len(got) == 5 and got.unknown_history == 1 and np.all(np.isfinite(got.scores))
