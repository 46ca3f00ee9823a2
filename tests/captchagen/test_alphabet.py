"""The alphabet: validation with named errors, presets, and the CTC index mapping."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captchagen.alphabet import PRESETS, Alphabet
from captchagen.errors import BadInput


def test_presets():
    assert Alphabet.from_spec("digits").chars == "0123456789"
    assert Alphabet.from_spec("upper").chars == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert len(Alphabet.from_spec("alnum")) == 62
    assert Alphabet.from_spec("upper-digits").chars == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert set(PRESETS) >= {"digits", "upper", "lower", "alnum"}
    assert Alphabet.from_spec("xyz").chars == "xyz"  # not a preset: the characters themselves


@pytest.mark.parametrize(
    ("chars", "says"),
    [
        ("", "empty"),
        ("ABCA", "repeats the character 'A'"),
        ("AB C", "whitespace"),
        ("AB\tC", "U+0009"),
        ("AB\x00", "U+0000"),
        ("AB\u200b", "U+200B"),  # zero-width space, a format character
        ("Ae\u0301", "combining mark"),
    ],
)
def test_bad_alphabets_are_named(chars, says):
    with pytest.raises(BadInput, match=None) as info:
        Alphabet(chars)
    assert says in str(info.value)
    assert info.value.param == "alphabet"


def test_encode_is_one_based_and_check_names_the_character():
    a = Alphabet("ABC")
    assert a.encode("CAB") == [3, 1, 2]
    assert a.num_classes == 4
    with pytest.raises(BadInput, match=r"'x' \(U\+0078\).*not in the alphabet"):
        a.encode("AxB", where="file 0001_AxB.png")


def test_from_labels_is_stable_whatever_the_order():
    assert Alphabet.from_labels(["CAB", "BD"]).chars == Alphabet.from_labels(["DB", "BAC"]).chars == "ABCD"


@given(st.text(alphabet="ABCDEFGHIJ", max_size=20))
def test_encode_decode_round_trip(text):
    a = Alphabet("ABCDEFGHIJ")
    assert a.decode(a.encode(text)) == text


def test_alphabet_is_immutable():
    a = Alphabet("AB")
    with pytest.raises(AttributeError):
        a.chars = "CD"  # type: ignore[misc]
