"""The network, greedy decoding, count-based metrics and self-describing checkpoints."""

from __future__ import annotations

import pickle

import pytest
import torch

from captchagen.alphabet import Alphabet
from captchagen.errors import CaptchagenError
from trainer import checkpoint
from trainer.inference.decode import greedy
from trainer.metrics import Counts
from trainer.models.config import ModelConfig
from trainer.models.crnn import CRNN
from trainer.shape import min_time_steps, time_steps


def test_output_shape_follows_time_steps():
    model = CRNN(ModelConfig(num_classes=11, height=32, width=96, conv=(8, 8, 8, 8), hidden=16))
    out = model(torch.zeros(3, 1, 32, 96))
    assert out.shape == (time_steps(96), 3, 11) == (24, 3, 11)
    assert min_time_steps(10) == 19
    with pytest.raises(ValueError, match="multiple of 16"):
        CRNN(ModelConfig(num_classes=11, height=30, width=96))
    with pytest.raises(ValueError, match="labels of 10 characters need at least 19"):
        CRNN(ModelConfig(num_classes=11, height=32, width=72, max_label_len=10))  # 18 time steps
    CRNN(ModelConfig(num_classes=11, height=32, width=76, max_label_len=10))  # 19 is enough


def test_greedy_decoding_collapses_repeats_and_drops_blanks():
    a = Alphabet("AB")
    frames = [[0, 1, 1, 0, 1, 2, 2], [2, 0, 2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0], [2, 2, 2, 2, 2, 2, 2]]
    logits = torch.full((7, len(frames), 3), -5.0)  # per sample, the argmax class per frame
    for n, row in enumerate(frames):
        for t, c in enumerate(row):
            logits[t, n, c] = 5.0
    assert greedy(logits, a) == ["AAB", "BB", "", "B"]


def test_metrics_are_summed_counts_not_averaged_batch_averages():
    counts = Counts()
    counts.add(["AB"], ["AB"])  # batch 1: 1 of 1 right
    counts.add(["A", "XY", "ABC"], ["B", "XY", "ABD"])  # batch 2: 1 of 3 right
    assert counts.accuracy == pytest.approx(2 / 4)  # not (1/1 + 1/3) / 2
    assert counts.edits == 2 and counts.chars == 8
    assert counts.cer == pytest.approx(2 / 8) and counts.mean_edit_distance == pytest.approx(0.5)
    assert counts.accuracy_by_length() == {1: (1, 0.0), 2: (2, 1.0), 3: (1, 0.0)}
    again = Counts.from_tensor(counts.to_tensor())
    assert again.summary() == counts.summary()


def test_edit_distance_counts_insertions_deletions_substitutions():
    counts = Counts()
    counts.add(["", "ABCD", "AXC", "kitten"], ["ABC", "ABC", "ABC", "sitting"])
    assert counts.edits == 3 + 1 + 1 + 3


def _payload() -> dict:
    model = CRNN(ModelConfig(num_classes=3, height=16, width=16, conv=(4, 4, 4, 4), hidden=4))
    payload = {
        "model": model.state_dict(),
        "alphabet": "AB",
        "preprocessing": {"height": 16, "width": 16},
        "model_config": {**model.config.__dict__, "conv": list(model.config.conv)},
    }
    return {**payload, "binding": checkpoint.binding(payload)}  # every checkpoint of the format carries one


def test_checkpoint_round_trip_needs_nothing_but_the_file(tmp_path):
    path = tmp_path / "m.pt"
    checkpoint.write(path, _payload())
    model, alphabet, pre = checkpoint.load_model(checkpoint.read(path))
    assert alphabet.chars == "AB" and (pre.height, pre.width) == (16, 16)
    for k, v in _payload()["model"].items():
        assert v.shape == model.state_dict()[k].shape
    assert not list(tmp_path.glob(".*.tmp"))


class Boom:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the plain pickle below is meant to be foreign
def test_loading_refuses_anything_that_is_not_our_checkpoint(tmp_path):
    with pytest.raises(CaptchagenError, match="does not exist"):
        checkpoint.load(tmp_path / "none.pt")
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(CaptchagenError, match="is not a captchagen checkpoint"):
        checkpoint.load(text)
    evil = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "format_version": 1, "x": Boom()}, evil)
    with pytest.raises(CaptchagenError, match="is not a captchagen checkpoint"):
        checkpoint.load(evil)  # weights_only=True refuses to run code
    other = tmp_path / "other.pt"
    torch.save({"format": checkpoint.FORMAT, "format_version": 99}, other)
    with pytest.raises(CaptchagenError, match="format version 99"):
        checkpoint.load(other)
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(CaptchagenError, match="is not a captchagen checkpoint"):
        checkpoint.load(plain)


def test_the_model_defaults_are_the_default_recipe():
    """TrainRequest repeats the model's shape fields (it must import no torch); they must not drift apart."""
    from trainer.training.request import TrainRequest

    model, train = ModelConfig(num_classes=2), TrainRequest()
    for name in ("conv", "hidden", "lstm_layers", "dropout"):
        assert getattr(model, name) == getattr(train, name), name
    # The input size is chosen from the images unless given; for images of the default's 4:1 it is the default.
    assert train.height is None and train.width is None
    import inspect

    from trainer.data.inputs import choose_input

    assert inspect.signature(choose_input).parameters["height"].default == model.height
