"""A run's data: the input size (chosen, given, or the parent's), the training and validation sets with
any mixed-in sets, the batch sampler, and inputs.png."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput
from captchagen.manifest import MANIFEST
from trainer.data import loading as data
from trainer.data import overlap
from trainer.data.cache import default_cache_dir
from trainer.data.inputs import choose_input, sampled_crop, write_inputs_png
from trainer.data.mixing import StreamBatchSampler, merge
from trainer.data.preprocess import Preprocessing
from trainer.data.sources import open_source
from trainer.device import Dist
from trainer.intervals import SMALL_SET, wilson
from trainer.model import check_input_size
from trainer.shape import SHAPE
from trainer.training import finetune
from trainer.training.config import TrainConfig
from trainer.training.events import CacheProgress, Events, Notice


@dataclass
class Data:
    train: data.CaptchaDataset
    val: data.CaptchaDataset
    alphabet: Alphabet
    skipped: list[tuple[str, str]]
    max_len: int
    sizes: list[int]  # training images of each source: the main one, then each mixed-in one


def settle_input(cfg: TrainConfig) -> tuple[TrainConfig, finetune.Parent | None, tuple[str, ...]]:
    """`cfg` with its input size and crop decided, and lines to tell the user (once the data has loaded).
    The height is the given one, else the parent's when fine-tuning, else the default; the width is the
    given one, else chosen from a sample of the images (the weights do not depend on it, so a fine-tuned
    model may read wider images than its parent); the border crop is always chosen from the images,
    unless the whole size was given. The channels are the given ones, else the parent's, else grayscale."""
    parent = None
    width_given = cfg.width is not None
    if cfg.init_from:
        parent = finetune.load_parent(cfg.init_from)
        # Height and width are None unless given; the other shape fields count as given when not the default.
        given = {n for n in ("height", "width", "arch") if getattr(cfg, n) is not None} | {
            n for n in finetune.SHAPE_FIELDS[2:-1] if getattr(cfg, n) != getattr(SHAPE, n)
        }
        cfg = finetune.inherit_shape(cfg, parent, given)
    cfg = replace(cfg, channels=cfg.channels or 1)
    try:
        check_input_size(cfg.height or SHAPE.height, cfg.width or 4)  # a bad size given: say so before looking
    except ValueError as e:
        raise BadInput(str(e)) from None
    if cfg.height is not None and width_given and parent is None:
        return cfg, None, ()
    source = open_source(Path(cfg.data))
    paths = [p for g in source.groups for p in g.paths]
    labels = [label for g in source.groups for label in g.labels]
    max_len = source.max_len or max(len(label) for label in labels)
    choice = choose_input(paths, max_len, height=cfg.height or SHAPE.height, labels=labels)
    width = cfg.width if width_given else choice.width
    if parent is None:
        return replace(cfg, height=choice.height, width=width, crop=choice.crop), None, choice.notes
    theirs = parent.payload["model_config"]["height"], parent.payload["model_config"]["width"]
    how = "given" if width_given else "chosen from the images"
    size = f"input {cfg.height}x{width} ({how}; the parent model's is {theirs[0]}x{theirs[1]})"
    if (cfg.height, width) == theirs:
        size = f"input {cfg.height}x{width} ({how}, as the parent model's)"
    notes = (size + (f", cropped to {choice.crop}" if choice.crop else ""), *choice.notes[1:])
    return replace(cfg, width=width, crop=choice.crop), parent, notes


def source_record(cfg: TrainConfig) -> dict[str, str | None]:
    """Each dataset the run reads (DATA, --val-data, each --mix), with the sha256 of its manifest (a
    `make` folder), of itself (a list file), or None (a loose folder: no single file describes it)."""
    paths = [cfg.data, *([cfg.val_data] if cfg.val_data else []), *(p for p, _ in cfg.mix)]
    return {p: _describing_hash(Path(p)) for p in paths}


def _describing_hash(path: Path) -> str | None:
    target = path / MANIFEST if path.is_dir() else path
    try:
        return hashlib.sha256(target.read_bytes()).hexdigest()
    except OSError:
        return None


def changed_sources(cfg: TrainConfig) -> list[str]:
    """The datasets of a resumed run whose manifest (or list file) is not the one the run started with."""
    if not cfg.sources:
        return []
    now = source_record(cfg)
    return [p for p, digest in cfg.sources.items() if now.get(p) != digest]


def _alphabet(cfg: TrainConfig, given: Alphabet | None) -> Alphabet:
    """`given` (a resumed run's), else --alphabet, else the union of the data's and the mixed-in sets'."""
    if given is not None:
        return given
    if cfg.alphabet:
        return Alphabet.from_spec(cfg.alphabet)
    chars: list[str] = []
    for path in [cfg.data, *(p for p, _ in cfg.mix)]:
        source = open_source(Path(path))
        own = source.alphabet or Alphabet.from_labels(label for g in source.groups for label in g.labels).chars
        chars.extend(c for c in own if c not in chars)
    return Alphabet("".join(chars))


