"""Bundled fonts and font checks: glyph coverage comes from the character map, not from rendering."""

import string

import pytest

from captchagen.errors import BadInput
from captchagen.fonts import bundled_fonts, check_coverage, load_font


def test_at_least_three_bundled_fonts_each_with_its_licence_covering_alnum():
    fonts = bundled_fonts()
    assert len(fonts) >= 3
    covered = set()
    for path in fonts:
        licence = path.with_name(path.stem + ".LICENSE.txt")
        assert licence.is_file() and "License" in licence.read_text("utf-8"), f"{path.name} has no licence"
        covered |= {chr(cp) for cp in load_font(path).codepoints}
    assert set(string.ascii_letters + string.digits) <= covered


def test_a_missing_font_and_a_file_that_is_not_a_font(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_font(tmp_path / "nope.ttf")
    fake = tmp_path / "fake.ttf"
    fake.write_bytes(b"this is not a font" * 10)
    with pytest.raises(BadInput, match="is not a TrueType/OpenType font"):
        load_font(fake)
    truncated = tmp_path / "truncated.ttf"
    truncated.write_bytes(bundled_fonts()[0].read_bytes()[:2000])
    with pytest.raises(BadInput, match="is not a TrueType/OpenType font"):
        load_font(truncated)


def test_coverage_names_the_font_and_the_missing_character():
    fonts = [load_font(p) for p in bundled_fonts()]
    check_coverage(fonts, string.ascii_letters + string.digits)
    with pytest.raises(BadInput, match=r"has no glyph for the character '漢' \(U\+6F22\)"):
        check_coverage(fonts, "AB漢")


def test_a_font_folder_gives_every_font_under_it_in_a_fixed_order(tmp_path):
    import shutil

    from captchagen.config import GenerationConfig, resolve

    nested = tmp_path / "fonts" / "more"
    nested.mkdir(parents=True)
    first, second = bundled_fonts()[:2]
    shutil.copy(second, tmp_path / "fonts" / "b.ttf")
    shutil.copy(first, nested / "a.TTF")
    (tmp_path / "fonts" / "README.txt").write_text("not a font")
    resolved = resolve(GenerationConfig(n=1, fonts=(str(tmp_path / "fonts"),)))
    assert [f.name for f in resolved.fonts] == ["b.ttf", "a.TTF"]  # sorted by path: fonts/b.ttf < fonts/more/
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="font folder .*empty' holds no .ttf or .otf files"):
        resolve(GenerationConfig(n=1, fonts=(str(tmp_path / "empty"),)))
