"""Output folders: checked before any work starts, so a folder that cannot be written is one line at once,
not a traceback after the work; and a write that fails later said in one line too."""

from __future__ import annotations

import errno
from pathlib import Path

from captchagen import atomic
from captchagen.errors import BadInput, CaptchagenError

# The errors of a write that are about the place, not the program: said in one line by the commands.
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST)


def prepare(out: Path, param: str = "out") -> None:
    """Make the folder `out` (and its parents) and check that a file can be written in it; BadInput naming
    the setting `param` when it is a file, read-only, or out of room."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"`{param}` {out} is a file, not a folder", param=param)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = atomic.temp_path(out / ".write-check")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BadInput(f"cannot write to `{param}` {out}: {e.strerror or e}", param=param) from None


def write_failure(e: OSError) -> CaptchagenError | None:
    """The one-line error for a failed write (the disk full, a place that cannot be written), or None when
    `e` is not about where the file goes."""
    where = Path(e.filename).parent if e.filename else None
    if e.errno in atomic.DISK_FULL:
        place = f" in {where}" if where else ""
        return CaptchagenError(
            f"the disk is full: no space left to write{place}; what was saved before is kept, so free some space "
            "and run the same command again"
        )
    if e.errno in NOT_WRITABLE and e.filename:
        return CaptchagenError(f"cannot write {e.filename}: {e.strerror}")
    return None
