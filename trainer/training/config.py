"""The training config: one frozen dataclass whose fields the `captchagen train` options map onto.

Kept free of torch so that the CLI can show these defaults in --help without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.shape import SHAPE, ModelShape


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; written to the run's config.json and into its checkpoints."""

    data: str = "data/captchas"
    val_data: str | None = None
    val_fraction: float = 0.05
    alphabet: str | None = None
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: float = 0.03
    clip: float = 5.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    time_limit: float | None = None  # minutes of training (cache building not included)
    # The model's shape, one option each; defaults from trainer.shape.
    height: int = SHAPE.height
    width: int = SHAPE.width
    conv: tuple[int, ...] = SHAPE.conv
    hidden: int = SHAPE.hidden
    lstm_layers: int = SHAPE.lstm_layers
    dropout: float = SHAPE.dropout
    augment: bool = True
    skip_bad: bool = False
    runs_dir: str = "runs"
    name: str | None = None
    cache_dir: str | None = None
    workers: int = 1  # processes decoding images into the cache

    @property
    def shape(self) -> ModelShape:
        return ModelShape(self.height, self.width, tuple(self.conv), self.hidden, self.lstm_layers, self.dropout)
