"""What a run says when it planned too few steps or reads nothing, and which epoch counts as best."""

from __future__ import annotations

from trainer.records import Metrics
from trainer.training.advice import better, stuck_notice, zero_streak


def test_the_zero_accuracy_streak_counts_the_last_epochs():
    rows = [{"seq_accuracy": a} for a in (0, 0.1, 0, 0, 0)]
    assert zero_streak(rows) == 3 and zero_streak(rows[:2]) == 0


def test_a_run_from_scratch_that_reads_nothing_is_pointed_at_a_trained_start(tmp_path):
    scratch = stuck_notice(3, 1500, tmp_path / "inputs.png", 3e-3, from_scratch=True)
    tuned = stuck_notice(3, 1500, tmp_path / "inputs.png", 1e-3, from_scratch=False)
    assert "--init-from base" in scratch and "--init-from" not in tuned
    assert all(str(tmp_path / "inputs.png") in line and "1,500 steps" in line for line in (scratch, tuned))


def test_best_prefers_accuracy_then_the_lower_character_error_rate_then_the_lower_loss():
    best = Metrics(seq_accuracy=0.0, cer=0.9, loss=2.0, epoch=1)
    assert better(0.0, 0.8, 9.0, best) and not better(0.0, 0.95, 0.1, best)
    assert better(0.1, 0.99, 9.0, best)
    assert better(0.0, 1.0, 9.0, Metrics())  # the first epoch
    perfect = Metrics(seq_accuracy=1.0, cer=0.0, loss=0.17, epoch=3)  # a small validation set, all read
    assert better(1.0, 0.0, 0.05, perfect) and not better(1.0, 0.0, 0.2, perfect)
