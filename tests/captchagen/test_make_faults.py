"""`make` under faults: another process writing the same folder, a stale lock, a full disk."""

from __future__ import annotations

import errno
import subprocess
import sys

from captchagen import atomic
from captchagen.lock import LOCK_NAME
from captchagen.manifest import verify
from tests.helpers import TINY, run_cli, tree_digest

HOLD = (
    "import sys; from captchagen.lock import FolderLock; l = FolderLock(sys.argv[1], 'make'); l.acquire(); "
    "print('locked', flush=True); sys.stdin.read()"
)


def make_args(out, n=40, *extra):
    return ["make", "--n", str(n), "--shard-size", "16", "--workers", "1", "--out", str(out), *TINY, *extra]


def test_a_folder_in_use_by_another_process_is_refused_naming_it(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, output = run_cli(*make_args(out))
        assert code == 1
        assert output.count("\n") == 1 and output.startswith("Error: ") and "Traceback" not in output
        assert str(out) in output and f"pid {holder.pid}" in output
        assert not list(out.glob("shard-*")) and not (out / "manifest.json").exists()
    finally:
        holder.communicate("")  # ends the holder, and with it the lock
    code, output = run_cli(*make_args(out))
    assert code == 0, output
    assert verify(out).ok


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / LOCK_NAME).write_text(dead.stdout)
    code, output = run_cli(*make_args(out))
    assert code == 0, output
    assert verify(out).ok


def test_two_makes_started_together_never_crash(tmp_path):
    out = tmp_path / "d"
    cmd = [
        sys.executable,
        "-m",
        "captchagen.cli",
        "make",
        "--n",
        "2000",
        "--shard-size",
        "100",
        "--workers",
        "2",
        "--out",
        str(out),
        *TINY,
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    results = [(code, out_, err) for (out_, err), code in results]
    assert sorted(code for code, _, _ in results)[0] == 0, results
    for code, _, err in results:
        assert "Traceback" not in err, err
        if code != 0:
            assert code == 1 and f"{out} is in use by another captchagen make" in err, err
    assert verify(out).ok


def test_a_full_disk_is_one_line_and_the_same_command_finishes_the_dataset(tmp_path, monkeypatch):
    real_write = atomic.write_bytes
    writes = [0]

    def filling_up(path, data):
        writes[0] += 1
        if writes[0] > 20:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, data)

    monkeypatch.setattr(atomic, "write_bytes", filling_up)
    out = tmp_path / "d"
    code, output = run_cli(*make_args(out))
    assert code == 1
    lines = [line for line in output.splitlines() if not line.startswith("rendering")]
    assert len(lines) == 1 and "Traceback" not in output, output
    assert "disk is full" in lines[0] and "run the same command again" in lines[0]
    assert not verify(out).ok or not (out / "shard-00002").exists()
    monkeypatch.setattr(atomic, "write_bytes", real_write)
    code, output = run_cli(*make_args(out))
    assert code == 0, output
    whole = tmp_path / "whole"
    assert run_cli(*make_args(whole))[0] == 0
    assert tree_digest(out) == tree_digest(whole)


def test_temp_files_of_a_killed_manifest_or_preview_write_are_removed_on_resume(tmp_path):
    """SIGKILL between a temp file's write and its rename leaves it in the dataset folder (seen in CI)."""
    out = tmp_path / "d"
    code, printed = run_cli("make", "--n", "6", "--shard-size", "3", *TINY, "--out", str(out))
    assert code == 0, printed
    made = tree_digest(out)
    left = [out / ".manifest.json.99999.tmp", out / ".preview.png.99998.tmp"]
    for path in left:
        path.write_text("half-written")
    code, printed = run_cli("make", "--n", "6", "--shard-size", "3", *TINY, "--out", str(out))
    assert code == 0 and "already complete" in printed, printed
    assert not any(p.exists() for p in left) and not list(out.glob("**/.*.tmp"))
    assert tree_digest(out) == made and verify(out).ok
