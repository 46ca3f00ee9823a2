"""Self-describing checkpoints: plain data that torch.load(..., weights_only=True) reads, written atomically.

The file is a dict (its keys unchanged since the first version); this module alone reads and writes it.
Everything else takes typed records: ModelRecord (best.pt: weights and what reading needs) and ResumeState
(last.pt: a ModelRecord and what continuing the run needs)."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import captchagen
from captchagen import atomic
from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput, CaptchagenError, check_format
from trainer import models
from trainer.data.preprocess import Preprocessing
from trainer.models.config import ModelConfig
from trainer.records import Metrics, PartialCounts

FORMAT = "captchagen-crnn"
# 2: every checkpoint carries its binding, so one without it has been edited and is refused. 1 (read still):
# made before bindings, or in the weeks they were optional; a binding it has is checked.
FORMAT_VERSION = 2
OLDER_VERSIONS = (1,)


RESUMABLE = ("optimizer", "rng", "position", "scheduler")  # what last.pt has beyond the model


@dataclass(frozen=True)
class ModelRecord:
    """What best.pt holds: everything needed to read with the model, as plain data, no code. `binding` ties
    the alphabet, preprocessing and model config to these weights (None in checkpoints made before it)."""

    weights: dict[str, torch.Tensor]
    alphabet: str
    preprocessing: dict[str, Any]
    model_config: dict[str, Any]
    train_config: dict[str, Any]  # trainer.training.request.TrainRecord's dict: the training's own record
    metrics: Metrics
    epoch: int | None = None
    version: str | None = None  # the captchagen that wrote it
    binding: str | None = None
    format_version: int = FORMAT_VERSION  # of the file it was read from (what a missing binding means)

    @classmethod
    def of(
        cls,
        model: torch.nn.Module,
        alphabet: Alphabet,
        pre: Preprocessing,
        config: ModelConfig,
        train_config: dict[str, Any],
        metrics: Metrics,
        epoch: int,
    ) -> ModelRecord:
        """The record of a model being trained, bound to its weights."""
        record = cls(
            weights={k: v.detach().cpu() for k, v in model.state_dict().items()},
            alphabet=alphabet.chars,
            preprocessing=pre.to_dict(),
            model_config=asdict(config),
            train_config=train_config,
            metrics=metrics,
            epoch=epoch,
            version=captchagen.__version__,
        )
        return replace(record, binding=binding(record.payload()))

    @classmethod
    def from_payload(cls, data: dict[str, Any], source: str | Path = "the checkpoint") -> ModelRecord:
        """A checkpoint's dict as a record; CaptchagenError naming `source` when its description is damaged."""
        try:
            return cls(
                weights=data["model"],
                alphabet=data["alphabet"],
                preprocessing=data["preprocessing"],
                model_config=data["model_config"],
                train_config=data.get("train_config", {}),
                metrics=Metrics.from_dict(data.get("metrics", {})),
                epoch=data.get("epoch"),
                version=data.get("captchagen_version"),
                binding=data.get("binding"),
                format_version=data.get("format_version", FORMAT_VERSION),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CaptchagenError(f"{source}: its description is damaged ({type(e).__name__}: {e})") from None

    def payload(self) -> dict[str, Any]:
        """The dict written to the file: the keys every version of best.pt has had."""
        data = {
            "model": self.weights,
            "alphabet": self.alphabet,
            "preprocessing": self.preprocessing,
            "model_config": self.model_config,
            "train_config": self.train_config,
            "metrics": self.metrics.to_dict(),
            "epoch": self.epoch,
            "captchagen_version": self.version,
        }
        return data if self.binding is None else {**data, "binding": self.binding}

    def config(self) -> ModelConfig:
        """The model config; a checkpoint made before architectures had names is a `crnn` (the default)."""
        return ModelConfig.from_dict(self.model_config)


@dataclass(frozen=True)
class RngState:
    """torch's random generator states: the CPU's, and the current CUDA device's on a GPU run."""

    cpu: torch.Tensor
    cuda: torch.Tensor | None = None

    @classmethod
    def now(cls, cuda: bool) -> RngState:
        return cls(torch.get_rng_state(), torch.cuda.get_rng_state() if cuda else None)

    def restore(self, cuda: bool) -> None:
        """Set the generators to this state (the CUDA one only on a GPU run that saved one)."""
        torch.set_rng_state(self.cpu)
        if cuda and self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda)

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> RngState:
        return cls(saved["torch"], saved.get("cuda"))

    def to_dict(self) -> dict[str, Any]:
        return {"torch": self.cpu, "cuda": self.cuda}


