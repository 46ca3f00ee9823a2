"""WorkerPool: a Ctrl-C in the parent raises only from the pool's own waits, never inside library code."""

from __future__ import annotations

import os
import signal
import time

import pytest

from captchagen.workers import WorkerPool


def slow_square(x: int) -> int:
    time.sleep(0.3)
    return x * x


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt here, as in a terminal's foreground job (pytest may run with it ignored)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_results_come_back_in_order_and_the_handler_is_restored(sigint_raises):
    with WorkerPool(2) as pool:
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # held while the pool is open
        assert list(pool.map(slow_square, [3, 1, 2])) == [9, 1, 4]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_is_held_until_the_pool_waits(sigint_raises):
    ran_on = []
    with pytest.raises(KeyboardInterrupt), WorkerPool(2) as pool:
        future = pool.submit(slow_square, 4)
        os.kill(os.getpid(), signal.SIGINT)
        for step in range(1000):  # plenty of bytecode boundaries where Python would raise it
            ran_on.append(step)
        pool.wait_first([future])
    assert len(ran_on) == 1000
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert future.done()  # the running task finished: the shutdown waited for it, it did not hang


def test_ctrl_c_during_the_last_results_still_stops(sigint_raises):
    with pytest.raises(KeyboardInterrupt), WorkerPool(2) as pool:
        assert list(pool.map(slow_square, [2])) == [4]
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job
    try:
        with WorkerPool(2) as pool:
            os.kill(os.getpid(), signal.SIGINT)
            assert list(pool.map(slow_square, [5])) == [25]
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
