"""What the model is shown: an input size (and border crop) chosen from the images, and inputs.png.

A captcha of another shape squashed into the default 32x128 can become unreadable (a 640x360 image with a
band of text across the middle leaves characters a few pixels tall). So when no size is given, train looks
at a sample of the images: it crops borders of one flat colour that every sampled image shares, and picks a
width that keeps the aspect ratio of what is left. inputs.png shows a grid of training images exactly as
the model receives them, so a person sees at a glance whether they are readable.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from captchagen.preview import write_grid
from trainer.data.preprocess import BadImage, open_image, to_gray
from trainer.shape import SHAPE, min_time_steps

SAMPLE = 48  # images looked at
MAX_WIDTH = 512
BORDER_TOLERANCE = 24  # grey levels from the border colour that still count as border
MIN_CROP = 0.05  # crop only when it removes at least this share of a side
SHRINK_WARNING = 0.2  # warn when the model sees less than this share of the images' height


@dataclass(frozen=True)
class InputChoice:
    height: int
    width: int
    crop: tuple[float, float, float, float] | None
    image_size: tuple[int, int]  # median width, height of the sampled images
    notes: tuple[str, ...]  # one line each: what was chosen and why, and any warning


def _sample(paths: list[Path]) -> list[Path]:
    step = max(1, len(paths) // SAMPLE)
    return paths[::step][:SAMPLE]


def _opened(paths: list[Path]) -> list[Image.Image]:
    """The sampled images that open. An unreadable one is left out here: loading then skips it (`skip_bad`)
    or names it in its error, as it does any other."""
    images = []
    for p in _sample(paths):
        try:
            images.append(open_image(p))
        except BadImage:
            continue
    if not images:
        raise BadImage(f"none of the {len(_sample(paths))} images sampled to choose the input size can be read")
    return images


def _content_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (left, top, right, bottom) outside of which the image is the colour of most of its outer
    ring; None if there is nothing else."""
    ring = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    border = float(np.median(ring))
    content = np.abs(gray.astype(np.int16) - border) > BORDER_TOLERANCE
    rows = np.flatnonzero(content.mean(axis=1) > 0.02)
    cols = np.flatnonzero(content.mean(axis=0) > 0.02)
    if len(rows) == 0 or len(cols) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def border_crop(images: list[Image.Image]) -> tuple[float, float, float, float] | None:
    """The crop (as fractions) that removes a flat border every image has, or None."""
    boxes = []
    for im in images:
        box = _content_box(np.asarray(to_gray(im)))
        if box is None:
            return None
        w, h = im.size
        boxes.append((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    margin_x, margin_y = 0.02 * (right - left), 0.05 * (bottom - top)
    crop = (
        max(0.0, left - margin_x),
        max(0.0, top - margin_y),
        min(1.0, right + margin_x),
        min(1.0, bottom + margin_y),
    )
    if 1 - (crop[2] - crop[0]) < MIN_CROP and 1 - (crop[3] - crop[1]) < MIN_CROP:
        return None
    return tuple(round(v, 4) for v in crop)  # type: ignore[return-value]


def sampled_crop(paths: list[Path]) -> tuple[float, float, float, float] | None:
    """The border crop of these images, chosen from the same sample `choose_input` looks at."""
    return border_crop(_opened(paths))


def choose_input(
    paths: list[Path], max_len: int, height: int = SHAPE.height, labels: list[str] | None = None
) -> InputChoice:
    """An input size for these images, at `height` pixels high. `labels` (the dataset's) let the notes say
    which label decided the width when the longest one needs more time steps than the images' shape gives."""
    images = _opened(paths)
    w = statistics.median(im.width for im in images)
    h = statistics.median(im.height for im in images)
    crop = border_crop(images)
    cw = w * (crop[2] - crop[0]) if crop else w
    ch = h * (crop[3] - crop[1]) if crop else h
    aspect = cw / ch
    # The aspect ratio kept: squashing make's 320x64 (5:1) into 4:1 cost 10-character labels 6 points
    # (docs/studies/results/width.json).
    shaped = min(MAX_WIDTH, max(height, round(height * aspect / 4) * 4))
    width = max(shaped, 4 * min_time_steps(max_len))  # CTC needs time steps for the longest label
    cropped = f", cropped to {cw:.0f}x{ch:.0f} of content" if crop else ""
    notes = [f"input {height}x{width} chosen from the images ({w:g}x{h:g}{cropped}); --height/--width to change"]
    if width > shaped:
        longest = [label for label in labels or [] if len(label) == max_len]
        which = f" ({longest[0]!r}; {len(longest):,} of {len(labels or []):,} labels are that long)" if longest else ""
        notes[0] = (
            f"input {height}x{width}: the images' shape gives {height}x{shaped}, widened so the longest label, "
            f"{max_len} characters{which}, has the time steps CTC needs; --height/--width to change"
        )
    if height / ch < SHRINK_WARNING:
        notes.append(
            f"warning: the model sees the images at {100 * height / ch:.0f}% of their height; if inputs.png is "
            "hard to read, pass a larger --height (a multiple of 16)"
        )
    return InputChoice(height, width, crop, (int(w), int(h)), tuple(notes))


def write_inputs_png(images: np.ndarray, labels: list[str], out: Path, columns: int = 4) -> Path:
    """A grid of uint8 model inputs, [N, H, W] or [N, 3, H, W] in colour (scaled up to be seen), each with
    its label."""
    scale = max(1, 96 // images.shape[-2])
    cells = []
    for arr, label in zip(images, labels, strict=True):
        im = Image.fromarray(arr) if arr.ndim == 2 else Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)))
        cells.append((im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST), [(label, "black")]))
    return write_grid(cells, out, columns)
