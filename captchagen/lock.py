"""An exclusive lock on a folder, so two processes never write one dataset at once.

The lock is `flock` on a file in the folder, holding the owner's pid for messages. The kernel drops the
lock when its process ends however it ends (SIGKILL included), so a lock left by a dead process is
simply taken over: the file may stay, the lock does not. Where there is no `fcntl` (Windows), folders
are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path

from captchagen.errors import CaptchagenError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".captchagen.lock"


class FolderBusy(CaptchagenError):
    """Another live process holds the folder's lock."""


class FolderLock:
    """`with FolderLock(folder, "make"):` (or acquire/release) holds the folder for this process, or raises
    FolderBusy at once. Creating the lock file may raise OSError (a folder that cannot be written)."""

    def __init__(self, folder: Path, what: str) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise FolderBusy(
                f"{self.path.parent} is in use by another captchagen {self.what} (pid {owner}); "
                "wait for it to finish or stop it, then run this again"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock; the file stays, so no other process's lock is unlinked
            self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
