"""`captchagen eval`: the numbers, the confusions, the reject curve and the picture of the worst mistakes."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.helpers import run_cli, run_cli_streams, tiny_dataset, tiny_train_config
from trainer.inference.scoring import Scored, confusions, reject_curve, report, worst
from trainer.training.loop import train


def scored(*rows: tuple[str, str, float]) -> list[Scored]:
    return [Scored(f"{i}.png", truth, text, conf) for i, (truth, text, conf) in enumerate(rows)]


def test_confusions_count_substitutions_deletions_and_insertions():
    rows = scored(("AB", "AB", 0.9), ("AB", "AR", 0.5), ("BB", "RB", 0.4), ("ABC", "AC", 0.3), ("A", "AX", 0.2))
    assert confusions(rows) == [("B", "R", 2), ("B", "", 1), ("", "X", 1)]


def test_reject_curve_drops_the_least_confident_first():
    rows = scored(*[("A", "A", 0.5 + i / 100) for i in range(90)], *[("A", "B", i / 100) for i in range(10)])
    curve = {round(r["rejected_share"], 2): r for r in reject_curve(rows)}
    assert curve[0.1]["accuracy"] == 1.0 and curve[0.1]["kept"] == 90
    assert curve[0.05]["accuracy"] == pytest.approx(90 / 95) and curve[0.05]["threshold"] == pytest.approx(0.05)
    r = report(rows)
    assert r["seq_accuracy"] == 0.9 and r["mean_confidence_wrong"] == pytest.approx(0.045)
    assert [s.confidence for s in worst(rows, 3)] == [0.09, 0.08, 0.07]


def test_eval_cli_json_and_worst_grid(tmp_path):
    data = tiny_dataset(tmp_path / "digits")
    train(tiny_train_config(data, tmp_path, epochs=1))
    out = tmp_path / "worst.png"
    code, output, _ = run_cli_streams(
        "eval",
        str(data),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--json",
        "--worst",
        "6",
        "--worst-out",
        str(out),
    )
    assert code == 0, output
    numbers = json.loads(output)
    assert numbers["samples"] == 640
    assert {"seq_accuracy", "mean_edit_distance", "cer", "by_length", "confusions", "reject_curve"} <= set(numbers)
    assert set(numbers["by_length"]) == {"1", "2", "3"}
    assert len(numbers["reject_curve"]) == 3
    if numbers["seq_accuracy"] < 1:
        assert numbers["worst_png"] == str(out)
        with Image.open(out) as im:
            assert im.width > 64
    code, output = run_cli(
        "eval",
        str(data),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--worst",
        "0",
        env={"COLUMNS": "200"},
    )
    assert code == 0 and "By label length" in output and "Reject curve" in output


def test_eval_never_writes_into_the_data_it_reads(tmp_path, monkeypatch):
    data = tiny_dataset(tmp_path / "digits", n=64, shard_size=64)
    before = sorted(p.name for p in data.rglob("*"))
    monkeypatch.chdir(data)  # the base model's grid would default to the working directory: here, DATA
    for _ in range(2):  # the second run must not trip over anything the first left
        code, output = run_cli("eval", ".", "--model", "base", "--cache-dir", str(tmp_path / "c"), "--json")
        assert code == 0, output
        numbers = json.loads(output.splitlines()[-1])
        assert "worst_png" not in numbers and "loss" not in numbers  # no made-up 0.0 loss
        assert "worst mistakes not drawn" in output and "--worst-out" in output
    assert sorted(p.name for p in data.rglob("*")) == before
    code, output = run_cli("eval", ".", "--model", "base", "--worst-out", "grid.png")
    assert code == 2 and "inside DATA" in output and not (data / "grid.png").exists(), output


def test_the_default_grid_is_named_for_the_data_even_when_given_as_dot(reading_model, tmp_path, monkeypatch):
    data, model = reading_model
    monkeypatch.chdir(data)
    code, output = run_cli("eval", ".", "--model", str(model), "--cache-dir", str(tmp_path / "c"), "--json")
    assert code == 0, output
    numbers = json.loads(output.splitlines()[-1])
    assert numbers["seq_accuracy"] < 1  # the tiny model makes mistakes, so there is a grid to draw
    assert numbers["worst_png"] == str(model.parent / "worst-digits.png")  # in the run folder, named for DATA
    assert not list(data.rglob("worst-*"))
