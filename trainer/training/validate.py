"""Validation during training: the model over a loader, as summed metric counts (and the training loss)."""

from __future__ import annotations

import torch
from torch import nn

from captchagen.alphabet import Alphabet
from trainer.data.preprocess import Preprocessing, normalize
from trainer.device import Dist, all_sum, autocast, memory_format
from trainer.inference.decode import ctc_nll, greedy
from trainer.metrics import Counts


def ctc_loss_sum(logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Summed CTC loss of a batch, computed in fp32 whatever the autocast precision; an impossible target
    (more characters than frames allow) contributes 0 rather than inf, so one bad sample cannot derail a step."""
    log_probs = logits.float().log_softmax(2)  # [T, N, C]
    return ctc_nll(log_probs, targets, target_lengths, reduction="sum", zero_infinity=True)


@torch.no_grad()
def validate(
    model: nn.Module,
    batches,  # any iterable of data.Batch
    alphabet: Alphabet,
    pre: Preprocessing,
    device: torch.device,
    precision: str = "fp32",
    info: Dist | None = None,
) -> Counts:
    """Counts over every batch; across all processes when distributed."""
    model.eval()
    counts = Counts()
    for batch in batches:
        images = normalize(batch.images.to(device, non_blocking=True), pre)
        images = images.contiguous(memory_format=memory_format(device))
        with autocast(device, precision):
            logits = model(images)
        loss = ctc_loss_sum(logits, batch.targets, batch.target_lengths)
        counts.add(greedy(logits, alphabet), batch.labels, float(loss))
    if info is not None and info.enabled:
        counts = Counts.from_tensor(all_sum(counts.to_tensor(), info))
    return counts
