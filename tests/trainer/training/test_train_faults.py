"""Training that goes wrong: non-finite settings, a diverging loss, resuming the wrong file or on a schedule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from captchagen.errors import BadInput
from tests.helpers import run_cli, tiny_train_args, tiny_train_config
from trainer import checkpoint
from trainer.training.loop import train
from trainer.training.optim import lr_at
from trainer.training.plan import make_plan
from trainer.training.request import TrainRequest
from trainer.training.resume import resumed_record
from trainer.training.steps import Diverged


@pytest.mark.parametrize(
    ("option", "value"),
    [("--lr", "nan"), ("--lr", "inf"), ("--time-limit", "nan"), ("--time-limit", "inf"), ("--val-fraction", "nan")],
)
def test_non_finite_numbers_are_refused_before_anything_runs(tmp_path, data, option, value):
    code, output = run_cli("train", str(data), option, value, "--runs-dir", str(tmp_path / "r"))
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and option in errors[0] and "finite" in errors[0], output
    assert not (tmp_path / "r").exists()


def test_a_loss_that_becomes_nan_stops_the_run_and_no_nan_weights_are_saved(data, tmp_path):
    with pytest.raises(Diverged, match=r"diverged.*`lr`"):
        train(tiny_train_config(data, tmp_path, epochs=3, lr=1e6, clip=1e30))
    for saved in (tmp_path / "runs").glob("*/*.pt"):
        weights = checkpoint.load(saved)["model"]
        assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point()), saved
    for metrics in (tmp_path / "runs").glob("*/metrics.jsonl"):
        for line in metrics.read_text().splitlines():
            assert all(math.isfinite(v) for v in json.loads(line).values() if isinstance(v, float)), line


def test_the_cli_reports_divergence_in_one_line(data, tmp_path):
    code, output = run_cli(
        "train",
        str(data),
        "--lr",
        "1e30",
        "--epochs",
        "2",
        *tiny_train_args(tmp_path),
    )
    assert code == 1 and "Traceback" not in output
    assert output.splitlines()[-1].startswith("Error: training diverged"), output


def test_resuming_from_best_pt_says_what_to_pass(data, tmp_path):
    result = train(tiny_train_config(data, tmp_path, epochs=1))
    code, output = run_cli("train", "--resume", f"{result.run}/best.pt")
    assert code == 2 and output.count("\n") == 1
    assert "pass the run folder or its last.pt" in output


def test_resume_keeps_the_time_limit_unless_given():
    saved = {**TrainRequest(time_limit=30.0).__dict__, "conv": [32, 64, 96, 128]}
    assert resumed_record(saved, TrainRequest()).settled.time_limit == 30.0
    assert resumed_record(saved, TrainRequest(time_limit=90.0)).settled.time_limit == 90.0
    assert resumed_record({**saved, "time_limit": None}, TrainRequest()).settled.time_limit is None


def rewind(last_pt, epoch: int, elapsed: float) -> None:
    """Make a finished run's last.pt look as if it had stopped after `epoch` with `elapsed` seconds trained."""
    state = checkpoint.load(last_pt)
    state["position"] = {"epoch": epoch, "batch": 0}
    state["scheduler"]["elapsed"] = elapsed
    checkpoint.write(last_pt, {k: v for k, v in state.items() if k not in ("format", "format_version")})


def test_a_resumed_run_continues_its_schedule_and_its_time_limit(data, tmp_path):
    cfg = tiny_train_config(data, tmp_path, epochs=2, time_limit=60.0)
    result = train(cfg)
    last = Path(result.run) / "last.pt"
    # 54 of its 60 minutes used: the schedule is at 90%, whatever the step count says.
    rewind(last, epoch=1, elapsed=54 * 60)
    train(TrainRequest(), resume=last)
    rows = [json.loads(line) for line in open(Path(result.run) / "metrics.jsonl")]
    planned = make_plan(cfg).schedule
    assert rows[-1]["lr"] <= lr_at(0.9, planned.lr, planned.warmup) + 1e-12  # no jump back towards the peak
    assert checkpoint.load(last)["train_config"]["time_limit"] == 60.0
    # With the whole limit used, resuming says how to go on instead of training zero steps.
    rewind(last, epoch=1, elapsed=60 * 60)
    with pytest.raises(BadInput, match="whole time limit of 60 minutes.*`time_limit`"):
        train(TrainRequest(), resume=last)


def test_a_full_disk_when_a_checkpoint_is_saved_is_one_line(tmp_path, data, monkeypatch):
    """torch.save writing to a full disk raised a RuntimeError past the disk-full handling (probe AD30): a
    checkpoint is serialised in memory, then written as any file is."""
    import errno

    from captchagen import atomic

    real = atomic.write_bytes

    def full_for_checkpoints(path, payload):
        if str(path).endswith(".pt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(atomic.temp_path(Path(path))))
        return real(path, payload)

    monkeypatch.setattr(atomic, "write_bytes", full_for_checkpoints)
    code, out = run_cli("train", str(data), "--epochs", "1", *tiny_train_args(tmp_path))
    assert code == 1 and "Error: the disk is full: no space left to write in" in out and "Traceback" not in out, out
    assert not list(tmp_path.glob("r/*/.*.tmp"))
