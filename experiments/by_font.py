"""Which of the real captchas' fonts a model reads: character accuracy on the curve's test set, by font.

multicolorcaptcha draws each character in one of its 44 .ttf font files, picked at random. Replaying its
generator with the seed of each test image (experiments/common.py) tells which font drew each character; a
replayed image must have the test file's exact bytes, or the script stops (the attribution would be
wrong). The model reads the test set (`--read`: the same files cut to the band, for a model trained
without a crop of its own), and each true character counts as read when the edit-distance alignment of
truth and reading keeps it. Prints a table, font by font, then two more by what else makes a character
hard to read: the share of its glyph left inside its square (the rest is cut off at the square's edges,
where the glyph is drawn big or rotated past them) and the contrast ratio of its colour to its square's.
Writes them as JSON with `--json-out`.

    python -m experiments.by_font bench-out/curve6/runs/n200-d/best.pt bench-out/curve6/real-test
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageDraw
from rapidfuzz.distance import Levenshtein

from captchagen import atomic
from experiments import common as foreign
from trainer.inference.reader import Reader
from trainer.inference.scoring import score_dataset

FAINT = 0.2  # a font the model reads fewer than this share of characters in is "hardly read"
ROTATION = (-55, 55)  # multicolorcaptcha's rotation range: the randint draw that rotates a character's square
INSIDE = [0, 0.5, 0.7, 0.8, 0.9, 1.01]  # bucket edges of the share of a glyph left inside its square
CONTRAST = [1, 1.5, 2, 3, 4.5, 7, 21.01]  # of the WCAG contrast ratio (4.5: the guideline for body text)


@dataclass(frozen=True)
class Drawn:
    """How multicolorcaptcha drew one character."""

    font: str  # the font file's stem
    inside: float  # the share of the glyph's ink left inside its square (the rest is cut off at its edges)
    contrast: float  # WCAG contrast ratio of the text colour to its square's colour, 1 (none) to 21


def _luminance(rgb: tuple[int, ...]) -> float:
    c = np.asarray(rgb[:3], dtype=float) / 255
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def _inside(size: tuple[int, int], pos: tuple[int, int], char: str, font, angle: int) -> float:
    """The share of `char`'s ink drawn at `pos` that stays in a square of `size` rotated by `angle`,
    as multicolorcaptcha rotates it (about its centre, without growing it)."""
    w, h = size
    free = Image.new("L", (3 * w, 3 * h))
    ImageDraw.Draw(free).text((w + pos[0], h + pos[1]), char, fill=255, font=font)
    square = Image.new("L", size)
    ImageDraw.Draw(square).text(pos, char, fill=255, font=font)
    ink = np.count_nonzero(np.asarray(free) > 127)
    return np.count_nonzero(np.asarray(square.rotate(angle)) > 127) / max(ink, 1)


def drawn_of(test: Path, seed: int, size: int) -> dict[str, list[Drawn]]:
    """File name -> how each of its characters was drawn, by replaying experiments/common.py's make with spies on
    the generator's font, character and rotation draws (each spy draws exactly what it replaces)."""
    from multicolorcaptcha import _generator  # the module whose `randint` draws the rotation

    gen = foreign.generator(size)
    fonts: list[str] = []
    chars: list[tuple] = []
    angles: list[int] = []
    pick_font, make_char, randint = gen.gen_rand_font, gen.create_image_char, _generator.randint

    def font_spy(files: list[str]) -> str:
        font = pick_font(files)
        fonts.append(Path(font).stem)
        return font

    def char_spy(square, background, char, colour, pos, font):  # the library's arguments, untyped
        chars.append((square, ImageColor.getrgb(background), ImageColor.getrgb(colour), pos, char, font))
        return make_char(square, background, char, colour, pos, font)

    def randint_spy(lo: int, hi: int) -> int:
        value = randint(lo, hi)
        if (lo, hi) == ROTATION:
            angles.append(value)
        return value

    gen.gen_rand_font, gen.create_image_char, _generator.randint = font_spy, char_spy, randint_spy
    out = {}
    try:
        for path in sorted(test.glob("*.png")):
            for drawn_so_far in (fonts, chars, angles):
                drawn_so_far.clear()
            _, png = foreign.render(gen, seed, int(path.stem.split("_", 1)[0]))
            if png != path.read_bytes():
                sys.exit(
                    f"{path}: not the image seed {seed} and size {size} make; give the --seed and --size it was "
                    "made with"
                )
            out[path.name] = [
                Drawn(font, _inside(square, pos, char, f, angle), _contrast(background, colour))
                for font, (square, background, colour, pos, char, f), angle in zip(fonts, chars, angles, strict=True)
            ]
    finally:
        _generator.randint = randint
    return out


