"""Fine-tuning (--init-from): the parent's rows, shape and size, and what the child records."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput
from tests.helpers import run_cli, tiny_dataset, tiny_train_args, tiny_train_config
from trainer import checkpoint
from trainer.data.inputs import choose_input
from trainer.data.sources import open_source
from trainer.models.crnn import CRNN
from trainer.training.finetune import _resample_rows, inherit_shape, load_parent, transplant
from trainer.training.loop import train


@torch.no_grad()
def head_rows(model: CRNN, alphabet: Alphabet, chars: str) -> torch.Tensor:
    """The output-layer weights of `chars`."""
    return torch.stack([model.head.weight[alphabet.encode(c)[0]] for c in chars])


def test_shared_characters_keep_their_rows_and_new_ones_get_fresh_rows(reading_model):
    parent = load_parent(str(reading_model[1]))
    mc = parent.model.config()
    old_model, old_alphabet, _ = checkpoint.load_model(parent.model)
    alphabet = Alphabet("9XY3")  # two shared with the parent's digits, in another order; two new
    torch.manual_seed(0)
    mc = replace(mc, num_classes=alphabet.num_classes)
    model = CRNN(mc)
    fresh = head_rows(model, alphabet, "XY").clone()
    line = transplant(model, mc, parent, alphabet)
    assert torch.equal(head_rows(model, alphabet, "93"), head_rows(old_model, old_alphabet, "93"))
    assert torch.equal(model.head.weight[0], old_model.head.weight[0])  # the CTC blank
    assert torch.equal(model.head.bias[alphabet.encode("3")[0]], old_model.head.bias[old_alphabet.encode("3")[0]])
    assert torch.equal(head_rows(model, alphabet, "XY"), fresh)
    assert torch.equal(model.cnn[0].weight, old_model.cnn[0].weight)  # everything below the head is copied
    assert "2 characters kept" in line and "2 new ('XY')" in line and "8 dropped ('01245678')" in line


def test_fine_tuning_on_new_characters_records_the_parent_and_lowers_the_loss(reading_model, tmp_path):
    data = tiny_dataset(tmp_path / "xy", alphabet="0123XY", n=320, shard_size=320, seed=3)
    parent = load_parent(str(reading_model[1]))
    cfg = tiny_train_config(
        data, tmp_path, init_from=str(reading_model[1]), height=None, width=None, epochs=4, steps_per_epoch=15, lr=1e-3
    )
    result = train(cfg)
    run = Path(result.run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < 0.97 * rows[0]["train_loss"]
    saved = checkpoint.load(run / "best.pt")
    assert saved["train_config"]["parent"] == parent.lineage == json.loads((run / "config.json").read_text())["parent"]
    assert parent.lineage["sha256"] == __import__("hashlib").sha256(reading_model[1].read_bytes()).hexdigest()
    assert saved["alphabet"] == "0123XY"
    # The parent's input size: it reads the images as its parent read them (from their shape: another width).
    source = open_source(data)
    chosen = choose_input([p for g in source.groups for p in g.paths], max_len=source.max_len, height=16).width
    assert (saved["model_config"]["height"], saved["model_config"]["width"]) == (16, 48)
    assert chosen != 48


def test_a_different_architecture_is_refused_naming_the_field(reading_model, tmp_path):
    parent = load_parent(str(reading_model[1]))
    cfg = tiny_train_config(reading_model[0], tmp_path, hidden=64)  # the parent's is 32
    with pytest.raises(BadInput, match="has hidden 32, but `hidden` 64 was given"):
        inherit_shape(cfg, parent, given={"hidden"})
    assert inherit_shape(cfg, parent, given=set()).hidden == 32  # not given: the parent's


def test_fine_tuning_at_another_height_resamples_the_projection(reading_model, tmp_path):
    """Only the projection depends on the height: its rows are resampled, everything else is copied."""
    parent = load_parent(str(reading_model[1]))
    args = tiny_train_args(tmp_path)
    args[args.index("--height") + 1] = "32"  # the parent reads 16 pixels high
    code, out = run_cli(
        "train", str(reading_model[0]), "--init-from", str(reading_model[1]), *args, "--epochs", "1",
        "--steps-per-epoch", "2", "--lr", "1e-9", "--warmup", "0", "--name", "tall",
    )  # fmt: skip
    assert code == 0, out
    said = " ".join(out.split())  # the console wraps long lines
    assert "input 32x48 (given; the parent model's is 16x48)" in said
    assert "its projection resampled from 16 to 32 pixels high" in said
    saved = checkpoint.load(tmp_path / "r" / "tall" / "last.pt")
    assert saved["model_config"]["height"] == 32
    theirs, ours = parent.model.weights, saved["model"]
    assert theirs["proj.weight"].shape[1] * 2 == ours["proj.weight"].shape[1]
    assert torch.allclose(ours["proj.weight"], _resample_rows(theirs["proj.weight"], 1, 2), atol=1e-6)
    assert torch.allclose(ours["cnn.0.weight"], theirs["cnn.0.weight"], atol=1e-6)


def test_resampled_rows_keep_each_channels_sum_and_a_stretched_map_projects_alike():
    torch.manual_seed(0)
    weight = torch.randn(5, 3 * 2)  # hidden 5, 3 channels of 2 rows
    for rows in (1, 2, 3, 4, 5):
        resampled = _resample_rows(weight, 2, rows).reshape(5, 3, rows)
        assert torch.allclose(resampled.sum(-1), weight.reshape(5, 3, 2).sum(-1), atol=1e-6)
    assert torch.equal(_resample_rows(weight, 2, 2), weight)
    features = torch.randn(7, 3, 2)  # [batch, channels, rows], flattened channel by channel as the model does
    stretched = features.repeat_interleave(2, dim=2)  # every row twice: the same image at twice the height
    assert torch.allclose(
        features.reshape(7, -1) @ weight.T, stretched.reshape(7, -1) @ _resample_rows(weight, 2, 4).T, atol=1e-5
    )


def test_fine_tuning_may_widen_the_input_and_keeps_the_weights(reading_model, tmp_path):
    """The weights do not depend on the input width, so --width may differ from the parent's."""
    parent = load_parent(str(reading_model[1]))
    args = tiny_train_args(tmp_path)
    args[args.index("--width") + 1] = "64"
    code, out = run_cli(
        "train", str(reading_model[0]), "--init-from", str(reading_model[1]), *args[2:], "--epochs", "1",
        "--steps-per-epoch", "2", "--lr", "1e-9", "--warmup", "0", "--name", "wide",
    )  # fmt: skip
    assert code == 0, out
    assert "input 16x64 (given; the parent model's is 16x48)" in out
    saved = checkpoint.load(tmp_path / "r" / "wide" / "last.pt")
    assert (saved["model_config"]["height"], saved["model_config"]["width"]) == (16, 64)
    key = "cnn.0.weight"  # a learning rate of 1e-9 leaves the copied weights as they were
    assert torch.allclose(saved["model"][key], parent.model.weights[key], atol=1e-6)
    assert not torch.equal(saved["model"][key], torch.zeros_like(saved["model"][key]))


