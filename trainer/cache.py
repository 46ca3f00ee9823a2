"""Decode each group of images once into a memory-mapped uint8 array, so epochs never decode a PNG.

A cache entry is `<key>.npy` ([n, height, width] uint8) and `<key>.json` (labels, file names, and the
images that could not be read). The key hashes the group's content key (a made shard's SHA-256, or the
paths, sizes and mtimes of loose files) with the preprocessing, so changed data or preprocessing gets a
new entry. The JSON is written last, atomically: an entry without it is incomplete and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captchagen import atomic
from captchagen.pool import WorkerPool
from trainer.preprocess import BadImage, Preprocessing, load_array
from trainer.sources import Group

CACHE_VERSION = 1
CHUNK = 256


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
) -> CachedGroup:
    """The cached arrays of `group`, decoding its images first if no complete entry exists."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = entry_key(group, pre)
    images_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if not (meta_path.exists() and images_path.exists()):
        _build(group, pre, images_path, meta_path, workers, progress)
    elif progress:
        progress(len(group.paths))
    meta = json.loads(meta_path.read_text("utf-8"))
    return CachedGroup(
        name=group.name,
        images=np.load(images_path, mmap_mode="r"),
        labels=list(group.labels),
        paths=[str(p) for p in group.paths],
        bad={int(k): v for k, v in meta["bad"].items()},
    )


def _build(group, pre, images_path, meta_path, workers, progress) -> None:  # noqa: ANN001
    tmp = images_path.with_name(f".{images_path.name}.{os.getpid()}.tmp")
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(group.paths), pre.height, pre.width))
    del arr  # the workers write into the file through their own maps
    tasks = [
        (str(tmp), [str(p) for p in group.paths[s : s + CHUNK]], s, pre) for s in range(0, len(group.paths), CHUNK)
    ]
    bad: dict[int, str] = {}
    try:
        if workers > 1 and len(tasks) > 1:
            with WorkerPool(min(workers, len(tasks))) as pool:
                for task, result in zip(tasks, pool.map(_decode_chunk, tasks), strict=False):
                    bad.update(result)
                    if progress:
                        progress(len(task[1]))
        else:
            for task in tasks:
                bad.update(_decode_chunk(task))
                if progress:
                    progress(len(task[1]))
        os.replace(tmp, images_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    atomic.write_json(meta_path, {"version": CACHE_VERSION, "group": group.name, "bad": bad})


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
