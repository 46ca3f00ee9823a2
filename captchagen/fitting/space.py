"""The style space a fit searches: a point (numbers in [0, 1] and a choice per option) turned into a Style.

Each knob maps a number in [0, 1] onto a field's range (or a pair of fields); each choice picks one of a
few options. The mapping covers what sites' captchas vary in: size, rotation, warp, overlap, placement,
colours of text and background, noise, lines, blur, JPEG, layout, backdrop, cells, outlines and bends,
shadows, bitmap glyphs, a colour per character, fish-eye and inverted bands.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from captchagen.style import DEFAULT, Style

# name: what it sets (the mapping is in to_style)
KNOBS = (
    "font_size",  # middle font size, 0.45 to 1.05 of the height
    "rotate",  # character rotation, +-0 to 45 degrees
    "warp",  # character warp, 0 to 0.4
    "overlap",  # word_offset_dx, 0 to 0.45
    "spacing",  # word_space_probability
    "jitter",  # vertical offset of each character, 0 to 16 px
    "background_r",  # a fixed background colour (with colours "fixed"), 0 to 255 a channel
    "background_g",
    "background_b",
    "text_r",  # a fixed text colour
    "text_g",
    "text_b",
    "background",  # background brightness (a level, 0 to 255; with colours "ranges")
    "background_spread",  # how far background channels vary, 0 to 90 (a tint)
    "text",  # text brightness
    "text_spread",  # how far text channels vary, 0 to 200 (colourful text)
    "opacity",  # text_opacity's low end, 150 to 255
    "dots",  # noise dots, 0 to 150
    "dot_width",  # 1 to 5 px
    "curves",  # noise curves, 0 to 4
    "lines",  # lines across, 0 to 6
    "line_width",  # 1 to 5 px
    "blur",  # 0 to 1.5 px
    "jpeg",  # JPEG quality 15 to 95 when `jpeg` is chosen
    "wave",  # 0 to 0.15
    "arc",  # 0 to 0.2
    "perspective",  # 0 to 0.15
    "outline",  # chance of hollow glyphs
    "shadow",  # chance of a shadow under a glyph
    "shadow_offset",  # 1 to 5 px
    "fisheye",  # 0 to 0.45
    "invert",  # an inverted band, 0 to 0.5 of the width (below 0.1: none)
)
CHOICES = {
    "layout": ("glyphs", "word", "cells"),
    "backdrop": ("flat", "gradient", "grid", "speckle", "dots"),
    "glyph_blocks": ("smooth", "pixel-2", "pixel-3"),  # bitmap glyphs: drawn in blocks of 2 or 3 pixels
    "char_colours": ("one", "each"),  # one text colour per image, or one per character
    "smooth": ("on", "off"),
    "grayscale": ("off", "on"),
    "encode": ("png", "jpeg"),
    "noise_colour": ("text", "own"),  # dots and lines in the text colour, or colours of their own
    # One background colour and one text colour for every image, or each channel drawn from a range.
    "background_colour": ("fixed", "ranges"),
    "text_colour": ("fixed", "ranges"),
}


@dataclass(frozen=True)
class Point:
    knobs: tuple[float, ...]  # one per KNOBS, each in [0, 1]
    choices: tuple[int, ...]  # one index per CHOICES


def _lerp(t: float, lo: float, hi: float) -> float:
    return lo + min(max(t, 0.0), 1.0) * (hi - lo)


def _level(centre: float, spread: float) -> tuple[int, int]:
    lo, hi = round(centre - spread / 2), round(centre + spread / 2)
    shift = max(0, -lo) - max(0, hi - 255)
    return max(0, lo + shift), min(255, hi + shift)


def to_style(point: Point) -> Style:
    """The Style at `point`: a fixed style (no randomize) within every field's checked range."""
    k = dict(zip(KNOBS, point.knobs, strict=True))
    c = {name: options[i] for (name, options), i in zip(CHOICES.items(), point.choices, strict=True)}
    size = _lerp(k["font_size"], 0.45, 1.05)
    rotate = round(_lerp(k["rotate"], 0, 45), 1)
    warp = round(_lerp(k["warp"], 0, 0.4), 3)
    jpeg = round(_lerp(k["jpeg"], 15, 95)) if c["encode"] == "jpeg" else 0
    own = (0, 255) if c["noise_colour"] == "own" else ()
    cells = c["layout"] == "cells"
    return replace(
        DEFAULT,
        font_sizes=tuple(round(min(max(size + d, 0.1), 1.5), 3) for d in (-0.06, 0.0, 0.06)),
        character_offset_dx=(0, 4),
        character_offset_dy=(0, round(_lerp(k["jitter"], 0, 16))),
        character_rotate=(-rotate, rotate),
        character_warp_dx=(round(warp / 2, 3), warp),
        character_warp_dy=(round(warp / 2, 3), warp),
        word_space_probability=round(_lerp(k["spacing"], 0, 1), 3),
        word_offset_dx=round(_lerp(k["overlap"], 0, 0.45), 3),
        background=_level(_lerp(k["background"], 0, 255), _lerp(k["background_spread"], 0, 90))
        if c["background_colour"] == "ranges"
        else tuple(round(_lerp(k[f"background_{x}"], 0, 255)) for x in "rgb"),
        text_color=_level(_lerp(k["text"], 0, 255), _lerp(k["text_spread"], 0, 200))
        if c["text_colour"] == "ranges"
        else tuple(round(_lerp(k[f"text_{x}"], 0, 255)) for x in "rgb"),
        text_opacity=(round(_lerp(k["opacity"], 150, 255)), 255),
        noise_dots=round(_lerp(k["dots"], 0, 150)),
        noise_dot_width=round(_lerp(k["dot_width"], 1, 5)),
        noise_curves=round(_lerp(k["curves"], 0, 4)),
        smooth=c["smooth"] == "on",
        lines=round(_lerp(k["lines"], 0, 6)),
        line_width=(1, round(_lerp(k["line_width"], 1, 5))),
        blur=round(_lerp(k["blur"], 0, 1.5), 2),
        grayscale=c["grayscale"] == "on",
        jpeg_quality=jpeg,
        cells=cells,
        contrast=60,
        contrast_as_pasted=True,
        dot_color=own,
        line_color=own,
        outline=round(_lerp(k["outline"], 0, 1), 2),
        layout="word" if c["layout"] == "word" else "glyphs",
        wave=round(_lerp(k["wave"], 0, 0.15), 3),
        backdrop=c["backdrop"] if not cells else "flat",
        arc=round(_lerp(k["arc"], 0, 0.2), 3),
        perspective=round(_lerp(k["perspective"], 0, 0.15), 3),
        shadow=round(_lerp(k["shadow"], 0, 1), 2),
        shadow_offset=(1, round(_lerp(k["shadow_offset"], 1, 5))),
        pixelate={"smooth": 0, "pixel-2": 2, "pixel-3": 3}[c["glyph_blocks"]],
        char_colors=c["char_colours"] == "each",
        fisheye=round(_lerp(k["fisheye"], 0, 0.45), 3),
        invert=invert if (invert := round(_lerp(k["invert"], 0, 0.5), 3)) >= 0.1 else 0.0,
    )
