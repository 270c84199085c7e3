"""The LLM as a content encoder of items: what it knows about a film, as a vector, with no training.

    from recommender.llm.loading import load_model
    from recommender.retrieval.llm_content import LLMContentRetriever, llm_item_vectors
    vectors = llm_item_vectors(catalog, load_model(adapter=None))   # [N, H], cached per catalogue
    retriever = LLMContentRetriever(catalog, vectors)                # profile of the history, cosine

A film's vector is the mean of the base LLM's last hidden layer over the tokens of
"Movie: <title> (<year>). Genres: <genres>.", centred on the catalogue mean (hidden states share a
large common direction that would otherwise dominate every cosine). It needs no interaction, so it
scores films added yesterday as well as old ones: the cold-start issue measured it above the
sentence-embedding model on new films (bench/results/cold_start.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recommender.data import Catalog
from recommender.retrieval.base import EmbeddingRetriever

ITEM_TEMPLATE = "Movie: {title} ({year}). Genres: {genres}."


class HiddenStateEncoder:
    """``protocols.Encoder``: texts -> [N, H] mean of a causal LM's last hidden layer over each text's tokens.

    Args:
        loaded: a ``recommender.llm.loading.LoadedModel`` (the base model: an adapter trained to score
            candidate lines is not what should describe a film).
        batch_size: texts per forward pass.
        max_tokens: tokens kept per text (titles and genres are short).
    """

    def __init__(self, loaded: Any, batch_size: int = 64, max_tokens: int = 64, name: str | None = None):
        # ``loaded`` may be a callable that loads the model: then it loads only when a text is
        # encoded, i.e. when the cached vectors are missing (``name`` must then be given).
        self._loaded, self.batch_size, self.max_tokens = loaded, batch_size, max_tokens
        self.name = name or f"hidden-mean-{loaded.base_name}"

    @property
    def loaded(self) -> Any:
        if callable(self._loaded):
            self._loaded = self._loaded()
        return self._loaded

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = tokenizer(
                    list(texts[start : start + self.batch_size]),
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                ).to(self.loaded.device)
                hidden = model(**batch, output_hidden_states=True, use_cache=False).hidden_states[-1]  # [B, T, H]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
                out.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())  # [B, H]
        width = self.loaded.model.config.hidden_size
        return np.concatenate(out) if out else np.zeros((0, width), dtype=np.float32)


def llm_item_vectors(catalog: Catalog, loaded: Any, cache_dir: str | Path | None = None) -> np.ndarray:
    """[N, H] centred LLM content vectors of the catalogue, computed once and cached (same cache and
    checks as the sentence embeddings: ``retrieval.embeddings.item_embeddings``)."""
    from recommender.retrieval.embeddings import item_embeddings

    vectors = item_embeddings(catalog, HiddenStateEncoder(loaded), cache_dir, template=ITEM_TEMPLATE)
    return centred(vectors)


def centred(vectors: np.ndarray) -> np.ndarray:
    """Rows minus their mean row (float32)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors - vectors.mean(axis=0, keepdims=True) if len(vectors) else vectors


class LLMContentRetriever(EmbeddingRetriever):
    """The embedding retriever over LLM content vectors: a recency-weighted profile of the history,
    cosine to every item. Takes no free-text query (the vectors are not a sentence-embedding space)."""

    name = "llm_content"

    def __init__(self, catalog: Catalog, item_vectors: np.ndarray, **options: Any):
        super().__init__(catalog, item_vectors, encoder=None, **options)


def unit_rows(*blocks: np.ndarray) -> np.ndarray:
    """Each block's rows L2-normalised, then concatenated side by side (equal say per block) and
    normalised again: one content space from several encoders."""
    parts: Sequence[np.ndarray] = [
        b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) for b in map(np.asarray, blocks)
    ]
    joined = np.concatenate(parts, axis=1).astype(np.float32)
    return joined / np.maximum(np.linalg.norm(joined, axis=1, keepdims=True), 1e-12)


__all__ = ["HiddenStateEncoder", "LLMContentRetriever", "centred", "llm_item_vectors", "unit_rows"]
