"""Atomic file writes: write a temp file beside the target, then rename it over the target."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

TMP_SUFFIX = ".tmp"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the errors of a write that found no room


def write_bytes(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never part of it, even if the process is killed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: object) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def remove_temp_files(folder: Path) -> int:
    """Delete temp files an interrupted write left behind in `folder`; return how many."""
    removed = 0
    for p in folder.glob(f".*{TMP_SUFFIX}"):
        p.unlink(missing_ok=True)
        removed += 1
    return removed
