"""Which numeric precision the LLM scores in: chosen once from the hardware, forced by the user.

    from recommender.llm.precision import choose_precision, detect_hardware
    choice = choose_precision("auto", detect_hardware("cpu"))  # Precision("bfloat16", "this CPU computes ...")

A scoring forward pass of a small LLM runs at the matrix-multiply rate of the machine, so the
precision the processor is fast at decides the speed:
- CUDA: bfloat16.
- A CPU with native bf16 units (AVX512-BF16 or AMX, as oneDNN reports them): bfloat16.
- Any other CPU: float32. int8 dynamic quantisation of the linear layers (torch's fbgemm / x86
  path, output head and MLP output projections kept float32) is there with ``dtype="int8"`` but is
  not chosen: on all 943 validation users it changed 67% of the top-10 lists and its paired NDCG@10
  interval against float32, -0.0012 [-0.0053, +0.0026], leaves the +-0.003 bound, while bf16 gave
  +0.0003 [-0.0006, +0.0015] (bench/results/precision.md).

``choose_precision`` is pure (a ``Hardware`` in, a ``Precision`` out) so both branches are tested
on a faked capability; ``detect_hardware`` is the only function that asks torch and /proc.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("float32", "bfloat16", "int8")
DTYPE_CHOICES = ("auto", "fast", *PRECISIONS)
# The /proc/cpuinfo flags that decide the choice or explain a timing; the rest are noise in a header.
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Hardware:
    """What the scoring device can compute fast, read once per process."""

    device_type: str  # "cpu" or "cuda"
    cpu_model: str
    cpu_flags: frozenset[str]  # the RELEVANT_FLAGS this CPU has
    native_bf16: bool  # oneDNN runs bf16 matmuls on AVX512-BF16 / AMX units, not by emulation
    int8_engines: tuple[str, ...]  # torch.backends.quantized.supported_engines

    def describe(self) -> str:
        """One line for bench headers and result files."""
        flags = " ".join(sorted(self.cpu_flags)) or "none of " + " ".join(RELEVANT_FLAGS)
        return f"{self.cpu_model} [{flags}]; native bf16: {'yes' if self.native_bf16 else 'no'}"


@dataclass(frozen=True)
class Precision:
    """The precision the model is loaded in and why (recorded beside every result)."""

    name: str  # one of PRECISIONS
    reason: str


def choose_precision(requested: str, hardware: Hardware) -> Precision:
    """The precision to score in.

    Args:
        requested: "auto" (by the hardware, see the module docstring), "fast" (the same, kept for
            older callers), or one of PRECISIONS to force it.
        hardware: ``detect_hardware(device)`` or a hand-made one in tests.

    Raises:
        ValueError: an unknown name, or int8 on CUDA (dynamic quantisation is a CPU path).
    """
    if requested not in DTYPE_CHOICES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, got {requested!r}.")
    cuda = hardware.device_type == "cuda"
    if requested == "int8" and cuda:
        raise ValueError("dtype='int8' is dynamic quantisation for CPUs; on CUDA use bfloat16 or quantize='4bit'.")
    if requested == "int8" and not hardware.int8_engines:
        raise ValueError("dtype='int8' needs a quantized engine (fbgemm, x86 or onednn) that this torch build lacks.")
    if requested in PRECISIONS:
        return Precision(requested, "asked for")
    if cuda:
        return Precision("bfloat16", "CUDA")
    if hardware.native_bf16:
        return Precision("bfloat16", "this CPU computes bf16 natively (AVX512-BF16 or AMX)")
    # int8 would be ~2.8x faster here but moves rankings beyond the bound (module docstring).
    return Precision("float32", "this CPU has no native bf16 unit (int8 is faster but moves rankings)")


def _cpu_info() -> tuple[str, frozenset[str]]:
    """CPU model name and the relevant flags from /proc/cpuinfo (Linux); the platform's name elsewhere."""
    info = Path("/proc/cpuinfo")
    model, flags = platform.processor() or platform.machine(), set()
    if info.is_file():
        for line in info.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    return model, frozenset(flag for flag in RELEVANT_FLAGS if flag in flags)


@functools.cache
def detect_hardware(device_type: str = "cpu") -> Hardware:
    """The scoring hardware of this process (cached: the answer does not change while it runs)."""
    import torch

    device_type = "cuda" if str(device_type).startswith("cuda") else "cpu"
    model, flags = _cpu_info()
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # oneDNN's own check
    except (AttributeError, RuntimeError):
        native = False
    engines = tuple(e for e in torch.backends.quantized.supported_engines if e in ("fbgemm", "x86", "onednn"))
    return Hardware(device_type, model, flags, native, engines)


__all__ = ["DTYPE_CHOICES", "PRECISIONS", "Hardware", "Precision", "choose_precision", "detect_hardware"]
