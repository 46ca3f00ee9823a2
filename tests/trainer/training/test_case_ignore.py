"""Self-training for a site that ignores case (`train --case ignore`, `adapt --case ignore`): the teacher reads
the pool with a letter's two cases as one, and its readings are learnt whichever case the model reads them in."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from captchagen.adapt.plan import Candidate, Options, compare_stage, self_train_stage
from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput
from tests.helpers import run_cli, tiny_train_config
from trainer.data.preprocess import Preprocessing
from trainer.device import Dist, Runtime
from trainer.inference.decode import case_folds, case_table, fold_cases
from trainer.training.forward import ctc_loss_sum
from trainer.training.plan import make_plan
from trainer.training.pseudo import read_pool

CPU = Runtime(torch.device("cpu"), "fp32", 1, Dist())
ALPHABET = Alphabet("abAB7")  # classes: blank 0, a 1, b 2, A 3, B 4, 7 5


class Fixed(nn.Module):
    """A 'model' that gives every image the same per-frame probabilities: logits [T, N, C]."""

    def __init__(self, probs: list[list[float]]) -> None:
        super().__init__()
        self.register_buffer("frames", torch.tensor(probs).log())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.frames[:, None, :].expand(-1, images.shape[0], -1).clone()


# One frame: A 0.45, a 0.40, blank 0.15; then a blank. Read with case, "A" (0.45 of the first frame); without
# it, "a" (0.85): a site that ignores case accepts either.
FRAMES = [[0.15, 0.40, 1e-6, 0.45, 1e-6, 1e-6], [0.999996, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6]]


def test_a_letters_two_cases_are_folded_into_its_lower_case():
    folds = case_folds(ALPHABET, None)
    assert folds == [(1, 3), (2, 4)]  # a with A, b with B; 7 has no case
    assert case_folds(ALPHABET, "abA7") == [(1, 3)]  # only letters read in both cases
    assert "ABa7".translate(case_table(ALPHABET, folds)) == "aba7"
    logits = torch.tensor(FRAMES).log()
    folded = fold_cases(logits, folds)
    assert folded[0].exp().tolist() == pytest.approx([0.15, 0.85, 2e-6, 0.0, 0.0, 1e-6], abs=1e-5)
    assert torch.isneginf(folded[:, [3, 4]]).all() and folded.exp().sum(-1).tolist() == pytest.approx([1.0, 1.0])
    assert torch.equal(fold_cases(logits, []), logits.log_softmax(-1))  # no fold: log-probabilities as they are


def test_a_lower_case_target_is_learnt_whichever_case_the_model_reads_it_in():
    logits = torch.tensor(FRAMES).log()[:, None, :]  # [T, 1, C]
    target, lengths = torch.tensor([1]), torch.tensor([1])  # "a"
    with_case = float(ctc_loss_sum(logits, target, lengths))
    without = float(ctc_loss_sum(logits, target, lengths, case_folds(ALPHABET, None)))
    assert with_case == pytest.approx(-math.log(0.40 * 0.999996 + 0.15 * 1e-6), rel=1e-4)
    assert without == pytest.approx(-math.log(0.85 * 0.999996 + 0.15 * 1e-6), rel=1e-4) and without < with_case
    # and it trains: the gradient reaches both cases' outputs, and raising either lowers the loss
    trained = logits.clone().requires_grad_(True)
    ctc_loss_sum(trained, target, lengths, case_folds(ALPHABET, None)).backward()
    assert trained.grad is not None and trained.grad[0, 0, 1] < 0 and trained.grad[0, 0, 3] < 0


def test_the_teacher_reads_the_pool_without_case_when_told():
    pre = Preprocessing(height=8, width=16)
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (5, 8, 16), dtype=np.uint8))
    batches = [([f"p{i}.png" for i in range(5)], images)]
    teacher = Fixed(FRAMES)
    with_case = read_pool(teacher, batches, ALPHABET, pre, CPU, None, None)
    without = read_pool(teacher, batches, ALPHABET, pre, CPU, None, None, case_folds(ALPHABET, None))
    assert with_case.texts == ("A",) * 5 and with_case.confidence == pytest.approx([0.45 * 0.999996] * 5, rel=1e-4)
    assert without.texts == ("a",) * 5 and without.confidence == pytest.approx([0.85 * 0.999996] * 5, rel=1e-4)
    assert without.agree.all()


def test_case_ignore_needs_the_pool_it_is_about(tmp_path):
    from tests.helpers import tiny_dataset

    data = tiny_dataset(tmp_path / "digits", n=16, shard_size=16)
    with pytest.raises(BadInput, match="`case` ignore reads the `unlabeled` pool"):
        make_plan(tiny_train_config(data, tmp_path, epochs=1, case="ignore"))
    with pytest.raises(BadInput, match="`case` must be sensitive or ignore"):
        make_plan(tiny_train_config(data, tmp_path, epochs=1, case="upper"))
    code, out = run_cli("train", str(data), "--case", "ignore", "--epochs", "1", "--runs-dir", str(tmp_path / "r"))
    assert code == 2 and "give the pool" in out and "Traceback" not in out, out


def test_adapt_passes_case_ignore_to_its_comparisons_and_self_training_only_when_asked(tmp_path):
    o = Options(tmp_path / "pool", tmp_path / "out", "abAB", 4, 4, 1000, "base-v3", "", 1.0, 1.0, 0, (), None, 2,
                None)  # fmt: skip
    model = Candidate("base", "base-v3", "0" * 64, Path("base.pt"))
    for options, flagged in ((o, False), (Options(**{**o.__dict__, "case": "ignore"}), True)):
        compared = compare_stage(options, "start", [model, model])
        (tmp_path / "out" / "data").mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / "data" / "manifest.json").write_text('{"fingerprint": "f", "shards": []}')
        trained = self_train_stage(options, model)
        for stage in (compared, trained):
            at = stage.args.index("--case") if "--case" in stage.args else None
            assert (at is not None and stage.args[at + 1] == "ignore") is flagged, stage.args
            assert ("case" in stage.inputs) is flagged  # a stage done before --case existed still matches


@pytest.mark.parametrize("pseudo", ["ranked", "threshold"])
def test_self_training_without_case_runs_and_learns_the_folded_readings(tmp_path, pseudo):
    """End to end through the training step (a fold done in place once broke the backward pass)."""
    import json
    import shutil

    from tests.helpers import shard_images, tiny_dataset, tiny_train_args

    labelled = tiny_dataset(tmp_path / "labelled", n=96, shard_size=96, seed=5, alphabet="abAB")
    made = tiny_dataset(tmp_path / "made", n=48, shard_size=48, seed=6, alphabet="abAB")
    pool = tmp_path / "pool"
    pool.mkdir()
    for i, p in enumerate(shard_images(made)):
        shutil.copy(p, pool / f"c-{i:03d}.png")
    code, out = run_cli("train", str(labelled), *tiny_train_args(tmp_path), "--unlabeled", str(pool), "--pseudo",
                        pseudo, "--pseudo-threshold", "0.01", "--steps-per-epoch", "2", "--case", "ignore",
                        "--name", "folded")  # fmt: skip
    assert code == 0, out
    config = json.loads((tmp_path / "r" / "folded" / "config.json").read_text())
    assert config["request"]["case"] == "ignore"