def _contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)))
    return (lb + 0.05) / (la + 0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a checkpoint (.pt) or exported model")
    parser.add_argument("test", type=Path, help="the test set experiments/common.py made")
    parser.add_argument("--read", type=Path, help="the folder of the same files to read (default: TEST)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=2, help="multicolorcaptcha size number it was made with")
    parser.add_argument("--cache-dir", type=Path, default=Path("bench-out/cache"))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    drawn = drawn_of(args.test, args.seed, args.size)
    scored, _ = score_dataset(Reader(args.model), args.read or args.test, args.cache_dir)
    accuracy = sum(s.correct for s in scored) / len(scored)
    drawn_in = [drawn[Path(s.path).name] for s in scored]  # each captcha's characters, in the order of `scored`
    chars: list[tuple[Drawn, bool]] = []  # every character of the test set, and whether the model read it
    for s, its_chars in zip(scored, drawn_in, strict=True):
        missed = {op.src_pos for op in Levenshtein.editops(s.truth, s.text) if op.tag != "insert"}
        chars += [(d, i not in missed) for i, d in enumerate(its_chars)]
    seen = Counter(d.font for d, _ in chars)
    read = Counter(d.font for d, ok in chars if ok)
    rows = sorted(
        ({"font": f, "characters": seen[f], "read": read[f] / seen[f]} for f in seen), key=lambda r: r["read"]
    )
    print(f"{args.model}: {accuracy:.1%} of {len(scored)} captchas read\n")
    print("| font | characters | read |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['font']} | {r['characters']} | {r['read']:.0%} |")
    faint = [r for r in rows if r["read"] < FAINT]
    share = sum(r["characters"] for r in faint) / len(chars)
    faint_fonts = {r["font"] for r in faint}
    every = sum(faint_fonts.isdisjoint(d.font for d in its_chars) for its_chars in drawn_in)
    print(
        f"\n{len(faint)} of {len(rows)} fonts are read under {FAINT:.0%}: {share:.0%} of the characters; "
        f"{every} of {len(scored)} captchas have none of them"
    )
    tables = {
        "inside": by_bucket(chars, lambda d: d.inside, INSIDE, "share of the glyph inside its square"),
        "contrast": by_bucket(chars, lambda d: d.contrast, CONTRAST, "contrast ratio to its square"),
    }
    if args.json_out:
        summary = {"model": str(args.model), "seq_accuracy": accuracy, "fonts": rows, **tables}
        atomic.write_bytes(args.json_out, (json.dumps(summary, indent=1) + "\n").encode())


def by_bucket(chars: list[tuple[Drawn, bool]], key, edges: list[float], title: str) -> list[dict]:
    """Characters read, in buckets of `key` between consecutive `edges`; printed as a table and returned."""
    rows = []
    for lo, hi in itertools.pairwise(edges):
        ok = [read for d, read in chars if lo <= key(d) < hi]
        if ok:
            rows.append({"from": lo, "to": hi, "characters": len(ok), "read": sum(ok) / len(ok)})
    print(f"\n| {title} | characters | read |\n|---|---:|---:|")
    for r in rows:
        share = r["characters"] / len(chars)
        print(f"| {r['from']:g} to {r['to']:g} | {r['characters']} ({share:.0%}) | {r['read']:.0%} |")
    return rows


if __name__ == "__main__":
    main()
