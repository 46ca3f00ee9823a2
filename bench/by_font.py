"""Which of the real captchas' fonts a model reads: character accuracy on the curve's test set, by font.

multicolorcaptcha draws each character in one of its 44 .ttf font files, picked at random. Replaying its
generator with the seed of each test image (bench/foreign.py) tells which font drew each character; a
replayed image must have the test file's exact bytes, or the script stops (the attribution would be
wrong). The model reads the test set (`--read`: the same files cut to the band, for a model trained
without a crop of its own), and each true character counts as read when the edit-distance alignment of
truth and reading keeps it. Prints a table, font by font, and writes it as JSON with `--json-out`.

    python bench/by_font.py bench-out/curve6/runs/n200-d/best.pt bench-out/curve6/real-test
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rapidfuzz.distance import Levenshtein  # noqa: E402

from bench import foreign  # noqa: E402
from captchagen import atomic  # noqa: E402
from trainer.inference.reader import Reader  # noqa: E402
from trainer.inference.scoring import score_dataset  # noqa: E402

FAINT = 0.2  # a font the model reads fewer than this share of characters in is "hardly read"


def fonts_of(test: Path, seed: int, size: int) -> dict[str, list[str]]:
    """File name -> the font (file stem) of each of its characters, by replaying bench/foreign.py's make."""
    gen = foreign.generator(size)
    picked: list[str] = []
    pick = gen.gen_rand_font

    def spy(fonts: list[str]) -> str:  # the same draw, recorded
        font = pick(fonts)
        picked.append(Path(font).stem)
        return font

    gen.gen_rand_font = spy
    out = {}
    for path in sorted(test.glob("*.png")):
        picked.clear()
        _, png = foreign.render(gen, seed, int(path.stem.split("_", 1)[0]))
        if png != path.read_bytes():
            sys.exit(
                f"{path}: not the image seed {seed} and size {size} make; give the --seed and --size it was made with"
            )
        out[path.name] = list(picked)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a checkpoint (.pt) or exported model")
    parser.add_argument("test", type=Path, help="the test set bench/foreign.py made")
    parser.add_argument("--read", type=Path, help="the folder of the same files to read (default: TEST)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=2, help="multicolorcaptcha size number it was made with")
    parser.add_argument("--cache-dir", type=Path, default=Path("bench-out/cache"))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    fonts = fonts_of(args.test, args.seed, args.size)
    scored, _ = score_dataset(Reader(args.model), args.read or args.test, args.cache_dir)
    accuracy = sum(s.correct for s in scored) / len(scored)
    drawn_in = [fonts[Path(s.path).name] for s in scored]  # each captcha's fonts, in the order of `scored`
    seen: Counter[str] = Counter()
    read: Counter[str] = Counter()
    for s, its_fonts in zip(scored, drawn_in, strict=True):
        missed = {op.src_pos for op in Levenshtein.editops(s.truth, s.text) if op.tag != "insert"}
        for i, font in enumerate(its_fonts):
            seen[font] += 1
            read[font] += i not in missed
    rows = sorted(
        ({"font": f, "characters": seen[f], "read": read[f] / seen[f]} for f in seen), key=lambda r: r["read"]
    )
    print(f"{args.model}: {accuracy:.1%} of {len(scored)} captchas read\n")
    print("| font | characters | read |\n|---|---:|---:|")
    for r in rows:
        print(f"| {r['font']} | {r['characters']} | {r['read']:.0%} |")
    faint = [r for r in rows if r["read"] < FAINT]
    share = sum(r["characters"] for r in faint) / sum(seen.values())
    faint_fonts = {r["font"] for r in faint}
    every = sum(faint_fonts.isdisjoint(its_fonts) for its_fonts in drawn_in)
    print(
        f"\n{len(faint)} of {len(rows)} fonts are read under {FAINT:.0%}: {share:.0%} of the characters; "
        f"{every} of {len(scored)} captchas have none of them"
    )
    if args.json_out:
        summary = {
            "model": str(args.model),
            "seq_accuracy": accuracy,
            "fonts": rows,
        }
        atomic.write_bytes(args.json_out, (json.dumps(summary, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
