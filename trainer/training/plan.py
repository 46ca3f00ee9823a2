"""A run worked out once, before any image is decoded: from what the user asked (a TrainRequest) to a
frozen Plan with nothing left to decide.

`make_plan` fills in the schedule's defaults (SCRATCH, or FINE_TUNE with `init_from`), resumes or takes the
parent's shape, opens every dataset once (DATA, `val_data`, each `mix`, the pool), checks the input size,
chooses what was not given (the width and border crop from a sample of the images), settles the alphabet
and the longest label, and picks the machine (device, precision, threads, torchrun's processes).
Everything after it (loading the data, building the model, the steps, the epoch loop) reads the plan; none
of it takes the request, opens a dataset or decides a size again.

Adding a training hyperparameter: a field of TrainRequest, its option in captchagen/cli/train.py, and a
field of Schedule (filled from the request by name): what reads it reads `plan.schedule`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from captchagen import unlabeled
from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput
from captchagen.manifest import MANIFEST
from captchagen.workers import cpu_count
from trainer.checkpoint import ResumeState
from trainer.data.cache import default_cache_dir
from trainer.data.inputs import choose_input, sampled_crop
from trainer.data.preprocess import Preprocessing
from trainer.data.sources import Source, open_source, open_unlabeled
from trainer.device import Runtime, make_runtime
from trainer.models.config import ModelConfig, check_input_size
from trainer.shape import SHAPE, ModelShape, reads_labels_of
from trainer.training import finetune
from trainer.training.request import FINE_TUNE, SCRATCH, TrainRecord, TrainRequest
from trainer.training.resume import resume_state


@dataclass(frozen=True)
class Schedule:
    """How the run trains: filled from the request's fields of the same names, the defaults decided."""

    epochs: int
    batch_size: int  # labelled images per step and process; an `unlabeled` pool's are added to them
    lr: float
    weight_decay: float
    warmup: float
    clip: float
    seed: int
    augment: bool
    keep: str  # which epoch best.pt holds: "best" on validation, or "last"
    steps_per_epoch: int | None  # None: an epoch is a pass over the training images
    time_limit: float | None  # minutes of training; None: no limit


@dataclass(frozen=True)
class Mixed:
    """A `mix` set: its share of every batch's labelled images, and its preprocessing (DATA's size and
    colour, its own border crop)."""

    path: str
    share: float
    pre: Preprocessing


@dataclass(frozen=True)
class Semi:
    """`unlabeled`: the pool, its images per batch (added to the labelled ones), and the teacher's settings."""

    path: str
    per_batch: int
    share: float  # as asked; `per_batch` is it rounded to whole images
    threshold: float
    ema_decay: float
    mode: str = "threshold"  # or "ranked" (trainer.training.pseudo)
    growth: float = 0.2  # "ranked": the share of the pool each round adds
    reads: str | None = None  # the labelled data's characters, where the model knows more: no pseudo-label
    # holds another (None: any the model knows)
    case: str = "sensitive"  # or "ignore": the pool is read, and its pseudo-labels learnt, with a letter's cases as one


@dataclass(frozen=True)
class Plan:
    """What a run is, every choice made. `record` is what checkpoints keep as `train_config` and a resume
    starts from (the request settled, the parent, the datasets' digests); config.json holds it beside
    `request`, the fields as given."""

    schedule: Schedule
    model: ModelConfig  # the network: shape, colour channels, classes, longest label
    pre: Preprocessing  # DATA's and validation's
    alphabet: Alphabet
    data: str
    val_data: str | None  # None: validation is `val_fraction` of DATA
    val_fraction: float
    mix: tuple[Mixed, ...]
    semi: Semi | None  # None: no `unlabeled` pool
    sources: dict[str, Source]  # each dataset read, opened once, by the path given
    parent: finetune.Parent | None  # None: from random weights (or resumed)
    resume: ResumeState | None  # None: a new run
    runtime: Runtime
    cache_dir: Path
    workers: int  # processes decoding images into the cache
    skip_bad: bool
    runs_dir: Path
    name: str | None  # None: the run folder is named for its start time
    fine_tuned: bool  # started from a parent (`init_from`), now or before a resume
    record: TrainRecord
    request: dict[str, Any]
    notes: tuple[str, ...]  # lines to tell the user once the data has loaded


