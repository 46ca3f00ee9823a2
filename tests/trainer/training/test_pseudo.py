"""Ranked rounds of pseudo-labels (`train --unlabeled --pseudo ranked`): what a round chooses, how the teacher
reads the pool for it, what each epoch reports, and a resume that goes on with the round it stopped in."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import (
    run_cli,
    shard_images,
    sigint_as_in_a_terminal,
    tiny_train_args,
    tiny_train_config,
    torchrun_train,
)
from trainer import checkpoint
from trainer.data.preprocess import load_array
from trainer.device import Dist, Runtime
from trainer.inference.decode import suppressed_classes
from trainer.inference.estimate import shifted
from trainer.inference.reader import Reader
from trainer.training.events import BatchDone, EpochEnded, Started
from trainer.training.interrupt import Interrupted
from trainer.training.loop import train
from trainer.training.pseudo import (
    PoolReading,
    choose,
    epochs_per_round,
    read_pool,
    round_share,
)
from trainer.training.semi import Teacher

CPU = Runtime(torch.device("cpu"), "fp32", 1, Dist())


def reading(texts: list[str], confidence: list[float], agree: list[bool] | None = None) -> PoolReading:
    n = len(texts)
    return PoolReading(
        paths=tuple(f"p{i}.png" for i in range(n)),
        texts=tuple(texts),
        confidence=np.array(confidence, dtype=np.float64),
        agree=np.array(agree if agree is not None else [True] * n, dtype=bool),
    )


def test_a_round_takes_the_most_certain_share_of_the_pool_and_reports_their_mean_confidence():
    r = reading(["AB", "CD", "EF", "GH", "IJ"], [0.5, 0.9, 0.1, 0.7, 0.3])
    chosen = choose(r, share=0.4, balance=100)
    assert chosen.labels == {"p1.png": "CD", "p3.png": "GH"}
    assert chosen.estimated_precision == pytest.approx(0.8)
    assert (chosen.read, chosen.eligible, chosen.share) == (5, 5, 0.4)
    assert chosen.estimate == pytest.approx(0.5 * 1.0)  # mean confidence x share alike in every view


def test_only_readings_alike_in_every_view_of_the_allowed_lengths_and_characters_are_eligible():
    r = reading(["ABC", "AB", "", "AXC", "CAB", "BCA"], [0.99, 0.98, 0.97, 0.96, 0.95, 0.94],
                agree=[True, True, True, True, False, True])  # fmt: skip
    chosen = choose(r, share=1.0, lengths=(3, 3), reads="ABC", balance=100)
    # "AB" is too short, "" empty, "AXC" holds a character the labelled data never has, "CAB" changes in a view
    assert chosen.labels == {"p0.png": "ABC", "p5.png": "BCA"}
    assert chosen.eligible == 2
    assert r.estimate == pytest.approx(np.mean(r.confidence) * 5 / 6)


def test_no_character_fills_a_round_beyond_its_even_share():
    # The most certain readings are all of one character; an even spread over the four characters eligible
    # readings hold is 2 of 8 slots each, so at balance 2 a character takes at most 4 (here: two readings).
    texts = ["AA", "AA", "AA", "AA", "BC", "CD", "DB", "BD"]
    r = reading(texts, [0.99, 0.98, 0.97, 0.96, 0.6, 0.5, 0.4, 0.3])
    chosen = choose(r, share=0.5, balance=2.0)
    assert sorted(chosen.labels.values()) == ["AA", "AA", "BC", "CD"]
    # without the balance, the four "AA" would be the whole round
    assert sorted(choose(r, share=0.5, balance=100).labels.values()) == ["AA"] * 4


def test_ties_go_to_the_earlier_image_and_an_empty_round_estimates_nothing():
    r = reading(["AB", "CD", "EF"], [0.5, 0.5, 0.5])
    assert list(choose(r, share=0.34, balance=100).labels) == ["p0.png"]
    none = choose(reading(["AB"], [0.9], agree=[False]), share=1.0)
    assert none.labels == {} and none.estimated_precision == 0.0


@pytest.mark.parametrize(("index", "growth", "share"), [(0, 0.2, 0.2), (1, 0.2, 0.4), (4, 0.2, 1.0), (9, 0.2, 1.0),
                                                      (0, 1.0, 1.0), (2, 0.3, 0.9)])  # fmt: skip
def test_the_share_grows_by_a_step_a_round_up_to_the_whole_pool(index, growth, share):
    assert round_share(index, growth) == pytest.approx(share)


def test_classes_outside_the_labelled_characters_are_ruled_out(reading_model):
    reader = Reader(reading_model[1])
    mask = suppressed_classes(reader.alphabet, "012")
    assert mask is not None and not mask[0]  # the blank stays
    assert [reader.alphabet.chars[i - 1] for i in range(1, len(mask)) if not mask[i]] == ["0", "1", "2"]
    assert suppressed_classes(reader.alphabet, None) is None


def test_the_teacher_reads_the_pool_as_test_reads_it(reading_model):
    data, model_path = reading_model
    reader = Reader(model_path)
    paths = [str(p) for p in shard_images(data)[:20]]
    arrays = np.stack([load_array(p, reader.pre) for p in paths])
    batches = [(paths[:12], torch.from_numpy(arrays[:12])), (paths[12:], torch.from_numpy(arrays[12:]))]
    teacher = Teacher(reader.net.model, 0.99).module
    found = read_pool(teacher, batches, reader.alphabet, reader.pre, CPU, reader.lengths, None)
    expected = reader.read_arrays(arrays)
    assert found.paths == tuple(paths) and list(found.texts) == [t for t, _ in expected]
    assert found.confidence == pytest.approx([c for _, c in expected], rel=1e-4)
    alike = [all(reader.read_arrays(shifted(arrays[i : i + 1], r, c))[0][0] == expected[i][0]
                 for r, c in ((0, 2), (1, -2), (-1, 1))) for i in range(len(paths))]  # fmt: skip
    assert found.agree.tolist() == alike


@pytest.mark.parametrize(("pool", "per_batch", "steps", "world", "epochs"),
                         [(120, 11, 33, 1, 1), (120, 11, 3, 1, 4), (5000, 32, 50, 1, 4), (5000, 32, 50, 2, 2),
                          (5000, 32, 150, 1, 2), (10, 64, 50, 1, 1)])  # fmt: skip
def test_a_round_lasts_the_whole_epochs_the_batches_take_to_draw_the_pool_once(pool, per_batch, steps, world,
                                                                               epochs):  # fmt: skip
    assert epochs_per_round(pool, per_batch, steps, world) == epochs


def ranked_run(semi_sets, reading_model, tmp_path, steps_per_epoch: int) -> list:
    """The events of 3 epochs of ranked rounds from the reading model, 32 labelled and 11 pool images a step."""
    labelled, pool = semi_sets
    cfg = tiny_train_config(
        labelled, tmp_path, init_from=str(reading_model[1]), height=None, width=None, epochs=3,
        steps_per_epoch=steps_per_epoch, batch_size=32, unlabeled=str(pool), unlabeled_share=0.25, pseudo="ranked",
        pseudo_growth=0.25,
    )  # fmt: skip
    seen: list = []
    train(cfg, seen.append)
    return seen


def test_each_round_reads_the_whole_pool_and_takes_a_growing_share(semi_sets, reading_model, tmp_path):
    # 11 pool images a step: the pool is drawn in 11 steps, so each 33-step epoch is a round
    seen = ranked_run(semi_sets, reading_model, tmp_path, steps_per_epoch=33)
    assert next(e for e in seen if isinstance(e, Started)).pseudo == "ranked"
    rows = [e.pseudo for e in seen if isinstance(e, EpochEnded)]
    assert [p["read"] for p in rows] == [120, 120, 120]  # the whole pool, each round
    for i, p in enumerate(rows):
        assert p["passed"] <= min(p["eligible"], int((i + 1) * 0.25 * 120))
        assert 0 <= p["estimated_precision"] <= 1 and 0 <= p["pool_estimate"] <= 1
        assert "val_confident" not in p or p["val_confident"] == 0
    # The reading model reads these digits: the rounds are not empty, and the later ones take more.
    assert 0 < rows[0]["passed"] < rows[2]["passed"]
    metrics = (Path(seen[-1].run) / "metrics.jsonl").read_text()
    assert '"estimated_precision"' in metrics


def test_the_epochs_of_one_round_learn_its_labels_without_reading_the_pool_again(semi_sets, reading_model, tmp_path,
                                                                                   monkeypatch):  # fmt: skip
    from trainer.training import semi

    reads: list[int] = []
    real = semi.read_pool
    monkeypatch.setattr(semi, "read_pool", lambda *a, **k: reads.append(1) or real(*a, **k))
    seen = ranked_run(semi_sets, reading_model, tmp_path, steps_per_epoch=3)  # 3 steps: one round, 4 epochs long
    rows = [e.pseudo for e in seen if isinstance(e, EpochEnded)]
    assert len(reads) == 1 and len(rows) == 3 and rows[0] == rows[1] == rows[2]


def test_the_cli_takes_the_mode_and_prints_the_rounds(semi_sets, tmp_path):
    labelled, pool = semi_sets
    code, out = run_cli("train", str(labelled), *tiny_train_args(tmp_path), "--unlabeled", str(pool),
                        "--pseudo", "ranked", "--steps-per-epoch", "2")  # fmt: skip
    assert code == 0, out
    words = " ".join(out.split())
    assert "chosen, est." in words and "the teacher's pool estimate" in words
    code, out = run_cli("train", str(labelled), *tiny_train_args(tmp_path), "--unlabeled", str(pool),
                        "--pseudo", "always")  # fmt: skip
    assert code == 2 and "--pseudo" in out and "Traceback" not in out
    code, out = run_cli("train", str(labelled), *tiny_train_args(tmp_path), "--unlabeled", str(pool),
                        "--pseudo-growth", "0")  # fmt: skip
    assert code == 2 and "--pseudo-growth" in out


def test_ctrl_c_then_resume_goes_on_with_the_round_it_stopped_in(semi_sets, tmp_path):
    labelled, pool = semi_sets

    def cfg(where: str):
        # 0.5 of 32 is 32 pool images a step: 12 steps draw 120 more than once, so each epoch is a round
        return tiny_train_config(labelled, tmp_path / where, epochs=2, steps_per_epoch=12, unlabeled=str(pool),
                                 pseudo="ranked", pseudo_growth=0.5)  # fmt: skip

    whole = train(cfg("a"))

    def ctrl_c_at_batch_3(e):
        if isinstance(e, BatchDone) and e.epoch == 2 and e.batch == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with sigint_as_in_a_terminal(), pytest.raises(Interrupted) as stopped:
        train(cfg("b"), ctrl_c_at_batch_3)
    run = Path(stopped.value.run)
    assert checkpoint.read_resumable(run / "last.pt").pseudo_round is not None
    train(cfg("b"), resume=run / "last.pt")
    a, b = checkpoint.load(Path(whole.run) / "last.pt"), checkpoint.load(run / "last.pt")
    for part in ("model", "teacher"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    rows_a = [json.loads(line) for line in (Path(whole.run) / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows_b[-1]["pseudo"] == rows_a[-1]["pseudo"]
    assert b["pseudo_round"]["index"] == 1  # the round the run is in, for a resume with more time


def test_under_torchrun_every_process_reads_the_whole_pool_and_learns_the_same_round(semi_sets, tmp_path):
    """Two CPU processes on gloo: one round each epoch (2 x 16 pool images a step draw 120 more than once in 12)."""
    labelled, pool = semi_sets
    run = torchrun_train(labelled, tmp_path, epochs=2, batch_size=16, steps_per_epoch=12, unlabeled=str(pool),
                         pseudo="ranked", pseudo_growth=0.5)  # fmt: skip
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["pseudo"]["read"] for r in rows] == [120, 120]  # the pool once a round, not once per process
    assert all(r["pseudo"]["passed"] <= r["pseudo"]["eligible"] for r in rows)
    assert checkpoint.load(run / "last.pt")["pseudo_round"]["index"] == 1
