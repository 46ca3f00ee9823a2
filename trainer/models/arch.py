"""What an architecture says about itself: how to build it and what fine-tuning may copy from a parent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Arch:
    """One architecture. Every one maps an input [N, C, H, W] to CTC logits [T, N, classes] with T = W / 4
    (trainer.model.time_steps) and takes heights that are multiples of 16; its head is `proj` (the columns of
    features, flattened, into the LSTM: the one layer that depends on the height), `rnn` and `head`.
    `first_conv` is the state-dict key of its first convolution, [out, channels, k, k], which fine-tuning
    spreads over R, G and B when a grayscale parent starts a colour child."""

    name: str
    build: Callable[..., nn.Module]  # ModelConfig -> the network, with fresh weights
    first_conv: str
