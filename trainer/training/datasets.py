"""A run's data, as its plan says: the training and validation sets with any mixed-in sets, the batch
sampler, and inputs.png."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from captchagen.errors import BadInput
from trainer.data import loading as data
from trainer.data import overlap
from trainer.data.inputs import write_inputs_png
from trainer.data.mixing import StreamBatchSampler, merge
from trainer.data.preprocess import Preprocessing
from trainer.data.sources import UNLABELED
from trainer.device import Dist
from trainer.intervals import SMALL_SET, wilson
from trainer.training.events import CacheProgress, Events, Notice
from trainer.training.plan import Plan, Schedule


@dataclass
class Data:
    train: data.CaptchaDataset
    val: data.CaptchaDataset
    skipped: list[tuple[str, str]]
    sizes: list[int]  # training images of each source: the main one, each mixed-in one, then the unlabelled
    unlabeled: int = 0  # unlabelled images (the last of `sizes` when there are any)

    @property
    def mixed(self) -> int:
        """Images of the mixed-in sets."""
        return sum(self.sizes[1 : len(self.sizes) - (1 if self.unlabeled else 0)])


def load_data(plan: Plan, emit: Events) -> Data:
    """Fill the caches and split the data, as `plan` says. Validation is always on DATA (or `val_data`),
    never on a mix."""

    def load(path: str, how: Preprocessing, unlabeled: bool = False) -> data.Loaded:
        return _load(plan, emit, path, how, unlabeled)

    loaded = load(plan.data, plan.pre)
    if plan.val_data:
        val_loaded = load(plan.val_data, plan.pre)
        train_rows, val = np.arange(len(loaded.rows)), data.CaptchaDataset(val_loaded)
        skipped = loaded.skipped + val_loaded.skipped
    else:
        train_rows, val_rows = data.split(loaded, plan.val_fraction, plan.schedule.seed)
        val, skipped = data.CaptchaDataset(loaded, val_rows), loaded.skipped
    mixed = [load(m.path, m.pre) for m in plan.mix]
    # No image is both trained on and validated on: validation images found among the training ones (the
    # same file, or a copy of it) are dropped from the training side, and the user is told.
    held_out = overlap.HeldOut(val.paths())
    if plan.val_data:
        train_rows = _without_held_out(held_out, loaded, train_rows, "DATA", plan.data, emit)
    mixed = [
        replace(m, rows=m.rows[_without_held_out(held_out, m, np.arange(len(m.rows)), "`mix`", spec.path, emit)])
        for m, spec in zip(mixed, plan.mix, strict=True)
    ]
    pool = []
    if plan.semi is not None:  # read at DATA's preprocessing: the pool is more of DATA's kind of captcha
        path = plan.semi.path
        pool = [_pool(load(path, plan.pre, unlabeled=True), path, val, loaded, train_rows, mixed, emit)]
    merged = merge(loaded, train_rows, mixed + pool)
    sets = Data(
        data.CaptchaDataset(merged),
        val,
        skipped + [s for m in mixed for s in m.skipped],
        [len(train_rows), *(len(m.rows) for m in mixed + pool)],
        unlabeled=sum(len(p.rows) for p in pool),
    )
    _check_sizes(plan, sets, emit)
    return sets


def _load(plan: Plan, emit: Events, path: str, how: Preprocessing, unlabeled: bool) -> data.Loaded:
    """One dataset through its cache. Under torchrun rank 0 fills the cache; the others wait, then read it."""
    info = plan.runtime.dist
    if info.enabled and not info.main:
        torch.distributed.barrier()
    read = data.load_unlabeled if unlabeled else functools.partial(data.load, skip_bad=plan.skip_bad)
    loaded = read(
        Path(path),
        how,
        plan.cache_dir,
        alphabet=plan.alphabet,
        workers=plan.workers,
        progress=lambda done, total: emit(CacheProgress(done=done, total=total, path=path)),
        notice=lambda message: emit(Notice(message)),
        source=plan.sources[path],
    )
    if info.enabled and info.main:
        torch.distributed.barrier()
    return loaded


def _check_sizes(plan: Plan, sets: Data, emit: Events) -> None:
    """A notice for a validation set too small to trust; BadInput for fewer training images than a batch."""
    if len(sets.val) < SMALL_SET:
        lo, hi = wilson(len(sets.val) // 2, len(sets.val))
        emit(
            Notice(
                f"only {len(sets.val)} validation images: an accuracy measured on them is good to about "
                f"±{50 * (hi - lo):.0f} points (95%); give `val_data` or a larger `val_fraction` for a figure to trust"
            )
        )
    batch = plan.schedule.batch_size * plan.runtime.dist.world
    if not streamed(plan) and len(sets.train) < batch:
        raise BadInput(f"{len(sets.train)} training images are fewer than one batch of {batch}")


def _pool(
    pool: data.Loaded,
    path: str,
    val: data.CaptchaDataset,
    loaded: data.Loaded,
    train_rows: np.ndarray,
    mixed: list[data.Loaded],
    emit: Events,
) -> data.Loaded:
    """The unlabelled pool less its copies (under any name) of labelled images, DATA's and the `mix` sets':
    a validation image learnt from its pseudo-label would be validated on after all, and a training image
    already has its label."""
    labelled = overlap.Copies([
        *val.paths(),
        *(loaded.groups[g].paths[r] for g, r in loaded.rows[train_rows]),
        *(m.groups[g].paths[r] for m in mixed for g, r in m.rows),
    ])  # fmt: skip
    keep = np.asarray([not labelled.holds(pool.groups[g].paths[r]) for g, r in pool.rows], dtype=bool)
    dropped = int((~keep).sum())
    if dropped == len(keep):
        raise BadInput(f"every image of `unlabeled` {path} is a labelled training or validation image too")
    if dropped:
        emit(Notice(f"`unlabeled` {path}: {dropped:,} images are labelled ones too; they are left out of the pool"))
    return replace(pool, rows=pool.rows[keep])


def _without_held_out(
    held_out: overlap.HeldOut, loaded: data.Loaded, rows: np.ndarray, what: str, path: str, emit: Events
) -> np.ndarray:
    """`rows` of `loaded` less the validation images among them; says how many went, and refuses to leave none."""
    paths = [loaded.groups[g].paths[r] for g, r in loaded.rows[rows]]
    keep = np.asarray([not held_out.holds(p) for p in paths], dtype=bool)
    dropped = int((~keep).sum())
    if dropped == len(rows):
        raise BadInput(
            f"every training image of {what} {path} is also a validation image; validate on other images "
            "(another `val_data`, or none to hold out a share of DATA)"
        )
    if dropped:
        emit(Notice(f"{what} {path}: {dropped:,} images are validation images too; they are left out of training"))
    return rows[keep]


def streamed(plan: Plan) -> bool:
    """Whether batches are a stream that cycles the images (mixed-in sets, a pool, or epochs in steps)
    rather than passes over them."""
    return bool(plan.mix) or plan.semi is not None or plan.schedule.steps_per_epoch is not None


def train_sampler(plan: Plan, sets: Data) -> data.ShardedBatchSampler | StreamBatchSampler:
    """The run's training batches, as its plan says (see batch_sampler)."""
    per_batch = plan.semi.per_batch if plan.semi is not None and sets.unlabeled else 0
    return batch_sampler(sets.sizes, plan.schedule, [m.share for m in plan.mix], per_batch, plan.runtime.dist)


