"""What a pool of unlabelled captchas holds: one rule shared by fit-style, adapt, label and `train --unlabeled`.

A pool is a folder of images with any names, searched recursively: files with an image suffix
(codec.IMAGE_SUFFIXES). Left out: hidden folders (`.git`, `.thumbnails`), a made dataset's preview and
manifest (in a folder with a manifest.json only the shard folders hold captchas), links that lead out of
the pool (they are not followed), and an `exclude` folder. Temp files of atomic writes end in `.tmp`, so
they are never listed. Whether a listed file really decodes is
found when it is opened (`open_image`): a truncated file or a decompression bomb is left out with a count
by whoever reads it, never a traceback.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from PIL import Image

from captchagen.codec import IMAGE_SUFFIXES
from captchagen.errors import BadInput, CaptchagenError

MANIFEST = "manifest.json"  # captchagen.manifest.MANIFEST: a made dataset's (imported lazily there)
MAX_PIXELS = 20_000_000  # a captcha is never this big; a decompression bomb is

T = TypeVar("T")


class UnreadableImage(CaptchagenError):
    """A pool file that cannot be used as an image; the message says which and why."""


@dataclass(frozen=True)
class PoolFiles:
    """The images of a pool folder (sorted), and what the rule left out of it, with the reason."""

    root: Path
    paths: tuple[Path, ...]
    left_out: tuple[tuple[Path, str], ...] = ()

    def digest(self) -> str:
        """Changes when any image is added, removed, renamed or rewritten: each one's path within the pool,
        size and modification time. The pool's own place (relative or absolute, moved) does not count."""
        h = hashlib.sha256()
        for p in self.paths:
            try:
                st = p.stat()
                h.update(f"{p.relative_to(self.root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p.relative_to(self.root).as_posix()}\0missing\n".encode())
        return h.hexdigest()


def list_images(folder: Path, exclude: Path | None = None) -> PoolFiles:
    """Every image file the pool `folder` holds under the rule above (nothing is decoded)."""
    root = Path(folder)
    real_root = root.resolve()
    skip = exclude.resolve() if exclude is not None else None
    made_dataset = (root / MANIFEST).is_file()
    paths: list[Path] = []
    left_out: list[tuple[Path, str]] = []
    for here, dirs, files in os.walk(root, followlinks=False):
        base = Path(here)
        kept_dirs = []
        for d in sorted(dirs):
            sub = base / d
            if d.startswith(".") or (skip is not None and sub.resolve() == skip):
                continue
            if sub.is_symlink():
                left_out.append((sub, "a link to a folder (not followed)"))
                continue
            kept_dirs.append(d)
        dirs[:] = kept_dirs
        for name in files:
            if not name.lower().endswith(IMAGE_SUFFIXES):
                continue
            p = base / name
            if made_dataset and base == root:
                continue  # a made dataset's preview.png: its captchas are in the shard folders
            if p.is_symlink():
                target = p.resolve()
                if real_root not in target.parents:
                    left_out.append((p, "a link that leads out of the pool"))
                    continue
            if p.is_file():
                paths.append(p)
    return PoolFiles(root, tuple(sorted(paths)), tuple(left_out))


def seeded_sample(paths: Sequence[T], n: int, seed: int) -> list[T]:
    """The `n` of `paths` (all of them if fewer) that `compare --sample n --seed seed` reads, in their order:
    adapt keeps the same ones out of self-training, so its comparisons read images no compared model learnt."""
    picked = random.Random(seed).sample(range(len(paths)), min(n, len(paths)))
    return [paths[i] for i in sorted(picked)]


def open_image(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image at `path`, fully decoded (RGB); UnreadableImage, naming it, for a file that is not an image,
    is truncated, or has more than `max_pixels` pixels (checked from its header, before decoding)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise UnreadableImage(f"{path}: {w}x{h} pixels is more than the {max_pixels:,} allowed")
            return im.convert("RGB")
    except UnreadableImage:
        raise
    except Image.DecompressionBombError:
        raise UnreadableImage(f"{path}: too many pixels (a decompression bomb?)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # Pillow's kinds of "cannot decode this"
        raise UnreadableImage(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def check_apart(pool: Path, out: Path, param: str = "out") -> None:
    """BadInput when the output folder `out` is the pool or inside it: what is written there (labelled images,
    a fitted style's sheet, a dataset, training plots) would then be read as the pool's captchas."""
    if out.resolve() == pool.resolve():
        raise BadInput(f"`{param}` {out} is the pool itself; give another folder", param=param)
    if pool.resolve() in out.resolve().parents:
        raise BadInput(f"`{param}` {out} is inside the pool {pool}: what is written there would be read as the "
                       "pool's captchas (by `train --unlabeled` too); put it beside the pool", param=param)  # fmt: skip
