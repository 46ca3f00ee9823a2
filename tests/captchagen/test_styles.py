"""Styles: the default keeps the library's bytes, a style file round-trips through the manifest and renders
the same bytes twice, and every bad style input is one line, exit 2, with nothing written."""

from __future__ import annotations

import io
import json
import random

import captcha.image
import pytest
from PIL import Image, ImageDraw

from captchagen import style
from captchagen.config import GenerationConfig, resolve
from captchagen.preview import PAD
from captchagen.render import Renderer, StyledCaptcha, hollow, image_rng, seeded_captcha
from tests.helpers import REPO, TINY, run_cli, tree_digest


def _pixels(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_the_default_style_draws_exactly_what_the_captcha_library_draws():
    fonts = resolve(GenerationConfig()).font_paths
    plain = captcha.image.ImageCaptcha(160, 60, fonts=fonts, font_sizes=(42, 50, 56))
    styled = StyledCaptcha(160, 60, fonts, style.DEFAULT)
    assert styled.truefonts and [f.size for f in styled.truefonts] == [f.size for f in plain.truefonts]
    for index in range(5):
        with seeded_captcha(image_rng(7, index)):
            a = plain.generate_image("AB12XY")
        with seeded_captcha(image_rng(7, index)):
            b = styled.generate_image("AB12XY")
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", [n for n in style.PRESETS if n != "default"])
def test_every_preset_renders_its_own_look(name):
    config = GenerationConfig(n=4, width=120, height=40)
    default = Renderer(resolve(config))
    styled = Renderer(resolve(GenerationConfig(n=4, width=120, height=40, style=style.PRESETS[name])))
    for i in range(4):
        label, data = styled.image(i)
        assert label == default.image(i)[0]  # the labels come from the seed alone
        assert data != default.image(i)[1]
        assert _pixels(data).size == (120, 40)


def test_post_effects_change_the_image_as_asked():
    config = GenerationConfig(n=1, width=120, height=40)
    gray = style.from_dict({"grayscale": True})
    assert _pixels(Renderer(resolve(GenerationConfig(**{**config.__dict__, "style": gray}))).image(0)[1]).mode == "L"
    plain = _pixels(Renderer(resolve(config)).image(0)[1])
    blurred = style.from_dict({"blur": 2.0})
    soft = _pixels(Renderer(resolve(GenerationConfig(**{**config.__dict__, "style": blurred}))).image(0)[1])
    edges = lambda im: sum(abs(a - b) for a, b in zip(im.tobytes()[:-3], im.tobytes()[3:], strict=True))  # noqa: E731
    assert edges(soft.convert("RGB")) < edges(plain.convert("RGB")) * 0.7


def test_a_style_file_round_trips_through_the_manifest_and_gives_the_same_bytes_twice(tmp_path):
    spec = tmp_path / "site.toml"
    spec.write_text('base = "heavy"\nnoise_dots = 12\nbackground = [255, 255, 255]\njpeg_quality = 60\n')
    made = []
    for run in ("a", "b"):
        code, out = run_cli(
            "make", "--n", "12", "--shard-size", "6", "--style", str(spec), *TINY, "--out", str(tmp_path / run)
        )
        assert code == 0, out
        made.append(tree_digest(tmp_path / run))
    assert made[0] == made[1] and len(made[0]) == 12
    recorded = json.loads((tmp_path / "a" / "manifest.json").read_text())["settings"]["style"]
    expected = style.from_dict(
        {"noise_dots": 12, "background": [255, 255, 255], "jpeg_quality": 60}, style.PRESETS["heavy"]
    )
    assert recorded == expected.to_dict()
    assert style.from_dict(recorded) == expected  # the manifest alone gives the style back
    # A resume with another style is refused like any other changed setting.
    code, out = run_cli("make", "--n", "12", "--shard-size", "6", *TINY, "--out", str(tmp_path / "a"))
    assert code == 2 and "settings.style" in out and "--overwrite" in out


def test_cells_give_each_character_its_own_background(tmp_path):
    spec = {"cells": True, "background": [0, 255], "noise_dots": 0, "noise_curves": 0, "smooth": False}
    config = GenerationConfig(n=6, width=200, height=50, min_len=4, max_len=4, style=style.from_dict(spec))
    renderer = Renderer(resolve(config))
    for i in range(6):
        label, data = renderer.image(i)
        row = _pixels(data).convert("RGB").crop((0, 0, 200, 1))  # the top row: glyphs are placed lower down
        cells = [row.crop((c * 50 + 2, 0, c * 50 + 48, 1)).getcolors() for c in range(4)]
        colours = [max(found)[1] for found in cells]  # each cell's commonest colour along the top
        assert len(set(colours)) == 4, (label, colours)


def test_cell_lines_cross_each_cell_in_its_own_text_colour():
    fonts = resolve(GenerationConfig()).font_paths
    # Fixed colours, so the text colour is known and nothing else draws in it: a white background, dark red
    # text at full opacity, no other noise, and no smoothing to blend the line into its neighbours.
    bare = {"cells": True, "background": [255, 255, 255], "text_color": [120, 0, 0], "text_opacity": [255, 255],
            "noise_dots": 0, "noise_curves": 0, "smooth": False, "character_warp_dx": [0, 0],
            "character_warp_dy": [0, 0]}  # fmt: skip

    def text_coloured_pixels(spec: dict) -> int:
        with seeded_captcha(random.Random(11)):
            im = StyledCaptcha(200, 50, fonts, style.from_dict(spec)).generate_image("WXYZ").convert("RGB")
        return sum(count for count, colour in im.getcolors(1 << 16) if colour == (120, 0, 0))

    plain = text_coloured_pixels(bare)
    crossed = text_coloured_pixels({**bare, "cell_lines": 3, "line_width": [2, 2]})
    assert crossed > plain  # the lines add pixels in the text colour
    # A cell's lines stay in their cell.
    captcha_ = StyledCaptcha(200, 50, fonts, style.from_dict({**bare, "cell_lines": 1, "line_width": [1, 1]}))
    im = Image.new("RGB", (200, 50), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    with seeded_captcha(random.Random(2)):
        for _ in range(200):
            captcha_._cell_line(draw, (100, 150, 50), (0, 0, 255, 255))
    inked = [x for x in range(200) if any(im.getpixel((x, y)) == (0, 0, 255) for y in range(50))]
    assert min(inked) >= 100 and max(inked) <= 149 and max(inked) - min(inked) > 40


def test_outline_hollows_characters_in_both_layouts(monkeypatch):
    fonts = resolve(GenerationConfig()).font_paths
    # Known colours and no other noise: every pixel in the text colour is part of a character.
    bare = {"background": [255, 255, 255], "text_color": [120, 0, 0], "text_opacity": [255, 255],
            "noise_dots": 0, "noise_curves": 0, "smooth": False, "font_sizes": [0.9]}  # fmt: skip

    def inked(spec: dict, seed: int) -> int:
        with seeded_captcha(random.Random(seed)):
            im = StyledCaptcha(200, 60, fonts, style.from_dict(spec)).generate_image("WMBQ").convert("L")
        return sum(n for luma, n in enumerate(im.histogram()) if luma < 200)

    for layout in ({}, {"cells": True}):
        for seed in range(3):
            solid = inked({**bare, **layout}, seed)
            hollowed = inked({**bare, **layout, "outline": 1.0, "outline_width": [1, 1]}, seed)
            assert 0 < hollowed < 0.8 * solid, (layout, seed, hollowed, solid)  # the inside of each stroke is gone
    # A probability: a quarter of 400 characters are hollowed (binomial: 100 +- 26 at three deviations).
    from captchagen import render

    hollowed_widths = []
    monkeypatch.setattr(render, "hollow", lambda glyph, width: hollowed_widths.append(width) or glyph)
    captcha_ = StyledCaptcha(200, 60, fonts, style.from_dict({**bare, "outline": 0.25, "outline_width": [2, 3]}))
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    with seeded_captcha(random.Random(4)):
        for _ in range(400):
            captcha_._draw_character("W", draw, (120, 0, 0, 255))
    assert 74 <= len(hollowed_widths) <= 126 and set(hollowed_widths) == {2, 3}


def test_cell_overflow_cuts_characters_off_at_their_own_cell(monkeypatch):
    fonts = resolve(GenerationConfig()).font_paths
    # Each character a 30x30 block in its own cell's colour, so what is drawn of it, and where, can be counted.
    inks = [(200, 0, 0, 255), (0, 200, 0, 255), (0, 0, 200, 255), (200, 200, 0, 255)]
    blocks = iter(inks * 1000)  # the four cells' characters, in order
    monkeypatch.setattr(StyledCaptcha, "_draw_character", lambda *_: Image.new("RGBA", (30, 30), next(blocks)))
    bare = {"cells": True, "background": [255, 255, 255], "noise_dots": 0, "noise_curves": 0, "smooth": False}

    def block_areas(spec: dict, seed: int) -> list[int]:
        with seeded_captcha(random.Random(seed)):
            im = StyledCaptcha(200, 50, fonts, style.from_dict(spec)).generate_image("WXYZ").convert("RGB")
        areas = []
        for cell, ink in enumerate(inks):
            at = [(x, y) for x in range(200) for y in range(50) if im.getpixel((x, y)) == ink[:3]]
            assert all(cell * 50 <= x < cell * 50 + 50 for x, _ in at), (spec, seed, cell)  # never in a neighbour
            areas.append(len(at))
        return areas

    whole = [a for seed in range(10) for a in block_areas(bare, seed)]
    assert set(whole) == {900}  # without it, every character lies wholly inside its cell
    cut = [a for seed in range(10) for a in block_areas({**bare, "cell_overflow": 0.5}, seed)]
    assert all(15 * 15 <= a <= 900 for a in cut)  # at most half of each side falls outside
    assert sum(a < 900 for a in cut) >= 20  # of 40 characters, about 33 reach past an edge


def test_hollow_keeps_the_edge_and_clears_the_inside():
    block = Image.new("RGBA", (20, 20))
    ImageDraw.Draw(block).rectangle((4, 4, 15, 15), fill=(200, 10, 10, 255))
    ring = hollow(block, 2)
    alpha = ring.getchannel("A")
    assert alpha.getpixel((4, 10)) == 255 and alpha.getpixel((5, 10)) == 255  # the two outer pixels stay
    assert alpha.getpixel((6, 10)) == 0 and alpha.getpixel((10, 10)) == 0  # the inside goes
    assert ring.getpixel((10, 10))[:3] == (0, 0, 0)  # and turns black, for the library's brightness mask
    assert ring.getpixel((4, 10)) == (200, 10, 10, 255)


def test_contrast_redraws_text_colours_too_close_to_their_background():
    fonts = resolve(GenerationConfig()).font_paths
    spaced = StyledCaptcha(120, 40, fonts, style.from_dict({"contrast": 100, "text_color": [0, 255]}))
    plain = StyledCaptcha(120, 40, fonts, style.from_dict({"text_color": [0, 255]}))
    luma = lambda rgb: 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]  # noqa: E731
    with seeded_captcha(random.Random(3)):
        spaced_inks = [spaced._ink((255, 255, 255), 255) for _ in range(300)]
    with seeded_captcha(random.Random(3)):
        plain_inks = [plain._ink((255, 255, 255), 255) for _ in range(300)]
    assert all(255 - luma(ink) >= 100 for ink in spaced_inks)
    assert any(255 - luma(ink) < 100 for ink in plain_inks)  # without it, such colours do come up


def test_noise_takes_colours_of_its_own():
    fonts = resolve(GenerationConfig()).font_paths
    bare = {"background": [255, 255, 255], "text_color": [0, 0, 0], "noise_curves": 0, "smooth": False}
    red_dots = {**bare, "noise_dots": 40, "noise_dot_width": 5, "dot_color": [255, 0, 0]}
    blue_lines = {**bare, "noise_dots": 0, "lines": 3, "line_color": [0, 0, 255]}
    for spec, colour in ((red_dots, (255, 0, 0)), (blue_lines, (0, 0, 255))):
        captcha_ = StyledCaptcha(160, 60, fonts, style.from_dict(spec))
        with seeded_captcha(random.Random(5)):
            im = captcha_.generate_image("AB").convert("RGB")
        assert any(c == colour for _, c in im.getcolors(1 << 16))
        with seeded_captcha(random.Random(5)):
            plain = StyledCaptcha(160, 60, fonts, style.from_dict({**spec, "dot_color": [], "line_color": []}))
            assert not any(c == colour for _, c in plain.generate_image("AB").convert("RGB").getcolors(1 << 16))
    # A range draws every dot afresh: forty dots, many colours.
    many = StyledCaptcha(160, 60, fonts, style.from_dict({**red_dots, "dot_color": [0, 255]}))
    with seeded_captcha(random.Random(5)):
        im = many.generate_image("AB").convert("RGB")
    assert len(im.getcolors(1 << 16)) > 20


def test_styles_made_before_cells_keep_their_manifest_and_fingerprint():
    heavy = style.PRESETS["heavy"].to_dict()
    for later in (
        "cells",
        "cell_lines",
        "cell_overflow",
        "contrast",
        "dot_color",
        "line_color",
        "outline",
        "outline_width",
    ):
        assert later not in heavy  # off: not written, as before they existed
    assert style.from_dict(heavy) == style.PRESETS["heavy"]
    on = style.from_dict(
        {"cells": True, "cell_lines": 2, "contrast": 40, "dot_color": [0, 255], "line_color": [0, 0, 0],
         "outline": 0.25, "outline_width": [2, 3], "cell_overflow": 0.3}
    )  # fmt: skip
    assert on.to_dict()["cells"] is True and on.to_dict()["cell_lines"] == 2 and style.from_dict(on.to_dict()) == on
    assert on.to_dict()["dot_color"] == [0, 255]
    assert on.to_dict()["outline"] == 0.25 and on.to_dict()["outline_width"] == [2, 3]
    assert on.to_dict()["cell_overflow"] == 0.3


def test_a_default_dataset_keeps_the_fingerprint_it_had_before_styles():
    from captchagen import manifest

    settings = resolve(GenerationConfig(n=5)).identity()
    assert settings["style"] == style.DEFAULT.to_dict()
    without = {k: v for k, v in settings.items() if k != "style"}
    assert manifest.fingerprint(settings, {}) == manifest.fingerprint(without, {})
    heavy = resolve(GenerationConfig(n=5, style=style.PRESETS["heavy"])).identity()
    assert manifest.fingerprint(heavy, {}) != manifest.fingerprint(settings, {})


@pytest.mark.parametrize(
    ("name", "text", "names"),
    [
        ("unknown.toml", "noise_dot = 3\n", "`noise_dot`: unknown setting"),
        ("range.json", '{"character_rotate": [30, -30]}', "`character_rotate`: min 30 is above max -30"),
        ("colour.json", '{"text_color": [0, 0, 300]}', "`text_color`: values must be 0 to 255"),
        ("shape.json", '{"background": [1, 2, 3, 4]}', "`background`: must be a range"),
        ("kind.toml", 'noise_dots = "many"\n', "`noise_dots`: must be a whole number"),
        ("negative.toml", "lines = -1\n", "`lines`: must be 0 to 50, got -1"),
        ("quality.toml", "jpeg_quality = 100\n", "`jpeg_quality`: must be 0 to 95"),
        ("contrast.toml", "contrast = 256\n", "`contrast`: must be 0 to 255"),
        ("cells.json", '{"cells": 1}', "`cells`: must be true or false"),
        ("dots.json", '{"dot_color": [0, 256]}', "`dot_color`: values must be 0 to 255"),
        ("lines.toml", 'line_color = "black"\n', "`line_color`: must be a range"),
        ("cell_lines.toml", "cell_lines = 2\n", "`cell_lines`: applies to the cells"),
        ("overflow.toml", "cell_overflow = 0.2\n", "`cell_overflow`: applies to the cells"),
        ("overflow_max.toml", "cells = true\ncell_overflow = 0.6\n", "`cell_overflow`: must be 0 to 0.5"),
        ("overflow_top.toml", "cells = true\ncell_overflow = 1.5\n", "`cell_overflow`: must be 0 to 0.5"),
        ("cell_count.toml", "cells = true\ncell_lines = -1\n", "`cell_lines`: must be 0 to 20"),
        ("outline.toml", "outline = 1.5\n", "`outline`: must be 0 to 1"),
        ("outline_width.toml", "outline_width = [0, 2]\n", "`outline_width`: values must be 1 to 20"),
        ("outline_range.toml", "outline_width = [3, 2]\n", "`outline_width`: min 3 is above max 2"),
        ("base.toml", 'base = "nope"\n', "`base`: must be a preset"),
        ("base_list.toml", 'base = ["heavy"]\n', "`base`: must be a preset"),
        ("base_table.json", '{"base": {"a": 1}}', "`base`: must be a preset"),
        ("offset_low.toml", "character_offset_dx = [-500, -400]\n", "`character_offset_dx`: values must be 0 to 100"),
        ("offset_high.toml", "character_offset_dx = [100000, 100000]\n", "values must be 0 to 100"),
        ("dots_many.toml", "noise_dots = 100000000\n", "`noise_dots`: must be 0 to 5000"),
        ("outline_wide.toml", "outline_width = [500, 1000]\n", "`outline_width`: values must be 1 to 20"),
        ("rotate.toml", "character_rotate = [-1000, 0]\n", "`character_rotate`: values must be -180 to 180"),
        ("blur.toml", "blur = 1000\n", "`blur`: must be 0 to 10"),
        ("sizes.toml", "font_sizes = [0.05]\n", "`font_sizes`: each (a fraction of the image height) must be"),
        ("broken.toml", "x = [\n", "not valid TOML"),
        ("broken.json", "{", "not valid JSON"),
        ("list.json", "[1, 2]", "must hold a table of settings"),
        ("style.yaml", "a: 1\n", "must end in .toml or .json"),
    ],
)
def test_a_bad_style_file_is_one_line_exit_2_and_nothing_written(tmp_path, name, text, names):
    spec = tmp_path / name
    spec.write_text(text)
    out = tmp_path / "d"
    code, printed = run_cli("make", "--n", "5", "--style", str(spec), "--out", str(out))
    assert code == 2
    assert names in printed and printed.startswith("Error: style file") and printed.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("command", ["preview", "styles"])
def test_a_bad_base_is_one_line_in_preview_and_styles_too(tmp_path, command):
    spec = tmp_path / "s.toml"
    spec.write_text('base = ["heavy"]\n')
    args = ["--style", str(spec)] if command == "preview" else ["--also", str(spec)]
    code, printed = run_cli(command, *args, "--out", str(tmp_path / "x.png"))
    assert code == 2 and "`base`: must be a preset" in printed and printed.count("\n") == 1, printed
    assert not (tmp_path / "x.png").exists()


def test_every_style_field_has_a_check_and_a_range_in_the_table():
    rows = {name: (kind, bounds) for name, kind, bounds, _, _ in style.field_table()}
    assert set(rows) == set(style.FIELDS)
    numeric = [n for n, f in style.FIELDS.items() if f.metadata["kind"] not in ("flag", "choice")]
    assert all(rows[n][1] for n in numeric)  # every numeric field states its range
    choices = [n for n, f in style.FIELDS.items() if f.metadata["kind"] == "choice"]
    assert all(", ".join(style.FIELDS[n].metadata["choices"]) in rows[n][0] for n in choices)  # a choice: its options
    for name, f in style.FIELDS.items():  # and the default passes its own check
        value = list(f.default) if isinstance(f.default, tuple) else f.default
        assert style.from_dict({name: value}) == style.DEFAULT or name in ("cells",)


def test_a_style_that_cannot_be_drawn_fails_before_anything_is_written(tmp_path, monkeypatch):
    from captchagen.render import StyledCaptcha

    def refuse(self, chars):
        raise ValueError("Width and height must be >= 0")

    monkeypatch.setattr(StyledCaptcha, "generate_image", refuse)
    out = tmp_path / "d"
    code, printed = run_cli("make", "--n", "5", "--out", str(out), "--max-len", "6")
    assert code == 2 and printed.count("\n") == 1, printed
    assert "cannot be drawn at 320x64 with 6 characters: Width and height must be >= 0" in printed
    assert not out.exists()


def test_an_unknown_preset_names_the_presets(tmp_path):
    code, printed = run_cli("make", "--n", "5", "--style", "fancy", "--out", str(tmp_path / "d"))
    assert code == 2 and "'fancy' is neither a preset (default, clean" in printed
    assert not (tmp_path / "d").exists()


def test_styles_lists_every_preset_and_draws_them(tmp_path):
    extra = tmp_path / "mine.json"
    extra.write_text('{"lines": 3}')
    sheet = tmp_path / "styles.png"
    code, printed = run_cli("styles", "--samples", "2", "--also", str(extra), "--out", str(sheet))
    assert code == 0, printed
    for name in [*style.PRESETS, "mine"]:
        assert name in printed
    with Image.open(sheet) as im:
        assert im.height > 100 * (len(style.PRESETS) + 1) // 2  # a row per style


def test_styles_writes_no_picture_unless_asked_and_lists_the_fields(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, printed = run_cli("styles", env={"COLUMNS": "200"})
    assert code == 0 and "--out styles.png" in printed and list(tmp_path.iterdir()) == [], printed
    code, printed = run_cli("styles", "--fields", env={"COLUMNS": "200"})
    assert code == 0 and list(tmp_path.iterdir()) == []
    assert "noise_dots" in printed and "0 to 5000" in printed and "range [min, max]" in printed
    code, printed = run_cli("styles", "--fields", env={"COLUMNS": "80"})  # a narrow terminal, or a pipe
    names = {line.split("│")[1].strip() for line in printed.splitlines() if line.startswith("│")}
    assert code == 0 and set(style.FIELDS) <= names  # every name whole: wrapped cells leave blank ones


def test_help_examples_stay_on_lines_of_their_own():
    for command in ("preview", "styles"):
        code, printed = run_cli(command, "--help", env={"COLUMNS": "200"})
        examples = [line for line in printed.splitlines() if "Example:" in line]
        assert code == 0 and len(examples) == 2 and all(line.strip().startswith("Example:") for line in examples)


def test_preview_renders_a_style_without_a_dataset(tmp_path):
    code, printed = run_cli("preview", "--style", "photocopy", "--count", "3", "--out", str(tmp_path / "p.png"))
    assert code == 0, printed
    assert (tmp_path / "p.png").stat().st_size > 0
    code, printed = run_cli("preview")
    assert code == 2 and "give DATA" in printed


def test_a_style_preview_draws_what_make_would_with_the_same_options(tmp_path, make_tiny):
    sheet = tmp_path / "look.png"
    look = ["--width", "200", "--height", "50", "--min-len", "3", "--max-len", "3", "--alphabet", "XYZ"]
    code, printed = run_cli("preview", "--style", "clean", *look, "--count", "6", "--columns", "2", "--out", str(sheet))
    assert code == 0, printed
    # The first image is what `make` draws first with these options (seed 0), pasted at the sheet's corner.
    config = GenerationConfig(width=200, height=50, min_len=3, max_len=3, alphabet="XYZ", style=style.PRESETS["clean"])
    label, first = Renderer(resolve(config)).image(0)
    assert len(label) == 3 and set(label) <= set("XYZ")
    with Image.open(sheet) as im:  # 2 columns of 200-pixel images, 3 rows of 50-pixel ones with captions
        assert 2 * 200 < im.width < 3 * 200 and 3 * 50 < im.height < 3 * (50 + 60)
        corner = im.convert("RGB").crop((PAD, PAD, PAD + 200, PAD + 50))
    assert corner.tobytes() == _pixels(first).convert("RGB").tobytes()
    code, printed = run_cli("preview", "--style", "clean", "--min-len", "5", "--max-len", "3", "--out", str(sheet))
    assert code == 2 and "Traceback" not in printed and len(printed.strip().splitlines()) == 1, printed
    data = make_tiny(n=4, shard_size=4)
    code, printed = run_cli("preview", str(data), "--width", "200", "--font", "x.ttf", "--out", str(sheet))
    assert code == 2 and "--width, --font: only with --style" in printed, printed


def test_random_is_untouched_by_styled_rendering():
    state = random.getstate()
    Renderer(resolve(GenerationConfig(n=1, width=120, height=40, style=style.PRESETS["heavy"]))).image(0)
    assert random.getstate() == state


def test_the_experiment_styles_load_and_use_what_they_name():

    styles = REPO / "experiments" / "styles"
    files = sorted(styles.glob("*.toml"))
    assert files
    for path in files:
        name, loaded = style.load(str(path))
        assert name == path.stem and loaded != style.DEFAULT
    v3 = style.load(str(styles / "varied-v3.toml"))[1]  # base-v3's family: `varied` before the wider looks
    assert v3 == style.from_dict({"randomize": True, "readable": True}) and not v3.wider
    multicolor = style.load(str(styles / "multicolor.toml"))[1]
    assert multicolor.cells and multicolor.cell_lines == 2 and multicolor.line_color == (0, 0, 0)
