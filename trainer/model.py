"""Building a network by its architecture's name, and the network with its input normalisation.

The config and the size rules are in trainer.models.config (free of torch). Each architecture
(trainer/models/) is a backbone of convolutions under the same head: a projection of each column of
features into a bidirectional LSTM and a linear layer giving per-frame CTC logits.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.data.preprocess import Preprocessing, normalize
from trainer.models import get
from trainer.models.config import ModelConfig


def build_model(config: ModelConfig) -> nn.Module:
    """The network `config.arch` names, with fresh weights (ValueError for an unknown name, or from the
    network's constructor, trainer.models.arch.SequenceHead, for a bad size)."""
    return get(config.arch).build(config)


class ImageReader(nn.Module):
    """A network with its input normalisation: uint8 images [N, H, W] in, logits [N, T, num_classes] out.
    What prediction runs and what export writes, so the two compute the same function."""

    def __init__(self, model: nn.Module, pre: Preprocessing) -> None:
        super().__init__()
        self.model = model
        self.pre = pre

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(normalize(images, self.pre)).transpose(0, 1)
