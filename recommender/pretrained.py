"""What ``Recommender.from_pretrained`` assembles besides the data and the settings
(``pipeline_config``): the adapter to load, the first stage it was trained with, the hybrid
retriever (with the cold-item bridge and its content vectors), the scorer, and the base model that
writes free text.

    adapter = resolve_adapter("default", dataset, model=None)   # the shipped ml-100k adapter or None
    retriever = load_retriever(dataset, adapter, model=None, device=None)
    scorer = load_scorer(None, adapter, quantize="auto", device=None, dtype="auto")
    writer = base_model_writer(scorer)                          # the scorer, or its base model

Models load inside the functions, never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recommender.data import Dataset


def load_retriever(
    data: Dataset,
    adapter_path: Path | None,
    model: str | Path | None,
    device: str | None,
    *,
    retrieval_only: bool = False,
    sequential: bool | None = None,
    cold_items: bool = True,
):
    """The hybrid first stage, with the sequential model when ``sequential`` (None: as the adapter
    was trained, ``first_stage``) and the cold-item bridge when ``cold_items`` and some item has no
    training event (content vectors from ``cold_content``)."""
    from recommender.retrieval.hybrid import build_default_retriever
    from recommender.retrieval.sequential import SequentialConfig

    if sequential is None:
        sequential = first_stage(adapter_path) == "hybrid+sequential"
    retriever = build_default_retriever(data, sequential=SequentialConfig() if sequential else None)
    if cold_items:
        from recommender.retrieval.hybrid import attach_cold_bridge, unseen_items

        if unseen_items(retriever).any():  # the content vectors are only worth computing then
            content = cold_content(data, retriever, None if retrieval_only else model, device, retrieval_only)
            attach_cold_bridge(retriever, content)
    return retriever


def cold_content(dataset: Dataset, retriever, model, device: str | None, text_only: bool = False) -> np.ndarray:
    """[N, D] item vectors the cold bridge searches: the sentence embeddings beside the base LLM's
    content vectors (``retrieval.llm_content``; cached per catalogue, so the base model loads only
    the first time), or the sentence embeddings alone with ``text_only``. On the cold-items shelf
    the two together scored above either alone (bench/results/cold-items.md)."""
    from recommender.llm.loading import load_model, resolve_model
    from recommender.retrieval.embeddings import item_embeddings
    from recommender.retrieval.llm_content import ITEM_TEMPLATE, HiddenStateEncoder, centred, unit_rows

    text = retriever.text.vectors
    if text_only:
        return unit_rows(text)
    _, base_name = resolve_model(model)
    encoder = HiddenStateEncoder(
        lambda: load_model(model, adapter=None, device=device), name=f"hidden-mean-{base_name}"
    )
    return unit_rows(text, centred(item_embeddings(dataset.catalog, encoder, template=ITEM_TEMPLATE)))


def resolve_adapter(adapter: str | Path | None, dataset: Dataset, model: str | Path | None) -> Path | None:
    """The adapter folder to load: ``"default"`` means the shipped one when it applies."""
    if adapter is None or str(adapter).lower() == "none":
        return None
    if str(adapter) == "default":
        shipped = shipped_adapter()
        return shipped if shipped is not None and model is None and dataset.name == "ml-100k" else None
    return Path(adapter)


# The served adapter: the ranking recipe on a prompt of 7 titles (``ml100k_seq_wide_h7_cpu.yaml``) re-tuned
# with the influence term at a 0.3-nat margin (``ml100k_seq_wide_h7_counterfactual_m03_cpu.yaml``), served
# with the pair test (``"pair_test": true`` in its metadata: a card names the second film only when removing
# it still lowers the score once the first is gone); chosen on validation users, then held on two samples of
# 200 test users (docs/results.md, "Seven titles, the second film only when it adds"). The 5-title adapters
# served before it ship too: ``ml100k-smollm2-counterfactual-m03`` (0.3 nat) and ``-counterfactual`` (0.1).
SHIPPED_ADAPTER = "ml100k-smollm2-h7-counterfactual-m03"


def shipped_adapter() -> Path | None:
    """The LoRA adapter trained on ml-100k that ships with the package (``SHIPPED_ADAPTER``), if present."""
    import importlib.util

    # find_spec locates the package without importing it: serving never imports training code.
    spec = importlib.util.find_spec("recommender.finetune")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "adapters" / SHIPPED_ADAPTER
    return folder if (folder / "adapter_config.json").is_file() else None


def first_stage(adapter_path: Path | None) -> str:
    """The first stage an adapter was trained on: "hybrid+sequential" (the default without an
    adapter) or "hybrid" (adapters that predate the sequential model record nothing)."""
    if adapter_path is None:
        return "hybrid+sequential"
    from recommender.llm.loading import read_adapter_metadata

    return str(read_adapter_metadata(adapter_path).get("first_stage", "hybrid"))


def base_model_writer(scorer: Any) -> Any:
    """What writes free text (explanations, chat replies) for ``scorer``: the scorer itself, or, when
    a ranking adapter is merged into it, the same base model without the adapter (loaded here). The
    adapter learned to score candidate lines; its merged weights write degenerate text ("F F F F": 77
    of 100 explanations in bench/explain.py with the 12-layer adapter)."""
    loaded = getattr(scorer, "loaded", None)
    if loaded is None or loaded.adapter_path is None:
        return scorer
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    # "fast": bf16 where the CPU computes it natively; generated tokens are memory-bound.
    base = load_model(loaded.source, adapter=None, quantize=loaded.quantization, device=loaded.device, dtype="fast")
    return LLMScorer(base)


def load_scorer(model: str | Path | None, adapter_path: Path | None, quantize: str, device: str | None, dtype: str):
    """The stage-two ``LLMScorer``: ``model`` (None: the default) with ``adapter_path`` merged."""
    from recommender.llm.loading import load_model
    from recommender.llm.scoring import LLMScorer

    return LLMScorer(load_model(model, adapter=adapter_path, quantize=quantize, device=device, dtype=dtype))
