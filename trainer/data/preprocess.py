"""The one preprocessing path (decode, grayscale or RGB, resize, normalise) for training, evaluation and
prediction."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from captchagen.errors import CaptchagenError
from trainer.shape import SHAPE, ModelShape

MAX_PIXELS = 20_000_000  # refuse larger images: a captcha is never this big, a decompression bomb is


class BadImage(CaptchagenError):
    """An image that cannot be used; the message names it and the reason. `reason` is one of "missing",
    "not_image", "too_large" and "unreadable", so a server can answer each with its own status code."""

    def __init__(self, message: str, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Preprocessing:
    """Recorded in every checkpoint, so prediction prepares images exactly as training did."""

    height: int = SHAPE.height
    width: int = SHAPE.width
    autocontrast: bool = True  # stretch each image to the full 0-255 range: faint colours read like dark ones
    mean: float = 0.5  # on the 0-1 scale, after autocontrast
    std: float = 0.5
    # (left, top, right, bottom) as fractions of the image, cut out before resizing: uniform borders that
    # would only waste the model's input. None: the whole image.
    crop: tuple[float, float, float, float] | None = None
    # 1: grayscale; 3: RGB, for captchas whose colours tell characters apart (autocontrast then stretches
    # the brightness and keeps the hues).
    channels: int = 1

    def __post_init__(self) -> None:
        if self.crop is not None:
            object.__setattr__(self, "crop", tuple(float(v) for v in self.crop))  # a list when read from JSON
        if self.channels not in (1, 3):
            raise ValueError(f"input channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"normalisation needs a finite mean and a std above 0, got {self.mean} and {self.std}")

    @property
    def array_shape(self) -> tuple[int, ...]:
        """One image as to_array returns it (and the cache stores it): [H, W], or [3, H, W] in colour."""
        return (self.height, self.width) if self.channels == 1 else (3, self.height, self.width)

    @classmethod
    def for_shape(cls, shape: ModelShape) -> Preprocessing:
        """Images prepared at the model's input size."""
        return cls(height=shape.height, width=shape.width)

    def to_dict(self) -> dict:
        """Plain data; without `crop` when there is none and `channels` when 1, so caches and checkpoints
        made before they existed match."""
        d = asdict(self)
        if d["crop"] is None:
            del d["crop"]
        else:
            d["crop"] = list(d["crop"])
        if d["channels"] == 1:
            del d["channels"]
        return d


def open_image(source: str | Path | BinaryIO, max_pixels: int = MAX_PIXELS, name: str | None = None) -> Image.Image:
    """Open and fully decode an image (a path or a binary file object), refusing ones over `max_pixels`
    before decoding them; raise BadImage naming it (`name`, else the path)."""
    name = name or str(source)
    if isinstance(source, str | Path) and Path(source).exists() and not Path(source).is_file():
        if not Path(source).is_dir():  # a FIFO or a device would block or never end: not an image file
            raise BadImage(f"{name}: not a regular file", "not_image")
    try:
        with Image.open(source) as im:
            if im.width * im.height > max_pixels:
                raise BadImage(
                    f"{name}: {im.width}x{im.height} pixels is more than the {max_pixels:,} allowed", "too_large"
                )
            im.load()  # decodes now: a truncated file fails here, not later
            return im.copy() if im.mode != "P" else im.convert("RGBA")
    except BadImage:
        raise
    except FileNotFoundError:
        raise BadImage(f"{name}: no such file", "missing") from None
    except IsADirectoryError:
        raise BadImage(f"{name}: a folder with no images in it", "missing") from None
    except Image.UnidentifiedImageError:
        raise BadImage(f"{name}: not an image", "not_image") from None
    except Image.DecompressionBombError as e:  # Pillow's own limit, checked before ours when opening
        found = re.search(r"\((\d+) pixels\)", str(e))
        pixels = int(found[1]) if found else None
        if pixels is not None and pixels > max_pixels:  # ours is the limit that counts: say it, not Pillow's
            raise BadImage(f"{name}: {pixels:,} pixels is more than the {max_pixels:,} allowed", "too_large") from None
        raise BadImage(f"{name}: more pixels than Pillow will decode ({e})", "too_large") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise BadImage(f"{name}: unreadable image ({e})") from None


def _on_white(image: Image.Image, mode: str) -> Image.Image:
    """Any mode (RGB, RGBA, palette, LA, 1, 16-bit, 32-bit, float) to 8-bit `mode` ("L" or "RGB"), with
    transparency composited onto white and deep images scaled to 0-255."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" and arr.max(initial=0) > 255 else 255.0
        gray = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), mode="L")
        return gray if mode == "L" else gray.convert(mode)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert(mode)
    return image.convert(mode)


def to_gray(image: Image.Image) -> Image.Image:
    """Any mode to 8-bit grayscale on white."""
    return _on_white(image, "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB on white (gray images become three equal channels)."""
    return _on_white(image, "RGB")


def to_array(image: Image.Image, pre: Preprocessing) -> np.ndarray:
    """uint8 pre.array_shape ([height, width], or [3, height, width] in colour): what the cache stores and
    what normalise() turns into model input."""
    if pre.crop is not None:
        left, top, right, bottom = pre.crop
        w, h = image.size
        box = (
            round(left * w),
            round(top * h),
            max(round(right * w), round(left * w) + 1),
            max(round(bottom * h), round(top * h) + 1),
        )
        image = image.crop(box)
    if pre.channels == 3:
        rgb = to_rgb(image).resize((pre.width, pre.height), Image.Resampling.BILINEAR)
        if pre.autocontrast:
            rgb = ImageOps.autocontrast(rgb, preserve_tone=True)  # one stretch for all channels: hues kept
        return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).copy()  # [H, W, 3] -> [3, H, W]
    gray = to_gray(image).resize((pre.width, pre.height), Image.Resampling.BILINEAR)
    if pre.autocontrast:
        gray = ImageOps.autocontrast(gray)
    return np.asarray(gray, dtype=np.uint8)


def load_array(path: str | Path, pre: Preprocessing) -> np.ndarray:
    return to_array(open_image(path), pre)


def normalize(batch, pre: Preprocessing):  # torch types, imported lazily
    """uint8 [N, H, W] (grayscale) or [N, 3, H, W] (colour) tensor to float [N, C, H, W] model input."""
    x = ((batch.float() / 255.0) - pre.mean).div_(pre.std)
    return x.unsqueeze(1) if pre.channels == 1 else x
