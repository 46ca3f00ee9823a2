"""Self-describing checkpoints: plain data that torch.load(..., weights_only=True) reads, written atomically."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

import captchagen
from captchagen import atomic
from captchagen.alphabet import Alphabet
from captchagen.errors import CaptchagenError, check_format
from trainer.data.preprocess import Preprocessing
from trainer.model import ModelConfig
from trainer.model import build_model as make_network

FORMAT = "captchagen-crnn"
FORMAT_VERSION = 1


RESUMABLE = ("optimizer", "rng", "position", "scheduler")  # what last.pt has beyond the model


def model_payload(
    model: torch.nn.Module,
    alphabet: Alphabet,
    pre: Preprocessing,
    model_config: ModelConfig,
    train_config: dict[str, Any],
    metrics: dict[str, Any],
    epoch: int,
) -> dict[str, Any]:
    """Everything needed to read with the model (best.pt): plain data, no code."""
    return {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "alphabet": alphabet.chars,
        "preprocessing": pre.to_dict(),
        "model_config": asdict(model_config),
        "train_config": train_config,
        "metrics": metrics,
        "epoch": epoch,
        "captchagen_version": captchagen.__version__,
    }


def resumable_payload(
    payload: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    rng: dict[str, Any],
    position: dict[str, int],
    scheduler: dict[str, float],
) -> dict[str, Any]:
    """A model payload plus what continuing the run needs (last.pt): optimiser and RNG states, the
    position (epoch, batch) to go on from, and the schedule's step count and time trained."""
    extra = {"optimizer": optimizer.state_dict(), "rng": rng, "position": position, "scheduler": scheduler}
    return {**payload, **extra}


def is_resumable(data: dict[str, Any]) -> bool:
    return all(key in data for key in RESUMABLE)


def save(path: Path, payload: dict[str, Any]) -> None:
    """Written atomically: a reader never sees half a checkpoint."""
    with atomic.replacing(path) as tmp:
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, tmp)


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without running any code from it; raise CaptchagenError if it is not ours."""
    path = Path(path)
    if not path.is_file():
        raise CaptchagenError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any failure to unpickle means it is not a checkpoint we wrote
        raise CaptchagenError(f"{path} is not a captchagen checkpoint ({type(e).__name__})") from None
    check_format(data, path, FORMAT, FORMAT_VERSION, "captchagen checkpoint")
    return data


def model_config(data: dict[str, Any]) -> ModelConfig:
    cfg = dict(data["model_config"])
    cfg["conv"] = tuple(cfg["conv"])
    return ModelConfig(**cfg)


def build_model(data: dict[str, Any]) -> tuple[nn.Module, Alphabet, Preprocessing]:
    """The model with its weights, and the alphabet and preprocessing it was trained with. A checkpoint made
    before architectures had names is a `crnn` (ModelConfig's default)."""
    try:
        model = make_network(model_config(data))
    except ValueError as e:  # an architecture this version does not know
        raise CaptchagenError(f"cannot build the model: {e}") from None
    model.load_state_dict(data["model"])
    model.eval()
    return model, Alphabet(data["alphabet"]), Preprocessing(**data["preprocessing"])


def model_name(path: Path) -> str:
    """How a checkpoint is named to users: its run folder and file, e.g. 20261121-204510/best.pt."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
