"""Interrupting `make` for real (SIGKILL, Ctrl-C) and running it again gives the uninterrupted dataset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import TINY, sigint_as_in_a_terminal, tree_digest

# Long enough (about 3 s on 2 cores) that the signal, sent once the first shard is done, always lands mid-run:
# with 1,000 images a busy test process once sent it after make had already finished.
ARGS = ["--n", "3000", "--shard-size", "100", *TINY]


def captchagen(*args: str) -> list[str]:
    return [sys.executable, "-m", "captchagen.cli", *args]


def start_and_interrupt(out: Path, sig: int, group: bool, when: str = "shard-00000") -> subprocess.CompletedProcess:
    """Start make in its own process group, wait until `when` exists in `out`, then signal it.

    `group`: signal the whole process group (as Ctrl-C or `kill -9 -PGID` do), else only the main process,
    whose worker processes must then notice they are orphaned and stop."""
    with sigint_as_in_a_terminal():
        proc = subprocess.Popen(
            captchagen("make", *ARGS, "--out", str(out), "--workers", "2"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            text=True,
        )
    deadline = time.monotonic() + 120
    while not (out / when).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"make ended or stalled before a shard was done: {proc.communicate()}")
        time.sleep(0.02)
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("whole") / "d"
    subprocess.run(captchagen("make", *ARGS, "--out", str(out), "--workers", "2"), check=True, capture_output=True)
    return tree_digest(out)


@pytest.mark.parametrize(
    ("sig", "group", "when", "pytest_sigint"),
    [
        (signal.SIGKILL, True, "shard-00000", signal.default_int_handler),
        (signal.SIGKILL, False, "shard-00000", signal.default_int_handler),
        (signal.SIGINT, True, "shard-00000", signal.default_int_handler),
        # pytest started as a background job of a non-interactive shell: SIGINT ignored in this process.
        (signal.SIGINT, True, "shard-00000", signal.SIG_IGN),
        # The partial folder appears just before the first task is submitted, so the Ctrl-C lands while the
        # worker processes are starting: none of them may print a traceback of its own.
        (signal.SIGINT, True, "shard-00000.partial", signal.default_int_handler),
    ],
    ids=["sigkill-all", "sigkill-main-only", "ctrl-c", "ctrl-c-pytest-in-background", "ctrl-c-while-workers-start"],
)
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, uninterrupted, sig, group, when, pytest_sigint):
    old = signal.signal(signal.SIGINT, pytest_sigint)
    try:
        stopped = start_and_interrupt(tmp_path / "d", sig, group, when)
    finally:
        signal.signal(signal.SIGINT, old)
    out = tmp_path / "d"
    if sig == signal.SIGINT:
        assert stopped.returncode == 130, stopped.stderr
        assert "Traceback" not in stopped.stderr and "run the same command again" in stopped.stderr.lower()
    else:
        assert stopped.returncode == -signal.SIGKILL
    assert len(tree_digest(out)) < 3000  # it really was cut short
    done = subprocess.run(captchagen("make", *ARGS, "--out", str(out)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "already complete" in done.stdout
    assert tree_digest(out) == uninterrupted
    assert not list(out.glob("**/.*.tmp")) and not list(out.glob("*.partial"))
