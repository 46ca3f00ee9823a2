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
    # The model's shape, one option each; defaults from trainer.shape. Height and width None: chosen from
    # the images (trainer.data.inputs), or the parent's when fine-tuning.
    height: int | None = None
    width: int | None = None
    conv: tuple[int, ...] = SHAPE.conv
    hidden: int = SHAPE.hidden
    lstm_layers: int = SHAPE.lstm_layers
    dropout: float = SHAPE.dropout
    arch: str | None = None  # trainer.models.ARCHS; None: "crnn", or the parent's when fine-tuning
    augment: bool = True
    skip_bad: bool = False
    runs_dir: str = "runs"
    name: str | None = None
    cache_dir: str | None = None
    workers: int = 1  # processes decoding images into the cache
    threads: int | None = None  # CPU threads for training; None: the cores not busy with other work at the start
    crop: tuple[float, float, float, float] | None = None  # border crop (fractions); chosen with the size
    channels: int | None = None  # 1: grayscale, 3: RGB (--colour); None: the parent's when fine-tuning, else 1
    # Fine-tuning: the checkpoint to start from, and (filled in by train) its name and sha256.
    init_from: str | None = None
    parent: dict | None = None
    mix: tuple[tuple[str, float], ...] = ()  # (dataset, share of every batch) drawn beside `data`
    steps_per_epoch: int | None = None  # None: an epoch is a pass over the training images
    # Filled in by train: each dataset read (data, val_data, mixes) and its manifest's sha256 (or the list
    # file's; None for a loose folder), so a model says exactly what it was trained on.
    sources: dict | None = None

    @property
    def shape(self) -> ModelShape:
        """The shape, once the input size is chosen."""
        if self.height is None or self.width is None:
            raise ValueError("the input size is not chosen yet")
        return ModelShape(
            self.height,
            self.width,
            tuple(self.conv),
            self.hidden,
            self.lstm_layers,
            self.dropout,
            self.arch or SHAPE.arch,
        )


# What `train --init-from` uses for any of these not given: a few hundred images want a lower peak learning
# rate, a longer warm-up share, smaller batches, and epochs counted in steps rather than passes over them.
FINE_TUNE = {"lr": 1e-3, "warmup": 0.1, "batch_size": 32, "epochs": 15, "steps_per_epoch": 50}
