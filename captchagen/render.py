"""Seeded captcha rendering: each image is a pure function of (settings, seed, index).

captcha 0.7 draws all of its randomness from the `secrets` module, so seeding `random` changes nothing.
While an image is rendered we put a stand-in for `secrets` into `captcha.image`, backed by a
`random.Random` seeded from the dataset seed and the image index. Every image is then reproducible on its
own, whichever worker renders it and however often a run was interrupted. The swap touches a module
global, so one process renders one image at a time (we render in processes, not threads).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import captcha
import captcha.image
import numpy as np
from captcha.image import ImageCaptcha
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from PIL.ImageFont import FreeTypeFont, truetype

from captchagen import arithmetic
from captchagen.config import Resolved
from captchagen.style import Style, draw_style

_swap_lock = threading.Lock()


class SeededSecrets:
    """The part of the `secrets` API that captcha.image calls, drawing from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def randbelow(self, exclusive_upper_bound: int) -> int:
        return self._rng.randrange(exclusive_upper_bound)

    def randbits(self, k: int) -> int:
        return self._rng.getrandbits(k)

    def choice(self, seq: Sequence):  # same signature as secrets.choice
        return self._rng.choice(seq)

    def getstate(self) -> object:  # not in `secrets`: for a look ahead that may be taken back
        return self._rng.getstate()

    def setstate(self, state: object) -> None:
        self._rng.setstate(state)  # type: ignore[arg-type]


@contextmanager
def seeded_captcha(rng: random.Random) -> Iterator[None]:
    """Make captcha.image draw from `rng` for the duration of the block."""
    if not hasattr(captcha.image, "secrets"):
        raise RuntimeError(
            f"captcha {getattr(captcha, '__version__', '?')} does not draw from `secrets`; "
            "captchagen supports captcha 0.7.x (see constraints.txt)"
        )
    with _swap_lock:
        saved = captcha.image.secrets
        captcha.image.secrets = SeededSecrets(rng)  # type: ignore[assignment]
        try:
            yield
        finally:
            captcha.image.secrets = saved


