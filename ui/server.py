"""Serving the chat: the server's config and ``serve``, which loads the models and launches the page.

    recommender chat                                  # 127.0.0.1:7860, SmolLM2 + shipped adapter, ml-100k
    recommender chat --retrieval-only --port 7861     # no LLM: templated replies, fast
    recommender chat --db /tmp/feedback.sqlite

``recommender chat`` (``recommender.commands.chat``) owns the command line and builds a
``ChatServerConfig``; this module never imports the CLI (commands sit above ui). Gradio and the models
are imported only inside ``serve``, so building a config stays fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recommender.chat.counts import MAX_K
from recommender.chat.turn import model_name

if TYPE_CHECKING:
    import gradio as gr


@dataclass(frozen=True)
class ChatServerConfig:
    """What ``serve`` needs; ``recommender chat`` builds it from its command line."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to serve on"})
    port: int = field(default=7860, metadata={"help": "port"})
    db: str | None = field(default=None, metadata={"help": "feedback SQLite file (None: $RECOMMENDER_DB or the cache)"})
    k: int = field(default=10, metadata={"help": "cards per answer"})
    llm_reply: bool = field(default=True, metadata={"help": "the LLM writes the reply (else templated)"})
    retrieval_only: bool = field(default=False, metadata={"help": "no LLM at all: retrieval ranking"})
    concurrency: int = field(default=2, metadata={"help": "events served at once"})
    dataset: str = field(default="ml-100k", metadata={"help": "built-in dataset name or a data folder"})
    model: str | None = field(default=None, metadata={"help": "HF model folder/id or .gguf (None: SmolLM2-135M)"})
    adapter: str = field(default="default", metadata={"help": "LoRA folder; 'default' shipped, 'none' off"})
    quantize: str = field(default="auto", metadata={"help": "auto, none or 4bit"})
    dtype: str = field(default="auto", metadata={"help": "scoring precision: auto, float32, bfloat16 or int8"})
    device: str | None = field(default=None, metadata={"help": "cuda, cpu, ... (None: CUDA when available)"})
    reply_model: str = field(
        default="base",
        metadata={"help": "who writes replies: 'base' (the model without the ranking adapter) or 'ranker'"},
    )

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {self.port}.")
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"k must be within 1..{MAX_K}, got {self.k}.")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}.")
        if self.quantize not in ("auto", "none", "4bit"):
            raise ValueError(f"quantize must be auto, none or 4bit, got {self.quantize!r}.")
        if self.dtype not in ("auto", "float32", "bfloat16", "int8"):
            raise ValueError(f"dtype must be auto, float32, bfloat16 or int8, got {self.dtype!r}.")
        if self.reply_model not in ("base", "ranker"):
            raise ValueError(f"reply_model must be base or ranker, got {self.reply_model!r}.")


def reply_writer(pipeline: Any, config: ChatServerConfig) -> Any:
    """The model that writes replies: with ``reply_model="base"``, ``Recommender.text_writer()`` (the
    base model without a merged ranking adapter, whose weights loop in free text: 0 of 20 replies
    passed the gate in bench/chat_replies.py; explanations use the same one). None means the
    pipeline's own scorer."""
    if config.reply_model != "base" or getattr(pipeline, "scorer", None) is None:
        return None
    writer = pipeline.text_writer()
    return None if writer is pipeline.scorer else writer


def serve(config: ChatServerConfig, block: bool = True) -> gr.Blocks:
    """Load the pipeline and the store ``config`` names and launch the app."""
    from recommender.pipeline import Recommender
    from recommender.store import FeedbackStore
    from recommender.ui.app import build_app
    from recommender.ui.render import CARD_CSS
    from recommender.update import with_updates

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pipeline = Recommender.from_pretrained(
        dataset=config.dataset, model=config.model, adapter=config.adapter, quantize=config.quantize,
        device=config.device, retrieval_only=config.retrieval_only, dtype=config.dtype,
    )  # fmt: skip
    pipeline, _ = with_updates(pipeline)  # interactions and items appended by `recommender update`
    store = FeedbackStore(config.db)
    writer = reply_writer(pipeline, config) if config.llm_reply else None
    demo = build_app(pipeline, store, default_k=config.k, llm_reply=config.llm_reply, writer=writer)
    demo.queue(default_concurrency_limit=config.concurrency)
    print(f"model: {model_name(pipeline)}; feedback store: {store.path}", flush=True)
    demo.launch(
        server_name=config.host, server_port=config.port, css=CARD_CSS, prevent_thread_lock=not block, show_error=False
    )
    return demo
