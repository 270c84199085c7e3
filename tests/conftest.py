"""Shared test set-up: never touch a hub, keep caches inside a per-session temp folder
unless RECOMMENDER_CACHE is set (CI keeps the converted model between runs that way)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
