"""Semi-supervised training (`train --unlabeled`): the pool's share of every batch, the teacher's readings and
their counts, the pool kept out of validation, its settings checked, and a resume that keeps the teacher."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from captchagen.errors import BadInput
from tests.helpers import (
    run_cli,
    schedule,
    shard_images,
    sigint_as_in_a_terminal,
    tiny_dataset,
    tiny_train_args,
    tiny_train_config,
    torchrun_train,
)
from trainer import checkpoint
from trainer.data.mixing import per_batch
from trainer.data.preprocess import load_array, normalize
from trainer.data.sources import UNLABELED, open_unlabeled
from trainer.device import Dist, Runtime
from trainer.inference.reader import Reader
from trainer.training.datasets import batch_sampler
from trainer.training.events import BatchDone, EpochEnded, Notice, Started
from trainer.training.interrupt import Interrupted
from trainer.training.loop import train
from trainer.training.plan import pool_per_batch
from trainer.training.request import TrainRequest
from trainer.training.semi import Teacher, confident_readings


def events_of(cfg, **kwargs) -> list:
    seen: list = []
    train(cfg, seen.append, **kwargs)
    return seen


def test_every_batch_draws_its_share_from_the_pool_and_each_epoch_counts_the_readings(
    semi_sets, reading_model, tmp_path
):
    labelled, pool = semi_sets
    cfg = tiny_train_config(
        labelled, tmp_path, init_from=str(reading_model[1]), height=None, width=None, epochs=2, steps_per_epoch=6,
        batch_size=32, unlabeled=str(pool), unlabeled_share=0.25, pseudo_threshold=1e-6,
    )  # fmt: skip
    seen = events_of(cfg)
    started = next(e for e in seen if isinstance(e, Started))
    assert started.unlabeled == 120 and started.train == 320 - started.val
    rows = [e for e in seen if isinstance(e, EpochEnded)]
    assert len(rows) == 2
    for row in rows:
        p = row.pseudo
        assert p["read"] == 6 * 11  # 6 steps, each of 32 labelled images and 11 from the pool (a quarter of 43)
        # The reading model reads digits, so at a confidence of 1e-6 nearly every reading passes.
        assert 0 < p["passed"] <= p["read"]
        assert p["val"] == started.val and p["val_right"] <= p["val_confident"] <= p["val"]
    assert "(unlabelled)" not in (Path(seen[-1].run) / "metrics.jsonl").read_text()
    assert '"pseudo": {"read": 66' in (Path(seen[-1].run) / "metrics.jsonl").read_text()


@pytest.mark.parametrize(("share", "mix", "pool"), [(0.5, 0.0, 32), (0.25, 0.5, 11), (0.9, 0.25, 288)])
def test_the_pool_is_added_to_the_labelled_images_of_every_batch(share, mix, pool):
    """Fine-tuning on the labels gets its whole batch with a pool as without one; the pool adds its share."""
    sizes = [200, *([5000] if mix else []), 5000]
    extra = pool_per_batch(32, share)
    sampler = batch_sampler(sizes, schedule(batch_size=32), [mix] if mix else [], extra, Dist())
    sampler.set_epoch(0)
    starts = np.cumsum([0, *sizes])
    for batch in list(sampler)[:20]:
        counts = [sum(lo <= i < hi for i in batch) for lo, hi in zip(starts[:-1], starts[1:], strict=True)]
        assert counts[-1] == pool and sum(counts[:-1]) == 32
        if mix:
            assert counts[1] == 32 * mix


def test_a_share_that_rounds_far_from_what_was_asked_says_what_it_is(semi_sets, tmp_path):
    labelled, pool = semi_sets
    base = dict(epochs=1, steps_per_epoch=1, batch_size=8, unlabeled=str(pool))
    notices = [e.message for e in events_of(tiny_train_config(labelled, tmp_path / "a", unlabeled_share=0.01,
                                                               **base)) if isinstance(e, Notice)]  # fmt: skip
    assert any("`unlabeled_share` 0.01" in n and "1 unlabelled image(s) per batch, 11%" in n for n in notices)
    notices = [e.message for e in events_of(tiny_train_config(labelled, tmp_path / "b", unlabeled_share=0.5,
                                                               **base)) if isinstance(e, Notice)]  # fmt: skip
    assert not any("unlabeled_share" in n for n in notices)  # 8 of 16: as asked


def test_a_run_without_a_pool_records_no_pseudo_labels(semi_sets, tmp_path):
    labelled, _ = semi_sets
    seen = events_of(tiny_train_config(labelled, tmp_path, epochs=1))
    assert all(e.pseudo is None for e in seen if isinstance(e, EpochEnded))
    assert "pseudo" not in (Path(seen[-1].run) / "metrics.jsonl").read_text()


def test_the_readings_learnt_are_the_ones_test_reports_with_the_same_confidence(reading_model):
    data, model_path = reading_model
    reader = Reader(model_path)
    paths = [str(p) for p in shard_images(data)[:24]]
    expected = [(p.text, p.confidence) for p in reader.read_paths(paths)]
    images = normalize(torch.from_numpy(np.stack([load_array(p, reader.pre) for p in paths])), reader.pre)
    teacher = Teacher(reader.net.model, 0.99)
    threshold = float(np.median([c for _, c in expected]))
    cpu = Runtime(torch.device("cpu"), "fp32", 1, Dist())
    # training reads the pool under the labelled data's lengths, which `test` reads under by default
    keep, texts = confident_readings(teacher.module, images, reader.alphabet, cpu, threshold, reader.lengths)
    assert texts == [t for t, _ in expected]
    assert keep.tolist() == [c >= threshold and bool(t) for t, c in expected]


def test_the_teacher_moves_a_decay_share_of_the_way_each_step(reading_model):
    model = Reader(reading_model[1]).net.model
    teacher = Teacher(model, 0.75)
    before = [p.detach().clone() for p in teacher.module.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    teacher.update(model)
    for old, new in zip(before, teacher.module.parameters(), strict=True):
        torch.testing.assert_close(new, old + 0.25)
    assert not teacher.module.training and not any(p.requires_grad for p in teacher.module.parameters())


def test_copies_of_labelled_images_are_left_out_of_the_pool_so_none_is_validated_on(semi_sets, tmp_path):
    labelled, pool = semi_sets
    val = tiny_dataset(tmp_path / "val", n=40, shard_size=40, seed=7)
    mixed_pool = tmp_path / "pool"
    shutil.copytree(pool, mixed_pool)
    for i, p in enumerate(shard_images(val)[:5]):  # copies of validation images, under names of the pool's kind
        shutil.copy(p, mixed_pool / f"copied-val-{i}.png")
    for i, p in enumerate(shard_images(labelled)[:3]):  # and of training images
        shutil.copy(p, mixed_pool / f"copied-train-{i}.png")
    mix = tiny_dataset(tmp_path / "mix", n=30, shard_size=30, seed=8)
    for i, p in enumerate(shard_images(mix)[:4]):  # and of the images of a --mix set
        shutil.copy(p, mixed_pool / f"copied-mix-{i}.png")
    cfg = tiny_train_config(
        labelled, tmp_path, val_data=str(val), epochs=1, unlabeled=str(mixed_pool), steps_per_epoch=2,
        mix=((str(mix), 0.25),),
    )  # fmt: skip
    seen = events_of(cfg)
    assert next(e for e in seen if isinstance(e, Started)).unlabeled == 120
    notices = [e.message for e in seen if isinstance(e, Notice)]
    assert any("12 images are labelled ones too; they are left out of the pool" in n for n in notices), notices


def test_a_pool_of_only_labelled_images_or_the_training_set_itself_is_refused(semi_sets, tmp_path):
    labelled, _ = semi_sets
    with pytest.raises(BadInput, match="also DATA"):
        train(tiny_train_config(labelled, tmp_path, unlabeled=str(labelled)))
    copy = tmp_path / "copy"
    shutil.copytree(labelled, copy)
    with pytest.raises(BadInput, match="every image of `unlabeled`.*labelled training or validation image too"):
        train(tiny_train_config(labelled, tmp_path, unlabeled=str(copy), steps_per_epoch=1))


def test_a_made_dataset_as_a_pool_gives_its_shards_not_its_preview(tmp_path):
    made = tiny_dataset(tmp_path / "made", n=20, shard_size=10)
    (made / "preview.png").write_bytes((shard_images(made)[0]).read_bytes())
    source = open_unlabeled(made)
    paths = [p for g in source.groups for p in g.paths]
    assert sorted(paths) == shard_images(made) and all(label == UNLABELED for g in source.groups for label in g.labels)
    listed = tmp_path / "pool.txt"
    listed.write_text("# a list file: one image per line\n" + "".join(f"{p}\n" for p in paths[:3]))
    assert [p for g in open_unlabeled(listed).groups for p in g.paths] == paths[:3]


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--pseudo-threshold", "1.5"), ("--pseudo-threshold", "0"), ("--unlabeled-share", "1"), ("--ema-decay", "nan")],
)
def test_a_setting_out_of_range_is_a_one_line_usage_error(semi_sets, tmp_path, flag, value):
    labelled, pool = semi_sets
    code, out = run_cli("train", str(labelled), *tiny_train_args(tmp_path), "--unlabeled", str(pool), flag, value)
    assert code == 2 and flag in out and "Traceback" not in out, out


def test_the_library_checks_the_settings_and_the_shares_together(semi_sets, tmp_path):
    labelled, pool = semi_sets
    with pytest.raises(BadInput, match="`pseudo_threshold` must be between 0 and 1"):
        train(tiny_train_config(labelled, tmp_path, unlabeled=str(pool), pseudo_threshold=1.0))
    with pytest.raises(BadInput, match="`mix` shares add up to 1"):
        train(tiny_train_config(labelled, tmp_path, unlabeled=str(pool), mix=((str(labelled), 0.6), (str(pool), 0.4))))
    with pytest.raises(BadInput, match="no images found"):
        empty = tmp_path / "empty"
        empty.mkdir()
        train(tiny_train_config(labelled, tmp_path, unlabeled=str(empty)))


def test_ctrl_c_then_resume_equals_the_uninterrupted_run_teacher_included(semi_sets, tmp_path):
    labelled, pool = semi_sets

    def cfg(where: str):
        return tiny_train_config(
            labelled, tmp_path / where, epochs=2, steps_per_epoch=5, unlabeled=str(pool), pseudo_threshold=0.01
        )

    whole = train(cfg("a"))

    def ctrl_c_at_batch_3(e):
        if isinstance(e, BatchDone) and e.epoch == 2 and e.batch == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with sigint_as_in_a_terminal(), pytest.raises(Interrupted) as stopped:
        train(cfg("b"), ctrl_c_at_batch_3)
    run = Path(stopped.value.run)
    train(cfg("b"), resume=run / "last.pt")
    a, b = checkpoint.load(Path(whole.run) / "last.pt"), checkpoint.load(run / "last.pt")
    for part in ("model", "teacher"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    # The resumed epoch's row counts the whole epoch, the batches before the Ctrl-C too.
    rows_a = [json.loads(line) for line in (Path(whole.run) / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows_b] == [1, 2] and rows_b[-1]["pseudo"] == rows_a[-1]["pseudo"]
    assert rows_b[-1]["train_loss"] == pytest.approx(rows_a[-1]["train_loss"], rel=1e-6)
    assert "partial" not in b  # an epoch's end carries nothing on


def test_under_torchrun_with_mix_colour_and_resnet_the_counts_are_summed_over_processes(semi_sets, tmp_path):
    """Two CPU processes on gloo, each drawing its own pool images; every combination the issue names at once."""
    labelled, pool = semi_sets
    run = torchrun_train(
        labelled, tmp_path, epochs=2, batch_size=16, steps_per_epoch=3, arch="resnet", channels=3,
        mix=[[str(labelled), 0.25]], unlabeled=str(pool), unlabeled_share=0.25, pseudo_threshold=0.01,
    )  # fmt: skip
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["pseudo"]["read"] for r in rows] == [2 * 3 * 5, 2 * 3 * 5]  # 2 processes, 3 steps, 5 beside 16
    last = checkpoint.load(run / "last.pt")
    assert last["model_config"]["arch"] == "resnet" and last["model_config"]["channels"] == 3
    assert set(last["teacher"]) == set(last["model"])


def test_without_a_pool_the_mix_counts_are_those_of_the_share_as_given():
    """Runs without a pool draw the batches they drew before pools existed (float shares, carried rounding)."""
    sampler = batch_sampler([200, 5000], schedule(batch_size=32, steps_per_epoch=40), [0.3], 0, Dist())
    sampler.set_epoch(0)
    mixed = [sum(i >= 200 for i in batch) for batch in sampler]
    assert mixed == [per_batch(0.3, 32, b) for b in range(40)]


def test_an_epoch_the_time_limit_cut_then_resumed_counts_the_part_before_the_stop(semi_sets, tmp_path, monkeypatch):
    """What adapt users are told to do: `train --resume RUN --time-limit MORE` after the limit struck midway."""
    from trainer.training import loop

    labelled, pool = semi_sets
    # The learning rate follows the larger of steps done and time used: on a busy machine the seconds a run
    # took moved it (CI: a loss 1.2e-6 apart). Compared runs follow their steps alone; the limit still stops.
    monkeypatch.setattr(loop._Clock, "used", lambda self: 0.0)

    def cfg(where: str, **changes):
        return tiny_train_config(labelled, tmp_path / where, epochs=2, steps_per_epoch=5, unlabeled=str(pool),
                                 pseudo_threshold=0.01, time_limit=60.0, **changes)  # fmt: skip

    whole = train(cfg("a"))
    real = loop.train_epoch

    def out_of_time_at_batch_3_of_epoch_2(step, loader, epoch, start, at, runtime, emit, should_stop):
        def stop():
            return "time" if epoch == 1 and at.step == 8 else should_stop()

        return real(step, loader, epoch, start, at, runtime, emit, stop)

    monkeypatch.setattr(loop, "train_epoch", out_of_time_at_batch_3_of_epoch_2)
    cut = train(cfg("b"))
    monkeypatch.setattr(loop, "train_epoch", real)
    run = Path(cut.run)
    assert cut.stopped_by_time and checkpoint.load(run / "last.pt")["partial"]["seen"] > 0
    train(TrainRequest(time_limit=120.0), resume=run / "last.pt")
    rows_a = [json.loads(line) for line in (Path(whole.run) / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["complete"]) for r in rows_b] == [(1, True), (2, False), (2, True)]
    assert rows_b[-1]["pseudo"]["read"] == rows_a[-1]["pseudo"]["read"]
    assert rows_b[-1]["train_loss"] == pytest.approx(rows_a[-1]["train_loss"], rel=1e-6)


def test_resuming_a_run_whose_pool_changed_says_so(semi_sets, tmp_path):
    labelled, pool = semi_sets
    mine = tmp_path / "pool"
    shutil.copytree(pool, mine)
    cfg = tiny_train_config(labelled, tmp_path, epochs=2, steps_per_epoch=3, unlabeled=str(mine))

    def ctrl_c_in_epoch_2(e):
        if isinstance(e, BatchDone) and e.epoch == 2 and e.batch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with sigint_as_in_a_terminal(), pytest.raises(Interrupted) as stopped:
        train(cfg, ctrl_c_in_epoch_2)
    for extra in list(mine.iterdir())[1:]:
        extra.unlink()  # the pool swapped for one of a single image
    notices = [e.message for e in events_of(TrainRequest(), resume=Path(stopped.value.run) / "last.pt")
               if isinstance(e, Notice)]  # fmt: skip
    assert any(f"{mine} is not the pool this run started on (its images changed)" in n for n in notices), notices


def test_the_teacher_reads_the_pool_under_the_labelled_datas_lengths(reading_model):
    data, model_path = reading_model
    reader = Reader(model_path)
    paths = [str(p) for p in shard_images(data)[:24]]
    images = normalize(torch.from_numpy(np.stack([load_array(p, reader.pre) for p in paths])), reader.pre)
    teacher = Teacher(reader.net.model, 0.99)
    cpu = Runtime(torch.device("cpu"), "fp32", 1, Dist())
    _, free = confident_readings(teacher.module, images, reader.alphabet, cpu, 0.0)
    assert any(len(t) != 2 for t in free), "nothing to constrain"
    keep, texts = confident_readings(teacher.module, images, reader.alphabet, cpu, 0.0, (2, 2))
    assert all(len(t) == 2 for t in texts) and keep.all()
    reader.read_lengths((2, 2))
    assert texts == [p.text for p in reader.read_paths(paths)]  # what `test --length 2` reads
