"""Decode each group of images once into a memory-mapped uint8 array, so epochs never decode a PNG.

A cache entry is `<key>.npy` ([n, height, width] uint8; [n, 3, height, width] in colour) and `<key>.json`
(row count, shape, the images that could not be read, and the SHA-256 of the array's bytes). The key
hashes the group's content key (the names, sizes and mtimes of its files, plus a made shard's hash) with
the preprocessing, so changed data or preprocessing gets a new entry. The JSON is written last,
atomically. An entry is used only if both files open, the shapes and row count match, and the array still
has the recorded checksum; anything else (an incomplete, truncated or overwritten entry) is rebuilt, and
`notice` says why in one line.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captchagen import atomic
from captchagen.atomic import DISK_FULL
from captchagen.errors import CaptchagenError
from captchagen.workers import WorkerPool
from trainer.data.preprocess import BadImage, Preprocessing, load_array
from trainer.data.sources import Group

CACHE_VERSION = 2  # 2: checksum and row count in the JSON, file stats in every key
CHUNK = 256
HASH_BLOCK = 1 << 24  # bytes hashed at a time, so checking a large entry never copies it whole
_TEMP = re.compile(r"\.(?P<entry>[0-9a-f]{32}\.npy)\.(?P<pid>\d+)\.tmp")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "captchagen"


@dataclass
class CachedGroup:
    name: str
    images: np.ndarray  # memory-mapped uint8 [n, H, W]; rows of unreadable images are zero
    labels: list[str]
    paths: list[str]
    bad: dict[int, str]  # row -> reason the image could not be read


def entry_key(group: Group, pre: Preprocessing) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "group": group.key, "pre": pre.to_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def load_or_build(
    group: Group,
    pre: Preprocessing,
    cache_dir: Path,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> CachedGroup:
    """The cached arrays of `group`, decoding its images first unless a sound entry exists."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CaptchagenError(f"cannot create the cache folder {cache_dir}: {e.strerror or e}") from None
    key = entry_key(group, pre)
    images_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    shape = (len(group.paths), *pre.array_shape)
    entry = None
    if meta_path.exists() or images_path.exists():
        entry, problem = _open(images_path, meta_path, shape)
        if entry is None and notice:
            notice(f"cache entry {images_path.name} for {group.name} {problem}; rebuilding it")
    if entry is None:
        _build(group, pre, images_path, meta_path, workers, progress)
        entry, problem = _open(images_path, meta_path, shape)
        if entry is None:  # something else rewrote it meanwhile; never train on it
            raise CaptchagenError(f"cache entry {images_path} {problem} right after it was built")
    elif progress:
        progress(len(group.paths))
    images, bad = entry
    return CachedGroup(
        name=group.name, images=images, labels=list(group.labels), paths=[str(p) for p in group.paths], bad=bad
    )


def checksum(images: np.ndarray) -> str:
    h = hashlib.sha256()
    flat = images.reshape(-1)
    for start in range(0, flat.size, HASH_BLOCK):
        h.update(np.ascontiguousarray(flat[start : start + HASH_BLOCK]).data)
    return h.hexdigest()


def _open(images_path: Path, meta_path: Path, shape: tuple[int, ...]):
    """((images, bad), None) for a sound entry, else (None, what is wrong with it)."""
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        rows, digest = meta["rows"], meta["sha256"]
        bad = {int(k): str(v) for k, v in meta["bad"].items()}
    except FileNotFoundError:
        return None, "is incomplete (no .json)"
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return None, "has an unreadable .json"
    if meta.get("version") != CACHE_VERSION:
        return None, f"has format version {meta.get('version')}, not {CACHE_VERSION}"
    try:
        images = np.load(images_path, mmap_mode="r")
    except FileNotFoundError:
        return None, "is incomplete (no .npy)"
    except (OSError, ValueError, EOFError) as e:
        return None, f"has an unreadable .npy ({str(e).splitlines()[0][:80] or type(e).__name__})"
    if images.dtype != np.uint8 or images.shape != shape or rows != shape[0]:
        return None, f"holds {rows} rows of {images.shape}, not the {shape[0]} images of {shape}"
    if checksum(images) != digest:
        return None, "does not match its checksum"
    return (images, bad), None


def _build(group, pre, images_path, meta_path, workers, progress) -> None:
    _remove_stale_temps(images_path.parent)
    shape = (len(group.paths), *pre.array_shape)
    bad: dict[int, str] = {}
    try:
        with atomic.replacing(images_path) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            del arr  # the workers write into the file through their own maps
            _reserve(tmp)
            tasks = [
                (str(tmp), [str(p) for p in group.paths[s : s + CHUNK]], s, pre) for s in range(0, shape[0], CHUNK)
            ]
            if workers > 1 and len(tasks) > 1:
                with WorkerPool(min(workers, len(tasks))) as pool:
                    for task, result in zip(tasks, pool.map(_decode_chunk, tasks), strict=True):
                        bad.update(result)
                        if progress:
                            progress(len(task[1]))
            else:
                for task in tasks:
                    bad.update(_decode_chunk(task))
                    if progress:
                        progress(len(task[1]))
            digest = checksum(np.load(tmp, mmap_mode="r"))
        meta = {"version": CACHE_VERSION, "group": group.name, "rows": shape[0], "sha256": digest, "bad": bad}
        atomic.write_json(meta_path, meta)
    except OSError as e:
        if e.errno in DISK_FULL:
            size = math.prod(shape) / 1e6
            raise CaptchagenError(
                f"no space left in {images_path.parent} for the cache of {group.name} ({size:,.0f} MB); "
                "free some space or choose another folder with `cache_dir`"
            ) from None
        raise


def _reserve(path: Path) -> None:
    """Allocate the file's blocks now. A sparse file on a full disk fails later, as a bus error in whichever
    process writes into the map; this fails here, with ENOSPC."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem that cannot; it gets written anyway
            raise
    finally:
        os.close(fd)


def _remove_stale_temps(cache_dir: Path) -> None:
    """Delete temp files of builds whose process is gone (killed, or its machine restarted)."""
    for p in cache_dir.glob(".*.tmp"):
        m = _TEMP.fullmatch(p.name)
        if m and not _alive(int(m["pid"])):
            p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _decode_chunk(task: tuple[str, list[str], int, Preprocessing]) -> dict[int, str]:
    """Decode one chunk of images into rows [start, start + len) of the array file."""
    path, files, start, pre = task
    arr = np.load(path, mmap_mode="r+")
    bad = {}
    for i, file in enumerate(files):
        try:
            arr[start + i] = load_array(file, pre)
        except BadImage as e:
            bad[start + i] = str(e)
    arr.flush()
    return bad
