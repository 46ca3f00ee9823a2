"""Models shipped inside the package, found the same way after an editable or a plain install.

base.pt is the base model: trained on a broad mix of what `captchagen make` draws (every preset style;
digits, upper and lower case; 1 to 10 characters). It reads captchas with no training, and is the starting
point for `captchagen train --init-from base`. experiments/base_model.py regenerates it from nothing; its model
card (data, training time, accuracy by style and length) is docs/studies/base-model.md. base-v2.pt was
trained from it on the randomised family (experiments/base_model_v2.py; docs/studies/base-model-v2.md).
base-v3.pt, a resnet, was trained from random weights on the `varied` family at several sizes on a GPU
(experiments/base_model_v3.py; docs/studies/base-model-v3.md): the generalist `adapt` starts from.
All three were saved again in checkpoint format 2, with their binding and their weights unchanged
(2026-12-05): a copy with an edited alphabet or weights is refused like any edited checkpoint. Lineage
digests recorded before then (base-v2's parent) name the files as they were.
"""

from __future__ import annotations

from pathlib import Path

BASE = "base"  # what `--model base` and `--init-from base` name
# Every bundled model by the name `--model` and `--init-from` take: base (v1, experiments/base_model.py)
# base-v2 (trained on the randomised family, experiments/base_model_v2.py) and base-v3 (the generalist:
# the readable `varied` family, experiments/base_model_v3.py).
MODELS = {BASE: "base.pt", "base-v2": "base-v2.pt", "base-v3": "base-v3.pt"}


def base_model() -> Path:
    return named(BASE)  # type: ignore[return-value]


def named(spec: str | Path | None) -> Path | None:
    """The bundled model `spec` names (`base`, `base-v2`), or None if it names none."""
    name = MODELS.get(str(spec)) if spec is not None else None
    return Path(__file__).resolve().parent / name if name else None


def is_bundled(model: Path) -> bool:
    return model.resolve().parent == base_model().parent


def beside(model: Path, name: str) -> Path:
    """Where a file made from `model` goes (an exported model, a grid of its mistakes): beside it, except
    for a bundled model, whose files go to the working directory: nothing is written into the package."""
    return Path(name) if is_bundled(model) else model.parent / name