def image_rng(seed: int, index: int) -> random.Random:
    """The generator for one image, derived from the dataset seed and the image's index."""
    digest = hashlib.blake2b(f"captchagen:{seed}:{index}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


def sample_label(rng: random.Random, chars: str, min_len: int, max_len: int) -> str:
    """Length uniform over [min_len, max_len], each character uniform over `chars`."""
    return "".join(rng.choice(chars) for _ in range(rng.randint(min_len, max_len)))


def _draw(bound: int) -> int:
    """A draw from whatever `secrets` captcha.image holds now (our seeded stand-in while rendering)."""
    return captcha.image.secrets.randbelow(bound)


OUTLINE_STEPS = 1_000_000  # an `outline` probability is honoured to this resolution
CONTRAST_TRIES = 20  # text colours drawn at most, per colour, to meet a style's `contrast`


def _luma(rgb: tuple[int, ...]) -> float:
    """Brightness 0-255 as PIL's grayscale conversion weighs the channels."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _pasted_luma(ink: tuple[int, ...], background: tuple[int, ...]) -> float:
    """The brightness of `ink` as the library pastes it on `background`: through a mask of its own brightness
    scaled by 1.97 (ImageCaptcha.lookup_table), so dark ink is mostly background."""
    share = min(1.0, 1.97 * _luma(ink) / 255)
    return share * _luma(ink) + (1 - share) * _luma(background)


def _colour(spec: tuple[int, ...], opacity: int | None = None) -> tuple[int, ...]:
    """A fixed [r, g, b], or each channel drawn from [lo, hi] in the library's own order."""
    rgb: tuple[int, ...]
    if len(spec) == 3:
        rgb = spec
    else:
        rgb = captcha.image.random_color(spec[0], spec[1])
    return (*rgb, opacity) if opacity is not None else tuple(rgb)


def hollow(glyph: Image.Image, width: int) -> Image.Image:
    """An RGBA glyph reduced to its outline: the pixels within `width` of its edge keep their opacity, those
    deeper inside (the glyph's solid part, alpha at least half, eroded by `width`) become transparent. They
    turn black too, as the glyph's background is: the library pastes a glyph through a mask made from its
    brightness, not its alpha."""
    alpha = glyph.getchannel("A")
    solid = alpha.point(lambda v: 255 if v >= 128 else 0)
    ring = ImageChops.subtract(alpha, solid.filter(ImageFilter.MinFilter(2 * width + 1)))
    out = Image.composite(glyph, Image.new("RGBA", glyph.size), ring.point(lambda v: 255 if v else 0))
    out.putalpha(ring)
    return out


def pixelated(glyph: Image.Image, block: int) -> Image.Image:
    """`glyph` drawn in blocks of `block` pixels (averaged down, enlarged back without smoothing), as bitmap
    fonts look."""
    w, h = glyph.size
    small = glyph.resize((max(1, math.ceil(w / block)), max(1, math.ceil(h / block))), Image.Resampling.BOX)
    return small.resize((w, h), Image.Resampling.NEAREST)


def shadowed(glyph: Image.Image, offset: int, color: tuple[int, ...], shape: Image.Image | None = None) -> Image.Image:
    """An RGBA `glyph` over a solid copy of its shape (or of `shape`: the glyph before it was hollowed)
    `offset` pixels right and down, in half its colour's brightness: the image grows by `offset` each way."""
    w, h = glyph.size
    out = Image.new("RGBA", (w + offset, h + offset), (0, 0, 0, 0))
    shade = tuple(v // 2 for v in color[:3]) + (255,)
    out.paste(Image.new("RGBA", (w, h), shade), (offset, offset), (shape or glyph).getchannel("A"))
    out.alpha_composite(glyph)
    return out


@functools.lru_cache(maxsize=512)
def _truetype(path: str, size: int) -> FreeTypeFont:
    """A font at a size, loaded when first drawn with and kept for the next images (up to 512 of them: a
    font pack's 400 fonts at every size the `random` style draws would hold gigabytes)."""
    return truetype(path, size)


class LazyFonts(Sequence):
    """The library's `truefonts` list (every font at every size, font by font) as a sequence that loads a
    font only when it is picked. The library picks with `secrets.choice`, which needs only the length and
    an index, so the draws and the bytes are the same as with the loaded list."""

    def __init__(self, fonts: Sequence[str], sizes: Sequence[int]) -> None:
        self.fonts, self.sizes = list(fonts), list(sizes)

    def __len__(self) -> int:
        return len(self.fonts) * len(self.sizes)

    def __getitem__(self, i):  # an int (what choice asks); Sequence's own methods only ask for ints too
        if not 0 <= i < len(self):
            raise IndexError(i)
        return _truetype(self.fonts[i // len(self.sizes)], self.sizes[i % len(self.sizes)])


class MaskTable(Image.ImagePointHandler):
    """The library's mask table (ImageCaptcha.lookup_table) applied as `Image.point` applies the list, less
    the work `point` redoes on every call: it rounds all 256 entries again for each glyph (a tenth of an
    image's drawing). Same table, same C call, same bytes."""

    def __init__(self, table: Sequence[float]) -> None:
        self.table = [round(v) for v in table]

    def point(self, im: Image.Image) -> Image.Image:
        return im._new(im.im.point(self.table, None))


FONT_FACTS = 1 << 16  # entries _font_fact keeps before it starts again
_font_facts: dict[tuple, object] = {}
_UNKNOWN = object()


def _font_fact(font: FreeTypeFont, what: str, text: str, fontmode: str = "L"):
    """`what` of `text` in `font`, kept by the font's file, face and size (never the font object, so fonts
    `_truetype` lets go of are freed): "box", `ImageDraw.multiline_textbbox((1, 1), text, font)` on a canvas
    drawing text in `fontmode`; "blank", whether `text` leaves no ink. Each depends on nothing else, and the
    library asks for the box of every glyph it draws (FreeType lays the glyph out for it)."""
    path = getattr(font, "path", None)
    key = (path, font.size, font.index, what, text, fontmode)
    known = _font_facts.get(key, _UNKNOWN) if isinstance(path, str) else _UNKNOWN  # one lookup, beside a clear()
    if known is not _UNKNOWN:
        return known
    if what == "box":
        fact: object = ImageDraw.Draw(Image.new(fontmode, (1, 1))).multiline_textbbox((1, 1), text, font=font)
    else:
        fact = font.getmask(text).getbbox() is None
    if isinstance(path, str):
        if len(_font_facts) >= FONT_FACTS:
            _font_facts.clear()
        _font_facts[key] = fact
    return fact


class _MeasuringCanvas:
    """The canvas's ImageDraw as the library's `_draw_character` uses it (to measure one character in a
    font), answered from `_font_fact`."""

    def __init__(self, draw: ImageDraw.ImageDraw) -> None:
        self._draw = draw

    def multiline_textbbox(self, xy, text, font=None, **kwargs):  # the library's one call: (1, 1), text, font
        if tuple(xy) != (1, 1) or kwargs or not isinstance(font, FreeTypeFont) or not isinstance(text, str):
            return self._draw.multiline_textbbox(xy, text, font=font, **kwargs)
        return _font_fact(font, "box", text, "1" if self._draw.fontmode == "1" else "L")


class StyledCaptcha(ImageCaptcha):
    """ImageCaptcha with every drawing choice taken from a Style. With the default style it draws exactly
    what ImageCaptcha.generate_image draws, random number for random number; post-effects draw after."""

    @property
    def truefonts(self) -> LazyFonts:  # type: ignore[override]
        return LazyFonts(self._fonts, self._font_sizes)

    def __init__(self, width: int, height: int, fonts: list[str], style: Style) -> None:
        super().__init__(width, height, fonts=fonts, font_sizes=tuple(round(height * r) for r in style.font_sizes))
        self.style = style
        # The library reads these as attributes of self: instance values override its class defaults.
        self.character_offset_dx = style.character_offset_dx
        self.character_offset_dy = style.character_offset_dy
        self.character_rotate = style.character_rotate  # type: ignore[assignment]
        self.character_warp_dx = style.character_warp_dx
        self.character_warp_dy = style.character_warp_dy
        self.word_space_probability = style.word_space_probability
        self.word_offset_dx = style.word_offset_dx
        self.lookup_table = MaskTable(ImageCaptcha.lookup_table)  # type: ignore[assignment]

    def generate_image(self, chars: str, bg_color=None, fg_color=None) -> Image.Image:
        """The image of `chars`; given colours override the style's, as in ImageCaptcha."""
        s = self.style
        background = bg_color or _colour(s.background)
        self._background = background  # what char_colors draws each character's colour against
        lo, hi = s.text_opacity
        color = self._ink(background, _draw(hi - lo + 1) + lo)  # drawn even when given, as the library does
        color = fg_color or color
        if s.cells:
            im = self._cells(chars, color[3] if len(color) > 3 else 255)
        elif s.layout == "word":
            im = self._word(chars, color, self._backdrop(background))
        elif s.backdrop != "flat":
            with self._drawing_on(self._backdrop(background)):
                im = self.create_captcha_image(chars, color, background)  # type: ignore[arg-type]
        else:
            im = self.create_captcha_image(chars, color, background)  # type: ignore[arg-type]
        if s.noise_dots and not s.dot_color:
            self.create_noise_dots(im, color, width=s.noise_dot_width, number=s.noise_dots)  # type: ignore[arg-type]
        if s.noise_dots and s.dot_color:
            self._round_dots(im)
        for _ in range(s.noise_curves):
            self.create_noise_curve(im, color)  # type: ignore[arg-type]
        if s.smooth:
            im = im.filter(ImageFilter.SMOOTH)
        return self._post_effects(im, color)

    def _backdrop(self, background: tuple[int, ...]) -> Image.Image:
        """The style's backdrop at the image size: flat `background`; a gradient from it to a second colour
        of the background range, across or down; a grid of lines darker than it; or speckle (each pixel's
        brightness jittered by up to 10-40 levels)."""
        s = self.style
        w, h = self._width, self._height
        im = Image.new("RGB", (w, h), background[:3])
        if s.backdrop == "gradient":
            other = np.asarray(_colour(s.background)[:3], dtype=np.float32)
            across = bool(_draw(2))
            t = np.linspace(0, 1, w if across else h, dtype=np.float32)
            t = t[None, :, None] if across else t[:, None, None]
            base = np.asarray(background[:3], dtype=np.float32)
            im = Image.fromarray(np.broadcast_to(base + t * (other - base), (h, w, 3)).astype(np.uint8))
        elif s.backdrop == "grid":
            step = 6 + _draw(11)
            line = tuple(int(0.8 * v) for v in background[:3])
            draw = ImageDraw.Draw(im)
            for x in range(_draw(step), w, step):
                draw.line(((x, 0), (x, h)), fill=line)
            for y in range(_draw(step), h, step):
                draw.line(((0, y), (w, y)), fill=line)
        elif s.backdrop == "speckle":
            noise = np.random.default_rng(_draw(2**31)).integers(-1, 2, (h, w, 1)) * (10 + _draw(31))
            im = Image.fromarray(np.clip(np.asarray(im, dtype=np.int16) + noise, 0, 255).astype(np.uint8))
        elif s.backdrop == "dots":  # a regular pattern of dots, darker than the background
            step, r = 5 + _draw(8), 1 + _draw(2) / 2
            dot = tuple(int(0.7 * v) for v in background[:3])
            draw = ImageDraw.Draw(im)
            x0, y0 = _draw(step), _draw(step)
            for row, y in enumerate(range(y0, h, step)):  # every other row moved by half a step
                for x in range(x0 + (row % 2) * (step // 2), w, step):
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=dot)
        return im

    @contextmanager
    def _drawing_on(self, backdrop: Image.Image) -> Iterator[None]:
        """The library's create_captcha_image, drawing on `backdrop` instead of a flat image: its one call
        that makes the RGB canvas gets the backdrop (the glyphs' own RGBA images are made as before)."""
        make = captcha.image.createImage
        size = (self._width, self._height)

        def canvas(mode: str, at: tuple[int, int], *args):
            return backdrop.copy() if (mode, tuple(at)) == ("RGB", size) else make(mode, at, *args)

        captcha.image.createImage = canvas  # type: ignore[assignment]  # the render lock is held (seeded_captcha): one image at a time
        try:
            yield
        finally:
            captcha.image.createImage = make

    def _word(self, chars: str, color: tuple[int, ...], im: Image.Image) -> Image.Image:
        """The `word` layout: the whole label in one font, drawn on one baseline as a font spaces it, turned
        by a third of a character rotation, shrunk to fit if need be, and placed at random on `im`."""
        s = self.style
        w, h = im.size
        font = captcha.image.secrets.choice(self.truefonts)
        left, top, right, bottom = ImageDraw.Draw(Image.new("RGBA", (1, 1))).textbbox((0, 0), chars, font=font)
        layer = Image.new("RGBA", (int(right - left) + 4, int(bottom - top) + 4))  # ints already: typed float
        ImageDraw.Draw(layer).text((2 - left, 2 - top), chars, font=font, fill=tuple(color))
        lo, hi = s.character_rotate
        layer = layer.rotate((lo + _draw(1001) / 1000 * (hi - lo)) / 3, Image.Resampling.BILINEAR, expand=True)
        fit = min(1.0, 0.95 * w / layer.width, 0.95 * h / layer.height)
        if fit < 1:
            layer = layer.resize(
                (max(1, int(layer.width * fit)), max(1, int(layer.height * fit))), Image.Resampling.BILINEAR
            )
        im.paste(layer, (_draw(w - layer.width + 1), _draw(h - layer.height + 1)), layer.getchannel("A"))
        return im

    def _draw_character(self, c: str, draw: ImageDraw.ImageDraw, color: tuple[int, ...]) -> Image.Image:
        """The library's glyph (font, offsets, rotation, warp), in a colour of its own with `char_colors`,
        in blocks with `pixelate`, hollowed with the style's `outline` probability, over a shadow with the
        `shadow` probability. No random number is drawn for a look that is off, so other styles keep their
        bytes."""
        s = self.style
        if s.char_colors and not s.cells:
            color = self._ink(self._background, color[3] if len(color) > 3 else 255)
        canvas = _MeasuringCanvas(draw)
        glyph = self._blank_glyph(c, canvas)
        if glyph is None:
            glyph = super()._draw_character(c, canvas, color)  # type: ignore[arg-type]
        if s.pixelate > 1:
            glyph = pixelated(glyph, s.pixelate)
        solid = glyph
        if s.outline and _draw(OUTLINE_STEPS) < s.outline * OUTLINE_STEPS:
            lo, hi = s.outline_width
            glyph = hollow(glyph, lo + _draw(hi - lo + 1))
        if s.shadow and _draw(OUTLINE_STEPS) < s.shadow * OUTLINE_STEPS:
            lo, hi = s.shadow_offset
            glyph = shadowed(glyph, lo + _draw(hi - lo + 1), color, solid)
        return glyph

    def _blank_glyph(self, c: str, canvas: _MeasuringCanvas) -> Image.Image | None:
        """What the library's `_draw_character` returns for a character that leaves no ink in the font it
        picks (the spaces it puts between a third of the glyphs it draws): a transparent image of the
        character's text box, from the same random draws, without drawing, turning, resizing or warping
        anything. None, with no random number drawn, where the character has ink in that font."""
        secrets = captcha.image.secrets
        if c != " " or not isinstance(secrets, SeededSecrets):
            return None
        state = secrets.getstate()
        font = secrets.choice(self.truefonts)
        _, _, w, h = canvas.multiline_textbbox((1, 1), c, font=font)
        if not isinstance(font, FreeTypeFont) or not _font_fact(font, "blank", c) or int(w) < 1 or int(h) < 1:
            secrets.setstate(state)  # the library draws this one, from the same numbers
            return None
        for lo, hi in (self.character_offset_dx, self.character_offset_dy):
            secrets.randbelow(hi - lo + 1)  # the glyph's offsets in its box
        for _ in range(7):
            secrets.randbits(32)  # its rotation, the warp's extent across and down, and its four corners
        return Image.new("RGBA", (int(w), int(h)))

    def _ink(self, background: tuple[int, ...], opacity: int) -> tuple[int, ...]:
        """A text colour (with `opacity`) for `background`: redrawn, at most CONTRAST_TRIES times, until
        its brightness differs from the background's by the style's `contrast` (never, when that is 0)."""
        s = self.style
        # Cells and the word layout paste their text through its alpha; the library, through its brightness.
        pasted = s.contrast_as_pasted and not s.cells and s.layout != "word"
        ink = _colour(s.text_color)
        for _ in range(CONTRAST_TRIES - 1):
            seen = _pasted_luma(ink, background) if pasted else _luma(ink)
            if abs(seen - _luma(background)) >= s.contrast:
                break
            ink = _colour(s.text_color)
        return (*ink, opacity)

    def _round_dots(self, im: Image.Image) -> None:
        """The style's noise dots as discs, each in a colour drawn from `dot_color` and between half and
        all of `noise_dot_width` across (the library's dots are short strokes of the text colour)."""
        s = self.style
        w, h = im.size
        draw = ImageDraw.Draw(im)
        small = max(1, s.noise_dot_width // 2)
        for _ in range(s.noise_dots):
            x, y = _draw(w + 1), _draw(h + 1)
            r = (small + _draw(s.noise_dot_width - small + 1)) / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_colour(s.dot_color))

    def _cells(self, chars: str, opacity: int) -> Image.Image:
        """The `cells` layout: the width split into a cell per character, each filled with its own
        background colour and holding its character (drawn, rotated and warped as the library does, in
        its own text colour), shrunk to fit the cell if need be and placed at random within it (or
        reaching past it by up to `cell_overflow` of its size, cut off at the cell's edges)."""
        s = self.style
        w, h = self._width, self._height
        im = Image.new("RGB", (w, h))
        draw = ImageDraw.Draw(im)
        edges = [round(i * w / len(chars)) for i in range(len(chars) + 1)]
        for c, left, right in zip(chars, edges, edges[1:], strict=False):
            cell = _colour(s.background)
            draw.rectangle((left, 0, right - 1, h - 1), fill=cell)
            ink = self._ink(cell, opacity)
            glyph = self._draw_character(c, draw, ink)
            fit = min(1.0, (right - left) / glyph.width, h / glyph.height)
            if fit < 1:
                size = (max(1, int(glyph.width * fit)), max(1, int(glyph.height * fit)))
                glyph = glyph.resize(size, Image.Resampling.BILINEAR)
            # Placed at random so that up to `cell_overflow` of it may fall past the cell, and cut off there
            # (with 0, the same draws place it wholly inside).
            ox, oy = int(glyph.width * s.cell_overflow), int(glyph.height * s.cell_overflow)
            x = left - ox + _draw(right - left - glyph.width + 2 * ox + 1)
            y = -oy + _draw(h - glyph.height + 2 * oy + 1)
            box = im.crop((left, 0, right, h))
            box.paste(glyph, (x - left, y), glyph.getchannel("A"))
            im.paste(box, (left, 0))
            for _ in range(s.cell_lines):
                self._cell_line(draw, (left, right, h), ink)
        return im

    def _cell_line(self, draw: ImageDraw.ImageDraw, cell: tuple[int, int, int], ink: tuple[int, ...]) -> None:
        """A line from one random point of a cell to another, in the cell's text colour."""
        left, right, h = cell
        ends = [(left + _draw(right - left), _draw(h)) for _ in range(2)]
        draw.line(ends, fill=ink[:3], width=self._line_width())

    def _line_width(self) -> int:
        lo, hi = self.style.line_width
        return lo + _draw(hi - lo + 1)

    def _wave(self, im: Image.Image) -> Image.Image:
        """Each column shifted up or down along a sine of amplitude `wave` x height, with a period of one to
        three heights and a random phase; the rows shifted in past an edge repeat the edge row."""
        w, h = im.size
        period = h * (1 + _draw(2001) / 1000)
        phase = _draw(1000) / 1000 * 2 * math.pi
        shift = np.round(self.style.wave * h * np.sin(2 * math.pi * np.arange(w) / period + phase)).astype(int)
        rows = np.clip(np.arange(h)[:, None] - shift[None, :], 0, h - 1)  # [h, w]: the source row of each pixel
        arr = np.asarray(im)
        return Image.fromarray(arr[rows, np.arange(w)[None, :]])

    def _arc(self, im: Image.Image) -> Image.Image:
        """Columns shifted along a parabola, so the text follows an arc: the middle raised (or, half the
        time, lowered) by `arc` x height against the two ends; rows shifted in repeat the edge row."""
        w, h = im.size
        sign = 1 if _draw(2) else -1
        x = np.linspace(-1, 1, w)
        shift = np.round(sign * self.style.arc * h * (1 - x * x) - sign * self.style.arc * h / 2).astype(int)
        rows = np.clip(np.arange(h)[:, None] + shift[None, :], 0, h - 1)  # [h, w]
        return Image.fromarray(np.asarray(im)[rows, np.arange(w)[None, :]])

    def _perspective(self, im: Image.Image) -> Image.Image:
        """The image seen at an angle: each corner moved inwards or outwards by up to `perspective` of the
        width and height, the uncovered edges filled with the edge pixels' colours (the corner's)."""
        w, h = im.size
        p = self.style.perspective

        def jitter(size: int) -> float:
            return (_draw(2001) / 1000 - 1) * p * size

        corners = [(0, 0), (w, 0), (w, h), (0, h)]
        moved = [(x + jitter(w), y + jitter(h)) for x, y in corners]
        # The coefficients map each output pixel to where it is read in the input (PIL's PERSPECTIVE).
        a = []
        for (x, y), (u, v) in zip(corners, moved, strict=True):
            a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
            a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b = np.array([c for uv in moved for c in uv], dtype=np.float64)
        coeffs = np.linalg.solve(np.array(a, dtype=np.float64), b)
        fill = im.getpixel((0, 0))
        return im.transform(
            (w, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BILINEAR, fillcolor=fill
        )

    def _fisheye(self, im: Image.Image) -> Image.Image:
        """A lens over a point near the middle: each pixel read from nearer that point the nearer it is,
        by up to `fisheye` of the distance (the middle magnified, the edges as they were)."""
        w, h = im.size
        cx, cy = w * (0.35 + 0.3 * _draw(1001) / 1000), h * (0.35 + 0.3 * _draw(1001) / 1000)
        radius = math.hypot(max(cx, w - cx), max(cy, h - cy))
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        dx, dy = x - cx, y - cy
        scale = 1 - self.style.fisheye * (1 - np.clip(np.hypot(dx, dy) / radius, 0, 1) ** 2)
        sx = np.clip(np.round(cx + dx * scale), 0, w - 1).astype(int)
        sy = np.clip(np.round(cy + dy * scale), 0, h - 1).astype(int)
        return Image.fromarray(np.asarray(im)[sy, sx])

    def _invert(self, im: Image.Image) -> Image.Image:
        """A band across the full height, `invert` of the width, at a random place, in inverted colours."""
        w, h = im.size
        band = max(1, round(self.style.invert * w))
        left = _draw(w - band + 1)
        arr = np.array(im)
        arr[:, left : left + band] = 255 - arr[:, left : left + band]
        return Image.fromarray(arr)

    def _post_effects(self, im: Image.Image, color: tuple[int, ...]) -> Image.Image:
        s = self.style
        w, h = im.size
        draw = ImageDraw.Draw(im)
        for _ in range(s.lines):
            start = (_draw(w // 4 + 1), _draw(h + 1))
            end = (w - 1 - _draw(w // 4 + 1), _draw(h + 1))
            fill = _colour(s.line_color) if s.line_color else color[:3]
            draw.line((start, end), fill=fill, width=self._line_width())
        if s.wave > 0:
            im = self._wave(im)
        if s.arc > 0:
            im = self._arc(im)
        if s.perspective > 0:
            im = self._perspective(im)
        if s.fisheye > 0:
            im = self._fisheye(im)
        if s.invert > 0:
            im = self._invert(im)
        if s.blur > 0:
            im = im.filter(ImageFilter.GaussianBlur(s.blur))
        if s.grayscale:
            im = im.convert("L")
        if s.jpeg_quality:
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=s.jpeg_quality)
            im = Image.open(io.BytesIO(buf.getvalue()))
            im.load()
        return im


class Renderer:
    """Renders images of one dataset. Fonts are loaded once, so keep one Renderer per process."""

    def __init__(self, resolved: Resolved) -> None:
        c = resolved.config
        self.config = c
        self.chars = resolved.alphabet.chars
        self.captcha = StyledCaptcha(c.width, c.height, resolved.font_paths, c.style)

    def label(self, index: int) -> tuple[random.Random, str]:
        """The image's generator (positioned after the label draws) and its label."""
        rng = image_rng(self.config.seed, index)
        if self.config.arithmetic:
            return rng, arithmetic.sample(rng, self.config.arithmetic)
        return rng, sample_label(rng, self.chars, self.config.min_len, self.config.max_len)

    def render(self, rng: random.Random, label: str) -> bytes:
        """PNG bytes of `label`, drawn with the randomness of `rng` (which first draws the image's own style,
        under `randomize`)."""
        drawer = self.captcha
        if self.config.style.randomize:
            c = self.config
            drawn = draw_style(rng, c.style.readable, c.style.wider)
            drawer = StyledCaptcha(c.width, c.height, drawer._fonts, drawn)
        with seeded_captcha(rng):
            image = drawer.generate_image(label)
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=self.config.png_compression)
        return buf.getvalue()

    def image(self, index: int) -> tuple[str, bytes]:
        """Label and PNG bytes of image `index`."""
        rng, label = self.label(index)
        return label, self.render(rng, label)
