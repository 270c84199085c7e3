"""Shared test set-up: never touch a hub. Converted models, item embeddings and tuned
retriever weights live in the library's cache ($RECOMMENDER_CACHE, default
~/.cache/llm-recommender), so only the first run on a machine pays for building them."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
