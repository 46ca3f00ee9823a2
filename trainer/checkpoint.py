"""Self-describing checkpoints: plain data that torch.load(..., weights_only=True) reads, written atomically."""

from __future__ import annotations

import hashlib
import json
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
from trainer.model import build_model as make_network
from trainer.models.config import ModelConfig

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
    """Everything needed to read with the model (best.pt): plain data, no code; `binding` ties the alphabet,
    preprocessing and model config to these weights."""
    payload = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "alphabet": alphabet.chars,
        "preprocessing": pre.to_dict(),
        "model_config": asdict(model_config),
        "train_config": train_config,
        "metrics": metrics,
        "epoch": epoch,
        "captchagen_version": captchagen.__version__,
    }
    return {**payload, "binding": binding(payload)}


def binding(data: dict[str, Any]) -> str:
    """SHA-256 of what a reading depends on beyond the code: the weights, the alphabet (which class is which
    character), the preprocessing and the model config. An alphabet or preprocessing edited after saving, or
    weights from another model, no longer match it."""
    h = hashlib.sha256()
    described = {key: data[key] for key in ("alphabet", "preprocessing", "model_config")}
    h.update(json.dumps(described, sort_keys=True).encode())
    for key in sorted(data["model"]):
        tensor = data["model"][key].detach().cpu().contiguous()
        h.update(key.encode() + str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


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


def build_model(
    data: dict[str, Any], source: str | Path = "the checkpoint"
) -> tuple[nn.Module, Alphabet, Preprocessing]:
    """The model with its weights, and the alphabet and preprocessing it was trained with, once they are
    checked to belong together (CaptchagenError, naming `source`, if not: a mismatch would read shifted or
    empty strings with no error). A checkpoint made before architectures had names is a `crnn`
    (ModelConfig's default); one made before `binding` is checked on the class count alone."""
    try:
        alphabet = Alphabet(data["alphabet"])
        pre = Preprocessing(**data["preprocessing"])
        config = model_config(data)
    except (KeyError, TypeError, ValueError) as e:
        raise CaptchagenError(f"{source}: its description is damaged ({type(e).__name__}: {e})") from None
    if "binding" in data and data["binding"] != binding(data):
        raise CaptchagenError(
            f"{source}: its alphabet, preprocessing or model config no longer match its weights (edited after "
            "it was saved?); it would read wrong characters"
        )
    if config.num_classes != alphabet.num_classes:
        raise CaptchagenError(
            f"{source}: its alphabet has {len(alphabet)} characters but the model has {config.num_classes} output "
            f"classes ({len(alphabet) + 1} expected: one per character and the CTC blank)"
        )
    bad = [k for k, v in data["model"].items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CaptchagenError(f"{source}: its weights hold NaN or infinite values ({bad[0]}); it cannot read")
    try:
        model = make_network(config)
    except ValueError as e:  # an architecture this version does not know
        raise CaptchagenError(f"cannot build the model: {e}") from None
    try:
        model.load_state_dict(data["model"])
    except RuntimeError as e:  # missing or extra keys, or shapes other than the config's
        first = str(e).strip().splitlines()[0][:200]
        raise CaptchagenError(f"{source}: its weights do not fit its model config ({first})") from None
    model.eval()
    return model, alphabet, pre


def model_name(path: Path) -> str:
    """How a checkpoint is named to users: its run folder and file, e.g. 20261121-204510/best.pt."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
