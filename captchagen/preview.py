"""A contact sheet of sample images with their labels (read back from the file names) under them."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import islice
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from captchagen import atomic, codec, manifest
from captchagen.config import GenerationConfig, resolve
from captchagen.errors import CaptchagenError
from captchagen.fonts import bundled_fonts
from captchagen.render import Renderer
from captchagen.style import Style

CELL_WIDTH = 320
LABEL_HEIGHT = 22
PAD = 6


def _images(folder: Path) -> Iterator[Path]:
    """Image files in index order: the complete shards of a made dataset, else any image under `folder`."""
    if (folder / manifest.MANIFEST).exists():
        for shard in manifest.read(folder)["shards"]:
            yield from sorted((folder / shard["dir"]).glob("*.png"))
    else:
        yield from codec.image_files(folder)


def write_preview(folder: Path, out: Path, count: int = 24, columns: int = 4) -> Path:
    """Draw the first `count` images of `folder` in a grid, each with its label under it; return `out`."""
    files = list(islice(_images(folder), count))
    if not files:
        raise CaptchagenError(f"{folder} holds no images to preview")
    cells = []
    for path in files:
        try:
            label = codec.parse_name(path.name).label
        except CaptchagenError:
            label = "?"
        cells.append((path, [(label, "black")]))
    return write_grid(cells, out, columns)


Caption = list[tuple[str, str]]  # lines of (text, colour)


def write_grid(cells: Sequence[tuple[Path | Image.Image, Caption]], out: Path, columns: int = 4) -> Path:
    """A PNG of images (files or decoded) in a grid, each with its caption lines under it, written atomically
    to `out`."""
    images = []
    for source, caption in cells:
        if isinstance(source, Image.Image):
            im = source.convert("RGB")
        else:
            with Image.open(source) as opened:
                im = opened.convert("RGB")
        scale = min(1.0, CELL_WIDTH / im.width)
        images.append((im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale)))), caption))
    font = ImageFont.truetype(str(_label_font()), 16)
    lines = max(len(caption) for _, caption in images)
    # Each tile is as wide as its widest image or caption line, so captions under small images (120x50, say)
    # do not run into the next tile's.
    text_w = max((math.ceil(font.getlength(text)) + 4 for _, caption in images for text, _ in caption), default=0)
    cell_w = max(max(im.width for im, _ in images), text_w)
    cell_h = max(im.height for im, _ in images) + LABEL_HEIGHT * lines
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (PAD + columns * (cell_w + PAD), PAD + rows * (cell_h + PAD)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (im, caption) in enumerate(images):
        x = PAD + (i % columns) * (cell_w + PAD)
        y = PAD + (i // columns) * (cell_h + PAD)
        sheet.paste(im, (x, y))
        for k, (text, colour) in enumerate(caption):
            draw.text((x + 2, y + im.height + 2 + k * LABEL_HEIGHT), text, fill=colour, font=font)
    atomic.write_bytes(out, png_bytes(sheet))
    return out


def png_bytes(im: Image.Image) -> bytes:
    """`im` encoded as PNG (Pillow's defaults)."""
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_style_sheet(
    styles: list[tuple[str, Style]],
    out: Path,
    samples: int = 4,
    config: GenerationConfig | None = None,
    columns: int | None = None,
) -> Path:
    """`samples` freshly rendered images per style (`config`'s size, fonts and labels), captioned with the
    style's name and the label; `columns` to a row (default: a row per style)."""
    base = config or GenerationConfig(min_len=4, max_len=8)
    cells: list[tuple[Path | Image.Image, Caption]] = []
    for name, style in styles:
        renderer = Renderer(resolve(replace(base, n=samples, style=style)))
        for i in range(samples):
            label, data = renderer.image(i)
            cells.append((Image.open(io.BytesIO(data)), [(name, "darkblue"), (label, "black")]))
    return write_grid(cells, out, columns=columns or samples)


def _label_font() -> Path:
    fonts = bundled_fonts()
    return next((f for f in fonts if f.name.startswith("DejaVu")), fonts[0])
