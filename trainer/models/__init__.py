"""Architectures by name. Each is one module here (its layers, and an Arch saying how to build it and what
fine-tuning may copy) plus its line in ARCHS below and in trainer.shape.ARCHS (its name and summary for
`train --help`, kept free of torch); nothing else in the trainer names a layer."""

from __future__ import annotations

from trainer.models import crnn, resnet
from trainer.models.arch import Arch
from trainer.shape import ARCHS as SUMMARIES

ARCHS: dict[str, Arch] = {a.name: a for a in (crnn.ARCH, resnet.ARCH)}
if set(ARCHS) != set(SUMMARIES):  # a module added in one place, not the other
    raise ImportError(f"trainer.shape.ARCHS names {sorted(SUMMARIES)}, the registry {sorted(ARCHS)}")


def get(name: str) -> Arch:
    """The architecture called `name`; ValueError naming the choices for any other."""
    try:
        return ARCHS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(ARCHS)}") from None


def register(arch: Arch) -> None:
    """Add an architecture (a plug-in, or a test's toy one) under its name."""
    ARCHS[arch.name] = arch
