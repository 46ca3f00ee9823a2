"""Reading under what the user knows: a label length (a constraint of the decode, recorded by training and
carried into exports) and a site's case rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from captchagen import codec
from tests.helpers import TINY_GEN, run_cli
from trainer import checkpoint, models
from trainer.data.preprocess import Preprocessing
from trainer.inference.decode import string_log_probs
from trainer.inference.reader import Reader
from trainer.models.config import ModelConfig
from trainer.records import Metrics
from trainer.shape import ModelShape


def _images(data, n=48):
    return sorted(map(str, data.glob("shard-*/*.png")))[:n]


def test_training_records_its_label_lengths_and_reading_keeps_to_them_by_default(reading_model):
    data, model = reading_model
    lengths = {len(codec.parse_name(p.rsplit("/", 1)[1]).label) for p in _images(data, 640)}
    reader = Reader(model)
    assert reader.trained_lengths == (min(lengths), max(lengths)) == (TINY_GEN.min_len, TINY_GEN.max_len)
    assert reader.lengths == reader.trained_lengths
    read = reader.read_paths(_images(data))
    assert all(TINY_GEN.min_len <= len(p.text) <= TINY_GEN.max_len for p in read)


@pytest.mark.parametrize("length", [(2, 2), (2, 3)])
def test_a_given_length_gives_readings_of_that_length_with_their_exact_probability(reading_model, length):
    data, model = reading_model
    reader = Reader(model)
    reader.read_lengths(length)
    paths = _images(data)
    read = reader.read_paths(paths)
    assert all(length[0] <= len(p.text) <= length[1] for p in read)
    free = Reader(model)
    free.read_lengths("any")
    unconstrained = free.read_paths(paths)
    assert any(len(p.text) not in range(length[0], length[1] + 1) for p in unconstrained), "nothing to constrain"
    # the confidence is the model's probability of the reading, as without a constraint
    from trainer.data.preprocess import load_array

    logits = reader.logits(np.stack([load_array(p, reader.pre) for p in paths]))
    exact = string_log_probs(logits.transpose(0, 1).log_softmax(2), [p.text for p in read], reader.alphabet).exp()
    assert [p.confidence for p in read] == pytest.approx(exact.tolist(), rel=1e-4, abs=1e-7)
    # a reading already of an allowed length is kept (the constraint never lowers a reading's probability)
    for a, b in zip(unconstrained, read, strict=True):
        if length[0] <= len(a.text) <= length[1]:
            assert b.confidence >= a.confidence * (1 - 1e-6)


def test_the_cli_takes_a_length_a_range_or_any_and_refuses_the_rest_in_one_line(reading_model):
    data, model = reading_model
    image = _images(data, 1)[0]
    for value, want in [("1", (1, 1)), ("2-3", (2, 3))]:
        code, out = run_cli("test", image, "--model", str(model), "--length", value, "--json")
        assert code == 0 and want[0] <= len(json.loads(out)["text"]) <= want[1], out
    code, out = run_cli("eval", str(data), "--model", str(model), "--length", "any", "--worst", "0", "--json")
    assert code == 0 and json.loads(out)["lengths"] is None, out
    code, out = run_cli("eval", str(data), "--model", str(model), "--worst", "0", "--json")
    assert json.loads(out)["lengths"] == [TINY_GEN.min_len, TINY_GEN.max_len], out
    for value, says in [("0", "--length must be 1 to 40"), ("x", "--length must be a length or a range such as any"),
                        ("3-1", "--length must be 1 to 40 characters, the shorter first"),
                        ("9", "trained on labels of up to 3 characters")]:  # fmt: skip
        code, out = run_cli("test", image, "--model", str(model), "--length", value)
        assert code == 2 and says in out and out.count("\n") == 1, (value, out)


def test_an_export_reads_under_the_lengths_it_was_given_as_the_checkpoint_does(reading_model, tmp_path):
    data, model = reading_model
    out = tmp_path / "two.onnx"
    code, output = run_cli("export", "--model", str(model), "--out", str(out), "--length", "2")
    assert code == 0 and "reads lengths" in output and "2-2" in output, output
    exported = Reader(out)
    assert exported.lengths == (2, 2)
    checkpoint_reader = Reader(model)
    checkpoint_reader.read_lengths((2, 2))
    paths = _images(data)
    got = exported.read_paths(paths)
    want = checkpoint_reader.read_paths(paths)
    assert [p.text for p in got] == [p.text for p in want] and all(len(p.text) == 2 for p in got)
    assert [p.confidence for p in got] == pytest.approx([p.confidence for p in want], abs=1e-3)
    default = tmp_path / "default.onnx"
    assert run_cli("export", "--model", str(model), "--out", str(default))[0] == 0
    assert Reader(default).lengths == (TINY_GEN.min_len, TINY_GEN.max_len)


# ---- case: read as a site that ignores it checks ----


@pytest.fixture
def cased(tmp_path):
    """An untrained model reading "aAbB", whose outputs a test sets."""
    shape = ModelShape(height=16, width=48, conv=(8, 8, 8, 8), hidden=8, arch="crnn")
    config = ModelConfig.from_shape(shape, num_classes=5, lengths=(1, 3))
    pre = Preprocessing.for_shape(shape)
    from captchagen.alphabet import Alphabet

    with torch.random.fork_rng():
        torch.manual_seed(0)
        network = models.build(config)
    record = checkpoint.ModelRecord.of(network, Alphabet("aAbB"), pre, config, {}, Metrics(), 0)
    path = tmp_path / "best.pt"
    checkpoint.save(path, record)
    return path


def _frames(reader, probs):
    """Make the reader's network output these per-frame probabilities [T, C] for one image."""
    logits = torch.tensor(probs).log()[None]
    reader._run = lambda arrays: logits.expand(len(arrays), -1, -1)


