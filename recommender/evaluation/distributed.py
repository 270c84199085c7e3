"""Sharding users across processes started by ``accelerate launch`` or ``torchrun``.

Each process handles a contiguous block of users and writes a shard file; after a gloo
barrier the main process merges the shards in rank order, so the merged output is in user
order whatever the number of processes. ``RANK``/``WORLD_SIZE`` come from the launcher.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from recommender.evaluation.protocol import shard


class Shards:
    """This process's rank, the world size and a barrier; a single process needs no setup."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self._group = False
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                # gloo works on CPU and GPU alike; the only collective used is a barrier.
                dist.init_process_group("gloo")
            self._group = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mine(self, values: Sequence) -> list:
        return shard(values, self.rank, self.world)

    def wait(self) -> None:
        if self._group:
            import torch.distributed as dist

            dist.barrier()

    def shard_path(self, output: Path, rank: int | None = None) -> Path:
        rank = self.rank if rank is None else rank
        return output.with_name(f"{output.name}.shard-{rank:05d}-of-{self.world:05d}")

    def merge_text(self, output: Path) -> None:
        """Main process: concatenate every shard into ``output`` in rank order, then remove them."""
        if not self.is_main:
            return
        parts = [self.shard_path(output, rank) for rank in range(self.world)]
        with output.open("w", encoding="utf-8") as merged:
            for part in parts:
                merged.write(part.read_text(encoding="utf-8"))
        for part in parts:
            part.unlink()
