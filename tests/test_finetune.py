"""Fine-tuning (--init-from), mixing (--mix), and the input size chosen from the images."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput
from tests.helpers import run_cli, tiny_dataset, tiny_train_args, tiny_train_config
from trainer import checkpoint
from trainer.data.inputs import border_crop, choose_input
from trainer.data.mixing import StreamBatchSampler, per_batch
from trainer.data.preprocess import Preprocessing, to_array
from trainer.data.sources import open_source
from trainer.models.crnn import CRNN
from trainer.runs import latest_run
from trainer.training.advice import better, stuck_notice, zero_streak
from trainer.training.finetune import _resample_rows, inherit_shape, load_parent, transplant
from trainer.training.loop import train

# ---- --init-from ----


@torch.no_grad()
def head_rows(model: CRNN, alphabet: Alphabet, chars: str) -> torch.Tensor:
    """The output-layer weights of `chars`."""
    return torch.stack([model.head.weight[alphabet.encode(c)[0]] for c in chars])


def test_shared_characters_keep_their_rows_and_new_ones_get_fresh_rows(reading_model):
    parent = load_parent(str(reading_model[1]))
    mc = parent.model.config()
    old_model, old_alphabet, _ = checkpoint.build_model(parent.model)
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
    # The parent's height; the width is chosen from the images, as for a fresh run (the weights allow any).
    source = open_source(data)
    chosen = choose_input([p for g in source.groups for p in g.paths], max_len=source.max_len, height=16).width
    assert (saved["model_config"]["height"], saved["model_config"]["width"]) == (16, chosen)
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
    assert code == 1 and out.count("\n") == 1 and "is not a captchagen checkpoint" in out


# ---- --mix ----


def test_mix_draws_the_stated_share_of_every_batch():
    sizes, fractions, batch = [10, 100, 50], [0.3, 0.25], 32
    sampler = StreamBatchSampler(sizes, fractions, batch, steps=40, seed=1)
    counts = np.zeros(3, dtype=int)
    for b in sampler:
        assert len(b) == batch
        per = np.array([sum(i < 10 for i in b), sum(10 <= i < 110 for i in b), sum(i >= 110 for i in b)])
        assert abs(per[1] - 0.3 * batch) <= 1 and abs(per[2] - 0.25 * batch) <= 1
        counts += per
    assert counts[1] == int(0.3 * batch * 40) and counts[2] == int(0.25 * batch * 40)
    assert counts[0] == 40 * batch - counts[1] - counts[2]


def test_a_small_source_is_cycled_evenly_and_a_resume_skips_what_was_done():
    sampler = StreamBatchSampler([10, 1000], [0.5], 8, steps=10, seed=2)
    sampler.set_epoch(3)
    batches = list(sampler)
    main = [i for b in batches for i in b if i < 10]
    assert sorted(main) == sorted(list(range(10)) * 4)  # 40 draws: four whole permutations of the 10
    sampler.set_epoch(3, start=4)
    assert list(sampler) == batches[4:] and len(sampler) == 6


def test_per_batch_carries_the_rounding_over():
    assert sum(per_batch(0.1, 32, b) for b in range(10)) == 32
    assert {per_batch(0.1, 32, b) for b in range(10)} == {3, 4}


def test_train_with_mix_validates_on_data_alone(tmp_path):
    real = tiny_dataset(tmp_path / "real", n=100, shard_size=100, seed=1)
    synthetic = tiny_dataset(tmp_path / "synth", n=320, shard_size=320, seed=2)
    code, out = run_cli(
        "train", str(real), "--mix", f"{synthetic}:0.5", "--epochs", "1", "--steps-per-epoch", "3",
        *tiny_train_args(tmp_path), env={"COLUMNS": "200"},
    )  # fmt: skip
    assert code == 0, out
    assert "(+320 mixed in)" in out
    run = latest_run(tmp_path / "r")  # not iterdir(): its order is the file system's, and LATEST is a file
    config = json.loads((run / "config.json").read_text())
    assert config["mix"] == [[str(synthetic), 0.5]] and config["steps_per_epoch"] == 3
    saved = checkpoint.load(run / "best.pt")
    val = sum(v["n"] for v in saved["metrics"]["by_length"].values())
    assert val < 100  # a split of the 100 real images, none of the 320 synthetic ones
    digests = {str(d): hashlib.sha256((d / "manifest.json").read_bytes()).hexdigest() for d in (real, synthetic)}
    assert config["sources"] == saved["train_config"]["sources"] == digests  # what the model was trained on

    (synthetic / "manifest.json").write_text((synthetic / "manifest.json").read_text() + " ")
    code, out = run_cli("train", "--resume", str(run), "--cache-dir", str(tmp_path / "c"), env={"COLUMNS": "300"})
    assert code == 0, out
    assert f"{synthetic} is not the dataset this run started on" in out
    assert f"{real} is not" not in out


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("data", "DATA:FRACTION"),
        ("data:1.5", "between 0 and 1"),
        ("data:x", "DATA:FRACTION"),
        (":0.5", "DATA:FRACTION"),
    ],
)
def test_a_bad_mix_is_a_usage_error(tmp_path, value, why):
    code, out = run_cli("train", str(tmp_path), "--mix", value)
    assert code == 2 and why in out


def test_mix_shares_that_leave_nothing_for_data_are_refused(tmp_path):
    data = tiny_dataset(tmp_path / "d", n=64, shard_size=64)
    code, out = run_cli("train", str(data), "--mix", f"{data}:0.6", "--mix", f"{data}:0.5", *tiny_train_args(tmp_path))
    assert code == 2 and "add up to 1.1" in out


# ---- the input the model sees ----


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


def test_the_zero_accuracy_streak_counts_the_last_epochs():
    rows = [{"seq_accuracy": a} for a in (0, 0.1, 0, 0, 0)]
    assert zero_streak(rows) == 3 and zero_streak(rows[:2]) == 0


def test_a_run_from_scratch_that_reads_nothing_is_pointed_at_a_trained_start(tmp_path):
    scratch = stuck_notice(3, 1500, tmp_path / "inputs.png", 3e-3, from_scratch=True)
    tuned = stuck_notice(3, 1500, tmp_path / "inputs.png", 1e-3, from_scratch=False)
    assert "--init-from base" in scratch and "--init-from" not in tuned
    assert all(str(tmp_path / "inputs.png") in line and "1,500 steps" in line for line in (scratch, tuned))


def test_best_prefers_accuracy_then_the_lower_character_error_rate_then_the_lower_loss():
    best = {"seq_accuracy": 0.0, "cer": 0.9, "loss": 2.0}
    assert better(0.0, 0.8, 9.0, best) and not better(0.0, 0.95, 0.1, best)
    assert better(0.1, 0.99, 9.0, best)
    assert better(0.0, 1.0, 9.0, {"seq_accuracy": -1.0})  # the first epoch
    perfect = {"seq_accuracy": 1.0, "cer": 0.0, "loss": 0.17}  # a small validation set, all read
    assert better(1.0, 0.0, 0.05, perfect) and not better(1.0, 0.0, 0.2, perfect)


def test_a_mixed_in_set_keeps_its_own_frame_not_the_crop_of_data(tmp_path):
    """DATA with black margins is cropped to its content; a synthetic set without margins mixed into it
    must reach the model whole, not cut to DATA's band."""
    from dataclasses import replace

    from trainer.training.datasets import load_data
    from trainer.training.plan import make_plan

    synthetic = tiny_dataset(tmp_path / "synth", n=64, shard_size=64, seed=2)
    framed = tmp_path / "framed"
    framed.mkdir()
    for path in sorted(synthetic.rglob("*.png"))[:40]:  # each image in a black frame twice its height
        with Image.open(path) as im:
            canvas = Image.new("RGB", (im.width, im.height * 2))
            canvas.paste(im.convert("RGB"), (0, im.height // 2))
            canvas.save(framed / path.name)
    cfg = tiny_train_config(framed, tmp_path, width=None, alphabet="0123456789", mix=((str(synthetic), 0.5),))
    plan = make_plan(cfg)
    assert plan.pre.crop is not None and plan.pre.crop[1] > 0.2  # DATA's margins are cropped
    assert any("not cropped" in n for n in plan.notes)
    assert plan.mix[0].pre.crop is None
    sets = load_data(plan, lambda event: None)
    pre = plan.pre
    first_mixed = sets.train.__getitems__([sets.sizes[0]])
    g, r = sets.train.rows[sets.sizes[0]]
    with Image.open(sets.train.loaded.groups[g].paths[r]) as im:
        whole = to_array(im, replace(pre, crop=None))
        cut = to_array(im, pre)
    assert np.array_equal(first_mixed.images[0].numpy(), whole)
    assert not np.array_equal(whole, cut)
