"""Training data: cached groups behind one Dataset, a deterministic split, and a sharded batch sampler."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput
from trainer.data.cache import CachedGroup, load_or_build
from trainer.data.preprocess import Preprocessing
from trainer.data.sources import Source, open_source, open_unlabeled


@dataclass
class Batch:
    images: torch.Tensor  # uint8 [N, H, W]
    targets: torch.Tensor  # int64 [sum of label lengths], concatenated class indices
    target_lengths: torch.Tensor  # int64 [N]
    labels: list[str]
    paths: list[str]

    def pin_memory(self) -> Batch:
        self.images = self.images.pin_memory()
        return self


@dataclass
class Loaded:
    """Every usable sample of a source, as (group, row) pairs, with what was skipped and why."""

    groups: list[CachedGroup]
    rows: np.ndarray  # int64 [n, 2]: (group index, row in group)
    alphabet: Alphabet
    skipped: list[tuple[str, str]]  # (path, reason)
    max_len: int


def load(
    path: Path,
    pre: Preprocessing,
    cache_dir: Path,
    *,
    alphabet: Alphabet | None = None,
    skip_bad: bool = False,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
    source: Source | None = None,
) -> Loaded:
    """Open `path`, fill the cache, and check every label. The alphabet, unless given, comes from the
    dataset's manifest, else from the labels. A bad file is an error naming it, unless `skip_bad`.
    `notice` gets one line for each thing worth knowing that is not an error (a cache entry rebuilt).
    `source`: `path` already opened (trainer.data.sources), so a run opens each dataset once."""
    source = source or open_source(path)
    for warning in source.warnings:
        if notice:
            notice(warning)
    skipped = list(source.bad)
    if skipped and not skip_bad:
        raise BadInput(f"{skipped[0][1]} (use `skip_bad` to skip such files)")
    if alphabet is None:
        labels = (label for g in source.groups for label in g.labels)
        alphabet = Alphabet(source.alphabet) if source.alphabet else Alphabet.from_labels(labels)
    groups = _cached(source, pre, cache_dir, workers, progress, notice)
    rows = []
    for gi, group in enumerate(groups):
        for ri, label in enumerate(group.labels):
            reason = group.bad.get(ri)
            if reason is None and not label:
                reason = f"{group.paths[ri]}: empty label"
            if reason is None and any(c not in alphabet for c in label):
                c = next(c for c in label if c not in alphabet)
                reason = f"{group.paths[ri]}: label {label!r} has {c!r}, which is not in the alphabet"
            if reason is None:
                rows.append((gi, ri))
            elif skip_bad:
                skipped.append((group.paths[ri], reason))
            else:
                raise BadInput(f"{reason} (use `skip_bad` to skip such files)")
    if not rows:
        raise BadInput(f"no usable images in {path}")
    max_len = max(len(groups[g].labels[r]) for g, r in rows)
    return Loaded(groups, np.asarray(rows, dtype=np.int64), alphabet, skipped, max_len)


def load_unlabeled(
    path: Path,
    pre: Preprocessing,
    cache_dir: Path,
    alphabet: Alphabet,
    *,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
    source: Source | None = None,
) -> Loaded:
    """The images of an unlabelled pool (sources.open_unlabeled), cached, each with the label UNLABELED.
    Images that cannot be read are left out, and `notice` says how many: a pool is collected, not curated."""
    source = source or open_unlabeled(path)
    groups = _cached(source, pre, cache_dir, workers, progress, notice)
    rows = [(gi, ri) for gi, g in enumerate(groups) for ri in range(len(g.paths)) if ri not in g.bad]
    unreadable = [reason for g in groups for reason in g.bad.values()]
    if not rows:
        raise BadInput(f"none of the {source.size:,} images in {path} can be read (e.g. {unreadable[0]})")
    if unreadable and notice:
        notice(f"{path}: {len(unreadable):,} of {source.size:,} images cannot be read; left out (e.g. {unreadable[0]})")
    return Loaded(groups, np.asarray(rows, dtype=np.int64), alphabet, [], 0)


def _cached(
    source: Source,
    pre: Preprocessing,
    cache_dir: Path,
    workers: int,
    progress: Callable[[int, int], None] | None,
    notice: Callable[[str], None] | None,
) -> list[CachedGroup]:
    done = [0]

    def advance(k: int) -> None:
        done[0] += k
        if progress:
            progress(done[0], source.size)

    return [load_or_build(g, pre, cache_dir, workers, advance, notice) for g in source.groups]


def split(loaded: Loaded, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/val row indices: a sample is in val when the hash of (seed, its file name)
    falls below `val_fraction`. The same file lands on the same side whatever order it was listed in."""
    if not 0 < val_fraction < 1:
        raise BadInput(f"`val_fraction` must be between 0 and 1, got {val_fraction}")
    scores = np.empty(len(loaded.rows))
    for i, (g, r) in enumerate(loaded.rows):
        name = Path(loaded.groups[g].paths[r]).name
        digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
        scores[i] = int.from_bytes(digest, "big") / 2**64
    val = np.flatnonzero(scores < val_fraction)
    train = np.flatnonzero(scores >= val_fraction)
    if len(val) == 0 or len(train) == 0:
        raise BadInput(f"`val_fraction` {val_fraction} leaves an empty split of {len(loaded.rows)} images")
    return train, val


