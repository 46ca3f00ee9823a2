"""Training end to end on a tiny dataset: it learns, writes its run folder, resumes exactly, stops on time."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from captchagen.errors import BadInput
from tests.helpers import (
    AS_IN_A_TERMINAL,
    run_cli,
    tiny_train_args,
    tiny_train_config,
    torchrun_train,
    without_escapes,
)
from trainer import checkpoint
from trainer.data.loading import load, split
from trainer.data.preprocess import Preprocessing
from trainer.training.events import BatchDone, EpochEnded, TrainResult
from trainer.training.loop import train
from trainer.training.request import FINE_TUNE, TrainRequest


def test_loss_falls_and_the_run_folder_is_complete(data, tmp_path):
    events = []
    result = train(tiny_train_config(data, tmp_path, epochs=3), events.append)
    run = tmp_path / "runs" / (tmp_path / "runs" / "LATEST").read_text().strip()
    assert str(run) == result.run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert set(rows[0]) >= {"val_loss", "seq_accuracy", "mean_edit_distance", "cer", "images_per_s", "elapsed_s"}
    assert json.loads((run / "config.json").read_text())["epochs"] == 3
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    best = checkpoint.load(run / "best.pt")
    last = checkpoint.load(run / "last.pt")
    assert best["alphabet"] == "0123456789" and best["preprocessing"]["width"] == 48
    # The best epoch: the highest accuracy, then the lowest CER, then the lowest validation loss.
    assert best["metrics"]["epoch"] == max(rows, key=lambda r: (r["seq_accuracy"], -r["cer"], -r["val_loss"]))["epoch"]
    assert set(best["metrics"]["by_length"]) <= {"1", "2", "3"}
    assert {"optimizer", "rng", "position", "scheduler"} <= set(last) and "optimizer" not in best
    assert last["position"] == {"epoch": 3, "batch": 0}
    kinds = [type(e) for e in events]
    assert kinds.count(EpochEnded) == 3 and kinds[-1] is TrainResult and BatchDone in kinds


def test_keep_last_puts_every_epoch_in_best_pt_and_the_headline_says_so(data, tmp_path):
    """For a run whose validation is not its target (adapt's self-training), best.pt follows the last epoch."""
    result = train(tiny_train_config(data, tmp_path, epochs=3, keep="last"))
    assert result.keep == "last" and result.best.epoch == 3
    assert checkpoint.load(Path(result.run) / "best.pt")["metrics"]["epoch"] == 3
    code, out = run_cli("train", str(data), *tiny_train_args(tmp_path / "cli"), "--epochs", "2", "--keep", "last")
    assert code == 0 and "Kept the last epoch (--keep last), 2" in without_escapes(out), out
    code, out = run_cli("train", str(data), *tiny_train_args(tmp_path / "bad"), "--keep", "newest")
    assert code == 2 and "--keep" in out


def test_options_a_resume_ignores_are_named(data, tmp_path):
    code, out = run_cli("train", str(data), *tiny_train_args(tmp_path), "--epochs", "1")
    assert code == 0, out
    run = next(p for p in (tmp_path / "r").iterdir() if p.is_dir())
    code, out = run_cli("train", "--resume", str(run), "--lr", "0.5", "--batch-size", "8", "--time-limit", "5")
    assert code == 0 and "ignored: --batch-size, --lr (only --time-limit may change)" in out, out
    code, out = run_cli("train", "--resume", str(run))
    assert code == 0 and "ignored" not in out


def test_stopped_after_epoch_one_and_resumed_equals_uninterrupted(data, tmp_path):
    whole = train(tiny_train_config(data, tmp_path / "a", epochs=2))

    def stop_after_first_epoch(e):
        if isinstance(e, EpochEnded) and e.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_train_config(data, tmp_path / "b", epochs=2), stop_after_first_epoch)
    run_b = next((tmp_path / "b" / "runs").glob("2*"))
    assert checkpoint.load(run_b / "last.pt")["position"] == {"epoch": 1, "batch": 0}
    train(TrainRequest(), resume=run_b / "last.pt")
    a = checkpoint.load(os.path.join(whole.run, "last.pt"))["model"]
    b = checkpoint.load(run_b / "last.pt")["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len((run_b / "metrics.jsonl").read_text().splitlines()) == 2


def test_time_limit_stops_cleanly_and_keeps_the_best_model(data, tmp_path):
    result = train(tiny_train_config(data, tmp_path, epochs=50, time_limit=0.03))
    assert result.stopped_by_time
    run = tmp_path / "runs" / (tmp_path / "runs" / "LATEST").read_text().strip()
    assert (run / "best.pt").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) < 50 and all(r["complete"] for r in rows[:-1])
    # The limit struck inside an epoch (its row is partial, resumed mid-epoch) or at an epoch's start.
    position = checkpoint.load(run / "last.pt")["position"]
    if rows[-1]["complete"]:
        assert position == {"epoch": len(rows), "batch": 0}
    else:
        assert position["epoch"] == len(rows) - 1 and position["batch"] > 0


