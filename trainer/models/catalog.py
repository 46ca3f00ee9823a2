"""The architectures there are, free of torch: each one's name, the module that builds it, and its line in
`train --help`. The registry (trainer.models.get) imports an architecture's module from here when it is
first asked for, so `--help` lists them without importing torch. (Planning a run does import torch, through
the checkpoint and device modules it reads; nothing here needs it.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    module: str  # defines ARCH, a trainer.models.arch.Arch of this name
    summary: str  # for `train --help`


CATALOG: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            "crnn",
            "trainer.models.crnn",
            "5 convolutions (32-128 channels), 0.57 M parameters, fast, for captchas like ours",
        ),
        Entry(
            "resnet",
            "trainer.models.resnet",
            "a stem and 6 residual blocks (32-128 channels), 1.3 M parameters, for hard captchas",
        ),
    )
}
