"""Mixed batches (`train --mix`): each set's share of every batch, cycling a small set, validation on DATA
alone, and each mixed-in set's own border crop."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli, tiny_dataset, tiny_train_args, tiny_train_config
from trainer import checkpoint
from trainer.data.mixing import StreamBatchSampler, per_batch
from trainer.data.preprocess import to_array
from trainer.runs import latest_run


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


def test_a_mixed_in_set_keeps_its_own_frame_not_the_crop_of_data(tmp_path):
    """DATA with black margins is cropped to its content; a synthetic set without margins mixed into it
    must reach the model whole, not cut to DATA's band."""

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
