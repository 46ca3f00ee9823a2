"""Styles: every drawing choice of the captcha library, and the post-effects of real captchas, as data.

A style is a frozen dataclass, read from a named preset or a TOML/JSON file and checked field by field.
`default` is the captcha library's own look: with it, images are byte for byte what they were before
styles existed. Colours are either a range `[lo, hi]` (each channel drawn from it) or a fixed `[r, g, b]`.
"""

from __future__ import annotations

import json
import math
import random
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

from captchagen.errors import BadInput


def _field(
    default: object,
    kind: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    later: bool = False,
    wide: tuple[float, ...] | float | None = None,
    off: float = 0.0,
    choices: tuple[str, ...] = (),
):
    """A Style field with its kind and its range: the one place that says what a setting may hold.
    `later`: added after styles were first recorded, so left out of a manifest while at its default.
    `wide` and `off`: how the `random` style draws it for each image (see `draw_style`): from `wide` (a
    range; for a flag, the chance of true; for a choice, each choice's weight), and left at its default
    (off) with chance `off`. `choices`: what a "choice" field may name."""
    meta = {"kind": kind, "range": (lo, hi), "later": later, "wide": wide, "off": off, "choices": choices}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Style:
    # The characters, as captcha.image.ImageCaptcha draws them (its class attributes). Font sizes are
    # fractions of the height; the offsets, pixels of padding left of and above a glyph.
    font_sizes: tuple[float, ...] = _field((0.70, 0.83, 0.93), "sizes", 0.1, 1.5, wide=(0.5, 1.0))
    character_offset_dx: tuple[int, int] = _field((0, 4), "int_range", 0, 100, wide=(0, 8))
    character_offset_dy: tuple[int, int] = _field((0, 6), "int_range", 0, 100, wide=(0, 10))
    character_rotate: tuple[float, float] = _field((-30, 30), "float_range", -180, 180, wide=(-45, 45))  # degrees
    # Quad warp, as a fraction of the glyph size.
    character_warp_dx: tuple[float, float] = _field((0.1, 0.3), "float_range", 0, 1, wide=(0, 0.4))
    character_warp_dy: tuple[float, float] = _field((0.2, 0.3), "float_range", 0, 1, wide=(0, 0.4))
    # Chance of NO extra space before a character (the library's naming).
    word_space_probability: float = _field(0.5, "number", 0, 1, wide=(0, 1))
    # How far characters may overlap (of their mean width).
    word_offset_dx: float = _field(0.25, "number", 0, 1, wide=(0, 0.45))
    # Colours: a range [lo, hi] or a fixed [r, g, b]. The library pastes each glyph through a mask made from
    # its own brightness, so darker text colours come out fainter.
    background: tuple[int, ...] = _field((238, 255), "colour", 0, 255, wide=(0, 255))  # drawn with text_color
    text_color: tuple[int, ...] = _field((10, 200), "colour", 0, 255, wide=(0, 255))
    text_opacity: tuple[int, int] = _field((220, 255), "int_range", 0, 255, wide=(170, 255))
    # Noise, as the library draws it. The bounds keep one image's work small (a few thousand dots cover a
    # 320x64 image many times over).
    noise_dots: int = _field(30, "count", 0, 5000, wide=(0, 120), off=0.2)
    noise_dot_width: int = _field(3, "count", 1, 20, wide=(1, 5))
    noise_curves: int = _field(1, "count", 0, 50, wide=(0, 4))
    smooth: bool = _field(True, "flag", wide=0.6)  # the library's final PIL SMOOTH filter
    # Post-effects of real captchas (all off in `default`). Lines: straight across the image, in the text
    # colour (or line_color).
    lines: int = _field(0, "count", 0, 50, wide=(1, 5), off=0.5)
    line_width: tuple[int, int] = _field((1, 3), "int_range", 1, 20, wide=(1, 4))
    blur: float = _field(0.0, "number", 0, 10, wide=(0.3, 1.2), off=0.7)  # Gaussian blur radius in pixels
    grayscale: bool = _field(False, "flag", wide=0.2)
    # 1-95: re-encode as JPEG at this quality; 0: off
    jpeg_quality: int = _field(0, "count", 0, 95, wide=(20, 90), off=0.6)
    # Layouts the library does not draw (off in every preset).
    # Each character in its own equal-width cell with its own background and text colour.
    cells: bool = _field(False, "flag", later=True, wide=0.15)
    # With cells: lines drawn inside each cell in that cell's text colour, line_width wide, crossing its
    # character like strokes of it (strike-throughs in the text colour, as many real captchas draw).
    cell_lines: int = _field(0, "count", 0, 20, later=True, wide=(1, 2), off=0.5)
    # With cells: how far a character may reach past its cell's edges, as a share of its own width and
    # height; what falls outside is cut off, as in captchas that draw big glyphs into fixed squares. Past
    # half its size outside, a character would be mostly cut off.
    cell_overflow: float = _field(0.0, "number", 0, 0.5, later=True, wide=(0, 0.3), off=0.5)
    # Redraw a text colour until its brightness differs this much from its background.
    contrast: int = _field(0, "count", 0, 255, later=True, wide=(50, 100))
    # Measure `contrast` on the text as it is pasted, not on its colour: outside cells the library pastes a
    # glyph through a mask made from its brightness, so dark text on a light background comes out faint.
    contrast_as_pasted: bool = _field(False, "flag", later=True, wide=1.0)
    # Noise in colours of its own: empty is the text colour (as the library draws it); a range [lo, hi] is
    # drawn afresh for every dot or line, a fixed [r, g, b] paints them all. Dots with a colour of their own
    # are round, half to all of noise_dot_width across.
    dot_color: tuple[int, ...] = _field((), "noise_colour", 0, 255, later=True, wide=(0, 255), off=0.5)
    line_color: tuple[int, ...] = _field((), "noise_colour", 0, 255, later=True, wide=(0, 255), off=0.5)
    # Hollow characters, as outline fonts draw them: each character is drawn as its outline alone, a ring
    # outline_width pixels wide inside its edge, with this probability (0: never, 1: always).
    outline: float = _field(0.0, "number", 0, 1, later=True, wide=(0.3, 1), off=0.85)
    outline_width: tuple[int, int] = _field((1, 2), "int_range", 1, 20, later=True, wide=(1, 3))
    # Drawing beyond the library's. layout "word": the whole label in one font on one baseline (as many
    # generators draw it), not glyph by glyph; with cells, the cells are the layout.
    layout: str = _field("glyphs", "choice", later=True, choices=("glyphs", "word"), wide=(0.6, 0.4))
    # Each column of the image shifted up or down along a sine wave of this amplitude (a share of the
    # height), a period of one to three times the height: text warped as a whole.
    wave: float = _field(0.0, "number", 0, 0.4, later=True, wide=(0.02, 0.12), off=0.4)
    # What lies under the text: flat (the background colour), a gradient between two background colours,
    # a grid of lines, or speckle (every pixel's brightness jittered).
    backdrop: str = _field(
        "flat", "choice", later=True, choices=("flat", "gradient", "grid", "speckle", "dots"),
        wide=(0.4, 0.25, 0.15, 0.2),  # `random` draws the first four; `varied` adds dots (WIDER)
    )  # fmt: skip
    # The whole image bent: along an arc (the middle columns raised or lowered by this share of the height
    # against the ends), and in perspective (each corner moved by up to this share of the size). Drawn by
    # the `varied` family only, so images of `random` keep their bytes.
    arc: float = _field(0.0, "number", 0, 0.4, later=True)
    perspective: float = _field(0.0, "number", 0, 0.3, later=True)
    # Looks real generators draw that the library does not (issue 40), drawn by `varied` only (WIDER), so
    # images of `random`, and of `varied` datasets made before them, keep their bytes. A shadow: a copy of
    # the glyph in a darker shade of its colour, shadow_offset pixels right and down, under it, with this
    # probability per character (with `outline`, hollow glyphs over a solid shadow).
    shadow: float = _field(0.0, "number", 0, 1, later=True)
    shadow_offset: tuple[int, int] = _field((1, 3), "int_range", 1, 20, later=True)
    # Bitmap glyphs: each character drawn in blocks of this many pixels, as pixel fonts look (0, 1: off).
    pixelate: int = _field(0, "count", 0, 8, later=True)
    # Each character in a text colour of its own, drawn from text_color (glyph and word layouts: the cells
    # have their own already).
    char_colors: bool = _field(False, "flag", later=True)
    # A fish-eye lens over the image: its middle magnified, the edges squeezed; the strength, 0 to 0.6.
    fisheye: float = _field(0.0, "number", 0, 0.6, later=True)
    # An inverted region: a band across the full height, this share of the width, its colours inverted.
    invert: float = _field(0.0, "number", 0, 0.6, later=True)
    # Each image draws a style of its own: every other field from its `wide` range (draw_style), so one
    # dataset spans the clean and the heavy end, dark-on-light and light-on-dark, one colour or many.
    randomize: bool = _field(False, "flag", later=True)
    # With randomize: bound each drawn style to what stays readable (READABLE), and bend some images along
    # an arc or in perspective. The `varied` preset.
    readable: bool = _field(False, "flag", later=True)
    # With randomize and readable: draw the looks of WIDER too (the `varied` preset since issue 40; a varied
    # dataset made before has no `wider` in its manifest and keeps its bytes).
    wider: bool = _field(False, "flag", later=True)

    def to_dict(self) -> dict:
        """Plain data; without the fields added after styles were first recorded while they are off, so
        the manifests (and fingerprints) of datasets made before them still match."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {k: v for k, v in d.items() if k not in LATER or v != LATER[k]}


FIELDS = {f.name: f for f in fields(Style)}
# Fields added after styles were first recorded, off, as to_dict writes them.
LATER = {
    name: list(f.default) if isinstance(f.default, tuple) else f.default
    for name, f in FIELDS.items()
    if f.metadata["later"]
}
DEFAULT = Style()

PRESETS: dict[str, Style] = {
    "default": DEFAULT,
    # Upright, well spaced, no noise: the easy end.
    "clean": Style(
        character_rotate=(-10, 10),
        character_warp_dx=(0.05, 0.1),
        character_warp_dy=(0.05, 0.1),
        word_offset_dx=0.1,
        noise_dots=0,
        noise_curves=0,
        background=(250, 255),
    ),
    # Overlapping, strongly rotated glyphs under dots, curves and lines: the hard end.
    "heavy": Style(
        character_rotate=(-45, 45),
        character_warp_dx=(0.2, 0.4),
        character_warp_dy=(0.25, 0.4),
        word_offset_dx=0.4,
        background=(180, 255),
        text_color=(0, 180),
        noise_dots=80,
        noise_curves=3,
        lines=2,
    ),
    # Gray, soft and compressed, like a scanned or re-encoded captcha.
    "photocopy": Style(grayscale=True, blur=0.8, jpeg_quality=30, noise_dots=15),
    # Coloured text on a coloured background crossed by lines, in the spirit of many PHP captchas.
    "colour": Style(background=(120, 255), text_color=(0, 160), noise_dots=10, noise_curves=0, lines=4),
    # A style of its own for every image, drawn from each field's wide range: domain randomisation.
    "random": Style(randomize=True),
    # The same draws bounded to readable images, some bent along an arc or in perspective (base model v3
    # trained on these), and the wider looks: shadows, bitmap glyphs, a colour per character, fish-eye,
    # inverted bands, dotted backdrops.
    "varied": Style(randomize=True, readable=True, wider=True),
}

DESCRIPTIONS = {
    "default": "the captcha library's own look (images as before styles existed)",
    "clean": "upright, well spaced, no noise: the easy end",
    "heavy": "overlapping, strongly rotated glyphs under dots, curves and lines: the hard end",
    "photocopy": "gray, blurred and JPEG-compressed, like a scanned or re-encoded captcha",
    "colour": "coloured backgrounds crossed by lines, as many PHP captchas are",
    "random": "a style of its own per image, every setting drawn from a wide range (domain randomisation)",
    "varied": "as random, bounded to readable images (contrast, noise, blur), some bent along an arc or in "
    "perspective, some with shadows, bitmap glyphs, a colour per character, fish-eye, inverted bands or dots",
}

# How `varied` (randomize + readable) bounds a drawn style: the random draws are made as for `random`, then
# each of these fields is clamped into its bound, so no image is unreadable for faint text, heavy noise or
# blur (a quarter of `random`'s images are; its own held-out set reads 15%). (lo, hi) per value.
READABLE = {
    "font_sizes": (0.6, 1.0),
    "character_rotate": (-35, 35),
    "character_warp_dx": (0, 0.3),
    "character_warp_dy": (0, 0.3),
    "text_opacity": (210, 255),
    "noise_dots": (0, 60),
    "noise_dot_width": (1, 3),
    "noise_curves": (0, 2),
    "lines": (0, 3),
    "line_width": (1, 3),
    "blur": (0, 0.8),
    "jpeg_quality": (40, 95),  # 0 (no JPEG) stays 0
    "contrast": (90, 255),
    "outline_width": (1, 2),
    "cell_overflow": (0, 0.2),
    "wave": (0, 0.08),
}
DARK_INK_MIN = 110
BENDS = {"arc": (0.03, 0.15), "perspective": (0.03, 0.12)}  # each drawn for half of `varied`'s images
# What `wider` draws after the bends: (chance the look is on, its range when on). dots: the backdrop.
WIDER: dict[str, tuple[float, tuple[float, float]]] = {
    "shadow": (0.25, (0.5, 1.0)),
    "shadow_offset": (1.0, (1, 3)),
    "pixelate": (0.15, (2, 3)),
    "char_colors": (0.3, (1, 1)),
    "fisheye": (0.25, (0.1, 0.35)),
    "invert": (0.12, (0.15, 0.4)),
    "dots": (0.15, (1, 1)),
}

LIGHT_ON_DARK = 0.25  # the `random` style's share of light text on a dark background


def draw_style(rng: random.Random, readable: bool = False, wider: bool = False) -> Style:
    """One image's style under `randomize`: each field drawn from its `wide` range (left at its default with
    its `off` chance), as its kind holds values. Ranges are drawn as two values, sorted; a flag is true with
    the chance `wide` gives; font sizes are three. The background and text colours are drawn together: dark
    text on a light background, or (LIGHT_ON_DARK of the time) light on dark, as ranges of their own. The
    draws come from `rng` in the fields' order, so an image's style is a function of its generator.
    `readable` (the `varied` preset): the same draws clamped into READABLE, then the BENDS drawn; `wider`
    (with readable): then the looks of WIDER, each on with its chance."""
    values: dict[str, object] = {}
    for name, f in FIELDS.items():
        kind, wide, off = f.metadata["kind"], f.metadata["wide"], f.metadata["off"]
        if wide is None:
            continue
        if off and rng.random() < off:
            values[name] = f.default
        elif kind == "flag":
            values[name] = rng.random() < wide
        elif kind == "choice":  # the choices `wide` weighs (a choice added later is drawn by `wider`)
            values[name] = rng.choices(f.metadata["choices"][: len(wide)], weights=wide)[0]
        elif kind == "count":
            values[name] = rng.randint(*wide)
        elif kind == "number":
            values[name] = round(rng.uniform(*wide), 3)
        elif kind == "int_range":
            values[name] = tuple(sorted(rng.randint(*wide) for _ in range(2)))
        elif kind in ("float_range", "sizes"):
            values[name] = tuple(sorted(round(rng.uniform(*wide), 3) for _ in range(2 if kind != "sizes" else 3)))
        elif kind == "noise_colour":
            values[name] = tuple(sorted(rng.randint(*wide) for _ in range(2)))
        elif kind == "colour":
            continue  # the background and the text colour are drawn together, below
        else:
            raise AssertionError(f"style field {name} has no random draw for its kind {kind!r}")
    light, dark = (rng.randint(140, 245), 255), (0, rng.randint(40, 150))
    values["background"], values["text_color"] = (light, dark) if rng.random() >= LIGHT_ON_DARK else (dark, light)
    if not values["cells"]:
        values["cell_lines"], values["cell_overflow"] = 0, 0.0
    if readable:
        _bound(values)
        for name, (lo, hi) in BENDS.items():  # drawn after every `random` draw: its sequence is unchanged
            values[name] = round(rng.uniform(lo, hi), 3) if rng.random() < 0.5 else 0.0
        if wider:  # after the bends: a varied image without `wider` draws what it drew before
            _draw_wider(rng, values)
    return replace(DEFAULT, **values)  # type: ignore[arg-type]


def _draw_wider(rng: random.Random, values: dict[str, object]) -> None:
    """The looks of WIDER, in its order, each on with its chance."""
    for name, (chance, (lo, hi)) in WIDER.items():
        on = rng.random() < chance
        if name == "dots":
            values["backdrop"] = "dots" if on else values["backdrop"]
        elif name == "char_colors":
            values[name] = on
        elif name == "shadow_offset":
            values[name] = tuple(sorted(rng.randint(int(lo), int(hi)) for _ in range(2)))
        elif name == "pixelate":
            values[name] = rng.randint(int(lo), int(hi)) if on else 0
        else:
            values[name] = round(rng.uniform(lo, hi), 3) if on else 0.0


def _bound(values: dict[str, object]) -> None:
    """Clamp a drawn style's values into READABLE, in place. Dark text is kept to a range that reaches
    DARK_INK_MIN: the library pastes it through its own brightness, so near-black ink fades into the
    background and no redraw meets the contrast."""
    text, background = values["text_color"], values["background"]
    if text[1] < background[0]:  # type: ignore[index]
        values["text_color"] = (text[0], max(text[1], DARK_INK_MIN))  # type: ignore[index]
    for name, (lo, hi) in READABLE.items():
        value = values[name]
        if name == "jpeg_quality" and value == 0:
            continue
        if isinstance(value, tuple):
            values[name] = tuple(type(v)(min(max(v, lo), hi)) for v in value)
        else:
            values[name] = type(value)(min(max(value, lo), hi))  # type: ignore[call-overload,call-arg]


def _fail(key: str, why: str) -> BadInput:
    return BadInput(f"style `{key}`: {why}", param="style")


def _number(key: str, value: object, integer: bool) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not math.isfinite(value):  # type: ignore[arg-type]
        raise _fail(key, f"must be {'a whole number' if integer else 'a number'}, got {value!r}")
    return value  # type: ignore[return-value]


def _within(key: str, values: tuple, lo: float | None, hi: float | None, what: str) -> None:
    if lo is not None and hi is not None and any(not lo <= v <= hi for v in values):
        shown = values[0] if len(values) == 1 else list(values)
        raise _fail(key, f"{what + ' ' if what else ''}must be {lo:g} to {hi:g}, got {shown}")


def _pair(key: str, value: object, integer: bool) -> tuple:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _fail(key, f"must be a range [min, max], got {value!r}")
    lo, hi = (_number(key, v, integer) for v in value)
    if lo > hi:
        raise _fail(key, f"min {lo} is above max {hi}")
    return (lo, hi)


def _colour(key: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise _fail(key, f"must be a range [lo, hi] or a colour [r, g, b], got {value!r}")
    parts = tuple(int(_number(key, v, True)) for v in value)
    if any(not 0 <= v <= 255 for v in parts):
        raise _fail(key, f"values must be 0 to 255, got {list(parts)}")
    if len(parts) == 2 and parts[0] > parts[1]:
        raise _fail(key, f"min {parts[0]} is above max {parts[1]}")
    return parts


def _checked(key: str, value: object) -> object:
    """`value` as the field `key` holds it, or BadInput saying what it must be."""
    kind = FIELDS[key].metadata["kind"]
    lo, hi = FIELDS[key].metadata["range"]
    if kind in ("int_range", "float_range"):
        pair = _pair(key, value, kind == "int_range")
        _within(key, pair, lo, hi, "values")
        return pair
    if kind == "colour" or (kind == "noise_colour" and value != []):
        return _colour(key, value)
    if kind == "noise_colour":
        return ()
    if kind == "choice":
        options = FIELDS[key].metadata["choices"]
        if value not in options:
            raise _fail(key, f"must be one of {', '.join(options)}, got {value!r}")
        return value
    if kind == "flag":
        if not isinstance(value, bool):
            raise _fail(key, f"must be true or false, got {value!r}")
        return value
    if kind == "count":
        count = int(_number(key, value, True))
        _within(key, (count,), lo, hi, "")
        return count
    if kind == "number":
        number = _number(key, value, False)
        _within(key, (number,), lo, hi, "")
        return number
    if kind == "sizes":
        if not isinstance(value, list | tuple) or not value:
            raise _fail(key, f"must be a list of fractions of the image height, got {value!r}")
        sizes = tuple(_number(key, v, False) for v in value)
        _within(key, sizes, lo, hi, "each (a fraction of the image height)")
        return sizes
    raise AssertionError(f"style field {key} has no check for its kind {kind!r}")  # a field added without one


def from_dict(data: dict, base: Style = DEFAULT) -> Style:
    """A checked Style: `data`'s keys over `base`. Raise BadInput naming the first bad key."""
    changes: dict[str, object] = {}
    for key, value in data.items():
        if key not in FIELDS:
            raise _fail(key, f"unknown setting (known: {', '.join(sorted(FIELDS))})")
        changes[key] = _checked(key, value)
    style = replace(base, **changes)  # type: ignore[arg-type]
    for key in ("cell_lines", "cell_overflow"):
        if getattr(style, key) and not style.cells:
            raise _fail(key, "applies to the cells of the `cells` layout: set cells = true too")
    fixed = [
        k for k, v in changes.items() if k not in ("randomize", "readable", "wider") and v != getattr(DEFAULT, k)
    ]  # the manifest has all
    if style.readable and not style.randomize:
        raise _fail("readable", "bounds the styles `randomize` draws: set randomize = true too")
    if style.wider and not style.readable:
        raise _fail("wider", "adds looks to what `randomize` and `readable` draw: set both to true too")
    if style.randomize and fixed:
        raise _fail(fixed[0], "has no effect with `randomize`, which draws every setting for each image")
    return style


