"""Optimisation steps, an epoch of them, and the check that training has not diverged.

A step is an object made once per run: SupervisedStep (labelled images) or semi.SemiStep (labelled and
unlabelled ones). Both are a Step: the same images (normalised, augmented, on the device, in its memory
format), the same forward pass under autocast, the same CTC loss and the same update (clipped, through the
fp16 scaler); they differ only in what they learn from a batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from captchagen.errors import CaptchagenError
from trainer.data import loading as data
from trainer.data.augment import random_affine
from trainer.device import Runtime, all_sum
from trainer.records import Metrics
from trainer.training.events import BatchDone, Events, PseudoCounts
from trainer.training.forward import ctc_loss_sum, forward, on_device
from trainer.training.plan import Plan
from trainer.training.resume import Position


class Step:
    """What every kind of step shares; a subclass's __call__ learns from one batch and returns its loss per
    image. A step that learns pseudo-labels (semi.SemiStep) counts them per epoch; a supervised one has none."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, plan: Plan):
        self.net, self.optimizer, self.scaler = net, optimizer, scaler
        self.pre, self.runtime, self.schedule = plan.pre, plan.runtime, plan.schedule

    def new_epoch(self, epoch: int = 0, carried: dict[str, Any] | None = None) -> None:
        """Start epoch `epoch`'s (0-based) own counts afresh; `carried`: what carried() gave when that epoch
        stopped midway (a resume goes on with it)."""

    def carried(self) -> dict[str, Any] | None:
        """What an epoch stopped midway must go on with when resumed, beyond the counts (None: nothing)."""
        return None

    def pseudo_so_far(self) -> tuple[int, int]:
        """Pool images read and readings learnt so far this epoch, by this process."""
        return 0, 0

    def pseudo_report(self, val_batches: Iterable[data.Batch]) -> PseudoCounts | None:
        """The epoch's pseudo-labelling, summed over the processes, at its end; None: this step learns none."""
        return None

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
    at: Position,
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


def kept(run: Path, best: Metrics) -> str:
    if not best.validated:
        return "nothing was saved"
    return f"{run / 'best.pt'} (epoch {best.epoch}) and {run / 'last.pt'} hold the last good weights"
