"""The CRNN: convolutions, a bidirectional LSTM and a linear layer giving per-frame CTC logits."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from trainer.data.preprocess import Preprocessing, normalize
from trainer.shape import SHAPE, ModelShape


@dataclass(frozen=True)
class ModelConfig:
    """The network: a ModelShape (flat here, as checkpoints store it) with its output size."""

    num_classes: int  # alphabet size + 1 for the CTC blank
    height: int = SHAPE.height
    width: int = SHAPE.width
    channels: int = 1
    conv: tuple[int, ...] = SHAPE.conv
    hidden: int = SHAPE.hidden
    lstm_layers: int = SHAPE.lstm_layers
    dropout: float = SHAPE.dropout
    max_label_len: int | None = None  # when given, the model refuses a width too narrow for such labels

    @classmethod
    def from_shape(cls, shape: ModelShape, num_classes: int, max_label_len: int | None = None) -> ModelConfig:
        return cls(num_classes=num_classes, **asdict(shape), max_label_len=max_label_len)


def time_steps(width: int) -> int:
    """Frames the model emits for an input `width` pixels wide: the first two stages halve the width."""
    return width // 4


def min_time_steps(max_label_len: int) -> int:
    """CTC needs a frame per character plus a blank between repeated characters."""
    return 2 * max_label_len - 1


MAX_HEIGHT, MAX_WIDTH = 128, 2048  # past these a batch's activations outgrow a machine's memory


def check_input_size(height: int, width: int) -> None:
    """The pooling halves the height four times and the width twice; the bounds keep a batch in memory
    (at 4096x4096 one batch asked for 25 GB, at 16000 pixels high the model had 17 M parameters)."""
    if height < 16 or width < 4 or height % 16 or width % 4:
        raise ValueError(f"input height must be a multiple of 16 and width of 4, got {height}x{width}")
    if height > MAX_HEIGHT or width > MAX_WIDTH:
        raise ValueError(
            f"input size {height}x{width} is too large: height up to {MAX_HEIGHT}, width up to {MAX_WIDTH}"
        )


class CRNN(nn.Module):
    """Images [N, C, H, W] in, CTC logits [T, N, num_classes] out (T = time_steps(W))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        check_input_size(config.height, config.width)
        if config.max_label_len and time_steps(config.width) < min_time_steps(config.max_label_len):
            need = min_time_steps(config.max_label_len)
            raise ValueError(
                f"input width {config.width} gives {time_steps(config.width)} time steps, but labels of "
                f"{config.max_label_len} characters need at least {need}: use a width of {4 * need} or more"
            )
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
        feat = c4 * (config.height // 16)
        self.proj = nn.Linear(feat, config.hidden)
        self.rnn = nn.LSTM(
            config.hidden,
            config.hidden,
            num_layers=config.lstm_layers,
            bidirectional=True,
            dropout=config.dropout if config.lstm_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.hidden, config.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.cnn(images)  # [N, C4, H/16, W/4]
        n, c, h, w = x.shape
        x = x.permute(3, 0, 1, 2).reshape(w, n, c * h)  # [T, N, C4 * H/16], T = W/4
        x = torch.relu(self.proj(x))  # [T, N, hidden]
        x, _ = self.rnn(x)  # [T, N, 2 * hidden]
        return self.head(self.dropout(x))  # [T, N, num_classes]


class ImageReader(nn.Module):
    """The CRNN with its input normalisation: uint8 images [N, H, W] in, logits [N, T, num_classes] out.
    What prediction runs and what export writes, so the two compute the same function."""

    def __init__(self, model: CRNN, pre: Preprocessing) -> None:
        super().__init__()
        self.model = model
        self.pre = pre

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(normalize(images, self.pre)).transpose(0, 1)