def make_plan(request: TrainRequest, resume: Path | None = None) -> Plan:
    """The plan of a new run (`resume` None) or of the run whose last.pt is `resume`."""
    record, state, parent = settle(request, resume)
    cfg = record.settled
    runtime, machine_notes = _runtime(cfg)
    sources = _open_sources(cfg)
    if state is None:
        cfg, size_notes = _settle_size(cfg, sources[cfg.data], parent, request.width is not None)
        record = replace(record, settled=cfg, sources={p: _describing_hash(Path(p)) for p in sources})
    else:
        size_notes = tuple(
            f"{p} is not the {'pool' if p == cfg.unlabeled else 'dataset'} this run started on (its "
            f"{'images' if ((record.sources or {}).get(p) or '').startswith('files:') else 'manifest'} changed); "
            "training goes on with it as it is now"
            for p in changed_sources(record)
        )
    assert cfg.height is not None and cfg.width is not None and cfg.channels is not None and cfg.arch is not None
    shape = ModelShape(**{f.name: getattr(cfg, f.name) for f in fields(ModelShape)})
    pre = replace(Preprocessing.for_shape(shape), crop=cfg.crop, channels=cfg.channels)
    mix, mix_notes = _mix(cfg, sources, pre)
    alphabet = Alphabet(state.model.alphabet) if state else _alphabet(cfg, sources)
    # the lengths the model is trained on, which it reads under by default (a pool's images have no label)
    labelled = [s for p, s in sources.items() if p != cfg.unlabeled]
    label_lengths = {len(label) for s in labelled for g in s.groups for label in g.labels}
    schedule = Schedule(**{f.name: getattr(cfg, f.name) for f in fields(Schedule)})
    reads = "".join(sorted({c for s in labelled for g in s.groups for label in g.labels for c in label}))
    semi, semi_notes = _semi(cfg, schedule, None if set(reads) >= set(alphabet.chars) else reads)
    return Plan(
        schedule=schedule,
        model=ModelConfig.from_shape(
            shape, alphabet.num_classes, (min(label_lengths), max(label_lengths)), channels=cfg.channels
        ),
        pre=pre,
        alphabet=alphabet,
        data=cfg.data,
        val_data=cfg.val_data,
        val_fraction=cfg.val_fraction,
        mix=mix,
        semi=semi,
        sources=sources,
        parent=parent,
        resume=state,
        runtime=runtime,
        cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir(),
        workers=cfg.workers,
        skip_bad=cfg.skip_bad,
        runs_dir=Path(cfg.runs_dir),
        name=cfg.name,
        fine_tuned=bool(cfg.init_from),
        record=record,
        request=asdict(request),
        notes=(*size_notes, *mix_notes, *semi_notes, *machine_notes),
    )


def settle(
    request: TrainRequest, resume: Path | None
) -> tuple[TrainRecord, ResumeState | None, finetune.Parent | None]:
    """The run's record: the request with the schedule's defaults and the model's shape decided (a parent's,
    when fine-tuning; the saved run's, when resuming); the state resumed from and the parent started from.
    The input size is left to be chosen from the images, the datasets' digests to be taken."""
    saved: TrainRecord | None = None
    state: ResumeState | None = None
    if resume is not None:
        state, saved = resume_state(request, resume)
        cfg = saved.settled
    else:
        base = FINE_TUNE if request.init_from else SCRATCH
        schedule: dict[str, Any] = {k: base[k] if getattr(request, k) is None else getattr(request, k) for k in base}
        cfg = replace(request, **schedule)
    _check_semi(cfg)
    shares = sum(f for _, f in cfg.mix)  # of the labelled images; the pool's are added to them
    if shares >= 1:
        raise BadInput(f"the `mix` shares add up to {shares:g}; they must leave some of each batch to DATA")
    parent = finetune.load_parent(cfg.init_from) if state is None and cfg.init_from else None
    if parent is not None:
        cfg = finetune.inherit_shape(cfg, parent, _given_shape(cfg))
    cfg = replace(cfg, channels=cfg.channels or 1, arch=cfg.arch or SHAPE.arch)
    try:
        # The one check of the size, before any image is looked at: a width chosen later is valid by construction.
        check_input_size(cfg.height or SHAPE.height, cfg.width or 4)
    except ValueError as e:
        raise BadInput(str(e)) from None
    if saved is not None:
        return replace(saved, settled=cfg), state, parent
    return TrainRecord(cfg, parent.lineage if parent else None), state, parent


