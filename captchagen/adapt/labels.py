"""A few labelled captchas of the site (`adapt --labels DIR`), split once into what adapt trains on and what
it checks with.

The labels do three jobs, and no model is judged on images it trained on:
- choose: the first comparison (the base model against its synthetic fine-tunes, none trained on them)
  ranks by accuracy on all of them;
- train: self-training draws its `train` part into every batch beside the synthetic images (`--mix`);
- check: the last comparison (the self-trained model against its start) ranks by accuracy on the `check`
  part, which self-training never saw; the estimate is shown beside it, so the user sees whether the
  label-free estimate agrees.

The split is seeded and depends only on the files' names and bytes: every other image in a seeded order
goes to `check`, at most CHECK_MAX of them, the rest to `train`. The parts are copies in OUT/labels/ (the
user's folder is only read), written whole into a temporary folder and renamed, with split.json recording
what they were made from: a changed DIR is split again, with a notice.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from captchagen import atomic, codec
from captchagen.errors import BadInput

TRAIN, CHECK, SPLIT = "train", "check", "split.json"
CHECK_MAX = 50  # labelled images held back to check with; the rest are trained on
MIX_SHARE = 0.25  # the share of self-training's labelled batch drawn from the `train` part


@dataclass(frozen=True)
class Labelled:
    """A folder of labelled captchas, read: each (file, label) in name order, and the digest of their bytes."""

    folder: Path
    files: tuple[tuple[Path, str], ...]
    digest: str


def read_labelled(folder: Path) -> Labelled:
    """The labelled images in `folder` (<id>_<label>.<ext>, as `captchagen label` writes); BadInput if none."""
    if not folder.is_dir():
        raise BadInput(f"`labels` {folder} is not a folder of labelled images", param="labels")
    files, h = [], hashlib.sha256()
    for p in codec.image_files(folder):
        try:
            label = codec.parse_name(p.name).label
        except BadInput:
            continue
        files.append((p, label))
        h.update(f"{p.relative_to(folder)}\0{label}\0".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    if not files:
        raise BadInput(
            f"`labels` {folder} holds no labelled images (<id>_<label>.png, as `captchagen label` writes)",
            param="labels",
        )
    return Labelled(folder, tuple(files), h.hexdigest())


def split_parts(labelled: Labelled, seed: int) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """(train, check): every other image of a seeded order to check, at most CHECK_MAX; one image trains only."""
    order = list(labelled.files)
    random.Random(f"labels:{seed}").shuffle(order)
    check = order[1::2][:CHECK_MAX]
    held = {p for p, _ in check}
    return [f for f in order if f[0] not in held], check


def split(labelled: Labelled, target: Path, seed: int) -> tuple[Path, Path | None]:
    """OUT/labels/train and OUT/labels/check (None when there is nothing to check with), made once per
    (labels, seed): left as they are when split.json says they were made from these."""
    key = hashlib.sha256(f"{labelled.digest}|{seed}".encode()).hexdigest()
    train_part, check_part = split_parts(labelled, seed)
    made = target / SPLIT
    try:
        if json.loads(made.read_text("utf-8")).get("key") == key:
            return target / TRAIN, (target / CHECK) if check_part else None
    except (OSError, ValueError, AttributeError):
        pass
    temp = target.with_name(target.name + ".tmp")
    shutil.rmtree(temp, ignore_errors=True)
    for part, files in ((TRAIN, train_part), (CHECK, check_part)):
        (temp / part).mkdir(parents=True)
        for i, (p, _label) in enumerate(files):  # the name keeps its label as written; the number keeps it unique
            shutil.copyfile(p, temp / part / f"{i:05d}-{p.name}")
    atomic.write_json(temp / SPLIT, {"key": key, "source": str(labelled.folder), "train": len(train_part),
                                     "check": len(check_part), "seed": seed})  # fmt: skip
    if target.exists():
        shutil.rmtree(target)
    temp.rename(target)
    return target / TRAIN, (target / CHECK) if check_part else None
