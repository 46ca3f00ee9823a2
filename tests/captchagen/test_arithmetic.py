"""Arithmetic captchas: `make --arithmetic` draws expressions to answer, `test`/`eval --answer` answer them."""

from __future__ import annotations

import json
import random

import pytest

from captchagen import arithmetic, codec
from captchagen.config import GenerationConfig, resolve
from captchagen.errors import BadInput
from captchagen.render import Renderer
from tests.helpers import run_cli
from trainer.inference.scoring import Scored, answer_accuracy

SMALL = ["--width", "120", "--height", "32", "--workers", "1"]


@pytest.mark.parametrize(
    "text, expected",
    [("7+12=?", 19), ("20-3=?", 17), ("6×7=?", 42), ("6*7", 42), ("6x7=", 42), ("0+0=?", 0), ("15-20=?", -5)],
)
def test_an_expression_is_answered_with_or_without_its_question(text, expected):
    assert arithmetic.answer(text) == expected


@pytest.mark.parametrize("text", ["", "7+", "+12=?", "7++12=?", "7+12=?3", "7/12=?", "ABC", "7 + 12 = ?", "712=?"])
def test_a_reading_that_is_not_an_expression_has_no_answer(text):
    assert arithmetic.answer(text) is None


def test_drawn_expressions_are_answerable_within_their_bounds_and_never_negative():
    rng = random.Random(5)
    lo, hi = arithmetic.lengths("+-×")
    seen = set()
    for _ in range(3000):
        label = arithmetic.sample(rng, "+-×")
        value = arithmetic.answer(label)
        assert value is not None and value >= 0, label
        assert label.endswith("=?") and lo <= len(label) <= hi, label
        assert set(label) <= set(arithmetic.alphabet("+-×")), label
        op = next(c for c in label if c in arithmetic.OPERATORS)
        seen.add(op)
        assert all(int(x) <= arithmetic.LARGEST[op] for x in label[:-2].split(op)), label
    assert seen == {"+", "-", "×"}
    assert (lo, hi) == (5, 7) and arithmetic.lengths("×") == (5, 5)


@pytest.mark.parametrize("ops, says", [("", "at least one operator"), ("+/", "'/'"), ("++", "twice")])
def test_bad_operators_are_named(ops, says):
    with pytest.raises(BadInput, match=says):
        arithmetic.check(ops)


def test_arithmetic_decides_the_alphabet_and_lengths_and_refuses_others():
    resolved = resolve(GenerationConfig(n=4, arithmetic="+-"))
    assert resolved.alphabet.chars == "0123456789+-=?"
    assert (resolved.config.min_len, resolved.config.max_len) == (5, 7)
    assert resolved.identity()["arithmetic"] == "+-"
    assert "arithmetic" not in resolve(GenerationConfig(n=4)).identity()  # older datasets keep their fingerprint
    with pytest.raises(BadInput, match="decided by `arithmetic`"):
        resolve(GenerationConfig(n=4, arithmetic="+", alphabet="0123"))
    with pytest.raises(BadInput, match="decided by `arithmetic`"):
        resolve(GenerationConfig(n=4, arithmetic="+", min_len=3, max_len=3))


def test_the_same_seed_draws_the_same_sums_and_another_seed_others():
    def images(seed: int) -> list[tuple[str, bytes]]:
        renderer = Renderer(resolve(GenerationConfig(n=6, width=120, height=32, arithmetic="+-", seed=seed)))
        return [renderer.image(i) for i in range(6)]

    first = images(3)
    assert first == images(3)
    assert [label for label, _ in first] != [label for label, _ in images(4)]


def test_make_arithmetic_names_each_file_by_its_expression(tmp_path):
    code, out = run_cli("make", "--n", "12", "--arithmetic", "--operators", "-×+", *SMALL, "--out", str(tmp_path / "d"))
    assert code == 0, out
    files = sorted((tmp_path / "d").glob("shard-*/*.png"))
    assert len(files) == 12
    labels = [codec.parse_name(f.name).label for f in files]
    assert all(arithmetic.answer(label) is not None for label in labels), labels
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["settings"]["arithmetic"] == "-×+"
    code, out = run_cli("verify", str(tmp_path / "d"))
    assert code == 0, out


@pytest.mark.parametrize(
    "extra, says",
    [
        (
            ["--arithmetic", "--alphabet", "digits"],
            "--arithmetic decides the alphabet and the length; leave out --alphabet",
        ),
        (["--arithmetic", "--length", "5"], "leave out --length"),
        (["--arithmetic", "--min-len", "2"], "leave out --min-len"),
        (["--arithmetic", "--operators", "+/"], "--operators has '/', which is not an operator"),
        (["--arithmetic", "--operators", "++"], "--operators names an operator twice"),
        (["--arithmetic", "--operators", ""], "--operators needs at least one operator"),
        (["--operators", "+"], "--operators is for sums: give it with --arithmetic"),
    ],
)
def test_make_arithmetic_with_a_bad_or_contrary_option_is_one_line_exit_2(tmp_path, extra, says):
    code, out = run_cli("make", "--n", "4", *extra, *SMALL, "--out", str(tmp_path / "d"))
    assert code == 2 and says in out, out
    assert len(out.strip().splitlines()) == 1 and out.startswith("Error: "), out
    assert not (tmp_path / "d").exists()


def test_an_answer_is_right_when_the_sums_agree_even_if_the_reading_is_not():
    scored = [
        Scored("a", "7+12=?", "7+12=?", 0.9),  # read right
        Scored("b", "7+12=?", "12+7=?", 0.5),  # misread, same answer: the site takes it
        Scored("c", "7+12=?", "7+13=?", 0.5),  # wrong answer
        Scored("d", "7+12=?", "7+12", 0.5),  # the question mark missed: still answered
        Scored("e", "7+12=?", "7t12=?", 0.5),  # no expression: no answer
    ]
    assert answer_accuracy(scored) == pytest.approx(3 / 5)
    assert answer_accuracy([Scored("f", "ABC", "ABC", 1.0)]) == 0.0  # a label with no sum is never answered right
    assert answer_accuracy([]) == 0.0


def test_test_answer_adds_each_readings_answer(reading_model):
    data, model = reading_model
    images = sorted(data.glob("shard-*/*.png"))[:4]
    code, out = run_cli("test", *map(str, images), "--model", str(model), "--answer", "--json")
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 4 and all(r["answer"] == arithmetic.answer(r["text"]) for r in rows)
    code, out = run_cli("test", *map(str, images), "--model", str(model), "--json")
    assert all("answer" not in json.loads(line) for line in out.splitlines())
    code, out = run_cli("test", *map(str, images), "--model", str(model), "--answer")
    assert code == 0 and "answer" in out.splitlines()[2], out
    code, out = run_cli("eval", str(data), "--model", str(model), "--answer", "--worst", "0", "--json")
    assert code == 0, out
    assert json.loads(out)["answer_accuracy"] == 0.0  # digit strings are no sums: none is answered right
