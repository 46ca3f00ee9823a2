"""`captchagen test`: a trained model reads files, folders and globs; bad files get their own error rows."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from PIL import Image

from tests.helpers import run_cli, run_cli_streams, tiny_dataset, tiny_train_config
from trainer.inference.reader import Reader
from trainer.training.loop import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    data = tiny_dataset(root / "digits")
    result = train(tiny_train_config(data, root, epochs=3))
    return data, root / "runs", result


def test_every_image_mode_reads_the_same(trained, tmp_path):
    data, runs, result = trained
    reader = Reader(f"{result.run}/best.pt")
    source = sorted(data.glob("shard-00000/*.png"))[0]
    base = Image.open(source).convert("RGB")
    variants = {"rgb": base, "rgba": base.convert("RGBA"), "palette": base.convert("P"), "gray": base.convert("L")}
    paths = []
    for name, image in variants.items():
        path = tmp_path / f"{name}.png"
        image.save(path)
        paths.append(str(path))
    texts = {p.text for p in reader.read_paths(paths)}
    assert len(texts) == 1 and None not in texts


def test_cli_reads_with_the_latest_run_and_reports_bad_files(trained, tmp_path):
    data, runs, result = trained
    good = sorted(data.glob("shard-00000/*.png"))[:3]
    (tmp_path / "not.png").write_text("text")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good[0].read_bytes()[:200])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (6000, 6000)).save(bomb)
    args = [
        "test",
        *map(str, good),
        str(tmp_path / "missing.png"),
        str(tmp_path / "not.png"),
        str(truncated),
        str(bomb),
        "--runs-dir",
        str(runs),
        "--json",
    ]
    code, output, said = run_cli_streams(*args)
    rows = [json.loads(line) for line in output.splitlines()]
    assert code == 1 and len(rows) == 7
    # The model is named on stderr, away from the rows: not chosen, it is the newest run's.
    # (this tiny run reads less of its validation than the base model of its own, which a note says)
    first, *notes = said.splitlines()
    assert first == f"no --model: using {result.run}/best.pt, the newest run's best model ({runs}/LATEST)"
    assert all(line.startswith("note: ") for line in notes)
    for row in rows[:3]:
        assert row["error"] is None and isinstance(row["text"], str) and 0 <= row["confidence"] <= 1
    assert [bool(r["error"]) for r in rows[3:]] == [True] * 4
    assert "no such file" in rows[3]["error"] and "not an image" in rows[4]["error"]
    assert "unreadable" in rows[5]["error"] and "pixels" in rows[6]["error"]


def test_cli_folder_and_glob_inputs(trained):
    data, runs, _ = trained
    code, output, _ = run_cli_streams(
        "test", str(data / "shard-00001"), "--runs-dir", str(runs), "--json", "--beam", "3"
    )
    assert code == 0 and len(output.splitlines()) == 320
    args = ("test", str(data / "shard-0000*" / "00000[0-4]_*.png"), "--runs-dir", str(runs), "--json")
    code, output, _ = run_cli_streams(*args)
    assert code == 0 and len(output.splitlines()) == 5


def test_an_empty_folder_gets_an_error_row_like_a_glob_matching_nothing(trained, tmp_path):
    _, runs, _ = trained
    (tmp_path / "empty").mkdir()
    code, output, _ = run_cli_streams(
        "test", str(tmp_path / "empty"), str(tmp_path / "none*.png"), "--runs-dir", str(runs), "--json"
    )
    rows = [json.loads(line) for line in output.splitlines()]
    assert code == 1 and [r["path"] for r in rows] == [str(tmp_path / "empty"), str(tmp_path / "none*.png")]
    assert "a folder with no images" in rows[0]["error"] and "no such file" in rows[1]["error"]
    code, output = run_cli("test", str(tmp_path / "empty"), "--runs-dir", str(runs), env={"COLUMNS": "200"})
    assert code == 1 and "a folder with no images" in output


def test_huge_images_are_one_error_row_each_and_nothing_else(trained, tmp_path):
    """Pillow warns above 89M pixels and refuses above 179M; neither may add to the rows."""
    _, runs, _ = trained
    big, bomb = tmp_path / "big.png", tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(big)
    Image.new("1", (40_000, 40_000)).save(bomb)
    out = subprocess.run(
        [sys.executable, "-m", "captchagen", "test", str(big), str(bomb), "--runs-dir", str(runs), "--json"],
        capture_output=True,
        text=True,
    )
    first, *notes = out.stderr.splitlines()
    assert out.returncode == 1 and first.startswith("no --model: using ") and all(n.startswith("note: ") for n in notes)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert "10000x10000 pixels is more than" in rows[0]["error"]
    assert "1,600,000,000 pixels is more than the 20,000,000 allowed" in rows[1]["error"]


def test_no_trained_model_and_no_base_model_says_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setattr("trainer.bundled.base_model", lambda: tmp_path / "missing" / "base.pt")  # a broken install
    code, output = run_cli("test", "x.png", "--runs-dir", str(tmp_path / "runs"))
    assert code == 1 and "run `captchagen train` first" in output
    assert len(output.strip().splitlines()) == 1


def test_a_fifo_is_an_error_row_not_a_hang(trained, tmp_path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    _, runs, _ = trained
    code, out, _ = run_cli_streams("test", str(fifo), "--json", "--runs-dir", str(runs))
    assert code == 1 and json.loads(out)["error"].endswith("not a regular file")


def test_a_file_that_is_not_a_checkpoint_is_a_one_line_error(tmp_path):
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"not a checkpoint at all")
    code, output = run_cli("test", "x.png", "--model", str(fake))
    assert code == 1 and output.startswith(f"Error: {fake} is not a captchagen checkpoint")
    assert len(output.strip().splitlines()) == 1


# ---- --reads: only some of the model's characters ----


def test_reads_outputs_only_the_allowed_characters_and_rescales_confidence(reading_model, exported_model):
    images = sorted(reading_model[0].glob("shard-*/*.png"))[:64]
    for path in (reading_model[1], exported_model):
        reader = Reader(path)
        free = reader.read_paths(list(map(str, images)))
        counts = Counter(c for p in free for c in p.text)
        assert counts, "the model reads nothing: nothing to restrict"
        common = counts.most_common(1)[0][0]
        allowed = "".join(c for c in reader.alphabet.chars if c != common)[:3]  # what it reads most is ruled out
        reader.restrict(allowed)
        narrowed = reader.read_paths(list(map(str, images)))
        assert all(set(p.text) <= set(allowed) for p in narrowed), path
        assert any(a.text != b.text for a, b in zip(free, narrowed, strict=True))
        assert all(0 <= p.confidence <= 1 for p in narrowed)
        assert reader.reads == allowed


def test_reads_beyond_the_model_is_a_one_line_usage_error(reading_model):
    image = str(next(reading_model[0].glob("shard-*/*.png")))
    code, out = run_cli("test", image, "--model", str(reading_model[1]), "--reads", "upper")
    assert code == 2 and out.count("\n") == 1
    assert "--reads 'upper'" in out and "cannot read 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'" in out


def test_an_empty_reads_is_refused_not_taken_as_every_character(reading_model):
    image = str(next(reading_model[0].glob("shard-*/*.png")))
    code, out = run_cli("test", image, "--model", str(reading_model[1]), "--reads", "")
    assert code == 2 and out.count("\n") == 1 and "--reads is empty" in out, out


def test_a_run_folder_as_model_reads_with_its_best_checkpoint(reading_model):
    image = str(next(reading_model[0].glob("shard-*/*.png")))
    by_folder = run_cli("test", image, "--model", str(reading_model[1].parent), "--json")
    by_file = run_cli("test", image, "--model", str(reading_model[1]), "--json")
    assert by_folder[0] == 0 and by_folder == by_file, by_folder


def test_an_unreadable_image_gets_an_error_column_not_a_reading(reading_model, tmp_path):
    image = str(next(reading_model[0].glob("shard-*/*.png")))
    code, out = run_cli("test", image, str(tmp_path / "nosuch.png"), "--model", str(reading_model[1]),
                        env={"COLUMNS": "300"})  # fmt: skip
    header = next(line for line in out.splitlines() if "image" in line and "text" in line)
    missing = next(line for line in out.splitlines() if "nosuch.png" in line)
    assert code == 1 and "error" in header, out
    cells = [c.strip() for c in missing.strip("│┃ ").split("│")]
    assert cells[1] == "-" and "no such file" in cells[-1]  # the reason sits under "error", not "text"


def test_eval_reports_what_it_read_with(reading_model, tmp_path):
    code, out = run_cli("eval", str(reading_model[0]), "--model", str(reading_model[1]), "--reads", "0123",
                        "--worst", "0", "--json", "--cache-dir", str(tmp_path / "c"))  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["reads"] == "0123"