def _open_sources(cfg: TrainRequest) -> dict[str, Source]:
    paths = [cfg.data, *([cfg.val_data] if cfg.val_data else []), *(p for p, _ in cfg.mix)]
    sources = {p: open_source(Path(p)) for p in dict.fromkeys(paths)}
    if cfg.unlabeled:
        if cfg.unlabeled in sources:
            raise BadInput(f"`unlabeled` {cfg.unlabeled} is also DATA, `val_data` or a `mix` set; give other images")
        sources[cfg.unlabeled] = open_unlabeled(Path(cfg.unlabeled))
    return sources


def _runtime(cfg: TrainRequest) -> tuple[Runtime, tuple[str, ...]]:
    """The machine, and a line when busy cores left training fewer threads than there are cores."""
    runtime = make_runtime(cfg.device, cfg.precision, cfg.threads)
    threads, busy = runtime.threads, not runtime.cuda and cfg.threads is None and not runtime.dist.enabled
    if busy and threads < cpu_count():  # measured
        return runtime, (
            f"other processes are busy on this machine: training on {threads} thread(s) of {cpu_count()} cores, "
            "as threads on busy cores slow the others down (`threads` to choose)",
        )
    return runtime, ()


def _semi(cfg: TrainRequest, schedule: Schedule, reads: str | None) -> tuple[Semi | None, tuple[str, ...]]:
    if not cfg.unlabeled:
        return None, ()
    extra = pool_per_batch(schedule.batch_size, cfg.unlabeled_share)
    semi = Semi(cfg.unlabeled, extra, cfg.unlabeled_share, cfg.pseudo_threshold, cfg.ema_decay, cfg.pseudo,
                cfg.pseudo_growth, reads, cfg.case)  # fmt: skip
    actual = extra / (schedule.batch_size + extra)
    if abs(actual - cfg.unlabeled_share) <= 0.2 * cfg.unlabeled_share:
        return semi, ()
    # rounded to whole images, far off
    return semi, (
        f"`unlabeled_share` {cfg.unlabeled_share:g} of batches of {schedule.batch_size} labelled images "
        f"is {extra} unlabelled image(s) per batch, {actual:.0%} of it",
    )


def pool_per_batch(batch_size: int, share: float) -> int:
    """Unlabelled images added to a batch of `batch_size` labelled ones, so that they are `share` of it."""
    return max(1, round(batch_size * share / (1 - share)))


PSEUDO_MODES = ("ranked", "threshold")


def _check_semi(cfg: TrainRequest) -> None:
    """The semi-supervised settings are each within (0, 1), whether or not `unlabeled` is given."""
    for name, why in (
        ("unlabeled_share", "the share of every batch drawn from the unlabelled images"),
        ("pseudo_threshold", "the whole-string confidence a reading needs to be learnt"),
        ("pseudo_growth", "the share of the pool each round of ranked pseudo-labels adds"),
        ("ema_decay", "how much of the teacher each step keeps"),
    ):
        value = getattr(cfg, name)
        if not 0 < value < 1 and not (name == "pseudo_growth" and value == 1):
            raise BadInput(f"`{name}` must be between 0 and 1 ({why}), got {value:g}")
    if cfg.pseudo not in PSEUDO_MODES:
        raise BadInput(f"`pseudo` must be one of {', '.join(PSEUDO_MODES)}, got {cfg.pseudo!r}")
    if cfg.case not in ("sensitive", "ignore"):
        raise BadInput(f"`case` must be sensitive or ignore, got {cfg.case!r}")
    if cfg.case == "ignore" and not cfg.unlabeled:
        raise BadInput("`case` ignore reads the `unlabeled` pool as a site that ignores case: give the pool")


def _given_shape(cfg: TrainRequest) -> set[str]:
    """The shape fields the user gave: height, width and arch when not None, the others when not the default."""
    unset = ("height", "width", "arch")  # None unless given
    given = {n for n in unset if getattr(cfg, n) is not None}
    return given | {n for n in finetune.SHAPE_FIELDS if n not in unset and getattr(cfg, n) != getattr(SHAPE, n)}


