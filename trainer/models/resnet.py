"""`resnet`, a residual backbone for hard captchas: a 3x3 stem, then six basic residual blocks (two 3x3
convolutions with batch norm and a shortcut each) in four stages of `conv` channels (32-64-96-128 by
default). The first two stages halve height and width (W/4: the time steps); the last two halve only the
height, so every column keeps its own frame. 1.3 M parameters with the default head (0.57 M for crnn).

Why residual: the shortcut carries a block's input past its convolutions, so the gradient of the CTC loss
reaches the first layers undiminished, and a deeper stack trains from random weights where a plain one
stays at its starting loss. The last batch norm of each block starts at zero, so each block starts as the
identity (Goyal et al., 2017): the network begins shallow and grows into its depth.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.models.arch import Arch, SequenceHead
from trainer.models.config import ModelConfig

BLOCKS = (1, 1, 2, 2)  # residual blocks per stage


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        nn.init.zeros_(self.bn2.weight)  # the block starts as the identity
        self.shortcut: nn.Module = nn.Identity()
        if stride != (1, 1) or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetCRNN(SequenceHead):
    """Images [N, C, H, W] in, CTC logits [T, N, num_classes] out (T = W / 4)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        widths = tuple(config.conv)
        strides = ((2, 2), (2, 2), (2, 1), (2, 1))  # H/16 and W/4 in all
        self.stem = nn.Sequential(
            nn.Conv2d(config.channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        cin = widths[0]
        for cout, stride, count in zip(widths, strides, BLOCKS, strict=True):
            for i in range(count):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else (1, 1)))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.add_head(config, widths[-1] * (config.height // 16))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.read_columns(self.blocks(self.stem(images)))  # features [N, C, H/16, W/4]


ARCH = Arch(
    name="resnet",
    build=ResNetCRNN,
    first_conv="stem.0.weight",
)
