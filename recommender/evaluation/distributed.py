"""Batch work across the processes a launcher started, through accelerate.

    recommender batch-recommend --output recs.jsonl                                    # one process
    accelerate launch --multi_gpu --num_processes 2 -m recommender.cli batch-recommend ...  # no GPU: 2 gloo processes
    torchrun --nproc_per_node 2 -m recommender.cli batch-recommend ...                 # the same, torchrun
    accelerate launch --config_file finetune/accelerate/multi_node.yaml --machine_rank R -m recommender.cli ...

``process_state`` is accelerate's ``PartialState``: one device per process (``cuda:LOCAL_RANK`` on
GPUs, NCCL between them; gloo between CPU processes; no process group at all for one process).
(``accelerate launch --cpu`` starts ONE process whatever ``--num_processes`` says, in accelerate
1.15: its CPU path is the simple launcher or mpirun; ``--multi_gpu`` on a machine without GPUs gives
N gloo processes.) Work is cut into fixed batches whose composition does not depend on the number of processes,
``split_between_processes`` hands each process a contiguous share of them, and ``gather_object``
brings the results back in order, so every process count writes the same output. Nothing here
writes shard files or holds a barrier of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any


def process_state(device: str | None = None):
    """This process's ``accelerate.PartialState`` (rank, world size, device), created once.

    Args:
        device: the ``--device`` a command was given; ``"cpu"`` keeps processes on the CPU (gloo)
            even where GPUs exist. Without GPUs every process is a CPU process.
    """
    import torch
    from accelerate import PartialState

    cpu = (
        (device is not None and device.startswith("cpu"))
        or not torch.cuda.is_available()
        or os.environ.get("ACCELERATE_USE_CPU", "false").lower() in ("1", "true", "yes")
    )
    # cpu=True matters: without it accelerate treats CPU processes started by a launcher as
    # unrelated single processes (each would do all the work and write the whole file).
    return PartialState(cpu=cpu)


def process_device(state, device: str | None) -> str | None:
    """The device a process loads its model on: ``--device`` when given for one process, else
    the process's own (``cuda:LOCAL_RANK``), so N processes never pile onto one GPU."""
    if state.num_processes == 1:
        return device
    if state.device.type == "cpu":
        return "cpu"
    if device is not None and not device.startswith("cpu") and device not in ("cuda", str(state.device)):
        raise ValueError(
            f"--device {device} names one device for {state.num_processes} processes; leave it out "
            "(each process takes its own GPU) or pass --device cpu."
        )
    return str(state.device)


def batches(values: Sequence, size: int) -> list[list]:
    """``values`` in consecutive batches of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"batch size must be a positive integer, got {size!r}.")
    return [list(values[start : start + size]) for start in range(0, len(values), size)]


def map_in_order(state, work: Callable[[list], list], groups: Sequence[list], per_round: int = 1) -> Iterator[list]:
    """Apply ``work`` to every group, spread over the processes; yield the outputs in group order.

    Each round takes the next ``per_round * num_processes`` groups, every process works on a
    contiguous share of them (``split_between_processes``), and ``gather_object`` returns the
    round's outputs to every process in rank order, i.e. in group order. Memory stays bounded by
    one round, and the output does not depend on the number of processes as long as ``work``
    depends only on its group.

    Yields:
        per group, ``work(group)`` (a list), in the order of ``groups``.
    """
    from accelerate.utils import gather_object

    span = max(1, per_round) * state.num_processes
    for start in range(0, len(groups), span):
        with state.split_between_processes(list(groups[start : start + span])) as mine:
            outputs = [work(group) for group in mine]
        yield from gather_object(outputs) if state.num_processes > 1 else outputs


def gather_in_order(state, value: Any) -> list:
    """[num_processes] every process's ``value`` in rank order, on every process."""
    if state.num_processes == 1:
        return [value]
    from accelerate.utils import gather_object

    return gather_object([value])
