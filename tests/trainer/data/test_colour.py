"""Colour input (`train --colour`): RGB preprocessing, a grayscale parent turned into a colour model that
computes what it did, and a colour run read back by test and by its exported ONNX model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from captchagen.alphabet import Alphabet
from tests.helpers import run_cli, shard_images, tiny_train_args
from trainer import checkpoint
from trainer.checkpoint import ModelRecord
from trainer.data.preprocess import Preprocessing, normalize, to_array
from trainer.models.config import ModelConfig
from trainer.models.crnn import CRNN
from trainer.training.finetune import Parent, transplant


def test_colour_preprocessing_keeps_the_channels_apart():
    im = Image.new("RGB", (64, 16), (200, 30, 30))
    im.paste((30, 200, 30), (32, 0, 64, 16))
    rgb = to_array(im, Preprocessing(height=16, width=32, channels=3))
    assert rgb.shape == (3, 16, 32) and rgb.dtype == np.uint8
    assert rgb[0, :, :12].mean() > rgb[1, :, :12].mean() + 100  # red on the left
    assert rgb[1, :, 20:].mean() > rgb[0, :, 20:].mean() + 100  # green on the right
    assert to_array(im, Preprocessing(height=16, width=32)).shape == (16, 32)
    batch = normalize(torch.from_numpy(np.stack([rgb, rgb])), Preprocessing(height=16, width=32, channels=3))
    assert batch.shape == (2, 3, 16, 32)
    # Grayscale records no `channels`, so caches and checkpoints made before colour existed still match.
    assert "channels" not in Preprocessing().to_dict() and Preprocessing(channels=3).to_dict()["channels"] == 3
    with pytest.raises(ValueError, match="must be 1 .* or 3"):
        Preprocessing(channels=2)


def test_a_grayscale_parent_becomes_a_colour_model_that_computes_what_it_did():
    torch.manual_seed(0)
    config = ModelConfig(num_classes=5, height=16, width=48, conv=(8, 16, 16, 24), hidden=16)
    gray = CRNN(config).eval()
    record = ModelRecord(gray.state_dict(), "ABCD", {}, config.__dict__, train_config={}, metrics={})
    parent = Parent(path=Path("parent/best.pt"), model=record, sha256="0" * 64)
    colour_config = ModelConfig(**{**config.__dict__, "channels": 3})
    colour = CRNN(colour_config).eval()
    line = transplant(colour, colour_config, parent, Alphabet("ABCD"))
    assert "grayscale first layer spread over R, G and B" in line
    x = torch.randn(3, 1, 16, 48)  # a normalised gray image is R = G = B
    with torch.no_grad():
        assert torch.allclose(colour(x.repeat(1, 3, 1, 1)), gray(x), atol=1e-5)
    first_gray, first_colour = gray.cnn[0].weight[:, 0], colour.cnn[0].weight  # [out, 3, 3], [out, 3, 3, 3]
    for channel, share in enumerate((0.299, 0.587, 0.114)):  # what PIL's grayscale conversion weighs
        assert torch.allclose(first_colour[:, channel], share * first_gray)


def test_a_colour_run_reads_back_through_test_and_onnx_and_stays_colour(reading_model, tmp_path):
    data = reading_model[0]
    args = [*tiny_train_args(tmp_path), "--epochs", "2", "--colour"]
    code, out = run_cli("train", str(data), *args, "--name", "rgb")
    assert code == 0, out
    run = tmp_path / "r" / "rgb"
    saved = checkpoint.load(run / "best.pt")
    assert saved["model_config"]["channels"] == 3 and saved["preprocessing"]["channels"] == 3
    assert json.loads((run / "config.json").read_text())["channels"] == 3
    entries = [np.load(p, mmap_mode="r").shape for p in (tmp_path / "c").glob("*.npy")]
    assert entries and all(shape[1:] == (3, 16, 48) for shape in entries)
    inputs = np.asarray(Image.open(run / "inputs.png").convert("RGB")).astype(int)
    assert (np.abs(inputs[..., 0] - inputs[..., 1]) > 40).any()  # the grid shows the colours the model sees

    images = [str(p) for p in shard_images(data)[:6]]
    code, printed = run_cli("test", *images, "--model", str(run / "best.pt"), "--json")
    assert code == 0, printed
    read = [json.loads(line) for line in printed.splitlines()]
    assert len(read) == 6 and all(r.get("error") is None for r in read)

    onnx_path = tmp_path / "rgb.onnx"
    code, printed = run_cli("export", "--model", str(run / "best.pt"), "--out", str(onnx_path))
    assert code == 0, printed
    code, from_onnx = run_cli("test", *images, "--model", str(onnx_path), "--json")
    assert code == 0 and [r["text"] for r in map(json.loads, from_onnx.splitlines())] == [r["text"] for r in read]

    # Its children read colour unless told otherwise, and cannot be told to read grayscale.
    code, printed = run_cli("train", str(data), "--init-from", str(run), *tiny_train_args(tmp_path), "--gray")
    assert code == 2 and printed.count("\n") == 1 and "reads colour; a grayscale model cannot start from it" in printed
