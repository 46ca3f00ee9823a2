"""Optimisation steps, an epoch of them, and the check that training has not diverged.

A step is an object made once per run: SupervisedStep (labelled images) or semi.SemiStep (labelled and
unlabelled ones). Both are a Step: the same images (normalised, augmented, on the device, in its memory
format), the same forward pass under autocast, the same CTC loss and the same update (clipped, through the
fp16 scaler); they differ only in what they learn from a batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from captchagen.errors import CaptchagenError
from trainer.data import loading as data
from trainer.data.augment import random_affine
from trainer.device import Runtime, all_sum
from trainer.training.events import BatchDone, Events
from trainer.training.forward import ctc_loss_sum, forward, on_device
from trainer.training.plan import Plan
from trainer.training.resume import Progress


@dataclass
class PseudoCounts:
    """An epoch's pseudo-labelling, summed over the processes: what the epoch's metrics row records."""

    read: int = 0  # unlabelled images the teacher read
    passed: int = 0  # readings at or over the threshold, learnt
    val: int = 0  # validation images the teacher read at the end of the epoch
    val_confident: int = 0  # of them, readings at or over the threshold
    val_right: int = 0  # of those, readings equal to the label

    def as_row(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("read", "passed", "val", "val_confident", "val_right")}


class Step:
    """What every kind of step shares; a subclass's __call__ learns from one batch and returns its loss per
    image. `counts` are the epoch's pseudo-labels so far (none but a SemiStep's learns any)."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, plan: Plan):
        self.net, self.optimizer, self.scaler = net, optimizer, scaler
        self.pre, self.runtime, self.schedule = plan.pre, plan.runtime, plan.schedule
        self.counts = PseudoCounts()

    def new_epoch(self) -> PseudoCounts:
        """Start an epoch's counts afresh; the loop sums them over processes at the epoch's end."""
        self.counts = PseudoCounts()
        return self.counts

    def images(self, batch: data.Batch) -> torch.Tensor:
        return on_device(batch.images, self.pre, self.runtime)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """The weak augmentation every labelled image gets (`augment`)."""
        return random_affine(images) if self.schedule.augment else images

    def loss(self, images: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor, per: int) -> torch.Tensor:
        """The forward pass over `images` and their summed CTC loss against `targets`, divided by `per`."""
        return ctc_loss_sum(forward(self.net, images, self.runtime), targets, lengths) / per

    def update(self, loss: torch.Tensor) -> float:
        """Backward through `loss`, clip the gradients' norm to `clip`, and step (through the fp16 scaler)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.schedule.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def __call__(self, batch: data.Batch) -> float:
        raise NotImplementedError


class SupervisedStep(Step):
    """A step on labelled images: the mean CTC loss per image."""

    def __call__(self, batch: data.Batch) -> float:
        images = self.augment(self.images(batch))
        return self.update(self.loss(images, batch.targets, batch.target_lengths, len(batch.labels)))


class Diverged(CaptchagenError):
    """The loss or the weights became NaN or infinite."""


def finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def train_epoch(
    step: Callable[[data.Batch], float],
    loader: Iterable[data.Batch],
    epoch: int,
    start: int,
    at: Progress,
    runtime: Runtime,
    emit: Events,
    should_stop: Callable[[], str | None],
) -> tuple[float, int, int, str | None]:
    """Run `step` on each batch until the epoch ends or `should_stop` gives a reason ("time", "interrupt"):
    (loss sum, images seen, batch index, that reason or None). Raises Diverged, on every process at once, if
    a loss is NaN or infinite."""
    loss_sum, seen, batch_index = 0.0, 0, start
    for batch in loader:
        reason = should_stop()
        if reason:
            return loss_sum, seen, batch_index, reason
        loss_value = step(batch)
        if all_sum(torch.tensor([float(not math.isfinite(loss_value))]), runtime.dist).item() > 0:
            raise Diverged(f"the loss became {loss_value} at epoch {epoch + 1}, batch {batch_index + 1}")
        at.step += 1
        batch_index += 1
        loss_sum += loss_value * len(batch.labels)
        seen += len(batch.labels)
        emit(BatchDone(epoch=epoch + 1, batch=batch_index, loss=loss_value))
    return loss_sum, seen, batch_index, None


def kept(run: Path, best: dict[str, Any]) -> str:
    if "epoch" not in best:
        return "nothing was saved"
    return f"{run / 'best.pt'} (epoch {best['epoch']}) and {run / 'last.pt'} hold the last good weights"