def _drawn(f) -> str:  # a dataclasses.Field
    """How the `random` style draws a field, in words."""
    wide, off = f.metadata["wide"], f.metadata["off"]
    if f.name in WIDER:
        chance, (lo, hi) = WIDER[f.name]
        return f"by varied: {lo:g} to {hi:g}" + (f", on {100 * chance:.0f}% of images" if chance < 1 else "")
    if wide is None:
        return ""
    if f.metadata["kind"] == "flag":
        drawn = f"true {100 * wide:.0f}% of images"
    elif f.metadata["kind"] == "choice":
        total = sum(wide)
        named = f.metadata["choices"][: len(wide)]
        drawn = ", ".join(f"{c} {100 * w / total:.0f}%" for c, w in zip(named, wide, strict=True))
        if f.name == "backdrop":
            drawn += f"; varied: dots {100 * WIDER['dots'][0]:.0f}% of images"
    elif f.name in ("background", "text_color"):
        drawn = f"together: dark on light, or light on dark {100 * LIGHT_ON_DARK:.0f}% of images"
    else:
        within = "ranges within " if f.metadata["kind"].endswith(("range", "colour", "sizes")) else ""
        drawn = f"{within}{wide[0]:g} to {wide[1]:g}"
    return drawn + (f" (off {100 * off:.0f}% of images)" if off else "")


