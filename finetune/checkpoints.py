"""The output folder of a fine-tuning run: who owns it, resumable checkpoints, the adapter files.

``run.json`` is written first (which run owns the folder); ``checkpoints/step-NNNNNN/`` holds the
last two checkpoints while training; ``adapter_model.safetensors`` + ``adapter_config.json`` the
adapter (peft). Saving is collective under FSDP: see ``full_state_dict``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from recommender.finetune.config import ConfigError, FinetuneConfig, config_dict

RUN_FILE = "run.json"  # written first into the output folder: which run owns it
CHECKPOINTS = "checkpoints"


def run_identity(config: FinetuneConfig, data_fingerprint: str = "") -> dict:
    """What makes two runs the same run (resuming with more steps is the same run)."""
    resolved = config_dict(config)
    resolved.pop("output_dir")
    resolved["train"].pop("max_steps")
    resolved["eval"].pop("report_users")
    return json.loads(json.dumps({"config": resolved, "data_fingerprint": data_fingerprint}))  # tuples -> lists


def claim_output(folder: Path, identity: dict, overwrite: bool, resume: bool) -> None:
    """Refuse a folder that holds another run (or unknown files) unless ``overwrite``."""
    marker = folder / RUN_FILE
    if folder.exists() and any(folder.iterdir()):
        if overwrite:
            shutil.rmtree(folder)
        elif not marker.is_file():
            raise ConfigError(f"output folder {folder} is not empty and holds no {RUN_FILE}; pass --overwrite.")
        else:
            previous = json.loads(marker.read_text())
            if previous != identity:
                raise ConfigError(
                    f"output folder {folder} holds a different run (other config or data); "
                    "pass --overwrite to replace it or choose another output_dir."
                )
            if not resume and (folder / CHECKPOINTS).is_dir():
                shutil.rmtree(folder / CHECKPOINTS)  # same run started afresh
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(identity, indent=1, sort_keys=True))


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted((folder / CHECKPOINTS).glob("step-*"))
    return found[-1] if found else None


def full_state_dict(accelerator, model) -> dict:
    """The model's weights as whole tensors on the main process (possibly {} on the others).

    EVERY process must call it: under FSDP (and DeepSpeed ZeRO-3) each process holds a shard of
    every weight and ``accelerator.get_state_dict`` gathers them (a collective); the main
    process's own module would give its shard only. Elsewhere it is the unwrapped state dict."""
    if accelerator is None:
        raise ValueError("full_state_dict needs the accelerator the model was prepared with.")
    return accelerator.get_state_dict(model)


def save_adapter(accelerator, model, folder: Path) -> None:
    """Write ``adapter_model.safetensors`` + ``adapter_config.json`` from the full LoRA weights.

    Call it on EVERY process (see ``full_state_dict``); the main process writes, and all of them
    wait until the files are there, so any process can read them right after."""
    state_dict = full_state_dict(accelerator, model)
    if accelerator.is_main_process:
        # peft keeps only the adapter's entries of the full state dict it is given.
        accelerator.unwrap_model(model).save_pretrained(str(folder), state_dict=state_dict)
    accelerator.wait_for_everyone()


def save_checkpoint(folder: Path, step: int, model, optimizer, scheduler, trainer_state: dict, weights=None) -> Path:
    """Main process: the adapter (``weights``: the full state dict, default the model's own), the
    optimizer, scheduler and RNG state, and ``trainer_state`` (JSON). Under FSDP the optimizer
    state saved is the main process's shard."""
    import torch
    from peft import get_peft_model_state_dict

    path = folder / CHECKPOINTS / f"step-{step:06d}"
    path.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "adapter": get_peft_model_state_dict(model, state_dict=weights),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        path / "state.pt",
    )
    (path / "trainer_state.json").write_text(json.dumps({**trainer_state, "step": step}, indent=1))
    for old in sorted((folder / CHECKPOINTS).glob("step-*"))[:-2]:  # keep the last two
        shutil.rmtree(old)
    return path


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Restore adapter, optimizer, scheduler and RNG from ``path``; returns the saved trainer state."""
    import torch
    from peft import set_peft_model_state_dict

    saved = torch.load(path / "state.pt", weights_only=False)
    set_peft_model_state_dict(model, saved["adapter"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    return json.loads((path / "trainer_state.json").read_text())
