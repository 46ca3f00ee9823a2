"""Worker processes that leave Ctrl-C to the parent, and the number of cores this process may use.

A Ctrl-C in a terminal signals the whole process group. The parent stops the pool and says how to resume;
a worker that also received the SIGINT would die with a KeyboardInterrupt traceback of its own. Setting
SIG_IGN in the worker's initializer is too late: a spawned worker spends its first fraction of a second
importing, and a SIGINT then kills it noisily. So a Ctrl-C is held back in the parent while it starts
workers (which `submit` does, lazily): a child inherits SIGINT blocked from its first instruction, as
CPython starts its own resource tracker, and the initializer then ignores it for good.

While the pool is open the parent does not let a Ctrl-C raise wherever it lands either: a KeyboardInterrupt
raised inside concurrent.futures (between two lock acquisitions in `wait`, say) can leave a future's lock
held, and the shutdown that follows then waits forever. The SIGINT only sets a flag; the pool raises
KeyboardInterrupt itself, from its own waits, holding no lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

_CAN_MASK = hasattr(signal, "pthread_sigmask")
_POLL_S = 0.1  # how often a wait looks for a Ctrl-C: the longest a Ctrl-C waits to be acted on


def cpu_count() -> int:
    """Cores this process may run on (its CPU affinity, as taskset or a container sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, then deliver it as the process would have.

    Two things are needed. The mask: a child started meanwhile inherits SIGINT blocked. The handler: the
    mask is per thread, so another thread may still take the signal, and Python would then raise
    KeyboardInterrupt in the middle of starting a worker, whose pickled start-up data would never be sent
    (it dies with an EOFError traceback). Outside the main thread signal handlers cannot be changed, and
    this does nothing."""
    if (
        not _CAN_MASK
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is None  # a handler not set from Python: leave it alone
    ):
        yield
        return
    received: list[int] = []
    handler = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a SIGINT pending on this thread arrives here
        signal.signal(signal.SIGINT, handler)
    if received:
        if callable(handler):
            handler(signal.SIGINT, None)  # Python's default raises KeyboardInterrupt
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)


def _init(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _CAN_MASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # ignored now, so nothing stays pending
    if initializer is not None:
        initializer(*initargs)


def _raises_on_sigint() -> bool:
    """Whether a Ctrl-C would raise in this thread: the main thread, with a handler set from Python (not
    SIG_IGN, as a background job has, nor one installed outside Python)."""
    return threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGINT))


class WorkerPool:
    """A ProcessPoolExecutor of spawned processes (no fork: safe with threads, the same on every OS) whose
    workers never see a Ctrl-C, and whose parent acts on a Ctrl-C only in `wait_first` and `map`.

    Use it as a context manager: leaving the block shuts the pool down (cancelling queued tasks when an
    exception left it) and puts the SIGINT handler back."""

    def __init__(self, workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> None:
        self._interrupted = False
        self._handler = None
        if _raises_on_sigint():
            self._handler = signal.signal(signal.SIGINT, self._record)
        self._pool = ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_init, initargs=(initializer, initargs)
        )

    def _record(self, signum: int, frame: object) -> None:
        self._interrupted = True

    def _check(self) -> None:
        if self._interrupted:
            raise KeyboardInterrupt

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        self._check()
        with _sigint_deferred():  # submit may start a worker process
            return self._pool.submit(fn, *args)

    def wait_first(self, futures: Iterable[Future]) -> set[Future]:
        """The futures that are done, once at least one is; KeyboardInterrupt if Ctrl-C was pressed."""
        while True:
            self._check()
            done, _ = wait(futures, timeout=_POLL_S, return_when=FIRST_COMPLETED)
            if done:
                return done

    def map(self, fn: Callable[..., Any], items: Iterable[Any]) -> Iterator[Any]:
        """Results in order; every item is submitted at once."""
        futures = [self.submit(fn, item) for item in items]
        for f in futures:
            while not f.done():
                self.wait_first([f])
            yield f.result()

    def shutdown(self, cancel: bool = False) -> None:
        """Wait for the running tasks (a Ctrl-C meanwhile is held), then restore the SIGINT handler."""
        try:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
        finally:
            if self._handler is not None:
                signal.signal(signal.SIGINT, self._handler)
                self._handler = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel=exc[0] is not None)
        if exc[0] is None:
            self._check()  # a Ctrl-C during the last results or the shutdown still stops the program
