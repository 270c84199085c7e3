"""LoRA fine-tuning on 2 CPU processes (torchrun, gloo) equals fine-tuning on one, same global batch.

The launched processes run this file (``__main__`` below): 2 steps of ``train_loop`` on a tiny
random Llama, 2 micro-batches per step (gradient accumulation), then ``save_adapter``. One process
takes 4 examples per micro-batch; each of 2 processes takes 2 of the same 4 (``micro_batch``), DDP
averages their gradients, so the update is the same up to float summation order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent
STEPS, WARMUP, LR = 2, 4, 0.01  # warm-up longer than the run: every step has its own rate


def examples(n: int = 24) -> list:
    """Letter answers (one token, cross-entropy over 4 choices) and free text, of mixed lengths (padding)."""
    from recommender.finetune.train import Encoded

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        ids = [int(x) for x in rng.integers(5, 64, int(rng.integers(6, 12)))]
        if i % 3:
            out.append(Encoded(ids + [1 + i % 4], 1, (1, 2, 3, 4), i % 4))
        else:
            out.append(Encoded(ids + [7, 8, 0], 3))
    return out


def train_two_steps(folder: Path, batch_size: int) -> None:
    """What every launched process runs: 2 steps, then the adapter and the trainer state (main process)."""
    import torch
    from accelerate import Accelerator
    from conftest import tiny_llama  # launched as a script, this file's folder is on sys.path

    from recommender.finetune.config import load_config
    from recommender.finetune.train import add_lora, save_adapter, train_loop

    torch.set_num_threads(1)
    config = load_config(
        None,
        [
            f"output_dir={folder}", "lora.r=4", "lora.dropout=0.0", "eval.every=0", f"warmup_steps={WARMUP}",
            f"train.batch_size={batch_size}", "train.grad_accum=2", f"lr={LR}", f"max_steps={STEPS}",
            "checkpoint_every=1",
        ],
    )  # fmt: skip
    model = add_lora(tiny_llama(vocab_size=64), config, quantized=False)  # seeded: the same on every process
    accelerator = Accelerator(gradient_accumulation_steps=config.train.grad_accum, cpu=True)
    state = train_loop(model, examples(), config, folder, pad_id=0, accelerator=accelerator, log=lambda _: None)
    save_adapter(accelerator, model, folder)
    if accelerator.is_main_process:
        record = {"processes": accelerator.num_processes, "losses": state.losses, "lrs": state.lrs}
        (folder / "trainer.json").write_text(json.dumps(record))


def launch(command: list[str], cwd: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_train_the_same_adapter_and_schedule_as_one(tmp_path):
    import torch
    from safetensors.torch import load_file

    from recommender.finetune.train import lr_factor

    one, two = tmp_path / "one", tmp_path / "two"
    threads = torch.get_num_threads()
    try:
        train_two_steps(one, batch_size=4)  # the reference, here: one process fewer to start
    finally:
        torch.set_num_threads(threads)
    launch([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(HERE), str(two), "2"], tmp_path)
    single, double = (json.loads((f / "trainer.json").read_text()) for f in (one, two))
    assert (single["processes"], double["processes"]) == (1, 2)
    # The schedule: one scheduler step per optimizer step, whatever the number of processes
    # (accelerate's AcceleratedScheduler would step it twice per step on 2 processes: 0.0025, 0.0075).
    expected = [[step + 1, LR * lr_factor(step, WARMUP, STEPS)] for step in range(STEPS)]
    assert single["lrs"] == double["lrs"] == expected
    # The loss of the global batch (averaged over processes) and the adapter: equal up to float order.
    np.testing.assert_allclose(np.array(double["losses"]), np.array(single["losses"]), rtol=1e-5)
    a, b = load_file(str(one / "adapter_model.safetensors")), load_file(str(two / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and any("lora_B" in key for key in a)
    for key in a:
        np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), rtol=1e-4, atol=1e-6, err_msg=key)
    assert any(float(a[key].abs().max()) > 0 for key in a if "lora_B" in key)  # B starts at zero: it trained
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["step-000001", "step-000002"]


if __name__ == "__main__":
    train_two_steps(Path(sys.argv[1]), int(sys.argv[2]))
