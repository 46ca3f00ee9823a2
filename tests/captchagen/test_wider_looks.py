"""The looks added for issue 40 (shadow, bitmap glyphs, a colour per character, fish-eye, inverted bands,
dotted backdrops): each draws what it says, none changes a style that does not ask for it, and `varied`
draws them while a `varied` dataset made before them keeps its bytes."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from captchagen import style
from captchagen.config import GenerationConfig, resolve
from captchagen.render import Renderer, pixelated, shadowed


def render(settings: dict, index: int = 0, width: int = 160, height: int = 60) -> np.ndarray:
    cfg = GenerationConfig(n=1, width=width, height=height, style=style.from_dict(settings))
    return np.asarray(Image.open(io.BytesIO(Renderer(resolve(cfg)).image(index)[1])).convert("RGB")).astype(int)


def test_a_shadow_is_the_glyphs_shape_moved_right_and_down_in_half_its_colour():
    glyph = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    glyph.paste((200, 100, 40, 255), (2, 2, 6, 6))
    out = shadowed(glyph, 3, (200, 100, 40, 255))
    assert out.size == (13, 13)
    assert out.getpixel((3, 3)) == (200, 100, 40, 255)  # the glyph on top
    assert out.getpixel((8, 8)) == (100, 50, 20, 255)  # its shadow, 3 pixels on, where the glyph is not
    assert out.getpixel((1, 1))[3] == 0 and out.getpixel((12, 12))[3] == 0


def test_pixelated_glyphs_are_drawn_in_blocks():
    glyph = Image.new("RGBA", (12, 12), (0, 0, 0, 0))
    glyph.paste((0, 0, 0, 255), (1, 1, 7, 10))
    blocks = np.asarray(pixelated(glyph, 3).getchannel("A"))
    for y in range(0, 12, 3):
        for x in range(0, 12, 3):
            assert len(set(blocks[y : y + 3, x : x + 3].ravel().tolist())) == 1  # one value per 3x3 block


@pytest.mark.parametrize(
    "settings",
    [{"shadow": 1.0, "shadow_offset": [3, 3]}, {"pixelate": 3}, {"char_colors": True}, {"fisheye": 0.4},
     {"invert": 0.3}, {"backdrop": "dots"}],
)  # fmt: skip
def test_each_look_changes_the_image_and_two_renders_are_the_same(settings):
    plain = render({})
    styled = render(settings)
    assert styled.shape == plain.shape and not np.array_equal(styled, plain)
    assert np.array_equal(styled, render(settings))  # seeded: the same image again


def test_an_inverted_band_spans_the_height_and_inverts_its_columns():
    plain = render({"backdrop": "flat", "noise_dots": 0, "noise_curves": 0})
    banded = render({"backdrop": "flat", "noise_dots": 0, "noise_curves": 0, "invert": 0.25})
    changed = np.flatnonzero((plain != banded).any(axis=(0, 2)))
    assert 0.2 * 160 <= changed.max() - changed.min() + 1 <= 0.25 * 160 + 1
    left = changed.min()
    corner = plain[0, left]  # background above the text: inverted exactly
    assert np.array_equal(banded[0, left], 255 - corner)


def test_each_character_draws_its_own_colour(monkeypatch):
    import captcha.image

    drawn: list[tuple[str, tuple]] = []
    draw = captcha.image.ImageCaptcha._draw_character

    def spy(self, c, d, color):
        drawn.append((c, tuple(color)))
        return draw(self, c, d, color)

    monkeypatch.setattr(captcha.image.ImageCaptcha, "_draw_character", spy)
    base = {"text_color": [0, 200], "word_space_probability": 1.0}
    render(base, index=3)
    assert len({color for c, color in drawn}) == 1  # one colour for the whole label
    drawn.clear()
    render({**base, "char_colors": True}, index=3)
    assert len(drawn) >= 4 and len({color for c, color in drawn}) == len(drawn)  # one each


def test_dots_lie_in_a_regular_pattern_darker_than_the_background():
    flat = {"noise_dots": 0, "noise_curves": 0, "text_color": [255, 255], "background": [200, 200], "smooth": False}
    dots = render({**flat, "backdrop": "dots"})
    dark = (dots < 180).all(axis=2)
    assert 0.02 < dark.mean() < 0.4  # dots, not a fill


def test_varied_draws_the_new_looks_and_random_draws_none_of_them():
    drawn = [style.draw_style(random.Random(i), readable=True, wider=True) for i in range(400)]
    for name, (chance, _) in style.WIDER.items():
        if name == "shadow_offset":
            continue
        on = sum((s.backdrop == "dots") if name == "dots" else bool(getattr(s, name)) for s in drawn)
        assert 0.5 * chance * 400 < on < 1.5 * chance * 400, name
    plain = [style.draw_style(random.Random(i), readable=True) for i in range(100)]
    assert all(not (s.shadow or s.pixelate or s.char_colors or s.fisheye or s.invert) for s in plain)
    assert all(s.backdrop != "dots" for s in plain)
    # `wider` draws after everything else: the rest of each style is what `varied` drew before
    for i in range(50):
        before = style.draw_style(random.Random(i), readable=True)
        after = style.draw_style(random.Random(i), readable=True, wider=True)
        kept = {n for n in style.FIELDS if n not in style.WIDER and n != "backdrop"}
        assert all(getattr(before, n) == getattr(after, n) for n in kept)


def test_a_varied_dataset_made_before_the_new_looks_is_read_from_its_manifest_as_it_was():
    old = style.from_dict({"randomize": True, "readable": True})  # what such a manifest holds
    assert not old.wider and style.PRESETS["varied"].wider
    assert "wider" not in old.to_dict() and style.PRESETS["varied"].to_dict()["wider"] is True
    with pytest.raises(Exception, match="set both to true too"):
        style.from_dict({"randomize": True, "wider": True})
    with pytest.raises(Exception, match="`pixelate`"):
        style.from_dict({"pixelate": 9})
    with pytest.raises(Exception, match="`fisheye`"):
        style.from_dict({"fisheye": 0.9})
