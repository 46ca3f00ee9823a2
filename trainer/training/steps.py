"""One optimisation step, one epoch of them, and the check that training has not diverged."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from captchagen.errors import CaptchagenError
from trainer.data import loading as data
from trainer.data.augment import random_affine
from trainer.data.preprocess import Preprocessing, normalize
from trainer.device import Dist, all_sum, autocast, memory_format
from trainer.training.config import TrainConfig
from trainer.training.events import BatchDone, Events
from trainer.training.resume import Progress
from trainer.training.validate import ctc_loss_sum


def train_step(
    net,
    optimizer,
    scaler,
    batch: data.Batch,
    pre: Preprocessing,
    device: torch.device,
    precision: str,
    cfg: TrainConfig,
) -> float:
    """One optimisation step on a batch; returns the mean CTC loss per image."""
    images = normalize(batch.images.to(device, non_blocking=True), pre)  # [N, C, H, W]
    if cfg.augment:
        images = random_affine(images)
    images = images.contiguous(memory_format=memory_format(device))
    with autocast(device, precision):
        logits = net(images)  # [T, N, C]
    loss = ctc_loss_sum(logits, batch.targets, batch.target_lengths) / len(batch.labels)
    optimise(loss, optimizer, scaler, cfg.clip)
    return float(loss.detach())


def optimise(loss: torch.Tensor, optimizer, scaler, clip: float) -> None:
    """Backward through `loss`, clip the gradients' norm to `clip`, and step (through the fp16 scaler)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, clip)
    scaler.step(optimizer)
    scaler.update()


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
    info: Dist,
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
        if all_sum(torch.tensor([float(not math.isfinite(loss_value))]), info).item() > 0:
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
