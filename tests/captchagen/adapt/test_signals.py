"""adapt stopped by a signal: its running step stops with it, saves what it can, and is never left behind as
an orphan still training (probe AD15), whether adapt gets SIGTERM, Ctrl-C twice, or SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captchagen.lock import LOCK_NAME, FolderLock
from tests.helpers import REPO, site_pool

WAIT_S = 120  # for a step to start or stop on a loaded machine; the tests end as soon as it does


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    return site_pool(tmp_path_factory.mktemp("signals"))


def alive(pid: int) -> bool:
    """Running (a zombie that no one reaped yet has stopped running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def start_adapt(pool: Path, out: Path) -> tuple[subprocess.Popen, int]:
    """adapt in its own session (as a terminal job), and the pid of its `train` step once that runs."""
    command = [sys.executable, "-m", "captchagen.cli", "adapt", str(pool), "--out", str(out), "--alphabet", "ABCD1234",
               "--length", "4", "--rounds", "1", "--workers", "1", "--font", str(REPO / "fonts"), "--n", "100",
               "--init-from", "base", "--time-limit", "5", "--self-time-limit", "5"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    lock = out / "runs" / "synthetic" / LOCK_NAME
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        text = lock.read_text().strip() if lock.exists() else ""
        if text.isdigit() and alive(int(text)):
            return proc, int(text)
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the train step did not start: {proc.communicate()[0][-2000:]}")


def gone(pid: int) -> bool:
    deadline = time.monotonic() + WAIT_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


@pytest.mark.parametrize("how", ["SIGTERM", "two Ctrl-C", "SIGHUP"])
def test_a_stopped_adapt_stops_its_step_which_saves_and_leaves_nothing_running(pool, tmp_path, how):
    proc, child = start_adapt(pool, tmp_path / "out")
    time.sleep(1.0)  # into training proper, where a stop saves last.pt
    if how == "two Ctrl-C":
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(getattr(signal, how))
    output, _ = proc.communicate(timeout=WAIT_S)
    expected = {"SIGTERM": 143, "two Ctrl-C": 130, "SIGHUP": 129}[how]
    assert proc.returncode == expected and "Traceback" not in output, output[-3000:]
    assert "Run the same command again to go on" in output
    assert gone(child)
    with FolderLock(tmp_path / "out" / "runs" / "synthetic", "train"):
        pass  # free: no process holds the run


def test_adapt_killed_outright_takes_its_step_down_with_it(pool, tmp_path):
    proc, child = start_adapt(pool, tmp_path / "out")
    time.sleep(1.0)
    proc.kill()  # SIGKILL: adapt can pass nothing on; the kernel tells the step (PR_SET_PDEATHSIG)
    proc.communicate(timeout=WAIT_S)
    assert gone(child)
    run = tmp_path / "out" / "runs" / "synthetic"
    with FolderLock(run, "train"):
        pass
