"""`crnn`, the first architecture: five 3x3 convolutions with batch norm (32-64-96-128 channels, the first
strided), a one-layer BiLSTM and a linear layer: 0.57 M parameters. Fast on the CPU; reads our own captchas
at 99%, but from random weights learns nothing of hard ones (docs/studies/real-ceiling.md)."""

from __future__ import annotations

import torch
from torch import nn

from trainer.models.arch import Arch, SequenceHead
from trainer.models.config import ModelConfig


class CRNN(SequenceHead):
    """Images [N, C, H, W] in, CTC logits [T, N, num_classes] out (T = time_steps(W))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        c1, c2, c3, c4 = config.conv

        def block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            return [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.cnn = nn.Sequential(
            *block(config.channels, c1, stride=2),  # H/2, W/2: a strided first layer costs a quarter of conv+pool
            *block(c1, c2),
            nn.MaxPool2d(2),  # H/4, W/4
            *block(c2, c3),
            *block(c3, c3),
            nn.MaxPool2d((2, 1)),  # H/8, W/4
            *block(c3, c4),
            nn.MaxPool2d((2, 1)),  # H/16, W/4
        )
        self.add_head(config, c4 * (config.height // 16))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.read_columns(self.cnn(images))  # features [N, C4, H/16, W/4]


ARCH = Arch(
    name="crnn",
    build=CRNN,
    first_conv="cnn.0.weight",
)
