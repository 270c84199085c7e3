"""The trainable model: the 4-bit check, LoRA on the base model, and a re-tune's starting adapter."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from recommender.finetune.config import ConfigError, FinetuneConfig


def check_quantize(quantize: str) -> None:
    """Fail fast, before loading anything, when 4-bit is asked for and cannot work."""
    if quantize == "4bit":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise ConfigError(
                "train.quantize is '4bit' but bitsandbytes is not installed; "
                'install it with `pip install "llm-recommender[cuda]"` or set quantize=none.'
            ) from None
        import torch

        if not torch.cuda.is_available():
            warnings.warn("4-bit QLoRA on CPU runs, but slower than float32 LoRA.", UserWarning, stacklevel=2)


def add_lora(model, config: FinetuneConfig, quantized: bool):
    """Wrap ``model`` with a trainable LoRA adapter (base weights frozen)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = LoraConfig(
        layers_to_transform=lora_layers(model, config),
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=list(config.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def lora_layers(model, config: FinetuneConfig) -> list[int] | None:
    """The decoder layers that get LoRA: the last ``lora.top_layers`` (None = all)."""
    if not config.lora.top_layers:
        return None
    total = model.config.num_hidden_layers
    return list(range(max(0, total - config.lora.top_layers), total))


def start_from_adapter(model, config: FinetuneConfig, prompt) -> Path | None:
    """Copy a trained adapter's LoRA weights into the fresh LoRA (``train.init_adapter``: a re-tune).
    An adapter of another shape or prompt is refused in one sentence: its weights would not fit, or
    would be re-taught a prompt it was not trained on."""
    if not config.train.init_adapter:
        return None
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from recommender.pipeline import shipped_adapter, tuned_settings

    name = config.train.init_adapter
    folder = shipped_adapter() if name == "default" else Path(name).expanduser()
    if folder is None:
        raise ConfigError("train.init_adapter is 'default' but no shipped adapter is installed.")
    # The prompt settings serving reads from the adapter; a missing folder or metadata file fails here, naming it.
    recorded = tuned_settings(folder)
    if not (folder / "adapter_config.json").is_file() or not (folder / "adapter_model.safetensors").is_file():
        raise ConfigError(f"train.init_adapter {folder} holds no adapter_config.json + adapter_model.safetensors.")
    shape = json.loads((folder / "adapter_config.json").read_text())
    wanted = {
        "lora.r": (shape.get("r"), config.lora.r),
        "lora.alpha": (shape.get("lora_alpha"), config.lora.alpha),
        "lora.target_modules": (sorted(shape.get("target_modules") or []), sorted(config.lora.target_modules)),
        "lora.top_layers": (shape.get("layers_to_transform"), lora_layers(model.get_base_model(), config)),
        "data.max_history": (recorded.get("max_history"), config.data.max_history),
        "data.n_candidates": (recorded.get("llm_candidates"), config.data.n_candidates),
        "data.candidate_order": (recorded.get("template"), prompt.name),
    }
    for key, (theirs, ours) in wanted.items():
        if theirs != ours:
            raise ConfigError(
                f"train.init_adapter {folder} was trained with {key} = {theirs!r} but this recipe has {ours!r}; "
                "set the recipe to match or leave init_adapter empty."
            )
    loaded = set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    if loaded.unexpected_keys:
        raise ConfigError(f"train.init_adapter {folder}: weights {loaded.unexpected_keys[:3]} do not fit this LoRA.")
    return folder
