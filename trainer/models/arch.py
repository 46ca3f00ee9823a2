"""What an architecture says about itself (how to build it, what fine-tuning may copy from a parent), the
head every architecture ends in, and ImageReader: any of them with its input normalisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from trainer.data.preprocess import Preprocessing, normalize
from trainer.models.config import ModelConfig, check_input_size, check_time_steps


@dataclass(frozen=True)
class Arch:
    """One architecture. Every one maps an input [N, C, H, W] to CTC logits [T, N, classes] with T = W / 4
    (trainer.shape.time_steps) and takes heights that are multiples of 16; its head is `proj` (the columns of
    features, flattened, into the LSTM: the one layer that depends on the height), `rnn` and `head`.
    `first_conv` is the state-dict key of its first convolution, [out, channels, k, k], which fine-tuning
    spreads over R, G and B when a grayscale parent starts a colour child."""

    name: str
    build: Callable[..., nn.Module]  # ModelConfig -> the network, with fresh weights
    first_conv: str


class SequenceHead(nn.Module):
    """What every architecture ends in: `proj` (each column of features, flattened, into the LSTM; the one
    layer that depends on the height), a bidirectional LSTM `rnn`, and `head`, the CTC logits. A backbone
    subclasses this, builds its layers, then calls `add_head` (last, so the backbone's weights are drawn
    first from the seeded generator, as before there were architectures). Its constructor checks the input
    size and the time steps, for every architecture alike."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        check_input_size(config.height, config.width)
        check_time_steps(config)

    def add_head(self, config: ModelConfig, features_per_column: int) -> None:
        self.proj = nn.Linear(features_per_column, config.hidden)
        self.rnn = nn.LSTM(
            config.hidden,
            config.hidden,
            num_layers=config.lstm_layers,
            bidirectional=True,
            dropout=config.dropout if config.lstm_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.hidden, config.num_classes)

    def read_columns(self, x: torch.Tensor) -> torch.Tensor:
        """Features [N, C, H', T] to logits [T, N, num_classes], a frame per column."""
        n, c, h, w = x.shape
        x = x.permute(3, 0, 1, 2).reshape(w, n, c * h)  # [T, N, C * H']
        x = torch.relu(self.proj(x))  # [T, N, hidden]
        x, _ = self.rnn(x)  # [T, N, 2 * hidden]
        return self.head(self.dropout(x))  # [T, N, num_classes]


class ImageReader(nn.Module):
    """A network with its input normalisation: uint8 images [N, H, W] in, logits [N, T, num_classes] out.
    What prediction runs and what export writes, so the two compute the same function."""

    def __init__(self, model: nn.Module, pre: Preprocessing) -> None:
        super().__init__()
        self.model = model
        self.pre = pre

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(normalize(images, self.pre)).transpose(0, 1)
