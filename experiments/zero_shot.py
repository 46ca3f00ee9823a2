"""Zero-shot reading of third-party captchas: our models against ddddocr, on the same images, no training.

For each generator (experiments/foreign.py) it makes `--test` images (seed 1: the held-out sets of the other
experiments, never trained on here or used to design a style) and reads them with ddddocr (PyPI, a
bench-only dependency) and with each `--models` model (a .pt, a run folder, or a bundled model's name:
`base`, `base-v2`), each restricted to the
generator's alphabet (`--reads`, as `eval --reads` does). It prints sequence accuracy exact and ignoring
case, the character error rate, and ms/image, and appends every row to `--results`.

    python -m experiments.zero_shot --models base,base-v2 --generators multicolor,wheezy,simple
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from experiments.foreign import ALPHANUMERIC, make

BOTH_CASES = ALPHANUMERIC + "abcdefghijklmnopqrstuvwxyz"
# Each generator's characters: what our models may read (`--reads`).
READS = {"multicolor": ALPHANUMERIC, "wheezy": ALPHANUMERIC, "simple": ALPHANUMERIC, "gvcode": BOTH_CASES,
         "kaptcha": BOTH_CASES, "claptcha": ALPHANUMERIC,
         "easycaptcha": "23456789ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz"}  # fmt: skip


def _ddddocr():
    try:
        import ddddocr
    except ImportError:
        sys.exit('experiments.zero_shot needs ddddocr: pip install -e ".[bench]"')
    ocr = ddddocr.DdddOcr(show_ad=False)
    return lambda paths: [ocr.classification(Path(p).read_bytes()) for p in paths]


def _ours(model: str, reads: str):
    from trainer import bundled
    from trainer.inference.reader import Reader

    path = bundled.named(model) or Path(model)
    reader = Reader(path / "best.pt" if path.is_dir() else path)
    reader.restrict(reads)
    return lambda paths: [p.text or "" for p in reader.read_paths([str(p) for p in paths])]


def score(read, paths: list[Path]) -> tuple[dict, list[str]]:
    """The figures of one reader on `paths`, and what it read in each."""
    labels = [p.stem.split("_", 1)[1] for p in paths]
    started = time.perf_counter()
    texts = read(paths)
    ms = 1000 * (time.perf_counter() - started) / len(paths)
    exact = sum(t == y for t, y in zip(texts, labels, strict=True))
    nocase = sum(t.upper() == y.upper() for t, y in zip(texts, labels, strict=True))
    errors = sum(Levenshtein.distance(t.upper(), y.upper()) for t, y in zip(texts, labels, strict=True))
    figures = {"exact": exact / len(paths), "ignoring_case": nocase / len(paths),
               "cer": errors / sum(map(len, labels)), "ms_per_image": round(ms, 2), "images": len(paths)}  # fmt: skip
    return figures, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/zero-shot"))
    parser.add_argument("--generators", default="multicolor,wheezy,simple")
    parser.add_argument("--models", default="base,base-v2", help="comma-separated: .pt files, run folders, base...")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--no-ddddocr", action="store_true")
    parser.add_argument("--results", type=Path, help="append each row as a JSON line here")
    parser.add_argument("--figure", type=Path, help="a PNG of the first images of each generator and what each read")
    parser.add_argument("--per-generator", type=int, default=4, help="images of each generator in the figure")
    args = parser.parse_args()
    readers = [] if args.no_ddddocr else [("ddddocr", lambda reads: _ddddocr())]
    readers += [(m, lambda reads, m=m: _ours(m, reads)) for m in args.models.split(",") if m]
    print(f"{'generator':<12}{'reader':<40}{'exact':>8}{'no case':>9}{'CER':>8}{'ms/img':>8}")
    cells = []
    for gen in args.generators.split(","):
        paths = sorted(make(gen, args.test, 1, args.work / gen).glob("*.png"))[: args.test]
        shown = paths[: args.per_generator]
        captions: list[list[tuple[str, str]]] = [[(f"{gen}: {p.stem.split('_', 1)[1]}", "black")] for p in shown]
        for name, build in readers:
            figures, texts = score(build(READS[gen]), paths)
            row = {"generator": gen, "reader": name, **figures}
            for caption, p, text in zip(captions, shown, texts, strict=False):
                right = text.upper() == p.stem.split("_", 1)[1].upper()
                caption.append((f"{Path(name).parent.name or name}: {text}", "green" if right else "red"))
            print(f"{gen:<12}{name:<40}{row['exact']:>8.1%}{row['ignoring_case']:>9.1%}{row['cer']:>8.1%}"
                  f"{row['ms_per_image']:>8.1f}", flush=True)  # fmt: skip
            if args.results:
                with args.results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
        cells += list(zip(shown, captions, strict=True))
    if args.figure:
        from captchagen.preview import write_grid

        print(write_grid(cells, args.figure, columns=args.per_generator))


if __name__ == "__main__":
    main()
