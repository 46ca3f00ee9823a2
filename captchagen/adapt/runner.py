"""The one way adapt runs a step: a `captchagen` command as a child process that stops when adapt stops.

The child runs in a process group of its own, so a Ctrl-C at the terminal reaches adapt alone, and adapt
passes exactly one SIGINT on, whatever stopped it (SIGINT, SIGTERM, SIGHUP; more of them change nothing): a
second SIGINT would make `train` quit before saving last.pt. adapt then waits for the child to save and
exit, and raises Stopped. Should adapt die without a chance to pass anything on (SIGKILL), Linux sends the
child the same SIGINT (PR_SET_PDEATHSIG), so no step goes on training as an orphan.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import IO, Any

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """adapt was asked to stop (by `signum`) while a step ran; the step was stopped and has exited."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for Ctrl-C, as a shell reports a process a signal ended


def _stop_with_parent() -> None:
    """In the child before it runs: SIGINT when the parent dies (Linux only; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGINT)


class _Forwarder:
    """While installed, a stopping signal is passed to the child's group as one SIGINT, once: `received` holds
    the signals that came (the first decides adapt's exit code)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.proc: subprocess.Popen | None = None
        self.forwarded = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        self.forward()

    def forward(self) -> None:
        proc = self.proc
        if self.received and not self.forwarded and proc is not None and proc.poll() is None:
            self.forwarded = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGINT)


@contextlib.contextmanager
def _installed(forwarder: _Forwarder) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before: dict[int, Any] = {sig: signal.signal(sig, forwarder.handle) for sig in STOPPING}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def run_captchagen(argv: Sequence[str], stdout: IO[Any] | None = None) -> int:
    """Run `captchagen ARGV` (this Python, this package), its output straight to ours (or its stdout into the
    file `stdout`); return its exit code, or raise Stopped when asked to stop meanwhile (after the child has
    exited). adapt runs its steps with it, and experiments/ their commands."""
    forwarder = _Forwarder()
    with _installed(forwarder):
        if forwarder.received:
            raise Stopped(forwarder.received[0])
        forwarder.proc = subprocess.Popen(
            [sys.executable, "-m", "captchagen.cli", *argv],
            stdout=stdout,
            process_group=0,
            preexec_fn=_stop_with_parent,  # adapt runs no threads: preexec_fn is safe here
        )
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)  # the handler cannot forward it twice
        try:
            forwarder.forward()  # a signal that came while the child was starting
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        code = forwarder.proc.wait()
    if forwarder.received:
        raise Stopped(forwarder.received[0])
    return code
