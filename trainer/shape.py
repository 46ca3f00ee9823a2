"""The model's shape: the input size (which is also the preprocessed image size) and the layer widths.

The one source of these defaults and of the time steps an input width gives:
TrainRequest's options, ModelConfig (the network) and Preprocessing (the images) all take them from here,
so they cannot drift apart. Free of torch, so `--help` can show them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    height: int = 32  # input height in pixels: a multiple of 16 (four poolings halve it)
    width: int = 128  # input width: a multiple of 4; width // 4 time steps
    conv: tuple[int, ...] = (32, 64, 96, 128)  # channels of the convolution stages
    hidden: int = 128  # LSTM units per direction
    lstm_layers: int = 1
    dropout: float = 0.1
    arch: str = "crnn"  # the backbone (trainer.models.catalog); checkpoints made before there was a choice: crnn


SHAPE = ModelShape()  # the defaults


def time_steps(width: int) -> int:
    """Frames the model emits for an input `width` pixels wide: every architecture's first two stages halve
    the width."""
    return width // 4


def min_time_steps(max_label_len: int) -> int:
    """CTC needs a frame per character plus a blank between repeated characters."""
    return 2 * max_label_len - 1


def reads_labels_of(width: int, max_label_len: int) -> bool:
    """Whether an input `width` pixels wide gives CTC the frames labels of `max_label_len` characters need."""
    return time_steps(width) >= min_time_steps(max_label_len)