def test_init_from_a_file_that_is_no_checkpoint_is_one_line(tmp_path, reading_model):
    bogus = tmp_path / "model.pt"
    bogus.write_text("not a model")
    data = reading_model[0]
    code, out = run_cli("train", str(data), "--init-from", str(bogus), *tiny_train_args(tmp_path)[4:])
    assert code == 2 and out.count("\n") == 1 and "is not a captchagen checkpoint" in out


def _fine_tune_unsized(reading_model, tmp_path, data, name: str, *unset: str) -> tuple[str, dict]:
    """`train --init-from` the reading model on `data` for a step, without the size options `unset`: what it
    said (one line per sentence, unwrapped) and the config of the model it saved."""
    args = tiny_train_args(tmp_path)
    for flag in unset:
        del args[args.index(flag) : args.index(flag) + 2]
    code, out = run_cli(
        "train", str(data), "--init-from", str(reading_model[1]), *args, "--epochs", "1", "--steps-per-epoch", "1",
        "--name", name,
    )  # fmt: skip
    assert code == 0, out
    return " ".join(out.split()), checkpoint.load(tmp_path / "r" / name / "last.pt")["model_config"]


def test_fine_tuning_keeps_the_parents_width_and_says_which_width_the_images_shape_gives(reading_model, tmp_path):
    data = tiny_dataset(tmp_path / "wide", n=128, shard_size=128, width=160, height=32, seed=4)  # 5:1, not 2:1
    said, config = _fine_tune_unsized(reading_model, tmp_path, data, "kept", "--width", "--height")
    assert "input 16x48 (as the parent model's; --width 80 reads the images at their own shape)" in said
    assert (config["height"], config["width"]) == (16, 48)


def test_a_parent_too_narrow_for_the_longest_label_gives_way_to_the_images_width(reading_model, tmp_path):
    data = tiny_dataset(tmp_path / "long", n=128, shard_size=128, min_len=7, max_len=7, width=96, seed=5)
    said, config = _fine_tune_unsized(reading_model, tmp_path, data, "long", "--width")
    assert "the parent model's 16x48 has too few time steps for 7-character labels" in said
    assert config["width"] >= 4 * (2 * 7 - 1)
