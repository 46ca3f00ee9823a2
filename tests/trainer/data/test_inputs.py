"""The input size and border crop chosen from the images (trainer.data.inputs), and inputs.png."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import tiny_dataset, tiny_train_config
from trainer.data.inputs import border_crop, choose_input
from trainer.data.preprocess import Preprocessing, to_array
from trainer.training.loop import train


def _banded(seed: int, size=(640, 360), band=(0, 100, 640, 260)) -> Image.Image:
    """A black image with a band of random colours: the shape of a captcha drawn in a strip."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", size, "black")
    w, h = band[2] - band[0], band[3] - band[1]
    im.paste(Image.fromarray(rng.integers(40, 256, (h, w, 3), dtype=np.uint8)), band[:2])
    return im


def test_a_flat_border_every_image_shares_is_cropped(tmp_path):
    images = [_banded(i) for i in range(5)]
    crop = border_crop(images)
    assert crop is not None
    left, top, right, bottom = crop
    assert left == 0 and right == 1 and 0.25 < top < 100 / 360 and 260 / 360 < bottom < 0.75
    for i, im in enumerate(images):
        im.save(tmp_path / f"{i}_AB.png")
    choice = choose_input(sorted(tmp_path.glob("*.png")), max_len=4)
    aspect = 640 / ((bottom - top) * 360)  # a little under 4:1 once cropped, with its margins
    assert (choice.height, choice.width) == (32, round(32 * aspect / 4) * 4) and 112 <= choice.width <= 128
    assert any("cropped to 640x" in note for note in choice.notes)


def test_no_crop_without_a_shared_border_and_the_width_follows_the_aspect_ratio(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 400), dtype=np.uint8)).save(tmp_path / f"{i}_AB.png")
    choice = choose_input(sorted(tmp_path.glob("*.png")), max_len=4)
    assert choice.crop is None and (choice.height, choice.width) == (32, 320)  # 10:1 kept


def test_a_width_set_by_one_long_label_says_which_label_and_how_many(tmp_path):
    for i in range(3):
        Image.new("L", (96, 32), 255).save(tmp_path / f"{i}_AB.png")
    labels = ["AB", "AB", "ABCDEFGHIJKLMNOPQRSTUVWX"]
    choice = choose_input(sorted(tmp_path.glob("*.png")), max_len=24, labels=labels)
    assert choice.width > 96
    note = choice.notes[0]
    assert "gives 32x96" in note and "24 characters ('ABCDEFGHIJKLMNOPQRSTUVWX'; 1 of 3 labels" in note
    assert "chosen from the images (96x32)" not in note


def test_a_tiny_view_of_a_large_image_is_warned_about(tmp_path):
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (400, 1600), dtype=np.uint8)).save(
            tmp_path / f"{i}_A.png"
        )
    notes = choose_input(sorted(tmp_path.glob("*.png")), max_len=4).notes
    assert any("sees the images at 8% of their height" in n for n in notes)


def test_the_crop_is_applied_before_resizing():
    im = Image.new("L", (100, 40), 255)
    im.paste(0, (50, 0, 100, 40))  # right half black
    whole = to_array(im, Preprocessing(height=16, width=32, autocontrast=False))
    right = to_array(im, Preprocessing(height=16, width=32, autocontrast=False, crop=(0.5, 0, 1, 1)))
    assert whole.mean() > 100 and right.max() == 0


def test_a_preprocessing_without_crop_keeps_its_old_form():
    assert "crop" not in Preprocessing().to_dict()  # cache keys and checkpoints made before crops still match
    assert Preprocessing(**{**Preprocessing().to_dict(), "crop": [0, 0.1, 1, 0.9]}).crop == (0, 0.1, 1, 0.9)


def test_a_run_writes_inputs_png_and_chooses_its_size(tmp_path):
    data = tiny_dataset(tmp_path / "d", n=100, shard_size=100)
    result = train(tiny_train_config(data, tmp_path, height=None, width=None, epochs=1))
    run = Path(result.run)
    with Image.open(run / "inputs.png") as im:
        assert im.width > 100
    config = json.loads((run / "config.json").read_text())
    assert (config["height"], config["width"]) == (32, 64)  # 64x32 images: 2:1 is far from the default's 4:1
