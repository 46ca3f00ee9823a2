"""Bundled fonts, and checks that a font file is a font and has a glyph for every character asked of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from captchagen.alphabet import describe_char
from captchagen.errors import BadInput

FONT_SUFFIXES = (".ttf", ".otf")
# captcha's ImageCaptcha draws a space between some characters, so every font must have one.
REQUIRED_EXTRA = " "


def bundled_fonts() -> list[Path]:
    """The fonts shipped with captchagen (package data of `captchagen.fontdata`), sorted by file name."""
    root = resources.files("captchagen.fontdata")
    found = sorted(
        (Path(str(entry)) for entry in root.iterdir() if entry.name.lower().endswith(FONT_SUFFIXES)),
        key=lambda p: p.name,
    )
    if not found:
        raise FileNotFoundError(f"no bundled fonts found in {root}; the package is incompletely installed")
    return found


@dataclass(frozen=True)
class FontInfo:
    """A checked font file: where it is, what it is called, a hash of its bytes, and what it can draw."""

    path: Path
    name: str
    sha256: str
    codepoints: frozenset[int]

    def missing(self, chars: str) -> list[str]:
        return [c for c in dict.fromkeys(chars) if ord(c) not in self.codepoints]


@lru_cache(maxsize=2048)  # a font pack holds hundreds
def _load(path: Path, mtime_ns: int, size: int) -> FontInfo:
    from fontTools.ttLib import TTFont  # imported here: only `make` needs it
    from PIL import ImageFont

    data = path.read_bytes()
    try:
        font = TTFont(path, lazy=True, fontNumber=0)
        cmap = font.getBestCmap() or {}
        glyph_order = set(font.getGlyphOrder())
        ImageFont.truetype(str(path), 20)  # what captcha will do with it
    except Exception as e:  # fontTools and FreeType raise many kinds of error on a damaged file
        reason = str(e).strip() or type(e).__name__
        raise BadInput(f"font {str(path)!r} is not a TrueType/OpenType font ({reason})", param="font") from None
    # A code point mapped to the .notdef glyph would be drawn as a tofu box: treat it as missing.
    codepoints = frozenset(cp for cp, glyph in cmap.items() if glyph != ".notdef" and glyph in glyph_order)
    return FontInfo(path=path, name=path.name, sha256=hashlib.sha256(data).hexdigest(), codepoints=codepoints)


def font_files(path: str | Path) -> list[Path]:
    """`path` itself, or, when it is a folder, every .ttf/.otf file under it, sorted by relative path."""
    p = Path(path).expanduser()
    if not p.is_dir():
        return [p]
    found = sorted(f for f in p.rglob("*") if f.suffix.lower() in FONT_SUFFIXES and f.is_file())
    if not found:
        raise BadInput(f"font folder {str(path)!r} holds no .ttf or .otf files", param="font")
    return found


def load_font(path: str | Path) -> FontInfo:
    """Read and check one font file. Raises BadInput if it is missing or not a font."""
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise BadInput(f"font file {str(path)!r} does not exist", param="font")
    if not p.is_file():
        raise BadInput(f"font {str(path)!r} is not a file", param="font")
    stat = p.stat()
    return _load(p, stat.st_mtime_ns, stat.st_size)


def check_coverage(fonts: list[FontInfo], chars: str) -> None:
    """Every font must draw every character, since captcha picks a font at random for each character."""
    for font in fonts:
        for c in font.missing(chars):
            raise BadInput(f"font {font.name} has no glyph for the character {describe_char(c)}", param="font")
        if font.missing(REQUIRED_EXTRA):
            raise BadInput(
                f"font {font.name} has no glyph for a space, which captcha draws between characters",
                param="font",
            )
