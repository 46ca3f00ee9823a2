"""What a training run must never do: validate on images it trains on, share its run folder with another
process, or promise a resume it cannot keep."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from captchagen.errors import BadInput, CaptchagenError
from tests.helpers import run_cli, sigint_as_in_a_terminal, tiny_dataset, tiny_train_args, tiny_train_config
from trainer import checkpoint
from trainer.runs import LATEST, new_run_dir
from trainer.training.datasets import load_data
from trainer.training.events import BatchDone
from trainer.training.interrupt import Interrupted
from trainer.training.loop import train
from trainer.training.plan import make_plan
from trainer.training.request import TrainRequest


def _sets(cfg):
    notices = []
    return load_data(make_plan(cfg), notices.append), [n.message for n in notices if hasattr(n, "message")]


def _trained_and_validated(sets) -> tuple[set[Path], set[Path]]:
    return {Path(p).resolve() for p in sets.train.paths()}, {Path(p).resolve() for p in sets.val.paths()}


def test_mixing_data_into_itself_leaves_its_validation_images_out_of_training(data, tmp_path):
    cfg = tiny_train_config(data, tmp_path, mix=((str(data), 0.5),), steps_per_epoch=2)
    sets, notices = _sets(cfg)
    trained, validated = _trained_and_validated(sets)
    assert validated and not trained & validated
    dropped = [n for n in notices if "validation images too" in n]
    assert len(dropped) == 1 and f"{len(validated):,} images" in dropped[0] and "`mix`" in dropped[0]
    assert sets.sizes[1] == 640 - len(validated)  # the rest of the mixed-in set is still drawn


def test_a_copy_of_the_validation_set_mixed_in_is_found_by_content(data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    val = tiny_dataset(tmp_path / "other", seed=9)
    cfg = tiny_train_config(copy, tmp_path, val_data=str(data), mix=((str(val), 0.3),), steps_per_epoch=2)
    with pytest.raises(BadInput, match="every training image of DATA .* is also a validation image"):
        _sets(cfg)


def test_val_data_overlapping_data_drops_the_shared_images(data, tmp_path):
    part = tmp_path / "part"
    part.mkdir()
    shared = sorted(data.rglob("*.png"))[:100]
    for p in shared:
        (part / p.name).symlink_to(p)  # another path to the same files
    cfg = tiny_train_config(data, tmp_path, val_data=str(part))
    sets, notices = _sets(cfg)
    trained, validated = _trained_and_validated(sets)
    assert len(validated) == 100 and not trained & {p.resolve() for p in shared}
    assert len(sets.train) == 540
    assert any("DATA" in n and "100 images are validation images too" in n for n in notices)


def test_val_data_equal_to_data_is_refused_in_one_line(data, tmp_path):
    code, out = run_cli("train", str(data), "--val-data", str(data), *tiny_train_args(tmp_path))
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and "--val-data" in errors[0] and "Traceback" not in out, out
    assert not (tmp_path / "r").exists()


# ---- one writer per run folder, and what Ctrl-C leaves ----


def _train_process(data: Path, tmp: Path, *args: str) -> subprocess.Popen:
    """`captchagen train` in its own process, with SIGINT at its default as a terminal's job has it."""
    with sigint_as_in_a_terminal():
        return subprocess.Popen(
            [sys.executable, "-m", "captchagen.cli", "train", str(data), *tiny_train_args(tmp), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"train ended or stalled before {path} appeared: {proc.communicate()}")
        time.sleep(0.05)


@contextlib.contextmanager
def _long_run(data: Path, tmp: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    """A training process whose first epoch is far longer than any test (a Ctrl-C always lands inside it),
    with its run folder once it exists; killed at the end of the block if it is still running."""
    proc = _train_process(data, tmp, "--name", "x", "--steps-per-epoch", "1000000")
    try:
        _wait_for(tmp / "r" / "x" / "inputs.png", proc)
        yield proc, tmp / "r" / "x"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_run_has_one_writer_and_ctrl_c_mid_epoch_leaves_a_run_that_resumes(data, tmp_path):
    with _long_run(data, tmp_path) as (proc, run):
        code, out = run_cli("train", str(data), *tiny_train_args(tmp_path), "--resume", str(run))
        assert code == 1 and f"in use by another captchagen train (pid {proc.pid})" in out, out
        code, out = run_cli("train", str(data), *tiny_train_args(tmp_path), "--name", "x")
        assert code == 1 and "already exists" in out, out
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert f"Continue with: captchagen train --resume {run}" in stderr
    last = checkpoint.load(run / "last.pt")
    assert last["position"]["epoch"] == 0  # saved inside the first epoch, where it stopped
    assert not (tmp_path / "r" / "LATEST").exists()  # no best.pt yet: `test` does not pick this run
    code, out = run_cli("train", "--resume", str(run), "--init-from", "base")
    assert code == 2 and "--init-from" in out and "--resume" in out, out
    limit = last["scheduler"]["elapsed"] / 60 + 0.02  # the limit counts the time already trained
    code, out = run_cli("train", "--resume", str(run), "--time-limit", f"{limit:.4f}")
    assert code == 0, out
    assert (run / "best.pt").exists() and (tmp_path / "r" / "LATEST").read_text().strip() == "x"


@pytest.mark.parametrize("gap", [0.0, 0.02, 0.1, 0.3])
def test_a_second_ctrl_c_soon_after_the_first_still_ends_in_one_message_and_130(data, tmp_path, gap):
    """However soon the second one comes (while last.pt is saved, while the run unwinds, while the message is
    printed), the exit code is 130, the message is the last line, and no traceback is printed."""
    with _long_run(data, tmp_path) as (proc, _):
        time.sleep(0.5)  # inside the training steps
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(gap)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    # One Ctrl-C more while last.pt is being written stops at once (the write is atomic: old or nothing)
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("Interrupted") and ("last.pt is saved" in last or "saved anything" in last), stderr


def test_ctrl_c_mid_epoch_then_resume_equals_the_uninterrupted_run(data, tmp_path):
    whole = train(tiny_train_config(data, tmp_path / "a", epochs=2))

    def ctrl_c_at_batch_3(e):
        if isinstance(e, BatchDone) and e.epoch == 1 and e.batch == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with sigint_as_in_a_terminal(), pytest.raises(Interrupted) as stopped:
        train(tiny_train_config(data, tmp_path / "b", epochs=2), ctrl_c_at_batch_3)
    assert stopped.value.resumable and stopped.value.where.startswith("epoch 1, batch 3 of")
    run = Path(stopped.value.run)
    assert checkpoint.load(run / "last.pt")["position"] == {"epoch": 0, "batch": 3}
    train(TrainRequest(), resume=run / "last.pt")
    a = checkpoint.load(Path(whole.run) / "last.pt")["model"]
    b = checkpoint.load(run / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_run_of_the_same_name_gets_no_folder(tmp_path):
    first = new_run_dir(tmp_path, "same")
    with pytest.raises(CaptchagenError, match="already exists"):
        new_run_dir(tmp_path, "same")
    unnamed = [new_run_dir(tmp_path, None) for _ in range(3)]  # the same second: suffixes, never shared
    assert first.is_dir() and len(set(unnamed)) == 3


@pytest.mark.parametrize("kind", ["binary", "folder", "empty", "path"])
def test_a_broken_latest_pointer_is_a_one_line_error(tmp_path, kind):
    runs = tmp_path / "runs"
    runs.mkdir()
    pointer = runs / LATEST
    if kind == "binary":
        pointer.write_bytes(b"\xff\xfe\x00\x81")
    elif kind == "folder":
        pointer.mkdir()
    elif kind == "empty":
        pointer.write_text("\n")
    else:
        pointer.write_text("../../etc\n")
    code, out = run_cli("test", "--runs-dir", str(runs), str(tmp_path / "x.png"))
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(errors) == 1 and "LATEST" in errors[0] and "Traceback" not in out, out
