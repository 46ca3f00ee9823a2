"""Architectures by name. Each is one module here (its layers, and an Arch saying how to build it and what
fine-tuning may copy) plus its entry in trainer.models.catalog (its name, module and summary for
`train --help`, free of torch); nothing else in the trainer names a layer. Importing this package imports no
torch: an architecture's module is imported when it is first asked for (by `get`, or `build`, which makes
its network)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from trainer.models.catalog import CATALOG

if TYPE_CHECKING:
    from torch import nn

    from trainer.models.arch import Arch
    from trainer.models.config import ModelConfig

_PLUGINS: dict[str, Arch] = {}  # added by `register`: a plug-in, or a test's toy architecture


def names() -> list[str]:
    """Every architecture's name: the catalog's, then those registered."""
    return [*CATALOG, *(n for n in _PLUGINS if n not in CATALOG)]


def get(name: str) -> Arch:
    """The architecture called `name`; ValueError naming the choices for any other."""
    if name in _PLUGINS:
        return _PLUGINS[name]
    entry = CATALOG.get(name)
    if entry is None:
        raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(names())}")
    arch: Arch = importlib.import_module(entry.module).ARCH
    if arch.name != name:  # a catalog line pointing at another architecture's module
        raise ImportError(f"{entry.module} defines the architecture {arch.name!r}, the catalog says {name!r}")
    return arch


def build(config: ModelConfig) -> nn.Module:
    """The network `config.arch` names, with fresh weights (ValueError for an unknown name, or from the
    network's constructor, trainer.models.arch.SequenceHead, for a bad size)."""
    return get(config.arch).build(config)


def register(arch: Arch) -> None:
    """Add an architecture under its name (it takes precedence over a catalog entry of that name)."""
    _PLUGINS[arch.name] = arch


def unregister(name: str) -> None:
    _PLUGINS.pop(name, None)
