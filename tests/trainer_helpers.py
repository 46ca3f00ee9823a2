"""Tiny datasets and configs for the trainer tests: small enough that a few epochs take seconds."""

from __future__ import annotations

from pathlib import Path

from captchagen.config import GenerationConfig
from captchagen.make import make_dataset

TINY_GEN = GenerationConfig(n=640, alphabet="0123456789", min_len=1, max_len=3, width=64, height=32, shard_size=320)


def tiny_dataset(folder: Path, **changes) -> Path:
    config = GenerationConfig(**{**TINY_GEN.__dict__, **changes})
    make_dataset(config, folder, workers=1, preview=False)
    return folder


def tiny_train_config(data: Path, tmp: Path, **changes):
    from trainer.training.config import TrainConfig

    base = dict(
        data=str(data),
        epochs=2,
        batch_size=32,
        lr=3e-3,
        height=16,
        width=48,
        conv=(8, 16, 16, 24),
        hidden=32,
        val_fraction=0.1,
        runs_dir=str(tmp / "runs"),
        cache_dir=str(tmp / "cache"),
        device="cpu",
        precision="fp32",
    )
    base.update(changes)
    return TrainConfig(**base)
