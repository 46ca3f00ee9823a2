"""The generation config (every setting that decides the images) and its validation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from captchagen import arithmetic, codec, fontpacks
from captchagen.alphabet import PRESETS, Alphabet, describe_char
from captchagen.errors import BadInput
from captchagen.fonts import REQUIRED_EXTRA, FontInfo, bundled_fonts, check_coverage, font_files, load_font
from captchagen.style import DEFAULT, Style

MIN_WIDTH = 24
MIN_HEIGHT = 20  # below this the smallest font size is too small for FreeType to draw a glyph
MAX_SIDE = 4096


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that decides the bytes of a dataset's images (the output folder and workers do not)."""

    n: int = 10_000
    alphabet: str = PRESETS["upper"]
    min_len: int = 1
    max_len: int = 10
    width: int = 320
    height: int = 64
    fonts: tuple[str, ...] = ()  # font file paths; empty means the bundled fonts (unless a font pack is given)
    font_pack: str | None = None  # a pack of captchagen.fontpacks, drawn with beside `fonts`
    seed: int = 0
    shard_size: int = 10_000
    png_compression: int = 1
    style: Style = DEFAULT  # how the images look: captchagen.style
    arithmetic: str = ""  # operators: labels are expressions (`7+12=?`, captchagen.arithmetic); "" = random labels

    @property
    def font_sizes(self) -> tuple[int, ...]:
        return tuple(round(self.height * r) for r in self.style.font_sizes)

    @property
    def num_shards(self) -> int:
        return math.ceil(self.n / self.shard_size)

    @property
    def index_width(self) -> int:
        """Digits of the zero-padded image index in file names."""
        return max(6, len(str(self.n - 1)))

    def shard_range(self, shard: int) -> range:
        start = shard * self.shard_size
        return range(start, min(self.n, start + self.shard_size))


@dataclass(frozen=True)
class Resolved:
    """A validated config with its alphabet object and checked fonts."""

    config: GenerationConfig
    alphabet: Alphabet
    fonts: tuple[FontInfo, ...] = field(default=())
    left_out: tuple[str, ...] = ()  # fonts of the pack left out, with why: one line each, to tell the user

    @property
    def font_paths(self) -> list[str]:
        return [str(f.path) for f in self.fonts]

    def identity(self) -> dict:
        """The settings as written to the manifest: fonts by name and content hash, not by path."""
        d = asdict(self.config)
        d["fonts"] = [{"file": f.name, "sha256": f.sha256} for f in self.fonts]
        d["font_sizes"] = list(self.config.font_sizes)
        d["style"] = self.config.style.to_dict()
        if d["font_pack"] is None:  # added later: datasets made before packs keep their fingerprint
            del d["font_pack"]
        if not d["arithmetic"]:  # the same for arithmetic labels
            del d["arithmetic"]
        return d


def resolve(config: GenerationConfig) -> Resolved:
    """Check every setting; raise BadInput naming the first bad one. Reads font files, writes nothing.
    With `arithmetic`, the alphabet and the label lengths are the expressions' (left at their defaults, or
    given as exactly those)."""
    c = _with_arithmetic(config) if config.arithmetic else config
    if c.n < 1:
        raise BadInput(f"`n` must be at least 1, got {c.n}", param="n")
    if c.min_len < 1:
        raise BadInput(f"`min_len` must be at least 1, got {c.min_len}", param="min_len")
    if c.min_len > c.max_len:
        raise BadInput(f"`min_len` ({c.min_len}) is above `max_len` ({c.max_len})", param="min_len")
    if c.shard_size < 1:
        raise BadInput(f"`shard_size` must be at least 1, got {c.shard_size}", param="shard_size")
    if not 0 <= c.png_compression <= 9:
        raise BadInput(f"`png_compression` must be 0 to 9, got {c.png_compression}", param="png_compression")
    if c.seed < 0:
        raise BadInput(f"`seed` must be 0 or more, got {c.seed}", param="seed")
    if not (MIN_WIDTH <= c.width <= MAX_SIDE and MIN_HEIGHT <= c.height <= MAX_SIDE):
        raise BadInput(
            f"image size {c.width}x{c.height} is too small to draw on or too large: width must be "
            f"{MIN_WIDTH} to {MAX_SIDE} and height {MIN_HEIGHT} to {MAX_SIDE} pixels",
            param="width" if not MIN_WIDTH <= c.width <= MAX_SIDE else "height",
        )
    alphabet = Alphabet(c.alphabet)
    longest = len(f"{c.n - 1:0{c.index_width}d}_.png") + c.max_len * codec.max_escaped_len(alphabet.chars)
    if longest > codec.MAX_NAME_BYTES:
        raise BadInput(
            f"`max_len` {c.max_len} makes file names up to {longest} bytes long with this alphabet; "
            f"the limit is {codec.MAX_NAME_BYTES}",
            param="max_len",
        )
    paths = [f for p in c.fonts for f in font_files(p)] if c.fonts or c.font_pack else bundled_fonts()
    fonts = tuple(load_font(p) for p in paths)
    check_coverage(list(fonts), alphabet.chars)
    left_out: list[str] = []
    if c.font_pack:
        # A pack's fonts are many and of every kind: one that cannot draw this alphabet is left out, not an error.
        drawable = []
        for font in (load_font(p) for p in fontpacks.pack_files(c.font_pack)):
            lacks = font.missing(alphabet.chars + REQUIRED_EXTRA)
            if lacks:
                left_out.append(f"{font.name}: no glyph for {', '.join(map(describe_char, lacks[:3]))}")
            else:
                drawable.append(font)
        if not drawable:
            raise BadInput(f"no font of pack {c.font_pack!r} draws every character of this alphabet", param="font_pack")
        fonts = (*fonts, *drawable)
    return Resolved(config=c, alphabet=alphabet, fonts=fonts, left_out=tuple(left_out))


def _with_arithmetic(c: GenerationConfig) -> GenerationConfig:
    chars, (lo, hi) = arithmetic.alphabet(c.arithmetic), arithmetic.lengths(c.arithmetic)
    defaults = GenerationConfig()
    if c.alphabet not in (defaults.alphabet, chars):
        raise BadInput(f"`alphabet` is decided by `arithmetic` ({chars!r}); leave it out", param="alphabet")
    if (c.min_len, c.max_len) not in ((defaults.min_len, defaults.max_len), (lo, hi)):
        raise BadInput(f"`min_len` is decided by `arithmetic` ({lo} to {hi} characters); leave it out", param="min_len")
    return replace(c, alphabet=chars, min_len=lo, max_len=hi)
