"""Resumable, rank-aware sampling: the data position is a pure function of the step.

Epoch e shuffles with a generator seeded by (seed, e); each sample also gets its own
augmentation seed, so the crop/flip of every image is fixed by (seed, epoch, position) and a
resumed run — with any number of DataLoader workers — sees exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def _mix(*values: int) -> int:
    # cheap deterministic 63-bit hash of a few integers (splitmix64 finaliser)
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x & 0x7FFFFFFFFFFFFFFF


class StepBatchSampler:
    """Yields batches of (index, sample_seed) for steps start_step, start_step + 1, ...

    One epoch = every image once across all processes (drop_last per process), i.e.
    `steps_per_epoch = (n // world_size) // batch_size`.
    """

    def __init__(
        self,
        n: int,  # dataset size
        batch_size: int,  # per process
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ):
        per_rank = n // world_size
        if per_rank < batch_size:
            raise ValueError(f"{n} images cannot fill one batch of {batch_size} on {world_size} process(es)")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.start_step = start_step
        self.steps_per_epoch = per_rank // batch_size
        self._cached: tuple[int, torch.Tensor | None] = (-1, None)

    def _rank_order(self, epoch: int) -> torch.Tensor:
        # one-slot cache: consecutive steps share an epoch's permutation
        if self._cached[0] != epoch:
            if self.shuffle:
                g = torch.Generator().manual_seed(_mix(self.seed, epoch))
                order = torch.randperm(self.n, generator=g)
            else:
                order = torch.arange(self.n)
            self._cached = (epoch, order[self.rank :: self.world_size])
        return self._cached[1]

    def batch_at(self, step: int) -> list[tuple[int, int]]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        idx = self._rank_order(epoch)[pos * self.batch_size : (pos + 1) * self.batch_size].tolist()
        # global position of each sample in the epoch, identical for any world size split
        base = pos * self.batch_size * self.world_size + self.rank
        return [(i, _mix(self.seed, epoch, base + k * self.world_size, 1)) for k, i in enumerate(idx)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            yield self.batch_at(step)
            step += 1
