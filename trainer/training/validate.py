"""Validation during training: the model over a loader, as summed metric counts (and the training loss)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from captchagen.alphabet import Alphabet
from trainer.data.loading import Batch
from trainer.data.preprocess import Preprocessing
from trainer.device import Runtime, all_sum
from trainer.inference.decode import greedy
from trainer.metrics import Counts
from trainer.training.forward import ctc_loss_sum, forward, on_device


@torch.no_grad()
def validate(
    model: nn.Module, batches: Iterable[Batch], alphabet: Alphabet, pre: Preprocessing, runtime: Runtime
) -> Counts:
    """Counts over every batch; across all processes when distributed."""
    model.eval()
    counts = Counts()
    for batch in batches:
        logits = forward(model, on_device(batch.images, pre, runtime), runtime)
        loss = ctc_loss_sum(logits, batch.targets, batch.target_lengths)
        counts.add(greedy(logits, alphabet), batch.labels, float(loss))
    if runtime.dist.enabled:
        counts = Counts.from_tensor(all_sum(counts.to_tensor(), runtime.dist))
    return counts
