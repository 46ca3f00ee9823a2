"""What a person reads: plain progress lines where output is not a terminal, validation figures with their
counts, and warnings where a run or a figure cannot be trusted."""

from __future__ import annotations

import re

import pytest

from captchagen.cli.common import LineProgress
from captchagen.workers import cpu_count
from tests.helpers import run_cli, tiny_train_args
from trainer.intervals import small_set_warning, wilson

WIDE = {"COLUMNS": "300"}  # no wrapping: lines are asserted whole


def test_train_into_a_log_prints_a_plain_line_per_epoch(data, tmp_path):
    code, out = run_cli("train", str(data), *tiny_train_args(tmp_path), "--epochs", "3", env=WIDE)  # not a terminal
    assert code == 0, out
    rows = [line for line in out.splitlines() if re.match(r"epoch \d\*? +train loss", line)]
    assert [int(re.match(r"epoch (\d)", r)[1]) for r in rows] == [1, 2, 3]
    assert all("seq acc" in r and "val loss" in r for r in rows)
    assert "(validation, 30 images)" in out  # the count beside the figure
    assert "only 30 validation images" in out and "95% interval" in out


def test_a_run_from_scratch_with_too_few_steps_says_so_before_it_starts(data, tmp_path):
    code, out = run_cli(
        "train", str(data), *tiny_train_args(tmp_path), "--epochs", "2", "--batch-size", "256", env=WIDE
    )
    assert code == 0, out
    assert "610 training images make 2 step(s) of 256 per epoch, 4 in all" in out and "--steps-per-epoch" in out
    assert out.index("step(s) of 256") < out.index("epoch 1")


def test_make_into_a_log_prints_progress_lines_with_the_summarys_rate(tmp_path):
    code, out = run_cli("make", "--n", "300", "--width", "80", "--height", "32", "--out", str(tmp_path / "d"), env=WIDE)
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("rendering:")]
    assert lines[0].startswith("rendering: 0/300 images") and lines[-1].startswith("rendering: 300/300 images")
    assert re.search(r"300 images rendered in [\d.]+s \([\d,]+ img/s, \d+ workers\); [\d.]+s in all", out)


def test_line_progress_prints_at_the_start_the_end_and_at_most_every_interval():
    said: list[str] = []
    lines = LineProgress(said.append, "work", every_s=3600)
    for done in range(0, 101, 10):
        lines.update(done, 100)
    lines.update(100, 100)
    assert [s.split(":")[1].split()[0] for s in said] == ["0/100", "100/100"]
    quiet: list[str] = []
    epoch = LineProgress(quiet.append, "epoch 1", every_s=3600, announce=False)
    for done in range(11):
        epoch.update(done, 10)
    assert quiet == []


def test_the_interval_is_wide_for_a_few_images_and_none_is_given_for_many():
    lo, hi = wilson(9, 9)
    assert 0.65 < lo < 0.75 and hi == 1.0
    assert wilson(0, 10)[0] == 0.0 and 0.25 < wilson(0, 10)[1] < 0.35
    assert "70% to 100%" in small_set_warning(9, 9)
    assert small_set_warning(980, 1000) is None


def test_curves_have_whole_epochs_and_error_rates_on_a_log_scale():
    from matplotlib import pyplot as plt

    from trainer.runs import curve_figure

    rows = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "seq_accuracy": acc, "cer": (1 - acc) / 3,
         "val_images": 1000}
        for e, acc in ((1, 0.97), (2, 0.99), (3, 1.0))
    ]  # fmt: skip
    fig = curve_figure(rows)
    try:
        loss, errors = fig.axes
        low, high = errors.get_xlim()
        shown = [t for t in errors.get_xticks() if low <= t <= high]
        assert shown and all(float(t).is_integer() for t in shown)
        assert errors.get_yscale() == "log"
        sequence = errors.get_lines()[0].get_ydata()
        assert list(sequence[:2]) == pytest.approx([3.0, 1.0]) and sequence[2] == pytest.approx(0.05)  # 0% drawn
    finally:
        plt.close(fig)


def test_grid_tiles_are_as_wide_as_their_captions(tmp_path):
    import numpy as np
    from PIL import Image

    from captchagen.preview import write_grid

    small = Image.new("RGB", (120, 50), "white")
    caption = [("true ABCDEFGHIJ", "black"), ("read ABCDEFGHIK (0.97)", "red")]
    out = write_grid([(small, caption)] * 4, tmp_path / "g.png", columns=4)
    with Image.open(out) as sheet:
        gray = np.asarray(sheet.convert("L"))
    assert sheet.width > 4 * 150  # wider than four 120-pixel images with their padding
    # Between tiles there is a column of white in the caption rows: no caption reaches the next tile.
    text_rows = gray[50:]
    tile = (sheet.width - 6) // 4
    for k in range(1, 4):
        gap = text_rows[:, k * tile : k * tile + 6]
        assert (gap == 255).all()


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores: one for the busy process, one left")
def test_training_threads_leave_out_a_core_another_process_keeps_busy():
    import subprocess
    import sys
    import time

    import torch

    from trainer.device import Dist, set_threads

    before = torch.get_num_threads()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # running flat out
        assert set_threads(torch.device("cpu"), Dist()) <= cpu_count() - 1
        assert set_threads(torch.device("cpu"), Dist(), requested=cpu_count()) == cpu_count()  # asked: as asked
    finally:
        hog.kill()
        hog.wait()
        torch.set_num_threads(before)


def test_a_slow_rate_is_shown_with_its_digits_not_as_zero(monkeypatch):
    import captchagen.cli.common as common

    clock = iter([0.0, 30.0])
    monkeypatch.setattr(common.time, "monotonic", lambda: next(clock))
    said: list[str] = []
    lines = LineProgress(said.append, "epoch 1", unit="batches", rate="batches/s", every_s=10, announce=False)
    lines.update(0, 74)
    lines.update(4, 74)  # 4 batches in 30 s
    assert said == ["epoch 1: 4/74 batches (5%), 0.13 batches/s"]


def test_the_curves_label_every_tick_in_one_notation():
    """A log axis labels its minor ticks in its own notation (2x10^0 beside 1%) when few decades show."""
    from trainer.runs import curve_figure

    rows = [{"epoch": e, "train_loss": 3.0 / e, "val_loss": 2.5 / e, "seq_accuracy": 0.97 + e / 1000,
             "cer": 0.02 - e / 1000, "val_images": 2000} for e in range(1, 6)]  # fmt: skip
    fig = curve_figure(rows)
    fig.canvas.draw()
    labels = [t.get_text() for ax in fig.axes for minor in (False, True) for t in ax.yaxis.get_ticklabels(minor=minor)]
    shown = [t for t in labels if t]
    assert shown and not any("times" in t or "^" in t or "10^" in t for t in shown), shown
    assert all(t.endswith("%") for t in (t.get_text() for t in fig.axes[1].yaxis.get_ticklabels()) if t)
