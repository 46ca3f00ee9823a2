"""Where samples come from: a made dataset, a folder of `<anything>_<label>.<ext>` files, or a list file;
and, for `train --unlabeled`, a folder of images with any names or a list file of image paths."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from captchagen import codec, manifest, unlabeled
from captchagen.errors import BadInput, CaptchagenError

GROUP_SIZE = 10_000  # samples per cache file for folders and list files (made datasets use their shards)
UNLABELED = ""  # an unlabelled image's label: no labelled set may have an empty one (trainer.data.loading)


@dataclass(frozen=True)
class Group:
    """A unit of caching: its samples and a key that changes whenever their content may have."""

    name: str
    key: str
    paths: tuple[Path, ...]
    labels: tuple[str, ...]


@dataclass
class Source:
    kind: str  # "dataset", "folder" or "list"
    root: Path
    groups: list[Group]
    alphabet: str | None = None  # a made dataset's own alphabet
    max_len: int | None = None  # a made dataset's longest label
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) for unusable names or lines
    warnings: list[str] = field(default_factory=list)  # e.g. a shard that no longer matches its manifest

    @property
    def size(self) -> int:
        return sum(len(g.paths) for g in self.groups)


def open_source(path: Path) -> Source:
    """Find every sample under `path`; raise BadInput if there are none."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path} does not exist (make a dataset with: captchagen make --out {path})")
    if path.is_dir() and (path / manifest.MANIFEST).exists():
        source = _dataset(path)
    elif path.is_dir():
        source = _folder(path)
    else:
        source = _list_file(path)
    if source.size == 0:
        why = f" ({len(source.bad)} files without a label in their name, e.g. {source.bad[0][0]})" if source.bad else ""
        raise BadInput(f"no labelled images found in {path}{why}")
    return source


def open_unlabeled(path: Path) -> Source:
    """Every image under the folder `path` (whatever its name says; a made dataset's shards), or each path
    listed in the list file `path` (one per line; relative to the list file), with the label UNLABELED;
    BadInput if there are none."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path} does not exist (`unlabeled` takes a folder of images or a list file of their paths)")
    if path.is_dir() and (path / manifest.MANIFEST).exists():
        items = [(p, UNLABELED) for g in _dataset(path).groups for p in g.paths]  # not its preview.png
    elif path.is_dir():  # the pool rule fit-style, adapt and label share
        items = [(p, UNLABELED) for p in unlabeled.list_images(path).paths]
    else:
        try:
            lines = path.read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise BadInput(f"cannot read list file {path}: {e}") from None
        named = (Path(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#"))
        items = [(p if p.is_absolute() else path.parent / p, UNLABELED) for p in named]
    if not items:
        raise BadInput(f"no images found in {path} (`unlabeled`: {', '.join(codec.IMAGE_SUFFIXES)} files)")
    return Source("unlabeled", path if path.is_dir() else path.parent, _groups(items, "unlabeled"))


def _dataset(root: Path) -> Source:
    try:
        data = manifest.read(root)
    except CaptchagenError as e:
        raise BadInput(str(e)) from None
    groups, warnings = [], []
    for shard in data["shards"]:
        files = sorted((root / shard["dir"]).glob("*.png"))
        labels = tuple(codec.parse_name(p.name).label for p in files)
        if len(files) != shard["count"]:
            warnings.append(
                f"{shard['dir']} has {len(files)} images where the manifest says {shard['count']} "
                f"(captchagen verify {root} lists what changed)"
            )
        # The manifest's hash says what the shard was made as; the stats say the files are still those.
        key = "shard:" + shard["sha256"] + ":" + _stats_digest(zip(files, labels, strict=True))
        groups.append(Group(name=shard["dir"], key=key, paths=tuple(files), labels=labels))
    settings = data["settings"]
    if not data.get("complete", True):  # a make that stopped: what it made, or an error if nothing
        made, planned = len(data["shards"]), data.get("num_shards", "?")
        stopped = f"{root} is a `captchagen make` that stopped before it finished ({made} of {planned} shards made"
        if not made:
            raise BadInput(f"{stopped}): run the same make again to finish it")
        warnings.append(f"{stopped}, the rest left out): run the same make again to finish it")
    return Source(
        "dataset", root, groups, alphabet=settings["alphabet"], max_len=settings["max_len"], warnings=warnings
    )


def _folder(root: Path) -> Source:
    items, bad = [], []
    for p in codec.image_files(root):
        try:
            items.append((p, codec.parse_name(p.name).label))
        except BadInput as e:
            bad.append((str(p), str(e)))
    return Source("folder", root, _groups(items, "files"), bad=bad)


def _list_file(path: Path) -> Source:
    items = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read list file {path}: {e}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise BadInput(f"{path}:{number}: expected '<image path> <label>', got {line!r}")
        image = Path(parts[0])
        items.append((image if image.is_absolute() else path.parent / image, parts[1]))
    return Source("list", path.parent, _groups(items, "list"))


def _groups(items: list[tuple[Path, str]], prefix: str) -> list[Group]:
    groups = []
    for start in range(0, len(items), GROUP_SIZE):
        chunk = items[start : start + GROUP_SIZE]
        groups.append(
            Group(
                name=f"{prefix}-{start // GROUP_SIZE:05d}",
                key="files:" + _stats_digest(chunk),
                paths=tuple(p for p, _ in chunk),
                labels=tuple(label for _, label in chunk),
            )
        )
    return groups


def _stats_digest(items: Iterable[tuple[Path, str]]) -> str:
    """A hash of each file's resolved path, label, size and mtime: changes when any file is replaced,
    added, removed or renamed."""
    h = hashlib.sha256()
    for p, label in items:
        try:
            st = p.stat()
            h.update(f"{p.resolve()}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\t{label}\tmissing\n".encode())
    return h.hexdigest()