@dataclass(frozen=True)
class ResumeState:
    """What last.pt holds beyond its model: the optimiser and RNG states, where to go on from (epoch, batch
        of it), the schedule's step count and the seconds trained, the teacher of an `unlabeled` run, and what
        an epoch interrupted midway had counted (None at an epoch's start), and the round of ranked pseudo-labels
    it is in (trainer.training.pseudo.Round.to_dict: a resumed round learns the labels it began with)."""

    model: ModelRecord
    optimizer: dict[str, Any]
    rng: RngState
    epoch: int
    batch: int
    step: int
    elapsed: float
    teacher: dict[str, torch.Tensor] | None = None
    partial: PartialCounts | None = None
    pseudo_round: dict[str, Any] | None = None  # the round of ranked pseudo-labels the run is in

    @classmethod
    def from_payload(cls, data: dict[str, Any], source: str | Path = "the checkpoint") -> ResumeState:
        if not all(key in data for key in RESUMABLE):
            raise BadInput(
                f"{source} holds a model but not the state to resume from; pass the run folder or its last.pt"
            )
        model = ModelRecord.from_payload(data, source)
        try:
            return cls(
                model=model,
                optimizer=data["optimizer"],
                rng=RngState.from_dict(data["rng"]),
                epoch=data["position"]["epoch"],
                batch=data["position"]["batch"],
                step=data["scheduler"]["step"],
                elapsed=data["scheduler"]["elapsed"],
                teacher=data.get("teacher"),
                # made before partial counts were kept, or at an epoch's start: none
                partial=PartialCounts.from_dict(data["partial"]) if data.get("partial") else None,
                pseudo_round=data.get("pseudo_round"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CaptchagenError(f"{source}: its training state is damaged ({type(e).__name__}: {e})") from None

    def payload(self) -> dict[str, Any]:
        data = {
            **self.model.payload(),
            "optimizer": self.optimizer,
            "rng": self.rng.to_dict(),
            "position": {"epoch": self.epoch, "batch": self.batch},
            "scheduler": {"step": self.step, "elapsed": self.elapsed},
        }
        if self.teacher is not None:
            data["teacher"] = self.teacher
        if self.partial is not None:
            data["partial"] = self.partial.to_dict()
        if self.pseudo_round is not None:
            data["pseudo_round"] = self.pseudo_round
        return data


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


def save(path: Path, record: ModelRecord | ResumeState) -> None:
    """Written atomically: a reader never sees half a checkpoint."""
    write(path, record.payload())


def write(path: Path, payload: dict[str, Any]) -> None:
    """A checkpoint's dict as stored (`load`'s counterpart), with the format's name and version. It is
    serialised in memory first: torch.save writing to a full disk raises a RuntimeError that says nothing of
    the disk, where a plain write raises OSError(ENOSPC), which the commands report in one line."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, buffer)
    atomic.write_bytes(Path(path), buffer.getvalue())


def read(path: str | Path) -> ModelRecord:
    """The model a checkpoint file holds (best.pt or last.pt); CaptchagenError if it is not ours."""
    return ModelRecord.from_payload(load(path), path)


def read_resumable(path: str | Path) -> ResumeState:
    """What last.pt holds; BadInput if the file holds only a model."""
    return ResumeState.from_payload(load(path), path)


def load(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict as stored, read without running any code from it; CaptchagenError if it is not
    ours. The format's own readers (read, read_resumable) and its tests use it; everything else takes records."""
    path = Path(path)
    if not path.is_file():
        raise CaptchagenError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any failure to unpickle means it is not a checkpoint we wrote
        raise CaptchagenError(f"{path} is not a captchagen checkpoint ({type(e).__name__})") from None
    check_format(data, path, FORMAT, FORMAT_VERSION, "captchagen checkpoint", OLDER_VERSIONS)
    return data


def load_model(record: ModelRecord, source: str | Path = "the checkpoint") -> tuple[nn.Module, Alphabet, Preprocessing]:
    """The model with its weights, and the alphabet and preprocessing it was trained with, once they are
    checked to belong together (CaptchagenError, naming `source`, if not: a mismatch would read shifted or
    empty strings with no error). One made before `binding` is checked on the class count alone."""
    try:
        alphabet = Alphabet(record.alphabet)
        pre = Preprocessing(**record.preprocessing)
        config = record.config()
    except (KeyError, TypeError, ValueError) as e:
        raise CaptchagenError(f"{source}: its description is damaged ({type(e).__name__}: {e})") from None
    if record.binding is None and record.format_version >= 2:
        raise CaptchagenError(
            f"{source}: it carries no binding, which every checkpoint of its format has (removed after it was "
            "saved?), so nothing ties its alphabet and preprocessing to its weights; it is not used"
        )
    if record.binding is not None and record.binding != binding(record.payload()):
        raise CaptchagenError(
            f"{source}: its alphabet, preprocessing or model config no longer match its weights (edited after "
            "it was saved?); it would read wrong characters"
        )
    if (pre.height, pre.channels) != (config.height, config.channels):
        raise CaptchagenError(
            f"{source}: its preprocessing gives images {pre.height} pixels high in {pre.channels} channel(s), but "
            f"its network takes {config.height} in {config.channels}; its description is damaged"
        )
    if config.num_classes != alphabet.num_classes:
        raise CaptchagenError(
            f"{source}: its alphabet has {len(alphabet)} characters but the model has {config.num_classes} output "
            f"classes ({len(alphabet) + 1} expected: one per character and the CTC blank)"
        )
    bad = [k for k, v in record.weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CaptchagenError(f"{source}: its weights hold NaN or infinite values ({bad[0]}); it cannot read")
    try:
        model = models.build(config)
    except ValueError as e:  # an architecture this version does not know
        raise CaptchagenError(f"cannot build the model: {e}") from None
    try:
        model.load_state_dict(record.weights)
    except RuntimeError as e:  # missing or extra keys, or shapes other than the config's
        first = str(e).strip().splitlines()[0][:200]
        raise CaptchagenError(f"{source}: its weights do not fit its model config ({first})") from None
    model.eval()
    return model, alphabet, pre


def model_name(path: Path) -> str:
    """How a checkpoint is named to users: its run folder and file, e.g. 20261121-204510/best.pt."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