def field_table() -> list[tuple[str, str, str, str, str]]:
    """(name, what it holds, its range, the default, how `random` draws it) for every style field, for
    `captchagen styles --fields`."""
    kinds = {
        "int_range": "range [min, max], whole numbers",
        "float_range": "range [min, max]",
        "colour": "range [lo, hi] or colour [r, g, b]",
        "noise_colour": "[] (the text colour), range [lo, hi] or colour [r, g, b]",
        "flag": "true or false",
        "count": "whole number",
        "number": "number",
        "sizes": "list of fractions of the image height",
        "choice": "one of",
    }
    rows = []
    for name, f in FIELDS.items():
        lo, hi = f.metadata["range"]
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        shown = json.dumps(default)
        holds = kinds[f.metadata["kind"]]
        if f.metadata["choices"]:
            holds += " " + ", ".join(f.metadata["choices"])
        rows.append((name, holds, "" if lo is None else f"{lo:g} to {hi:g}", shown, _drawn(f)))
    return rows


def load(spec: str) -> tuple[str, Style]:
    """A preset name or a .toml/.json file: its name (the preset, or the file's stem) and the checked Style.

    A file may start from a preset with `base = "heavy"`; its other keys override that preset's."""
    if spec in PRESETS:
        return spec, PRESETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise BadInput(f"style {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a file", param="style")
    text = path.read_bytes()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() == ".toml":
            data = tomllib.loads(text.decode("utf-8"))
        else:
            raise BadInput(f"style file {path}: must end in .toml or .json", param="style")
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise BadInput(f"style file {path}: not valid {kind} ({str(e).splitlines()[0]})", param="style") from None
    if not isinstance(data, dict):
        raise BadInput(f"style file {path}: must hold a table of settings, got {type(data).__name__}", param="style")
    base = data.pop("base", "default")
    try:
        if not isinstance(base, str) or base not in PRESETS:
            raise _fail("base", f"must be a preset ({', '.join(PRESETS)}), got {base!r}")
        return path.stem, from_dict(data, PRESETS[base])
    except BadInput as e:
        raise BadInput(f"style file {path}: {e}", param="style") from None
