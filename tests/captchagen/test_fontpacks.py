"""Font packs (captchagen.fontpacks): fonts from Debian's packages, those that cannot draw the alphabet left
out with a notice, recorded by name and hash, in an order that does not depend on the system. The
packages' files are stood in for by the bundled fonts and a digits-only subset of one, so no test needs
the packages installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fontTools import subset

from captchagen import fontpacks
from captchagen.config import GenerationConfig
from captchagen.fonts import bundled_fonts, load_font
from captchagen.make import make_dataset
from tests.helpers import TINY, run_cli, tree_digest


@pytest.fixture
def digits_only(tmp_path) -> Path:
    """A font that draws the digits and a space, and no letter."""
    out = tmp_path / "DigitsOnly.ttf"
    options = subset.Options()
    font = subset.load_font(str(bundled_fonts()[0]), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="0123456789 ")
    subsetter.subset(font)
    subset.save_font(font, str(out), options)
    return out


@pytest.fixture
def installed(monkeypatch, digits_only):
    """Pack `wide` with two of its packages installed, holding the bundled fonts and the digits-only one;
    returns the files of each so a test may reorder them."""
    bundled = bundled_fonts()
    files = {"fonts-cabin": [bundled[2], digits_only], "fonts-hack": [bundled[1], bundled[0]]}
    pack = fontpacks.Pack("wide", "two stand-in packages", {"fonts-cabin": "sans", "fonts-hack": "mono"})
    monkeypatch.setitem(fontpacks.PACKS, "wide", pack)
    monkeypatch.setattr(fontpacks.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fontpacks, "_dpkg_files", lambda package: files.get(package))
    return files


def _config(**changes) -> GenerationConfig:
    return GenerationConfig(n=8, width=80, height=32, max_len=4, shard_size=8, font_pack="wide", **changes)


def test_a_font_that_cannot_draw_the_alphabet_is_left_out_with_a_notice(installed, tmp_path):
    letters = make_dataset(_config(alphabet="AB12"), tmp_path / "letters", workers=1, preview=False)
    [note] = letters.notes
    assert "DigitsOnly.ttf" in note and "'A'" in note and "drawing with 3" in note
    recorded = letters.settings["fonts"]
    assert [f["file"] for f in recorded] == sorted(p.name for p in bundled_fonts())
    assert all(f["sha256"] == load_font(p).sha256 for f, p in zip(recorded, sorted(bundled_fonts()), strict=True))
    digits = make_dataset(_config(alphabet="0123"), tmp_path / "digits", workers=1, preview=False)
    assert digits.notes == () and len(digits.settings["fonts"]) == 4
    assert json.loads((tmp_path / "digits" / "manifest.json").read_text())["settings"]["font_pack"] == "wide"


def test_the_fonts_order_and_so_the_bytes_do_not_depend_on_how_the_system_lists_them(installed, tmp_path):
    first = make_dataset(_config(alphabet="0123"), tmp_path / "a", workers=1, preview=False)
    for files in installed.values():
        files.reverse()
    second = make_dataset(_config(alphabet="0123"), tmp_path / "b", workers=1, preview=False)
    assert first.settings["fonts"] == second.settings["fonts"]
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_a_pack_not_installed_is_one_line_with_the_command_that_installs_it(monkeypatch, tmp_path):
    monkeypatch.setattr(fontpacks.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fontpacks, "_dpkg_files", lambda package: None if package != "fonts-cabin" else [])
    code, out = run_cli("make", "--n", "4", "--font-pack", "wide", *TINY, "--out", str(tmp_path / "d"))
    assert code == 2 and len(out.strip().splitlines()) == 1, out
    assert "apt-get install -y --no-install-recommends fonts-cabin" in out
    assert not (tmp_path / "d").exists()
    monkeypatch.setattr(fontpacks.shutil, "which", lambda name: None)
    code, out = run_cli("make", "--n", "4", "--font-pack", "wide", *TINY, "--out", str(tmp_path / "d"))
    assert code == 2 and "no dpkg" in out and "with --font instead" in out, out


def test_fonts_shows_what_is_installed_and_what_draws_the_alphabet(installed):
    code, out = run_cli("fonts", "--alphabet", "AB12")
    assert code == 0, out
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:6]]
        for line in out.splitlines()
        if "│" in line
    }
    assert rows["sans"] == ["1", "1", "2", "1"] and rows["mono"] == ["1", "1", "2", "2"]
    assert "Every package is installed" in out


def test_fonts_prints_the_install_command_on_one_line_when_piped(monkeypatch):
    monkeypatch.setattr(fontpacks.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(fontpacks, "_dpkg_files", lambda package: None)  # nothing installed
    code, out = run_cli("fonts")  # CliRunner's output is not a terminal: 80 columns, as a pipe
    assert code == 0, out
    line = next(line for line in out.splitlines() if "apt-get install" in line)
    assert line.strip() == fontpacks.PACKS["wide"].install_command and len(line) > 80


def test_the_wide_pack_names_enough_packages_and_leaves_out_the_measured_generators_fonts():
    wide = fontpacks.PACKS["wide"]
    assert len(wide.packages) >= 40 and len(set(wide.packages.values())) >= 5
    assert not [p for p in wide.packages if any(k in p for k in ("freefont", "rampart", "kaushan", "roboto", "dejavu"))]
