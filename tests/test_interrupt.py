"""Interrupting `make` for real (SIGKILL, Ctrl-C) and running it again gives the uninterrupted dataset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, tree_digest

# Long enough (about 3 s on 2 cores) that the signal, sent once the first shard is done, always lands mid-run:
# with 1,000 images a busy test process once sent it after make had already finished.
ARGS = ["--n", "3000", "--shard-size", "100", *TINY]


def captchagen(*args: str) -> list[str]:
    return [sys.executable, "-m", "captchagen.cli", *args]


def start_and_interrupt(out: Path, sig: int, group: bool) -> subprocess.CompletedProcess:
    """Start make in its own process group, wait until it has finished a shard, then signal it.

    `group`: signal the whole process group (as Ctrl-C or `kill -9 -PGID` do), else only the main process,
    whose worker processes must then notice they are orphaned and stop."""
    proc = subprocess.Popen(
        captchagen("make", *ARGS, "--out", str(out), "--workers", "2"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (out / "shard-00000").exists():
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
    ("sig", "group"),
    [(signal.SIGKILL, True), (signal.SIGKILL, False), (signal.SIGINT, True)],
    ids=["sigkill-all", "sigkill-main-only", "ctrl-c"],
)
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, uninterrupted, sig, group):
    out = tmp_path / "d"
    stopped = start_and_interrupt(out, sig, group)
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