def test_ignoring_case_sums_a_letters_two_cases_and_reads_lower_case(cased):
    # class order: blank, a, A, b, B. Frame by frame the best single class is A then b, with case; without
    # case, a/A together (0.7) beat b/B (0.6) in the first frame and b/B win the second.
    probs = [[0.05, 0.35, 0.35, 0.25, 0.0], [0.05, 0.0, 0.0, 0.4, 0.55]]
    reader = Reader(cased)
    _frames(reader, probs)
    arrays = np.zeros((1, *reader.pre.array_shape), dtype=np.uint8)
    ((text, confidence),) = reader.read_arrays(arrays)
    assert len(text) == 2 and text[1] == "B"
    reader.ignore_case()
    ((text, confidence),) = reader.read_arrays(arrays)
    assert text == "ab"
    # P("ab", case ignored) is the sum over the four case spellings, each with its alignments
    spellings = ["ab", "aB", "Ab", "AB"]
    log_probs = torch.tensor(probs).log()[:, None].expand(-1, 4, -1)
    total = float(string_log_probs(log_probs, spellings, reader.alphabet).exp().sum())
    assert confidence == pytest.approx(total, rel=1e-4)
    assert reader.as_checked("AbB") == "abb" and reader.case == "ignore"


def test_eval_with_case_ignored_scores_as_the_site_checks(cased, tmp_path):
    from captchagen.config import GenerationConfig
    from captchagen.make import make_dataset

    data = tmp_path / "cased"
    make_dataset(GenerationConfig(n=24, alphabet="aAbB", min_len=1, max_len=3, width=64, height=32, seed=3), data,
                 workers=1, preview=False)  # fmt: skip
    reader = Reader(cased)
    from trainer.inference.scoring import score_dataset

    scored, _ = score_dataset(reader, data, tmp_path / "cache")
    reader.ignore_case()
    folded, _ = score_dataset(reader, data, tmp_path / "cache")
    assert any(s.truth != s.truth.lower() for s in scored) and any(s.text != s.text.lower() for s in scored)
    assert [s.truth for s in folded] == [s.truth.lower() for s in scored]  # scored against the truth as checked
    assert all(s.text == s.text.lower() for s in folded)
