"""The file-name codec: any label survives the round trip through a safe file name."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captchagen import codec
from captchagen.errors import BadInput

UNSAFE = set('/\\:*?"<>|\x00') | {chr(i) for i in range(32)}


@given(st.text(min_size=1, max_size=30), st.integers(min_value=0, max_value=10**7))
def test_any_label_round_trips_and_the_name_is_safe(label, index):
    name = codec.image_name(index, label)
    assert codec.parse_name(name).label == label
    assert codec.parse_name(name).stem == f"{index:06d}"
    assert not set(name) & UNSAFE
    assert name.isascii()  # no Unicode normalisation can change it


def test_examples():
    assert codec.image_name(7, "AB/C%") == "000007_AB%2FC%25.png"
    assert codec.image_name(12, "é", width=3) == "012_%C3%A9.png"
    assert codec.parse_name("captcha_17_A_B.PNG").label == "17_A_B"  # the label follows the first underscore
    assert codec.parse_name("x_a%2fb.jpg").label == "a/b"  # lower-case hex decodes too


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("000001.png", "does not hold a label"),
        ("000001_.png", "does not hold a label"),
        ("000001_AB.txt", "not an image file name"),
        ("000001_A%G1.png", "not followed by two hex digits"),
        ("000001_A%4.png", "not followed by two hex digits"),
        ("000001_%FF.png", "not UTF-8"),
    ],
)
def test_bad_names(name, says):
    with pytest.raises(BadInput, match=says):
        codec.parse_name(name)


def test_bad_names_are_named_in_the_error():
    for name in ("000001_A%G1.png", "000001_%FF.png", "x_%ZZ.png"):
        with pytest.raises(BadInput) as e:
            codec.parse_name(name)
        assert repr(name) in str(e.value)


@pytest.mark.parametrize("command", ["train", "eval"])
def test_a_bad_escape_in_train_and_eval_names_the_file(tmp_path, command):
    from PIL import Image

    from tests.helpers import run_cli

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (64, 32), 255).save(folder / f"{i}_AB.png")
    Image.new("L", (64, 32), 255).save(folder / "bad_%ZZ.png")
    extra = ["--model", "base"] if command == "eval" else ["--runs-dir", str(tmp_path / "r")]
    code, out = run_cli(command, str(folder), "--cache-dir", str(tmp_path / "c"), *extra)
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and "'bad_%ZZ.png'" in errors[0] and "--skip-bad" in errors[0], out