def batch_sampler(
    sizes: list[int], schedule: Schedule, shares: list[float], per_batch: int, info: Dist
) -> data.ShardedBatchSampler | StreamBatchSampler:
    """Passes over shuffled images, or (with mixed-in sets at `shares`, `per_batch` unlabelled images, or
    steps per epoch) a stream of mixed batches over sources of `sizes` images. The unlabelled pool is one
    more source, added to the `batch_size` labelled images (as FixMatch does): fine-tuning on the labels gets
    as many of them per step with the pool as without it. With a pool the shares are exact fractions, so
    every batch holds the same number of each; without one they are the `mix` shares as given, so runs
    without a pool draw the batches they always drew."""
    if shares or per_batch or schedule.steps_per_epoch is not None:
        fractions: list[float | Fraction] = list(shares)
        total = schedule.batch_size
        if per_batch:
            total += per_batch
            labelled = Fraction(schedule.batch_size, total)
            fractions = [*(Fraction(f) * labelled for f in shares), 1 - labelled]
        return StreamBatchSampler(
            sizes,
            fractions,
            total,
            steps=schedule.steps_per_epoch,
            seed=schedule.seed,
            rank=info.rank,
            world=info.world,
        )
    return data.ShardedBatchSampler(
        sum(sizes), schedule.batch_size, shuffle=True, seed=schedule.seed, rank=info.rank, world=info.world
    )


def write_inputs(run: Path, sets: Data, count: int = 24, per_mix: int = 8) -> Path:
    """run/inputs.png: the first training images of the main source, then of each mixed-in one (labelled
    so), as the model receives them."""
    starts = np.cumsum([0, *sets.sizes])
    shown = [min(per_mix, n) for n in sets.sizes[1:]]
    rows = list(range(min(count - sum(shown), sets.sizes[0])))
    rows += [int(start) + i for start, n in zip(starts[1:-1], shown, strict=True) for i in range(n)]
    batch = sets.train.__getitems__(rows)
    labels = [
        label if i < sets.sizes[0] else "(unlabelled)" if label == UNLABELED else f"{label} (mix)"
        for i, label in zip(rows, batch.labels, strict=True)
    ]
    return write_inputs_png(batch.images.numpy(), labels, run / "inputs.png")