def load_data(cfg: TrainConfig, pre: Preprocessing, info: Dist, emit: Events, given: Alphabet | None) -> Data:
    """Fill the caches and split the data. Validation is always on `data` (or `val_data`), never on a mix."""
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    if sum(f for _, f in cfg.mix) >= 1:
        raise BadInput(
            f"the `mix` shares add up to {sum(f for _, f in cfg.mix):g}; they must leave some of each batch to DATA"
        )
    alphabet = _alphabet(cfg, given) if (cfg.mix or given or cfg.alphabet) else None

    def load(path: str, alphabet: Alphabet | None, how: Preprocessing = pre) -> data.Loaded:
        # Rank 0 fills the cache; the others wait for it and then read it.
        if info.enabled and not info.main:
            torch.distributed.barrier()
        loaded = data.load(
            Path(path),
            how,
            cache,
            alphabet=alphabet,
            skip_bad=cfg.skip_bad,
            workers=cfg.workers,
            progress=lambda done, total: emit(CacheProgress(done=done, total=total, path=path)),
            notice=lambda message: emit(Notice(message)),
        )
        if info.enabled and info.main:
            torch.distributed.barrier()
        return loaded

    loaded = load(cfg.data, alphabet)
    if cfg.val_data:
        val_loaded = load(cfg.val_data, loaded.alphabet)
        train_rows, val = np.arange(len(loaded.rows)), data.CaptchaDataset(val_loaded)
        skipped, max_len = loaded.skipped + val_loaded.skipped, max(loaded.max_len, val_loaded.max_len)
    else:
        train_rows, val_rows = data.split(loaded, cfg.val_fraction, cfg.seed)
        val, skipped, max_len = data.CaptchaDataset(loaded, val_rows), loaded.skipped, loaded.max_len
    mixed = [load(path, loaded.alphabet, _own_crop(pre, path, emit)) for path, _ in cfg.mix]
    # No image is both trained on and validated on: validation images found among the training ones (the
    # same file, or a copy of it) are dropped from the training side, and the user is told.
    held_out = overlap.HeldOut(val.paths())
    if cfg.val_data:
        train_rows = _without_held_out(held_out, loaded, train_rows, "DATA", cfg.data, emit)
    mixed = [
        replace(m, rows=m.rows[_without_held_out(held_out, m, np.arange(len(m.rows)), "`mix`", path, emit)])
        for m, (path, _) in zip(mixed, cfg.mix, strict=True)
    ]
    merged = merge(loaded, train_rows, mixed)
    sets = Data(
        data.CaptchaDataset(merged),
        val,
        loaded.alphabet,
        skipped + [s for m in mixed for s in m.skipped],
        max([max_len, *(m.max_len for m in mixed)]),
        [len(train_rows), *(len(m.rows) for m in mixed)],
    )
    if len(sets.val) < SMALL_SET:
        lo, hi = wilson(len(sets.val) // 2, len(sets.val))
        emit(
            Notice(
                f"only {len(sets.val)} validation images: an accuracy measured on them is good to about "
                f"±{50 * (hi - lo):.0f} points (95%); give `val_data` or a larger `val_fraction` for a figure to trust"
            )
        )
    if cfg.steps_per_epoch is None and not cfg.mix and len(sets.train) < cfg.batch_size * info.world:
        raise BadInput(f"{len(sets.train)} training images are fewer than one batch of {cfg.batch_size * info.world}")
    return sets


def _without_held_out(
    held_out: overlap.HeldOut, loaded: data.Loaded, rows: np.ndarray, what: str, path: str, emit: Events
) -> np.ndarray:
    """`rows` of `loaded` less the validation images among them; says how many went, and refuses to leave none."""
    paths = [loaded.groups[g].paths[r] for g, r in loaded.rows[rows]]
    keep = np.asarray([not held_out.holds(p) for p in paths], dtype=bool)
    dropped = int((~keep).sum())
    if dropped == len(rows):
        raise BadInput(
            f"every training image of {what} {path} is also a validation image; validate on other images "
            "(another `val_data`, or none to hold out a share of DATA)"
        )
    if dropped:
        emit(Notice(f"{what} {path}: {dropped:,} images are validation images too; they are left out of training"))
    return rows[keep]


def _own_crop(pre: Preprocessing, path: str, emit: Events) -> Preprocessing:
    """`pre` with the border crop of a mixed-in set's own images: DATA's crop suits DATA's frame (the
    black margins of a 16:9 captcha, say), and cut into a synthetic set without them it would cut off
    its characters. The crop is the only thing a source may have of its own; size and colour are the model's."""
    crop = sampled_crop([p for g in open_source(Path(path)).groups for p in g.paths])
    if crop != pre.crop:
        how = f"cropped to {list(crop)}" if crop else "not cropped (no flat border)"
        emit(Notice(f"--mix {path}: {how}"))
    return replace(pre, crop=crop)


def train_sampler(cfg: TrainConfig, sets: Data, info: Dist) -> data.ShardedBatchSampler | StreamBatchSampler:
    """Passes over shuffled images, or (with mixed-in sets or steps per epoch) a stream of mixed batches."""
    if cfg.mix or cfg.steps_per_epoch:
        return StreamBatchSampler(
            sets.sizes,
            [f for _, f in cfg.mix],
            cfg.batch_size,
            steps=cfg.steps_per_epoch,
            seed=cfg.seed,
            rank=info.rank,
            world=info.world,
        )
    return data.ShardedBatchSampler(
        len(sets.train), cfg.batch_size, shuffle=True, seed=cfg.seed, rank=info.rank, world=info.world
    )


def write_inputs(run: Path, sets: Data, count: int = 24, per_mix: int = 8) -> Path:
    """run/inputs.png: the first training images of the main source, then of each mixed-in one (labelled
    so), as the model receives them."""
    starts = np.cumsum([0, *sets.sizes])
    shown = [min(per_mix, n) for n in sets.sizes[1:]]
    rows = list(range(min(count - sum(shown), sets.sizes[0])))
    rows += [int(start) + i for start, n in zip(starts[1:-1], shown, strict=True) for i in range(n)]
    batch = sets.train.__getitems__(rows)
    labels = [label if i < sets.sizes[0] else f"{label} (mix)" for i, label in zip(rows, batch.labels, strict=True)]
    return write_inputs_png(batch.images.numpy(), labels, run / "inputs.png")
