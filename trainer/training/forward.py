"""The one forward pass and loss every part of training shares: the optimisation steps (supervised and
semi-supervised), the teacher's readings and validation."""

from __future__ import annotations

import torch
from torch import nn

from trainer.data.preprocess import Preprocessing, normalize
from trainer.device import Runtime, autocast, memory_format
from trainer.inference.decode import ctc_nll, fold_cases


def on_device(images: torch.Tensor, pre: Preprocessing, runtime: Runtime) -> torch.Tensor:
    """A batch's uint8 images, normalised on the run's device: [N, C, H, W] floats."""
    return normalize(images.to(runtime.device, non_blocking=True), pre)


def forward(net: nn.Module, images: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Logits [T, N, C] of normalised images, in the device's memory format, under the run's autocast."""
    with autocast(runtime.device, runtime.precision):
        return net(images.contiguous(memory_format=memory_format(runtime.device)))


def ctc_loss_sum(
    logits: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    folds: list[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Summed CTC loss of a batch, computed in fp32 whatever the autocast precision; an impossible target
    (more characters than frames allow) contributes 0 rather than inf, so one bad sample cannot derail a step.
    `folds` (decode.case_folds): each letter's two cases are one class, so a target in lower case is learnt
    whichever case the model reads it in (a site that ignores case)."""
    log_probs = fold_cases(logits, folds or [])  # [T, N, C]
    return ctc_nll(log_probs, targets, target_lengths, reduction="sum", zero_infinity=True)
