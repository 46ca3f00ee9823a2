"""Seeded rendering: captcha 0.7 draws from `secrets`, and our stand-in makes every image reproducible."""

import random
import secrets

import captcha.image
import pytest
from PIL import Image, ImageDraw

from captchagen import render, style
from captchagen.config import GenerationConfig, resolve
from captchagen.render import Renderer, image_rng, sample_label

CONFIG = GenerationConfig(n=10, width=120, height=40)


def test_the_same_index_renders_the_same_bytes_in_a_fresh_renderer():
    first = Renderer(resolve(CONFIG)).image(3)
    second = Renderer(resolve(CONFIG)).image(3)
    assert first == second
    assert first[1][:8] == b"\x89PNG\r\n\x1a\n"


def test_other_indices_and_seeds_give_other_images():
    r = Renderer(resolve(CONFIG))
    assert r.image(3)[1] != r.image(4)[1]
    other_seed = Renderer(resolve(GenerationConfig(n=10, width=120, height=40, seed=1)))
    assert other_seed.image(3)[1] != r.image(3)[1]


def test_seeding_random_alone_does_not_make_captcha_reproducible():
    """The problem the stand-in solves: captcha 0.7 ignores `random`."""
    c = captcha.image.ImageCaptcha(120, 40)
    random.seed(0)
    a = c.generate_image("AB").tobytes()
    random.seed(0)
    b = c.generate_image("AB").tobytes()
    assert a != b


def test_secrets_is_restored_after_rendering():
    Renderer(resolve(CONFIG)).image(0)
    assert captcha.image.secrets is secrets


def test_labels_respect_length_and_alphabet_and_cover_every_length():
    lengths = set()
    for i in range(400):
        label = sample_label(image_rng(0, i), "XYZ", 2, 5)
        assert set(label) <= set("XYZ")
        lengths.add(len(label))
    assert lengths == {2, 3, 4, 5}


@pytest.mark.parametrize("name", list(style.PRESETS))
def test_the_drawing_shortcuts_draw_the_bytes_of_the_library_calls_they_stand_for(name, monkeypatch):
    """MaskTable (the glyph mask's table, rounded once), the measured canvas (a glyph's text box, laid out
    once per font and character) and the blank glyph (a space made without drawing it) are speed only: every
    preset gives the same bytes as the library's own `Image.point(list)`, `multiline_textbbox` and
    `_draw_character`. With the space taken as inked, the look-ahead is taken back and the library draws it."""
    config = GenerationConfig(n=12, style=style.PRESETS[name])
    fast = [Renderer(resolve(config)).image(i) for i in range(12)]
    monkeypatch.setattr(render, "MaskTable", lambda table: table)  # the library's list, rounded per call
    monkeypatch.setattr(render, "_MeasuringCanvas", lambda draw: draw)  # the canvas itself: measured per call
    facts = render._font_fact  # every space taken as inked: drawn by the library
    monkeypatch.setattr(render, "_font_fact", lambda font, what, *a: what != "blank" and facts(font, what, *a))
    plain = Renderer(resolve(config))
    assert plain.captcha.lookup_table == captcha.image.ImageCaptcha.lookup_table  # the patch took
    assert [plain.image(i) for i in range(12)] == fast


def test_the_measured_canvas_passes_other_calls_to_the_canvas():
    draw = ImageDraw.Draw(Image.new("RGB", (60, 30)))
    font = render._truetype(resolve(GenerationConfig()).font_paths[0], 20)
    canvas = render._MeasuringCanvas(draw)
    assert canvas.multiline_textbbox((1, 1), "Q", font=font) == draw.multiline_textbbox((1, 1), "Q", font=font)
    assert canvas.multiline_textbbox((5, 2), "Q", font=font) == draw.multiline_textbbox((5, 2), "Q", font=font)
    assert canvas.multiline_textbbox((1, 1), "a\nb", font=font, spacing=9) == draw.multiline_textbbox(
        (1, 1), "a\nb", font=font, spacing=9
    )
