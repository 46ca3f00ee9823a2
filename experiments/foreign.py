"""Third-party captcha generators, installed for the experiments only (`pip install -e ".[bench]"`): labelled
stand-ins for captchas nobody here drew. Each image is a function of (generator, seed, index), so a set is
reproducible and is extended by making only the images it lacks.

- multicolor: multicolorcaptcha, 4 characters (A-Z, 0-9) each on its own coloured square, rotated up to 55
  degrees, crossed by lines and circles, in a band across a 640x360 image with black margins.
- wheezy: wheezy.captcha as its documentation sets it up: 4 characters (A-Z, 0-9) in blue on a pale
  background, each warped, rotated and offset, squeezed together, a curve and noise over them, smoothed;
  200x75. Its fonts are the caller's: Debian's DejaVu Serif Bold and Sans Mono Bold here.
- simple: flask-simple-captcha with digits on: 6 characters (A-Z, 2-9 less look-alikes) in white on black,
  each in its own slot at a random height, crossed by lines and ellipses, in its own Roboto Mono fonts.
- gvcode, kaptcha (held out: measured on, never looked at while designing styles or recipes): two small
  PyPI generators at their defaults, both cases and digits.
- claptcha (unseen: added for issue 39's study after every design decision it measures was made; measured
  only): claptcha 0.3.3, 5 characters (A-Z, 0-9) in black, each morphed, one morphed line, white noise 0.3,
  200x80, in Debian's DejaVu Serif (its font is the caller's). Pillow 10 removed the `getsize` it calls:
  it is given back here as Pillow 9 defined it, from getbbox.
- easycaptcha (unseen, the second: added for issue 39's study after every design decision it measures was
  made; measured only): easy-captcha-python 1.0.0 (a port of the Java EasyCaptcha) at its PNG defaults: 5
  characters of its 54 (2-9, both cases less I, L, O and their lower case) in a colour each, 130x48, in its
  own first font, two circles and a curve. It draws from `secrets`: a seeded generator stands in for it.

    python -m experiments.foreign wheezy --n 2000 --seed 2 --out bench-out/wheezy/train
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from captchagen import atomic

ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core

Render = Callable[[int, int], tuple[str, bytes]]  # (seed, index) -> (label, PNG bytes)

# What a user would know of each generator: its alphabet (an adapt preset) and label length.
KNOWN = {
    "wheezy": ("upper-digits", "4"),
    "simple": ("upper-digits", "6"),
    "multicolor": ("upper-digits", "4"),
    "gvcode": ("alnum", "5"),
    "kaptcha": ("alnum", "4"),
    "claptcha": ("upper-digits", "5"),
    "easycaptcha": ("23456789ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz", "5"),
}


def _needs(module: str) -> None:
    sys.exit(f'experiments.foreign needs {module}: pip install -e ".[bench]"')


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def _multicolor() -> Render:
    from experiments.common import generator, render

    gen = generator(2)  # 640x360
    return lambda seed, index: render(gen, seed, index)


def _wheezy() -> Render:
    try:
        from wheezy.captcha import image as w
    except ImportError:
        _needs("wheezy.captcha")
    fonts = [str(DEJAVU / "DejaVuSerif-Bold.ttf"), str(DEJAVU / "DejaVuSansMono-Bold.ttf")]
    if not all(Path(f).exists() for f in fonts):
        sys.exit(f"the wheezy set draws in Debian's DejaVu fonts: apt-get install fonts-dejavu-core ({fonts[0]})")
    draw = w.captcha(
        drawings=[
            w.background(),
            w.text(fonts=fonts, drawings=[w.warp(), w.rotate(), w.offset()]),
            w.curve(),
            w.noise(),
            w.smooth(),
        ]
    )

    def render(seed: int, index: int) -> tuple[str, bytes]:
        rng = random.Random(f"wheezy:{seed}:{index}")
        label = "".join(rng.choice(ALPHANUMERIC) for _ in range(4))
        random.seed(f"wheezy-draw:{seed}:{index}")  # the library draws from the `random` module
        return label, _png(draw(list(label)))

    return render


def _simple() -> Render:
    try:
        from flask_simple_captcha import CAPTCHA
    except ImportError:
        _needs("flask-simple-captcha")
    warnings.filterwarnings("ignore", message="The HMAC key")  # its JWT of the answer, unused here
    gen = CAPTCHA({"CAPTCHA_DIGITS": True, "CAPTCHA_IMG_FORMAT": "PNG"})
    gen.characters = tuple(sorted(gen.characters))  # it keeps them in a set: an order that changes per process
    gen.fonts = sorted(gen.fonts, key=lambda f: f.path)

    def render(seed: int, index: int) -> tuple[str, bytes]:
        random.seed(f"simple:{seed}:{index}")  # the library draws from the `random` module
        made = gen.create(digits=False)  # its digits are in `characters` already; added again, in a set's order
        return made["text"], base64.b64decode(made["img"])

    return render


def _gvcode() -> Render:
    try:
        from gvcode import VFCode
    except ImportError:
        _needs("gvcode")

    def render(seed: int, index: int) -> tuple[str, bytes]:
        random.seed(f"gvcode:{seed}:{index}")  # the library draws from the `random` module
        code = VFCode()  # its defaults: 200x80, Arial, 5 letters and digits in 7 colours, lines
        code.generate_mix()
        return code.code, _png(code._img)

    return render


def _kaptcha() -> Render:
    try:
        from kaptcha import Captcha
    except ImportError:
        _needs("kaptcha")
    # Its painter's default size, 260x125: at Captcha's own 200x80 a chip may get a negative height, which
    # Pillow refuses. Four fonts, coloured chips and lines, JPEG.
    gen = Captcha(width=260, height=125, imageObj=True)

    def render(seed: int, index: int) -> tuple[str, bytes]:
        random.seed(f"kaptcha:{seed}:{index}")  # the library draws from the `random` module
        label, image = gen.letter_digit()
        buf = io.BytesIO()
        image.save(buf, format="JPEG")  # as the library encodes it (it returns the image before encoding)
        return label, _png(Image.open(io.BytesIO(buf.getvalue())))

    return render


def _claptcha() -> Render:
    try:
        from claptcha import Claptcha
    except ImportError:
        _needs("claptcha")
    from PIL import ImageFont

    if not hasattr(ImageFont.FreeTypeFont, "getsize"):  # Pillow < 10: (right, bottom) of the text's box

        def getsize(font: ImageFont.FreeTypeFont, text: str) -> tuple[int, int]:
            left, top, right, bottom = font.getbbox(text)
            return int(right), int(bottom)

        ImageFont.FreeTypeFont.getsize = getsize  # type: ignore[attr-defined]
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    state = {"text": ""}
    gen = Claptcha(lambda: state["text"], "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", noise=0.3)

    def render(seed: int, index: int) -> tuple[str, bytes]:
        random.seed(f"claptcha:{seed}:{index}")  # the library draws from the `random` module
        state["text"] = "".join(random.choice(chars) for _ in range(5))
        text, image = gen.image
        return text, _png(image)

    return render


def _easycaptcha() -> Render:
    try:
        from easy_captcha import SpecCaptcha
        from easy_captcha.base import randoms
    except ImportError:
        _needs("easy-captcha-python")

    class Seeded:
        """What the library asks of `secrets`, from a seeded generator."""

        def __init__(self) -> None:
            self.rng = random.Random()

        def randbelow(self, n: int) -> int:
            return self.rng.randrange(n)

    seeded = Seeded()
    randoms.secrets = seeded  # type: ignore[assignment]

    def render(seed: int, index: int) -> tuple[str, bytes]:
        seeded.rng.seed(f"easycaptcha:{seed}:{index}")
        gen = SpecCaptcha()  # 130x48, 5 characters, its first font
        buf = io.BytesIO()
        if not gen.out(buf):
            raise RuntimeError(f"easy-captcha-python drew nothing for image {index}")
        return gen.text(), buf.getvalue()

    return render


# multicolor, wheezy and simple are the development generators; gvcode and kaptcha are held out: never
# used to design a style, a font list or a recipe, only to measure (issue 32); claptcha and easycaptcha are
# unseen (issue 39).
GENERATORS: dict[str, Callable[[], Render]] = {
    "multicolor": _multicolor,
    "wheezy": _wheezy,
    "simple": _simple,
    "gvcode": _gvcode,
    "kaptcha": _kaptcha,
    "claptcha": _claptcha,
    "easycaptcha": _easycaptcha,
}


def make(name: str, n: int, seed: int, out: Path) -> Path:
    """Images 0 to `n - 1` of generator `name`'s set `seed` in `out`, as <index>_<label>.png; those already
    there are kept (they are the same)."""
    out.mkdir(parents=True, exist_ok=True)
    have = {p.name.split("_", 1)[0] for p in out.glob("*.png")}
    render = GENERATORS[name]()
    for i in range(n):
        if f"{i:06d}" not in have:
            label, png = render(seed, i)
            atomic.write_bytes(out / f"{i:06d}_{label}.png", png)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("generator", choices=sorted(GENERATORS))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(make(args.generator, args.n, args.seed, args.out))


if __name__ == "__main__":
    main()
