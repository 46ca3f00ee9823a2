"""Ctrl-C during training: the first one asks the loop to stop at the next batch boundary, where last.pt is
saved so that `--resume` continues exactly; a second one interrupts at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C; `run` is its folder (None before it was made), `resumable` whether its
    last.pt can be resumed from."""

    def __init__(self, run: str | None, resumable: bool, where: str = "") -> None:
        super().__init__(run)
        self.run, self.resumable, self.where = run, resumable, where


class StopRequest:
    """`with StopRequest() as stop:` and `stop.asked` tells whether Ctrl-C was pressed. Outside the main
    thread, or where SIGINT is not Python's default handler (ignored, or someone else's), nothing changes."""

    def __init__(self) -> None:
        self.asked = False
        self._old: Any = None

    def _ask(self, signum: int, frame: FrameType | None) -> None:
        self.asked = True
        signal.signal(signal.SIGINT, self._old)  # the next Ctrl-C raises KeyboardInterrupt at once

    def _muted(self, signum: int, frame: FrameType | None) -> None:
        pass

    def mute(self) -> None:
        """Ignore further Ctrl-C until the block ends: the stop is done (last.pt saved), and one more would
        only break the unwinding, as a KeyboardInterrupt inside whatever cleanup runs then."""
        if self._old is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._muted)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._old = signal.signal(signal.SIGINT, self._ask)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None and signal.getsignal(signal.SIGINT) in (self._ask, self._muted):
            signal.signal(signal.SIGINT, self._old)
        self._old = None
