"""Styles: every drawing choice of the captcha library, and the post-effects of real captchas, as data.

A style is a frozen dataclass, read from a named preset or a TOML/JSON file and checked field by field.
`default` is the captcha library's own look: with it, images are byte for byte what they were before
styles existed. Colours are either a range `[lo, hi]` (each channel drawn from it) or a fixed `[r, g, b]`.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

from captchagen.errors import BadInput


@dataclass(frozen=True)
class Style:
    # The characters, as captcha.image.ImageCaptcha draws them (its class attributes).
    font_sizes: tuple[float, ...] = (0.70, 0.83, 0.93)  # as fractions of the image height; one is drawn
    character_offset_dx: tuple[int, int] = (0, 4)  # pixels of padding left of each glyph
    character_offset_dy: tuple[int, int] = (0, 6)  # and above it
    character_rotate: tuple[float, float] = (-30, 30)  # degrees
    character_warp_dx: tuple[float, float] = (0.1, 0.3)  # quad warp, as a fraction of the glyph size
    character_warp_dy: tuple[float, float] = (0.2, 0.3)
    word_space_probability: float = 0.5  # chance of NO extra space before a character (the library's naming)
    word_offset_dx: float = 0.25  # how far characters may overlap, as a fraction of their mean width
    # Colours: a range [lo, hi] or a fixed [r, g, b]. The library pastes each glyph through a mask made from
    # its own brightness, so darker text colours come out fainter.
    background: tuple[int, ...] = (238, 255)
    text_color: tuple[int, ...] = (10, 200)
    text_opacity: tuple[int, int] = (220, 255)
    # Noise, as the library draws it.
    noise_dots: int = 30
    noise_dot_width: int = 3
    noise_curves: int = 1
    smooth: bool = True  # the library's final PIL SMOOTH filter
    # Post-effects of real captchas (all off in `default`).
    lines: int = 0  # straight lines across the image, in the text colour (or line_color)
    line_width: tuple[int, int] = (1, 3)
    blur: float = 0.0  # Gaussian blur radius in pixels
    grayscale: bool = False
    jpeg_quality: int = 0  # 1-95: re-encode as JPEG at this quality; 0: off
    # Layouts the library does not draw (off in every preset).
    cells: bool = False  # each character in its own equal-width cell with its own background and text colour
    # With cells: lines drawn inside each cell in that cell's text colour, line_width wide, crossing its
    # character like strokes of it (strike-throughs in the text colour, as many real captchas draw).
    cell_lines: int = 0
    # With cells: how far a character may reach past its cell's edges, as a share of its own width and
    # height (0-0.5); what falls outside is cut off, as in captchas that draw big glyphs into fixed squares.
    cell_overflow: float = 0.0
    contrast: int = 0  # 0-255: redraw a text colour until its brightness differs this much from its background
    # Noise in colours of its own: empty is the text colour (as the library draws it); a range [lo, hi] is
    # drawn afresh for every dot or line, a fixed [r, g, b] paints them all. Dots with a colour of their own
    # are round, half to all of noise_dot_width across.
    dot_color: tuple[int, ...] = ()
    line_color: tuple[int, ...] = ()
    # Hollow characters, as outline fonts draw them: each character is drawn as its outline alone, a ring
    # outline_width pixels wide inside its edge, with this probability (0: never, 1: always).
    outline: float = 0.0
    outline_width: tuple[int, int] = (1, 2)

    def to_dict(self) -> dict:
        """Plain data; without the fields added after styles were first recorded while they are off, so
        the manifests (and fingerprints) of datasets made before them still match."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {k: v for k, v in d.items() if k not in LATER or v != LATER[k]}


# Fields added after styles were first recorded, off, as to_dict writes them.
LATER = {
    "cells": False,
    "cell_lines": 0,
    "cell_overflow": 0.0,
    "contrast": 0,
    "dot_color": [],
    "line_color": [],
    "outline": 0.0,
    "outline_width": [1, 2],
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
}

DESCRIPTIONS = {
    "default": "the captcha library's own look (images as before styles existed)",
    "clean": "upright, well spaced, no noise: the easy end",
    "heavy": "overlapping, strongly rotated glyphs under dots, curves and lines: the hard end",
    "photocopy": "gray, blurred and JPEG-compressed, like a scanned or re-encoded captcha",
    "colour": "coloured backgrounds crossed by lines, as many PHP captchas are",
}