def test_a_limit_reached_before_an_epochs_first_step_adds_no_empty_row(data, tmp_path, monkeypatch):
    from trainer.training import loop

    real = loop.train_epoch

    def out_of_time_at_epoch_two(step, loader, epoch, start, at, info, emit, should_stop):
        if epoch == 1:  # as if the clock ran out as the second epoch began
            return 0.0, 0, start, "time"
        return real(step, loader, epoch, start, at, info, emit, should_stop)

    monkeypatch.setattr(loop, "train_epoch", out_of_time_at_epoch_two)
    events = []
    result = train(tiny_train_config(data, tmp_path, epochs=5, time_limit=60.0), events=events.append)
    assert result.stopped_by_time and result.best.epoch == 1
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [1]
    run = Path(result.run)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert checkpoint.load(run / "last.pt")["position"] == {"epoch": 1, "batch": 0}


def test_width_too_small_for_the_longest_label_is_refused(data, tmp_path):
    with pytest.raises(BadInput, match="labels of 3 characters need at least 5"):
        train(tiny_train_config(data, tmp_path, width=16))
    code, output = run_cli(
        "train", str(data), "--height", "30", "--runs-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")
    )
    assert code == 2 and output.startswith("Error: input height must be a multiple of 16")
    for size in (["--height", "16000"], ["--width", "100000"], ["--height", "4096", "--width", "4096"]):
        code, output = run_cli("train", str(data), *size, "--runs-dir", str(tmp_path / "r"))
        assert code == 2 and output.startswith("Error: input size") and "too large" in output, output
    assert not (tmp_path / "r").exists()


def test_cli_errors_are_one_line(tmp_path, data):
    code, output = run_cli("train", str(tmp_path / "nowhere"))
    assert code == 2
    nowhere = tmp_path / "nowhere"
    assert output.strip() == f"Error: {nowhere} does not exist (make a dataset with: captchagen make --out {nowhere})"
    code, output = run_cli(
        "train", str(data), "--alphabet", "0123", "--runs-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")
    )
    assert code == 2 and "not in the alphabet" in output and "--skip-bad" in output
    assert len(output.strip().splitlines()) == 1
    where = ["--runs-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    for bad, flag in ((["--width", "0"], "--width"), (["--height", "-16"], "--height"),
                      (["--init-from", str(tmp_path / "gone.pt")], "--init-from")):  # fmt: skip
        code, output = run_cli("train", str(data), *bad, *where)
        last = output.strip().splitlines()[-1]  # click's usage lines may come first
        assert code == 2 and last.startswith("Error:") and flag in last and "Traceback" not in output, output


def test_cli_train_prints_the_epoch_table_and_length_table(tmp_path, data):
    code, output = run_cli(
        "train",
        str(data),
        "--epochs",
        "1",
        *tiny_train_args(tmp_path),
        env={"COLUMNS": "200"},
    )
    assert code == 0, output
    for heading in ("train loss", "val loss", "seq acc", "CER", "img/s", "label length", "Best epoch 1"):
        assert heading in output


