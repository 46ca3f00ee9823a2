"""Starting a run from a trained model's weights (`train --init-from`).

The new model takes the parent's shape and preprocessing. Its output layer has a row per character of
the new alphabet: characters the parent knew keep the parent's row, new ones start from fresh weights,
and characters the new alphabet lacks are dropped. Three things may change: the input width (nothing in the
weights ties it down), grayscale to colour (the first layer's weights are split over R, G and B in the
proportions of the grayscale conversion, so the colour model starts out computing what its parent did),
and the input height (the projection from the convolutions' rows to the LSTM is resampled to the new
number of rows; a starting point, not the same function, as the convolutions then see the characters at
another scale). The run records the parent's name and hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput, CaptchagenError
from trainer import bundled, checkpoint
from trainer.models import get as get_arch
from trainer.models.config import ModelConfig
from trainer.shape import ModelShape
from trainer.training.request import TrainRequest

# PIL's grayscale conversion (ITU-R 601-2 luma): L = 0.299 R + 0.587 G + 0.114 B. The weights sum to 1, so
# on normalised inputs the colour model's first layer gives what the grayscale one gave on L.
LUMA = torch.tensor([0.299, 0.587, 0.114])

SHAPE_FIELDS = tuple(f.name for f in fields(ModelShape))  # height, width, conv, hidden, lstm_layers, dropout, arch
# The weights do not depend on the input width (convolutions slide along it, the LSTM runs over its time
# steps), and only the projection depends on the height (resampled, see `_resample_rows`), so a child may
# read images of another size than its parent; every other field is fixed.
FREE_FIELDS = ("width", "height")


@dataclass(frozen=True)
class Parent:
    path: Path
    model: checkpoint.ModelRecord
    sha256: str

    @property
    def config(self) -> ModelConfig:
        """The parent's network (a checkpoint made before architectures or colour had names: a grayscale crnn)."""
        return self.model.config()

    @property
    def lineage(self) -> dict[str, str]:
        """What the child's config and checkpoints say about where it started."""
        return {"name": checkpoint.model_name(self.path), "sha256": self.sha256}


def load_parent(spec: str, param: str = "init_from") -> Parent:
    """A checkpoint file, a run folder (its best.pt), or a bundled model's name (`base`, `base-v2`); BadInput
    naming the setting `param` when it is none of these, or a checkpoint that fails the checks of reading."""
    path = bundled.named(spec) or Path(spec)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():  # bad usage, as any other option naming something that is not there
        raise BadInput(f"`{param}` {spec!r} is not a checkpoint, a run folder with a best.pt, or a bundled "
                       f"model ({', '.join(bundled.MODELS)})", param=param)  # fmt: skip
    try:
        record = checkpoint.read(path)
        # What test, eval, serve and export check before reading with a model (its binding, the fit of its
        # weights to its config and preprocessing) is checked before fine-tuning from it too.
        checkpoint.load_model(record, path)
    except CaptchagenError as e:
        raise BadInput(f"`{param}` {e}", param=param) from None
    return Parent(path, record, hashlib.sha256(path.read_bytes()).hexdigest())


def inherit_shape(cfg: TrainRequest, parent: Parent, given: set[str]) -> TrainRequest:
    """`cfg` with the parent's shape; a shape option given (`given`) that differs from the parent's is an
    error, except the width and height (FREE_FIELDS), which a given value sets. The crop is not inherited: it belongs
    to the images (the caller chooses it from the new data)."""
    inherited: dict[str, Any] = {name: getattr(parent.config, name) for name in SHAPE_FIELDS}
    for name in SHAPE_FIELDS:
        theirs = inherited[name]
        ours = tuple(getattr(cfg, name)) if name == "conv" else getattr(cfg, name)
        if name in given and name in FREE_FIELDS:
            inherited[name] = ours
        elif name in given and ours != theirs:
            raise BadInput(
                f"`init_from` {parent.path} has {name} {theirs}, but `{name}` {ours} was given: "
                "fine-tuning keeps the parent's architecture (only the input size may change); train another "
                "architecture from random weights, or from a parent of its own"
            )
    theirs = parent.config.channels
    if cfg.channels is not None and (cfg.channels, theirs) == (1, 3):
        raise BadInput(f"`init_from` {parent.path} reads colour; a grayscale model cannot start from it")
    return replace(cfg, **inherited, channels=cfg.channels or theirs)


def transplant(model: torch.nn.Module, config: ModelConfig, parent: Parent, alphabet: Alphabet) -> str:
    """Copy the parent's weights into `model` (built from `config`, its alphabet `alphabet`); return a
    one-line summary."""
    theirs = Alphabet(parent.model.alphabet)
    state = dict(parent.model.weights)
    own = model.state_dict()
    first = get_arch(config.arch).first_conv  # [out, channels, k, k]
    if state[first].shape[1] == 1 and own[first].shape[1] == 3:
        state[first] = state[first] * LUMA.view(1, 3, 1, 1).to(state[first].dtype)
    theirs_h, ours_h = parent.config.height, config.height
    if theirs_h != ours_h:
        state["proj.weight"] = _resample_rows(state["proj.weight"], theirs_h // 16, ours_h // 16)
    for key in ("head.weight", "head.bias"):
        rows = own[key].clone()
        rows[0] = state[key][0]  # the CTC blank
        for c in alphabet.chars:
            if c in theirs:
                rows[alphabet.encode(c)[0]] = state[key][theirs.encode(c)[0]]
        state[key] = rows
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise BadInput(f"`init_from` {parent.path} does not fit this model: {str(e).splitlines()[0]}") from None
    kept = [c for c in alphabet.chars if c in theirs]
    new = [c for c in alphabet.chars if c not in theirs]
    dropped = [c for c in theirs.chars if c not in alphabet]
    line = f"started from {checkpoint.model_name(parent.path)}: {len(kept)} characters kept their output rows"
    if parent.config.channels != config.channels:
        line += ", its grayscale first layer spread over R, G and B"
    if theirs_h != ours_h:
        line += f", its projection resampled from {theirs_h} to {ours_h} pixels high"
    if new:
        line += f", {len(new)} new ({''.join(new)!r})"
    if dropped:
        line += f", {len(dropped)} dropped ({''.join(dropped)!r})"
    return line


def _resample_rows(weight: torch.Tensor, rows: int, new_rows: int) -> torch.Tensor:
    """The projection's weights [hidden, channels * rows] (inputs ordered channel by channel, a row each)
    for `new_rows` rows of convolution features. New row r covers old rows r*k to (r+1)*k (k = rows /
    new_rows) and takes their weights in proportion to how much of each it covers. Every old row is
    covered exactly once, so each channel's weights keep their sum, and a map whose rows are the old
    ones repeated (twice the height) projects exactly as before."""
    k = rows / new_rows
    old = torch.arange(rows, dtype=torch.float64).unsqueeze(1)  # [rows, 1]: old row p spans [p, p+1)
    new = torch.arange(new_rows, dtype=torch.float64).unsqueeze(0)  # [1, new_rows]: [r*k, (r+1)*k)
    cover = (torch.minimum(old + 1, (new + 1) * k) - torch.maximum(old, new * k)).clamp(min=0)
    per_row = weight.reshape(weight.shape[0], -1, rows)  # [hidden, channels, rows]
    resampled = per_row @ cover.to(weight.dtype)  # [hidden, channels, new_rows]
    return resampled.reshape(weight.shape[0], -1).contiguous()
