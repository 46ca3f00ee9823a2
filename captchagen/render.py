"""Seeded captcha rendering: each image is a pure function of (settings, seed, index).

captcha 0.7 draws all of its randomness from the `secrets` module, so seeding `random` changes nothing.
While an image is rendered we put a stand-in for `secrets` into `captcha.image`, backed by a
`random.Random` seeded from the dataset seed and the image index. Every image is then reproducible on its
own, whichever worker renders it and however often a run was interrupted. The swap touches a module
global, so one process renders one image at a time (we render in processes, not threads).
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import captcha
import captcha.image
from captcha.image import ImageCaptcha

from captchagen.config import Resolved

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


class Renderer:
    """Renders images of one dataset. Fonts are loaded once, so keep one Renderer per process."""

    def __init__(self, resolved: Resolved) -> None:
        c = resolved.config
        self.config = c
        self.chars = resolved.alphabet.chars
        self.captcha = ImageCaptcha(c.width, c.height, fonts=resolved.font_paths, font_sizes=c.font_sizes)

    def label(self, index: int) -> tuple[random.Random, str]:
        """The image's generator (positioned after the label draws) and its label."""
        rng = image_rng(self.config.seed, index)
        return rng, sample_label(rng, self.chars, self.config.min_len, self.config.max_len)

    def render(self, rng: random.Random, label: str) -> bytes:
        """PNG bytes of `label`, drawn with the randomness of `rng`."""
        with seeded_captcha(rng):
            image = self.captcha.generate_image(label)
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=self.config.png_compression)
        return buf.getvalue()

    def image(self, index: int) -> tuple[str, bytes]:
        """Label and PNG bytes of image `index`."""
        rng, label = self.label(index)
        return label, self.render(rng, label)
