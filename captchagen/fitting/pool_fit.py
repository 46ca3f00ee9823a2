"""Fit a style to a folder of unlabelled captchas and write what `make` needs: a style file, the fonts, a
record of the fit, and a sheet of pool images beside fitted ones."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from captchagen import atomic, codec, fontpacks
from captchagen.errors import BadInput
from captchagen.fitting.search import Fit, Progress, Settings, fit, render
from captchagen.fonts import REQUIRED_EXTRA, bundled_fonts, font_files, load_font
from captchagen.preview import write_grid
from captchagen.style import DEFAULT, FIELDS, Style

STYLE_FILE, RECORD, SHEET = "style.toml", "fit.json", "sheet.png"
RECORD_VERSION = 1


@dataclass(frozen=True)
class Pool:
    paths: tuple[Path, ...]  # the images the fit looks at (a seeded sample of the folder)
    size: tuple[int, int]  # the commonest (width, height): the fitted style's image size
    total: int  # images in the folder

    def digest(self) -> str:
        """What the fit saw: each sampled file's name, size and mtime (a changed pool gets a new digest)."""
        h = hashlib.sha256()
        for p in self.paths:
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


def open_pool(folder: Path, limit: int, seed: int) -> Pool:
    """Up to `limit` images of `folder` (a seeded sample), and the commonest image size among them."""
    if not folder.is_dir():
        raise BadInput(f"pool {folder} is not a folder of images", param="pool")
    files = codec.image_files(folder)
    if len(files) < 4:
        raise BadInput(f"pool {folder} holds {len(files)} images; a fit needs at least 4", param="pool")
    chosen = sorted(random.Random(seed).sample(files, min(limit, len(files))))
    sizes: Counter[tuple[int, int]] = Counter()
    readable = []
    for p in chosen:
        try:
            with Image.open(p) as im:
                sizes[im.size] += 1
            readable.append(p)
        except (OSError, UnidentifiedImageError):
            continue  # a file that is not an image is left out of the sample
    if len(readable) < 4:
        raise BadInput(f"pool {folder}: fewer than 4 of its files are readable images", param="pool")
    return Pool(tuple(readable), sizes.most_common(1)[0][0], len(files))


def pool_images(pool: Pool) -> list[Image.Image]:
    """The sample as RGB images at the pool's size (the odd one out resized to it)."""
    out = []
    for p in pool.paths:
        with Image.open(p) as im:
            rgb = im.convert("RGB")
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


def fit_pool(
    folder: Path,
    out: Path,
    settings: Settings,
    fonts: list[str],
    sample: int,
    workers: int,
    progress: Progress | None = None,
) -> tuple[Fit, Pool]:
    """Fit, then write out/style.toml, out/fit.json and out/sheet.png (each atomically; the record last,
    so a record on disk means the other two are complete)."""
    pool = open_pool(folder, sample, settings.seed)
    settings = Settings(**{**asdict(settings), "width": pool.size[0], "height": pool.size[1]})
    images = pool_images(pool)
    result = fit(images, fonts, settings, workers=workers, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(out / STYLE_FILE, style_toml(result.style).encode())
    fitted = render(result.style, result.fonts, settings, settings.seed + 20_000, 8)
    cells = [(im, [("pool", "black")]) for im in images[:8]] + [(im, [("fitted", "blue")]) for im in fitted]
    write_grid(cells, out / SHEET, columns=8)
    record = {
        "version": RECORD_VERSION,
        "pool": {"folder": str(folder), "images": pool.total, "sampled": len(pool.paths), "digest": pool.digest()},
        "settings": asdict(settings),
        "size": list(pool.size),
        "fonts": [{"path": f, "sha256": load_font(f).sha256} for f in result.fonts],
        "distance": result.distance,
        "floor": result.floor,
        "groups": result.groups,
        "history": list(result.history),
        "style": result.style.to_dict(),
    }
    atomic.write_json(out / RECORD, record)
    return result, pool


def read_record(out: Path) -> dict | None:
    """The record of the fit in `out`, or None if there is none (or it cannot be read)."""
    try:
        record = json.loads((out / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == RECORD_VERSION else None
