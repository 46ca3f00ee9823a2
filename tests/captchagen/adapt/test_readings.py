"""What adapt shows a person of its models' readings: the sheet, and the note on letters read in one case."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from captchagen.adapt.readings import Readings, capital_share, case_note, read_readings, write_sheet


def test_the_capital_share_counts_only_letters_the_alphabet_has_in_both_cases():
    # "Z" and "9" are not in both cases of "ABabZ9": they are not counted
    assert capital_share(("AbZ9", "aB"), "ABabZ9") == (0.5, 4)
    assert capital_share(("AB",), "AB9") is None  # no letter in both cases: nothing to measure
    assert capital_share(("",), "Aa") == (0.5, 0)


@pytest.mark.parametrize(
    ("texts", "says"),
    [
        (("AAAa",) * 25, "75% of the 100 letters m read in the pool are capitals"),
        (("aaaA",) * 25, "75% of the 100 letters m read in the pool are small letters"),
        (("AAAa",) * 24 + ("AAA",), None),  # 99 letters: too few to tell
        (("AAaa",) * 25, None),  # half each: a site drawing both cases
        (("AAAA", "AAaa", "AAaa", "AaAA") * 25, None),  # 69% capitals: not far enough from half
    ],
)
def test_a_note_only_where_enough_letters_keep_to_one_case(texts, says):
    note = case_note(texts, "Aa", "m")
    assert (note is None) if says is None else (note is not None and note.startswith(f"note: {says}"))


def test_readings_that_do_not_line_up_with_their_images_are_none(tmp_path):
    f = tmp_path / "estimates.json"
    f.write_text(json.dumps({"images": ["a.png", "b.png"], "models": [{"model": "m", "readings": ["X", "Y"]}]}))
    assert read_readings(f) == Readings(("a.png", "b.png"), {"m": ("X", "Y")})
    f.write_text(json.dumps({"images": ["a.png", "b.png"], "models": [{"model": "m", "readings": ["X"]}]}))
    assert read_readings(f) is None
    f.write_text(json.dumps({"models": [{"model": "m", "estimate": 0.5}]}))  # saved before compare kept them
    assert read_readings(f) is None
    f.write_text("{")
    assert read_readings(f) is None


def test_the_sheet_leaves_out_what_it_cannot_open(tmp_path):
    good = [tmp_path / f"{i}.png" for i in range(3)]
    for i, p in enumerate(good):
        Image.new("L", (40, 16), 60 * i).save(p)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    images = (str(good[0]), str(broken), str(good[1]), str(good[2]))
    readings = Readings(images, {"a": ("1", "2", "3", ""), "b": ("x", "y", "z", "w")})
    out = write_sheet(readings, [("kept", "a"), ("other", "b")], tmp_path / "sheet.png", count=2)
    assert out == tmp_path / "sheet.png"
    with Image.open(out) as im:
        two = im.size
    write_sheet(readings, [("kept", "a"), ("other", "b")], out, count=3)
    with Image.open(out) as im:
        assert im.size[0] > two[0]  # a third tile in the row: the broken image took no place
    only_broken = Readings((str(broken),), {"a": ("1",), "b": ("2",)})
    assert write_sheet(only_broken, [("kept", "a")], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
