"""A run worked out once, before any image is decoded: from the user's request (a TrainConfig) to a frozen Plan.

`make_plan` fills in the schedule's defaults (config.with_defaults), resumes or takes the parent's shape,
opens every dataset once (DATA, `val_data`, each `mix`), checks the input size, chooses what was not given
(the width and border crop from a sample of the images), and settles the alphabet and the longest label.
Everything after it (loading the data, building the model, the epoch loop) reads the plan, and nothing
opens a dataset or decides a size again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput
from captchagen.manifest import MANIFEST
from trainer.data.inputs import choose_input, sampled_crop
from trainer.data.preprocess import Preprocessing
from trainer.data.sources import Source, open_source, open_unlabeled
from trainer.models.config import check_input_size
from trainer.shape import SHAPE, ModelShape
from trainer.training import finetune
from trainer.training.config import TrainConfig, with_defaults
from trainer.training.resume import resume_state


@dataclass(frozen=True)
class Plan:
    """What a run is. `cfg` is the request with everything decided written in: the schedule's defaults, the
    input size, crop, channels and architecture, the parent's record and each dataset's hash. It is what
    config.json and the checkpoints record, and what a resume starts from."""

    cfg: TrainConfig
    pre: Preprocessing  # DATA's and validation's
    mix_pre: tuple[Preprocessing, ...]  # each mixed-in set's: the model's size and colour, its own crop
    alphabet: Alphabet
    max_len: int  # the longest label of every dataset read
    sources: dict[str, Source]  # each dataset read, opened once, by the path given
    parent: finetune.Parent | None
    state: dict[str, Any] | None  # the checkpoint a resumed run continues from
    notes: tuple[str, ...]  # lines to tell the user once the data has loaded

    @property
    def shape(self) -> ModelShape:
        return self.cfg.shape


def make_plan(request: TrainConfig, resume: Path | None = None) -> Plan:
    """The plan of a new run (`resume` None) or of the run whose last.pt is `resume`."""
    state, cfg = resume_state(request, resume)
    if state is None:
        cfg = with_defaults(cfg)
    _check_semi(cfg)
    shares = sum(f for _, f in cfg.mix)  # of the labelled images; the pool's are added to them
    if shares >= 1:
        raise BadInput(f"the `mix` shares add up to {shares:g}; they must leave some of each batch to DATA")
    parent = finetune.load_parent(cfg.init_from) if state is None and cfg.init_from else None
    width_given = cfg.width is not None  # before the parent's is taken: a width not given is chosen from the images
    if parent is not None:
        cfg = finetune.inherit_shape(cfg, parent, _given_shape(cfg))
    cfg = replace(cfg, channels=cfg.channels or 1, arch=cfg.arch or SHAPE.arch)
    try:
        # The one check of the size, before any image is looked at: a width chosen later is valid by construction.
        check_input_size(cfg.height or SHAPE.height, cfg.width or 4)
    except ValueError as e:
        raise BadInput(str(e)) from None
    paths = [cfg.data, *([cfg.val_data] if cfg.val_data else []), *(p for p, _ in cfg.mix)]
    sources = {p: open_source(Path(p)) for p in dict.fromkeys(paths)}
    if cfg.unlabeled:
        if cfg.unlabeled in sources:
            raise BadInput(f"`unlabeled` {cfg.unlabeled} is also DATA, `val_data` or a `mix` set; give other images")
        sources[cfg.unlabeled] = open_unlabeled(Path(cfg.unlabeled))
    if state is None:
        cfg, notes = _settle_size(cfg, sources[cfg.data], parent, width_given)
        cfg = replace(cfg, sources={p: _describing_hash(Path(p)) for p in sources})
    else:
        notes = tuple(
            f"{p} is not the dataset this run started on (its manifest changed); training goes on with it"
            for p in changed_sources(cfg)
        )
    pre = replace(Preprocessing.for_shape(cfg.shape), crop=cfg.crop, channels=cfg.channels)
    mix_pre, mix_notes = _mix_crops(cfg, sources, pre)
    alphabet = Alphabet(state["alphabet"]) if state else _alphabet(cfg, sources)
    labels = (label for s in sources.values() for g in s.groups for label in g.labels)
    return Plan(
        cfg=cfg,
        pre=pre,
        mix_pre=mix_pre,
        alphabet=alphabet,
        max_len=max(map(len, labels)),
        sources=sources,
        parent=parent,
        state=state,
        notes=(*notes, *mix_notes),
    )


def _check_semi(cfg: TrainConfig) -> None:
    """The semi-supervised settings are each within (0, 1), whether or not `unlabeled` is given."""
    for name, why in (
        ("unlabeled_share", "the share of every batch drawn from the unlabelled images"),
        ("pseudo_threshold", "the whole-string confidence a reading needs to be learnt"),
        ("ema_decay", "how much of the teacher each step keeps"),
    ):
        value = getattr(cfg, name)
        if not 0 < value < 1:
            raise BadInput(f"`{name}` must be between 0 and 1 ({why}), got {value:g}")


def _given_shape(cfg: TrainConfig) -> set[str]:
    """The shape fields the user gave: height, width and arch when not None, the others when not the default."""
    unset = ("height", "width", "arch")  # None unless given
    given = {n for n in unset if getattr(cfg, n) is not None}
    return given | {n for n in finetune.SHAPE_FIELDS if n not in unset and getattr(cfg, n) != getattr(SHAPE, n)}


def _settle_size(
    cfg: TrainConfig, source: Source, parent: finetune.Parent | None, width_given: bool
) -> tuple[TrainConfig, tuple[str, ...]]:
    """`cfg` with its input size and crop decided, and lines saying how. The height is the given one, else
    the parent's when fine-tuning, else the default; the width is the given one, else chosen from a sample
    of the images (the weights do not depend on it, so a fine-tuned model may read wider images than its
    parent); the border crop is chosen from the images unless the whole size was given from scratch."""
    if cfg.height is not None and width_given and parent is None:
        return cfg, ()
    paths = [p for g in source.groups for p in g.paths]
    labels = [label for g in source.groups for label in g.labels]
    max_len = source.max_len or max(len(label) for label in labels)
    choice = choose_input(paths, max_len, height=cfg.height or SHAPE.height, labels=labels)
    width = cfg.width if width_given else choice.width
    if parent is None:
        return replace(cfg, height=choice.height, width=width, crop=choice.crop), choice.notes
    theirs = parent.payload["model_config"]["height"], parent.payload["model_config"]["width"]
    how = "given" if width_given else "chosen from the images"
    size = f"input {cfg.height}x{width} ({how}; the parent model's is {theirs[0]}x{theirs[1]})"
    if (cfg.height, width) == theirs:
        size = f"input {cfg.height}x{width} ({how}, as the parent model's)"
    notes = (size + (f", cropped to {choice.crop}" if choice.crop else ""), *choice.notes[1:])
    return replace(cfg, width=width, crop=choice.crop), notes


def _mix_crops(
    cfg: TrainConfig, sources: dict[str, Source], pre: Preprocessing
) -> tuple[tuple[Preprocessing, ...], list[str]]:
    """Each mixed-in set's preprocessing: DATA's, with the border crop of the set's own images. DATA's crop
    suits DATA's frame (the black margins of a 16:9 captcha, say), and cut into a synthetic set without them
    it would cut off its characters. The crop is the only thing a source may have of its own; size and
    colour are the model's."""
    pres, notes = [], []
    for path, _ in cfg.mix:
        crop = sampled_crop([p for g in sources[path].groups for p in g.paths])
        if crop != pre.crop:
            how = f"cropped to {list(crop)}" if crop else "not cropped (no flat border)"
            notes.append(f"--mix {path}: {how}")
        pres.append(replace(pre, crop=crop))
    return tuple(pres), notes


def _alphabet(cfg: TrainConfig, sources: dict[str, Source]) -> Alphabet:
    """--alphabet, else DATA's (its manifest's, else its labels') joined by each mixed-in set's."""
    if cfg.alphabet:
        return Alphabet.from_spec(cfg.alphabet)
    chars: list[str] = []
    for path in [cfg.data, *(p for p, _ in cfg.mix)]:
        source = sources[path]
        own = source.alphabet or Alphabet.from_labels(label for g in source.groups for label in g.labels).chars
        chars.extend(c for c in own if c not in chars)
    return Alphabet("".join(chars))


def _describing_hash(path: Path) -> str | None:
    """The sha256 of a dataset's manifest (a `make` folder), of itself (a list file), or None (a loose
    folder: no single file describes it)."""
    target = path / MANIFEST if path.is_dir() else path
    try:
        return hashlib.sha256(target.read_bytes()).hexdigest()
    except OSError:
        return None


def changed_sources(cfg: TrainConfig) -> list[str]:
    """The datasets of a resumed run whose manifest (or list file) is not the one the run started with."""
    return [p for p, digest in (cfg.sources or {}).items() if _describing_hash(Path(p)) != digest]
