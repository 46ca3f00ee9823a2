"""Atomic file writes: write a temp file beside the target, then rename it over the target."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the errors of a write that found no room


def temp_path(path: Path) -> Path:
    """Where a write of `path` is staged: a hidden file beside it, named after this process."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """`with replacing(path) as tmp:` write `tmp` in the block; when the block succeeds it is renamed over
    `path`, and whatever happens no temp file is left. Readers see the old file or the whole new one,
    never part of it, even if the process is killed."""
    tmp = temp_path(Path(path))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json(path: Path, obj: object) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)" + re.escape(TMP_SUFFIX) + "$")  # temp_path's names


def remove_temp_files(folder: Path, suffixes: tuple[str, ...] = ()) -> int:
    """Delete temp files an interrupted write left behind in `folder` (only names temp_path gives: a user's
    own `.notes.tmp` stays), of targets ending in one of `suffixes` when given; return how many."""
    removed = 0
    for p in folder.glob(f".*{TMP_SUFFIX}"):
        m = TEMP_NAME.match(p.name)
        if m is None or (suffixes and not m["name"].lower().endswith(suffixes)):
            continue
        p.unlink(missing_ok=True)
        removed += 1
    return removed
