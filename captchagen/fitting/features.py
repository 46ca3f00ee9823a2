"""What a set of captchas looks like, as numbers: per-image statistics, and a distance between two sets.

Analysis by synthesis compares a pool of a site's captchas with images rendered in a candidate style. Each
image gives a vector in named groups (brightness, colour, edges, where the ink lies, fine texture); a set
is summarised by each dimension's mean and spread, and two sets are as far apart as their summaries,
each dimension scaled by how much it varies within the pool (so a group that is constant in the pool and
off in the candidate counts for much). Every group weighs the same, whatever its length.

A set may also carry what a reading model sees of its images (groups named by the caller, e.g. a model's
convolutional features and LSTM outputs: trainer.inference.features). Those groups are measured by the
same rule and weigh as much, together, as all the statistics together: a reader learns the glyphs, their
size, spacing and stroke, which the statistics see only roughly (docs/studies/fit-style.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image

GROUPS = ("brightness", "colour", "palette", "edges", "orientation", "ink_columns", "ink_rows", "ink", "strokes",
          "spectrum")  # fmt: skip
READER_WEIGHT = 0.5  # the share of the distance that the reader's groups, when present, decide
INK_LEVEL = 40  # an ink pixel differs from the image's background colour by this much (0-255, any channel)


def _hist(values: np.ndarray, bins: int, lo: float, hi: float, weights: np.ndarray | None = None) -> np.ndarray:
    h, _ = np.histogram(values, bins=bins, range=(lo, hi), weights=weights)
    total = h.sum()
    return h / total if total else h.astype(np.float64)


def image_features(image: Image.Image) -> dict[str, np.ndarray]:
    """One image's statistics, each group a float vector of fixed length (whatever the image's size)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)  # [H, W, 3]
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # [H, W]
    hi, lo = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(hi > 0, (hi - lo) / np.maximum(hi, 1), 0)
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # edge orientation, 0 to pi
    # Background: the commonest colour, roughly (the median of the border pixels).
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(border, axis=0)
    ink = np.abs(rgb - background).max(axis=2) > INK_LEVEL  # [H, W]
    inked = rgb[ink] if ink.any() else background[None, :]  # [n, 3]
    h, w = gray.shape
    columns = np.array([c.mean() for c in np.array_split(ink, 12, axis=1)])
    rows = np.array([r.mean() for r in np.array_split(ink, 8, axis=0)])
    spectrum = np.abs(np.fft.rfft2(gray - gray.mean()))  # [H, W//2+1]
    fy = np.abs(np.fft.fftfreq(h))[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    radius = np.hypot(fy, fx) / 0.5  # 0 to ~1.4: share of the highest frequency
    bands = np.array([spectrum[(radius >= a) & (radius < b)].sum() for a, b in zip(_BANDS, _BANDS[1:], strict=False)])
    bands = bands / max(bands.sum(), 1e-9)
    return {
        "brightness": np.concatenate([_hist(gray, 16, 0, 256), [gray.mean() / 255, gray.std() / 128]]),
        "colour": np.concatenate([_hist(saturation, 8, 0, 1.0001), [saturation.mean()]]),
        # The background's colour and the ink's (its mean and spread over the ink pixels), 0-1 per channel.
        "palette": np.concatenate([background / 255, inked.mean(axis=0) / 255, inked.std(axis=0) / 128]),
        "edges": _hist(np.log1p(magnitude), 10, 0, np.log1p(256.0)),
        "orientation": _hist(angle, 8, 0, np.pi, weights=magnitude),
        "ink_columns": columns,
        "ink_rows": rows,
        "ink": np.array([ink.mean(), (magnitude > 30).mean(), (ink.mean() + 1e-3) / ((magnitude > 30).mean() + 1e-3)]),
        "strokes": _strokes(ink),
        "spectrum": bands,
    }


_BANDS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.5)


def _strokes(ink: np.ndarray) -> np.ndarray:
    """How thick the ink runs across and down (a solid bold glyph against a hollow or thin one), as shares of
    the height, and how far the inked rows and columns extend (the text's height and width, as shares)."""
    h, w = ink.shape
    across = ink[:, 0].sum() + (ink[:, 1:] & ~ink[:, :-1]).sum()  # runs of ink along the rows
    down = ink[0, :].sum() + (ink[1:, :] & ~ink[:-1, :]).sum()
    rows, columns = np.flatnonzero(ink.mean(axis=1) > 0.02), np.flatnonzero(ink.mean(axis=0) > 0.02)
    return np.array([
        ink.sum() / max(across, 1) / h,
        ink.sum() / max(down, 1) / h,
        (rows[-1] - rows[0] + 1) / h if rows.size else 0.0,
        (columns[-1] - columns[0] + 1) / w if columns.size else 0.0,
    ])  # fmt: skip


@dataclass(frozen=True)
class Summary:
    """A set of images as numbers: each group's per-dimension mean and standard deviation."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    count: int

    def extend(self, groups: Mapping[str, np.ndarray]) -> Summary:
        """This summary with more groups, each given per image ([count, D]): what a reader sees of the same
        images, computed where the reader is."""
        for g, v in groups.items():
            if g in GROUPS or len(v) != self.count:
                raise ValueError(f"group {g}: {len(v)} rows for {self.count} images, or a statistics group")
        mean = self.mean | {g: v.mean(axis=0) for g, v in groups.items()}
        return Summary(mean, self.std | {g: v.std(axis=0) for g, v in groups.items()}, self.count)


def summarise(images: Iterable[Image.Image]) -> Summary:
    rows = [image_features(im) for im in images]
    if not rows:
        raise ValueError("no images to summarise")
    stacked = {g: np.stack([r[g] for r in rows]) for g in GROUPS}
    return Summary({g: v.mean(axis=0) for g, v in stacked.items()}, {g: v.std(axis=0) for g, v in stacked.items()},
                   len(rows))  # fmt: skip


def group_distances(pool: Summary, other: Summary) -> dict[str, float]:
    """How far `other` looks from `pool`, group by group (which aspect of the look is still off): the mean
    over the group's dimensions of the difference of the means and (half weight) of the spreads, each over
    the pool's spread plus a floor. Every group of `pool` is measured; `other` must have them all."""
    out = {}
    for g in pool.mean:
        scale = pool.std[g] + 0.02 + 0.1 * np.abs(pool.mean[g])
        gap = np.abs(pool.mean[g] - other.mean[g]) + 0.5 * np.abs(pool.std[g] - other.std[g])
        out[g] = float(np.mean(gap / scale))
    return out


def distance(pool: Summary, other: Summary) -> float:
    """The mean of group_distances: 0 is a perfect match; two halves of one pool lie near 0.1. Where the pool
    carries a reader's groups, their mean and the statistics' mean are weighed READER_WEIGHT to the rest."""
    groups = group_distances(pool, other)
    stats = float(np.mean([d for g, d in groups.items() if g in GROUPS]))
    seen = [d for g, d in groups.items() if g not in GROUPS]
    return stats if not seen else (1 - READER_WEIGHT) * stats + READER_WEIGHT * float(np.mean(seen))
