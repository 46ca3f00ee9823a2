"""What the experiments share: running captchagen, scoring a model, and stand-in "real" captchas.

Stand-in "real" captchas are labelled images from a generator that is not the `captcha` library.

multicolorcaptcha (PyPI, installed for benchmarks only: `pip install -e ".[bench]"`) draws 4 characters
(A-Z, 0-9), each on its own coloured square, rotated up to 55 degrees and crossed by lines and circles, in
a band across a 16:9 image with black margins. Nothing of captchagen drew them. Each image is seeded by
(seed, index), so a set is reproducible.

    python -m experiments.common --n 1000 --seed 1 --out data/foreign-test
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from captchagen import atomic
from captchagen.adapt.runner import run_captchagen

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def machine() -> dict[str, object]:
    """The cores and the load a row was measured under (a study states its machine's load)."""
    return {"cpus": os.cpu_count(), "load1": round(os.getloadavg()[0], 2)}


def report(row: dict, results: Path | None, hidden: tuple[str, ...] = ()) -> None:
    """Print `row` as one JSON line (without the `hidden` keys, long lists kept for the file) and append it
    whole to `results`, if given."""
    print(json.dumps({k: v for k, v in row.items() if k not in hidden}), flush=True)
    if results is not None:
        with open(results, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def captchagen(*args: str, capture: bool = False) -> str:
    """Run `captchagen ARGS` in a process of its own (adapt's runner: Ctrl-C stops it and waits for its save),
    printing the command; its stdout if `capture`. CalledProcessError if it fails."""
    print("+ captchagen", " ".join(args), flush=True)
    with tempfile.TemporaryFile("w+") as out:
        code = run_captchagen(args, stdout=out if capture else None)
        if code:
            raise subprocess.CalledProcessError(code, ["captchagen", *args])
        out.seek(0)
        return out.read() if capture else ""


def eval_scores(images: Path, model: Path, cache_dir: Path) -> dict:
    """`captchagen eval --json` of `model` on `images`: seq_accuracy, cer, ..."""
    printed = captchagen(
        "eval", str(images), "--model", str(model), "--worst", "0", "--json", "--cache-dir", str(cache_dir),
        capture=True,
    )  # fmt: skip
    return json.loads(printed)


def generator(size: int = 0):  # a multicolorcaptcha CaptchaGenerator (a bench-only dependency, so untyped)
    """multicolorcaptcha's generator at `size` (its size number; 0: 256x144)."""
    try:
        from multicolorcaptcha import CaptchaGenerator
    except ImportError:
        sys.exit('experiments.common needs multicolorcaptcha: pip install -e ".[bench]"')
    return CaptchaGenerator(size)


def font_files() -> list[str]:
    """The font files multicolorcaptcha draws with (only its .ttf ones), sorted: for a styled set in its fonts."""
    return sorted(generator().l_fonts)


def render(gen, seed: int, index: int, level: int = 2) -> tuple[str, bytes]:
    """Label and PNG bytes of image `index` of the set made with `seed`: a function of (seed, index) alone."""
    random.seed(f"foreign:{seed}:{index}")  # the library draws from the `random` module
    captcha = gen.gen_captcha_image(difficult_level=level, chars_mode="ascii", multicolor=True)
    buf = io.BytesIO()
    captcha.image.convert("RGB").save(buf, format="PNG")
    return captcha.characters, buf.getvalue()


def make(n: int, seed: int, out: Path, size: int = 0, level: int = 2, start: int = 0) -> Path:
    """Images `start` to `n - 1`, named <index>_<label>.png, in `out`; `size` is multicolorcaptcha's size number
    (0: 256x144). Image i depends only on (seed, i), so a set is extended by making the images it lacks."""
    gen = generator(size)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(start, n):
        label, png = render(gen, seed, i, level)
        atomic.write_bytes(out / f"{i:06d}_{label}.png", png)
    return out


def ensure(n: int, seed: int, out: Path, size: int = 0) -> Path:
    """`out` holding images 0 to `n - 1`: those it lacks are made, those it has are kept (they are the same)."""
    have = len(list(out.glob("*.png"))) if out.exists() else 0
    return make(n, seed, out, size, start=have) if have < n else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=0, help="multicolorcaptcha size number: 0 is 256x144, 2 640x360")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(make(args.n, args.seed, args.out, args.size))


if __name__ == "__main__":
    main()