def _settle_size(
    cfg: TrainRequest, source: Source, parent: finetune.Parent | None, width_given: bool
) -> tuple[TrainRequest, tuple[str, ...]]:
    """`cfg` with its input size and crop decided, and lines saying how. The height is the given one, else
    the parent's when fine-tuning, else the default. The width is the given one; else, when fine-tuning, the
    parent's (where its time steps are enough for the longest label); else chosen from a sample of the
    images. A fine-tuned model reads the images as its parent read them: chosen from a 200x80 pool's shape,
    base-v3 (32x160) was fine-tuned at 32x80 and had to relearn every glyph at half its width first, and
    read 26.9% of claptcha's held-out captchas after 3 epochs against 37.4% at its own width
    (docs/studies/adapt.md). The border crop is chosen from the images unless the whole size was given from
    scratch."""
    if cfg.height is not None and width_given and parent is None:
        return cfg, ()
    paths = [p for g in source.groups for p in g.paths]
    labels = [label for g in source.groups for label in g.labels]
    max_len = source.max_len or max(len(label) for label in labels)
    choice = choose_input(paths, max_len, height=cfg.height or SHAPE.height, labels=labels)
    if parent is None:
        width = cfg.width if width_given else choice.width
        return replace(cfg, height=choice.height, width=width, crop=choice.crop), choice.notes
    theirs = parent.config.height, parent.config.width
    if width_given:
        width = cfg.width
        how = (
            "given, as the parent model's"
            if (cfg.height, width) == theirs
            else f"given; the parent model's is {theirs[0]}x{theirs[1]}"
        )
    elif reads_labels_of(theirs[1], max_len):
        width = theirs[1]
        how = (
            "as the parent model's"
            if cfg.height == theirs[0]
            else f"the parent model's width; its input is {theirs[0]}x{theirs[1]}"
        )
        if choice.width != width:
            how += f"; --width {choice.width} reads the images at their own shape"
    else:
        width = choice.width
        how = (f"chosen from the images: the parent model's {theirs[0]}x{theirs[1]} has too few time steps for "
               f"{max_len}-character labels")  # fmt: skip
    size = f"input {cfg.height}x{width} ({how})"
    notes = (size + (f", cropped to {choice.crop}" if choice.crop else ""), *choice.notes[1:])
    return replace(cfg, width=width, crop=choice.crop), notes


def _mix(cfg: TrainRequest, sources: dict[str, Source], pre: Preprocessing) -> tuple[tuple[Mixed, ...], list[str]]:
    """Each mixed-in set with its preprocessing: DATA's, with the border crop of the set's own images. DATA's
    crop suits DATA's frame (the black margins of a 16:9 captcha, say), and cut into a synthetic set without
    them it would cut off its characters. The crop is the only thing a source may have of its own; size and
    colour are the model's."""
    mixed, notes = [], []
    for path, share in cfg.mix:
        crop = sampled_crop([p for g in sources[path].groups for p in g.paths])
        if crop != pre.crop:
            how = f"cropped to {list(crop)}" if crop else "not cropped (no flat border)"
            notes.append(f"--mix {path}: {how}")
        mixed.append(Mixed(path, share, replace(pre, crop=crop)))
    return tuple(mixed), notes


def _alphabet(cfg: TrainRequest, sources: dict[str, Source]) -> Alphabet:
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
    """The sha256 of a dataset's manifest (a `make` folder), of itself (a list file), or of a loose folder's
    file list with sizes and times (unlabeled.PoolFiles.digest; an `unlabeled` pool is such a folder)."""
    if path.is_dir() and not (path / MANIFEST).exists():
        return "files:" + unlabeled.list_images(path).digest()
    target = path / MANIFEST if path.is_dir() else path
    try:
        return hashlib.sha256(target.read_bytes()).hexdigest()
    except OSError:
        return None


def changed_sources(record: TrainRecord) -> list[str]:
    """The datasets of a resumed run whose manifest (or list file, or files) is not what the run started with."""
    # None: a loose folder, recorded before their file lists were
    return [
        p for p, digest in (record.sources or {}).items() if digest is not None and _describing_hash(Path(p)) != digest
    ]