def test_a_partial_epoch_keeps_one_row_and_the_headline_one_line_in_80_columns(tmp_path, data):
    # 6 ms of training: the time limit always cuts the first epoch (of 18 batches) short.
    code, output = run_cli(
        "train", str(data), "--epochs", "2", "--time-limit", "0.0001", *tiny_train_args(tmp_path),
        env={"COLUMNS": "80", **AS_IN_A_TERMINAL},
    )  # fmt: skip
    assert code == 0, output
    output = without_escapes(output)
    rows = [line for line in output.splitlines() if line.startswith("│")]
    epoch_rows = [r for r in rows if r.count("│") == 9]  # the 8-column training table
    assert len(epoch_rows) == 1 and epoch_rows[0].split("│")[1].strip() == "1~*"
    assert "~ cut short by the time limit" in output
    headline = next(line for line in output.splitlines() if line.startswith("Best epoch 1:"))
    assert "sequence accuracy" in headline and "(validation, 30 images)" in headline


def test_torchrun_two_cpu_processes_on_gloo(data, tmp_path):
    run = torchrun_train(data, tmp_path, epochs=2, batch_size=16)
    runs = [run]
    rows = (runs[0] / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2
    # each rank took half of every epoch
    loaded = load(data, Preprocessing(height=16, width=48), tmp_path / "cache")
    n_train = len(split(loaded, 0.1, seed=0)[0])
    assert checkpoint.load(runs[0] / "last.pt")["scheduler"]["step"] == 2 * (n_train // 2 // 16)


def test_cli_options_map_onto_train_config_fields():
    from captchagen.cli.train import train as command

    fields = set(TrainRequest.__dataclass_fields__)
    given = command.make_context("train", [], resilient_parsing=True).params  # what the command receives
    for name, value in given.items():
        if name == "colour":  # --colour/--gray becomes `channels` (3/1); neither given: None, decided later
            assert value is None and TrainRequest().channels is None
        elif name != "resume":
            assert name in fields, name
            if name in FINE_TUNE or name in ("height", "width"):
                assert value is None, name  # the command fills them in: the defaults, or FINE_TUNE with --init-from
            elif name != "workers":  # workers becomes the core count
                assert value == getattr(TrainRequest(), name), name
    assert replace(TrainRequest(), epochs=1).epochs == 1


def test_skip_bad_skips_an_unreadable_image_while_the_input_size_is_chosen_too(data, tmp_path):
    folder = tmp_path / "with-bad"
    shutil.copytree(data, folder)
    first = sorted(folder.glob("shard-*/*.png"))[0]
    first.write_text("not an image")  # the first image is always in the sample the size is chosen from
    args = ["train", str(folder), "--epochs", "1", "--runs-dir", str(tmp_path / "r"), "--cache-dir",
            str(tmp_path / "c"), "--device", "cpu", "--batch-size", "32"]  # fmt: skip
    code, out = run_cli(*args, "--skip-bad")
    assert code == 0 and "1 bad files skipped" in out, out
    code, out = run_cli(*args)
    assert code == 2 and first.name in out and "--skip-bad" in out


def test_under_torchrun_the_command_reports_once_from_rank_0(data, tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "captchagen.cli", "train", str(data), "--epochs", "1", *tiny_train_args(tmp_path)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("best model:") == 1 and "not-rank-0" not in out.stdout + out.stderr, out.stdout
    assert "None" not in out.stdout and "-100.00%" not in out.stdout


def test_plain_output_explains_its_markers_and_a_kept_last_epoch_is_not_called_the_best(tmp_path, data):
    code, output = run_cli("train", str(data), "--epochs", "3", "--time-limit", "0.0001", "--keep", "last",
                           *tiny_train_args(tmp_path))  # fmt: skip
    assert code == 0, output
    assert "* best so far (best.pt)   ~ cut short by the time limit" in output  # a log has the key too
    assert "Kept the last epoch (--keep last), 1" in output
    assert "best.pt holds the last epoch (--keep last)" in output and "the best model is kept" not in output


def test_the_pseudo_label_cell_says_how_many_confident_readings_its_share_is_of():
    from captchagen.cli.train import pseudo_cell

    assert pseudo_cell({"passed": 524, "read": 1536, "val_confident": 1, "val_right": 0}) == "524/1,536, 0% of 1 right"
    assert pseudo_cell({"passed": 9, "read": 10, "val_confident": 0, "val_right": 0}) == "9/10, none sure on val"
