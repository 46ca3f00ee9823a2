"""Batches drawn from several sources at fixed shares (`train --mix DATA:FRACTION`), and epochs counted
in steps (`--steps-per-epoch`), for fine-tuning on a few hundred images without memorising them.

The sources sit one after another in one dataset: positions [0, sizes[0]) are the main training images,
the next sizes[1] the first mixed-in set, and so on. Each source is read as an endless stream of seeded
permutations, so a small set is cycled and a large one is sampled without repeats.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np
import torch
from torch.utils.data import Sampler

from trainer.data.loading import Loaded


def merge(main: Loaded, main_rows: np.ndarray, others: list[Loaded]) -> Loaded:
    """One Loaded holding every source's groups, with rows `main_rows` of main, then all of each other's."""
    groups = list(main.groups)
    rows = [main.rows[main_rows]]
    for other in others:
        offset = len(groups)
        groups.extend(other.groups)
        rows.append(other.rows + np.array([offset, 0]))
    return Loaded(
        groups,
        np.concatenate(rows),
        main.alphabet,
        main.skipped + [s for o in others for s in o.skipped],
        max([main.max_len, *(o.max_len for o in others)]),
    )


def per_batch(fraction: float | Fraction, batch_size: int, batch: int) -> int:
    """Images of a source with this share in batch number `batch`: the rounding error is carried over, so
    any run of batches holds the share to within one image."""
    return math.floor(fraction * batch_size * (batch + 1)) - math.floor(fraction * batch_size * batch)


class StreamBatchSampler(Sampler[list[int]]):
    """Batches with a fixed share from each source (the main source fills the rest); an epoch is `steps`
    batches, or one pass over the main source when `steps` is None. Same interface as ShardedBatchSampler."""

    def __init__(
        self,
        sizes: list[int],
        fractions: Sequence[float | Fraction],
        batch_size: int,
        *,
        steps: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if len(sizes) != len(fractions) + 1:
            raise ValueError("one fraction per mixed-in source")
        self.sizes, self.fractions, self.batch_size, self.steps = sizes, fractions, batch_size, steps
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _batches(self) -> int:
        if self.steps is not None:
            return self.steps
        main_share = max(1.0, self.batch_size * (1 - sum(self.fractions)))
        return max(1, int(self.sizes[0] / self.world // main_share))

    def __len__(self) -> int:
        return max(0, self._batches() - self.start)

    def _stream(self, source: int) -> Iterator[int]:
        offset = sum(self.sizes[:source])
        g = torch.Generator().manual_seed(((self.seed * 1_000_003 + self.epoch) * 101 + source) * 7919 + self.rank)
        while True:
            for i in torch.randperm(self.sizes[source], generator=g).tolist():
                yield offset + i

    def __iter__(self) -> Iterator[list[int]]:
        streams = [self._stream(s) for s in range(len(self.sizes))]
        for b in range(self._batches()):
            counts = [per_batch(f, self.batch_size, b) for f in self.fractions]
            batch = [next(streams[0]) for _ in range(self.batch_size - sum(counts))]
            for source, k in enumerate(counts, start=1):
                batch.extend(next(streams[source]) for _ in range(k))
            if b >= self.start:
                yield batch