_RANGES_INT = ("character_offset_dx", "character_offset_dy", "text_opacity", "line_width", "outline_width")
_RANGES_FLOAT = ("character_rotate", "character_warp_dx", "character_warp_dy")
_COLOURS = ("background", "text_color")
_NOISE_COLOURS = ("dot_color", "line_color")  # a colour, or empty for the text colour
_COUNTS = ("noise_dots", "noise_dot_width", "noise_curves", "lines", "contrast", "cell_lines")
_FRACTIONS = ("word_space_probability", "word_offset_dx", "outline", "cell_overflow")
_FRACTION_TOPS = {"cell_overflow": 0.5}  # past half its size outside, a character would be mostly cut off
_FLAGS = ("smooth", "grayscale", "cells")


def _fail(key: str, why: str) -> BadInput:
    return BadInput(f"style `{key}`: {why}", param="style")


def _number(key: str, value: object, integer: bool) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not math.isfinite(value):  # type: ignore[arg-type]
        raise _fail(key, f"must be {'a whole number' if integer else 'a number'}, got {value!r}")
    return value  # type: ignore[return-value]


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


def from_dict(data: dict, base: Style = DEFAULT) -> Style:
    """A checked Style: `data`'s keys over `base`. Raise BadInput naming the first bad key."""
    known = {f.name for f in fields(Style)}
    changes: dict[str, object] = {}
    for key, value in data.items():
        if key not in known:
            raise _fail(key, f"unknown setting (known: {', '.join(sorted(known))})")
        if key in _RANGES_INT or key in _RANGES_FLOAT:
            changes[key] = _pair(key, value, key in _RANGES_INT)
        elif key in _COLOURS or (key in _NOISE_COLOURS and value != []):
            changes[key] = _colour(key, value)
        elif key in _NOISE_COLOURS:
            changes[key] = ()
        elif key in _FLAGS:
            if not isinstance(value, bool):
                raise _fail(key, f"must be true or false, got {value!r}")
            changes[key] = value
        elif key in _COUNTS:
            changes[key] = int(_number(key, value, True))
        elif key in _FRACTIONS:
            changes[key] = _number(key, value, False)
            top = _FRACTION_TOPS.get(key, 1)
            if not 0 <= changes[key] <= top:  # type: ignore[operator]
                raise _fail(key, f"must be 0 to {top:g}, got {value!r}")
        elif key == "font_sizes":
            if not isinstance(value, list | tuple) or not value:
                raise _fail(key, f"must be a list of fractions of the image height, got {value!r}")
            changes[key] = tuple(_number(key, v, False) for v in value)
            if any(not 0.1 <= v <= 1.5 for v in changes[key]):  # type: ignore[union-attr]
                raise _fail(key, f"each must be 0.1 to 1.5 (fractions of the image height), got {list(value)}")
        elif key == "blur":
            changes[key] = _number(key, value, False)
        elif key == "jpeg_quality":
            changes[key] = int(_number(key, value, True))
            if not 0 <= changes[key] <= 95:  # type: ignore[operator]
                raise _fail(key, f"must be 0 (off) or 1 to 95, got {value!r}")
    style = replace(base, **changes)  # type: ignore[arg-type]
    for key in (*_COUNTS, "blur"):
        if getattr(style, key) < 0:
            raise _fail(key, f"must be 0 or more, got {getattr(style, key)}")
    for key, least in (("noise_dot_width", style.noise_dot_width), ("line_width", style.line_width[0]),
                       ("outline_width", style.outline_width[0])):  # fmt: skip
        if least < 1:
            raise _fail(key, "widths must be at least 1")
    for key in ("cell_lines", "cell_overflow"):
        if getattr(style, key) and not style.cells:
            raise _fail(key, "applies to the cells of the `cells` layout: set cells = true too")
    if style.contrast > 255:
        raise _fail("contrast", f"must be 0 to 255 (a difference in brightness), got {style.contrast}")
    if style.text_opacity[0] < 0 or style.text_opacity[1] > 255:
        raise _fail("text_opacity", f"must be within 0 to 255, got {list(style.text_opacity)}")
    return style


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
        if base not in PRESETS:
            raise _fail("base", f"must be a preset ({', '.join(PRESETS)}), got {base!r}")
        return path.stem, from_dict(data, PRESETS[base])
    except BadInput as e:
        raise BadInput(f"style file {path}: {e}", param="style") from None
