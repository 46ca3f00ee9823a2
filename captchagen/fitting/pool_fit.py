"""Fit a style to a folder of unlabelled captchas and write what `make` needs: a style file, the fonts, a
record of the fit, and a sheet of pool images beside fitted ones."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from captchagen import atomic, fontpacks, outfolder, unlabeled
from captchagen.errors import BadInput
from captchagen.fitting.search import Fit, FitProgress, SeenBy, Settings, fit, render
from captchagen.fonts import REQUIRED_EXTRA, bundled_fonts, font_files, load_font
from captchagen.preview import write_grid
from captchagen.style import DEFAULT, FIELDS, Style

STYLE_FILE, RECORD, SHEET = "style.toml", "fit.json", "sheet.png"
RECORD_VERSION = 1
SAMPLE = 200  # pool images a fit compares with (`fit-style --sample`; adapt's fit)
# A fit draws at most this many rows: a reader sees a captcha 32 rows high, and drawing and measuring
# kaptcha's 260x125 took its two fits and two makes 7 of adapt's 28.6 minutes where 200x75 took 4
# (docs/studies/adapt.md). A taller pool is fitted, and its synthetic set drawn, at its shape scaled to this.
DRAW_HEIGHT = 80


@dataclass(frozen=True)
class Pool:
    paths: tuple[Path, ...]  # the images the fit looks at (a seeded sample of the folder, each one decodable)
    size: tuple[int, int]  # the fitted style's image size: the commonest (width, height), drawn_size of it
    total: int  # images in the folder (by the pool rule, captchagen.unlabeled)
    listing: str  # the digest of the whole pool's files (unlabeled.PoolFiles.digest)
    unreadable: tuple[str, ...] = ()  # sampled files left out: why each could not be read
    commonest: tuple[int, int] = (0, 0)  # the commonest (width, height) as the pool's files hold it

    def digest(self) -> str:
        """What the fit saw: the whole pool's file list with sizes and times (a changed pool, inside the sample
        or not, gets a new digest)."""
        return self.listing


def drawn_size(size: tuple[int, int], rows: int = DRAW_HEIGHT) -> tuple[int, int]:
    """The size a fit draws a pool of `size` at: the same, or its shape scaled to `rows` rows where taller."""
    width, height = size
    if height <= rows:
        return size
    return max(1, round(width * rows / height)), rows


def open_pool(folder: Path, limit: int, seed: int, exclude: Path | None = None) -> Pool:
    """Up to `limit` images of `folder` (a seeded sample of what the pool rule lists; files that do not
    decode, truncated ones and decompression bombs among them, are left out and counted), and the size to
    draw them at (the commonest among them, drawn_size)."""
    if not folder.is_dir():
        raise BadInput(f"pool {folder} is not a folder of images", param="pool")
    listed = unlabeled.list_images(folder, exclude)
    files = list(listed.paths)
    if len(files) < 4:
        raise BadInput(f"pool {folder} holds {len(files)} images; a fit needs at least 4", param="pool")
    chosen = unlabeled.seeded_sample(files, limit, seed)
    sizes: Counter[tuple[int, int]] = Counter()
    readable, unreadable = [], []
    for p in chosen:
        try:
            sizes[unlabeled.open_image(p).size] += 1
            readable.append(p)
        except unlabeled.UnreadableImage as e:
            unreadable.append(str(e))  # left out of the sample
    if len(readable) < 4:
        raise BadInput(f"pool {folder}: fewer than 4 of its files are readable images", param="pool")
    commonest = sizes.most_common(1)[0][0]
    return Pool(tuple(readable), drawn_size(commonest), len(files), listed.digest(), tuple(unreadable), commonest)


def pool_images(pool: Pool) -> list[Image.Image]:
    """The sample as RGB images at the size the fit draws at (any other size resized to it)."""
    out = []
    for p in pool.paths:
        rgb = unlabeled.open_image(p)
        out.append(rgb if rgb.size == pool.size else rgb.resize(pool.size, Image.Resampling.BILINEAR))
    return out


def candidate_fonts(fonts: tuple[str, ...], font_pack: str | None, chars: str) -> list[str]:
    """The fonts a fit may choose from: the given files and folders, a pack's fonts, else the bundled ones;
    only those with a glyph for every character (and the space the library draws between them)."""
    paths = [f for spec in fonts for f in font_files(spec)]
    if font_pack:
        paths += fontpacks.pack_files(font_pack)
    if not paths:
        paths = bundled_fonts()
    usable = [str(p) for p in paths if not load_font(p).missing(chars + REQUIRED_EXTRA)]
    if not usable:
        raise BadInput("no candidate font draws every character of the alphabet", param="fonts")
    return usable


def style_toml(style: Style) -> str:
    """A style file (TOML) that `make --style` reads back to `style`: the fields that differ from the
    default, each as the style's own check takes it."""
    lines = ["# Fitted by `captchagen fit-style`; `captchagen make --style` draws it.", 'base = "default"']
    for name in FIELDS:
        value = getattr(style, name)
        if value == getattr(DEFAULT, name):
            continue
        lines.append(f"{name} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PoolSummary:
    """The pool a fit was made on: its folder, its images, how many were sampled, its digest (unlabeled.
    PoolFiles.digest) and how many could not be read."""

    folder: str
    images: int
    sampled: int
    digest: str
    unreadable: int


@dataclass(frozen=True)
class FontChoice:
    path: str
    sha256: str


@dataclass(frozen=True)
class FitRecord:
    """What fit-style found, as fit.json holds it: the pool, the settings, the image size, the fonts chosen,
    the distance reached against the pool's own floor (and per feature group, and after each round), and the
    style. Read by attribute; written and read as the same dict as before it was a class."""

    pool: PoolSummary
    settings: dict[str, Any]
    size: tuple[int, int]
    fonts: tuple[FontChoice, ...]
    distance: float
    floor: float
    groups: dict[str, float]
    history: tuple[float, ...]
    style: dict[str, Any]
    version: int = RECORD_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "pool": asdict(self.pool),
            "settings": self.settings,
            "size": list(self.size),
            "fonts": [asdict(f) for f in self.fonts],
            "distance": self.distance,
            "floor": self.floor,
            "groups": self.groups,
            "history": list(self.history),
            "style": self.style,
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> FitRecord:
        """KeyError, TypeError or ValueError when it is not such a record."""
        width, height = saved["size"]
        return cls(
            pool=PoolSummary(**saved["pool"]),
            settings=dict(saved["settings"]),
            size=(int(width), int(height)),
            fonts=tuple(FontChoice(f["path"], f["sha256"]) for f in saved["fonts"]),
            distance=float(saved["distance"]),
            floor=float(saved["floor"]),
            groups=dict(saved["groups"]),
            history=tuple(float(h) for h in saved["history"]),
            style=dict(saved["style"]),
            version=int(saved["version"]),
        )


def fit_pool(
    folder: Path,
    out: Path,
    settings: Settings,
    fonts: list[str],
    sample: int,
    workers: int,
    progress: FitProgress | None = None,
    reader: tuple[str, SeenBy] | None = None,
) -> tuple[Fit, Pool]:
    """Fit, then write out/style.toml, out/fit.json and out/sheet.png (each atomically; the record last,
    so a record on disk means the other two are complete). `reader`: (the model's name, what it sees)."""
    pool = open_pool(folder, sample, settings.seed, exclude=out)
    outfolder.prepare(out)  # a file, read-only or full: one line now, not after the search
    settings = replace(settings, width=pool.size[0], height=pool.size[1])  # the pool's (drawn_size), always
    images = pool_images(pool)
    result = fit(images, fonts, settings, workers=workers, progress=progress, reader=reader[1] if reader else None)
    atomic.write_bytes(out / STYLE_FILE, style_toml(result.style).encode())
    fitted = render(result.style, result.fonts, settings, settings.seed + 20_000, 8)
    cells = [(im, [("pool", "black")]) for im in images[:8]] + [(im, [("fitted", "blue")]) for im in fitted]
    write_grid(cells, out / SHEET, columns=8)
    record = FitRecord(
        pool=PoolSummary(str(folder), pool.total, len(pool.paths), pool.digest(), len(pool.unreadable)),
        settings=asdict(settings) | {"model": reader[0] if reader else None},
        size=pool.size,
        fonts=tuple(FontChoice(f, load_font(f).sha256) for f in result.fonts),
        distance=result.distance,
        floor=result.floor,
        groups=result.groups,
        history=tuple(result.history),
        style=result.style.to_dict(),
    )
    atomic.write_json(out / RECORD, record.to_dict())
    return result, pool


def read_record(out: Path) -> FitRecord | None:
    """The record of the fit in `out`, or None if there is none (or it cannot be read, or is of another
    version)."""
    try:
        saved = json.loads((out / RECORD).read_text())
        return FitRecord.from_dict(saved) if saved.get("version") == RECORD_VERSION else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