class CaptchaDataset(Dataset):
    """Samples `indices` of a Loaded source. Fetches whole batches at once through __getitems__."""

    def __init__(self, loaded: Loaded, indices: np.ndarray | None = None) -> None:
        self.loaded = loaded
        self.rows = loaded.rows if indices is None else loaded.rows[indices]

    def __len__(self) -> int:
        return len(self.rows)

    def paths(self) -> list[Path]:
        """Each sample's image file, in order."""
        return [self.loaded.groups[g].paths[r] for g, r in self.rows]

    def __getitem__(self, i: int) -> Batch:
        return self.__getitems__([i])

    def __getitems__(self, indices: list[int]) -> Batch:
        rows = self.rows[np.asarray(indices)]
        groups = self.loaded.groups
        images = np.stack([groups[g].images[r] for g, r in rows])
        labels = [groups[g].labels[r] for g, r in rows]
        encoded = [self.loaded.alphabet.encode(label) for label in labels]
        return Batch(
            images=torch.from_numpy(images),
            targets=torch.tensor([i for e in encoded for i in e], dtype=torch.long),
            target_lengths=torch.tensor([len(e) for e in encoded], dtype=torch.long),
            labels=labels,
            paths=[groups[g].paths[r] for g, r in rows],
        )


class ShardedBatchSampler(Sampler[list[int]]):
    """Batches of a per-epoch seeded permutation, split across `world` ranks (a distributed sampler).

    Every rank sees the same number of batches; `start` skips batches already done (for resuming)."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = True,
    ) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world, self.drop_last = rank, world, drop_last
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _mine(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per_rank = self.n // self.world if self.drop_last else -(-self.n // self.world)
        mine = order[self.rank :: self.world][:per_rank]
        return mine

    def __len__(self) -> int:
        m = len(self._mine())
        full = m // self.batch_size if self.drop_last else -(-m // self.batch_size)
        return max(0, full - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        mine = self._mine()
        stop = len(mine) - len(mine) % self.batch_size if self.drop_last else len(mine)
        for b in range(self.start * self.batch_size, stop, self.batch_size):
            yield mine[b : b + self.batch_size]


def _first(batch: Any) -> Batch:
    """The collate function: the dataset's __getitems__ already made the batch."""
    return batch


def loader(dataset: CaptchaDataset, sampler: Sampler[list[int]], cuda: bool) -> DataLoader:
    """On CUDA: two worker processes and pinned memory, so copies overlap compute. On the CPU the batch is
    gathered from the memory map in the main process: a few hundred microseconds, with no worker to feed.

    The loader has a generator of its own: each pass over it draws a seed, and drawn from the global one
    that would shift the augmentation's random numbers of a run resumed mid-epoch against the same run
    uninterrupted. The batches themselves come from the sampler, which is seeded by epoch."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        generator=torch.Generator().manual_seed(0),
        collate_fn=_first,
        num_workers=2 if cuda else 0,
        pin_memory=cuda,
        persistent_workers=cuda,
    )
