"""Does the style page earn its place (issue 40)? For each generator, after `adapt_study --labels 0 --tuned`:
the automatic fit against the style made on `tune-style`'s page, by distance, by held-out reading of the model
fine-tuned on each style alone (runs/synthetic/best.pt), and by what adapt returned; and a figure of pool,
fitted and tuned captchas.

WORK/GEN holds what adapt_study made (pool/, test/, adapt/, adapt-tuned/) and the page's folder (tuned/);
the fit shown is adapt's own (adapt/fit). Rows are appended to --results, beside the adapt rows in
adapt_rounds.jsonl they repeat.

    python -m experiments.style_page_study --work /tmp/ts --generators kaptcha,claptcha --seconds 101,43 \
      --looks 8,4 --figures docs/images
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from captchagen.alphabet import expand
from captchagen.fitting.pool_fit import open_pool, pool_images, read_record
from captchagen.fitting.search import Settings, render
from captchagen.preview import write_grid
from captchagen.style import load
from experiments.adapt_study import RESULTS as ADAPT_RESULTS
from experiments.adapt_study import ours
from experiments.common import report
from experiments.foreign import KNOWN
from experiments.zero_shot import score

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "studies" / "results" / "style_page.jsonl"


def figure(w: Path, gen: str, out: Path) -> None:
    """Six pool images, six in the fitted style, six in the tuned one (the same labels and draws), small."""
    alphabet, length = KNOWN[gen]
    pool = open_pool(w / "pool", 200, 0)
    s = Settings(alphabet=expand(alphabet), min_len=int(length), max_len=int(length), width=pool.size[0],
                 height=pool.size[1])  # fmt: skip
    fit = read_record(w / "adapt" / "fit")
    assert fit is not None, f"no fit in {w / 'adapt' / 'fit'}"
    fitted = render(load(str(w / "adapt" / "fit" / "style.toml"))[1], [f.path for f in fit.fonts], s, 20_000, 6)
    tuned_record = json.loads((w / "tuned" / "tune.json").read_text())
    fonts = [str(w / "tuned" / "fonts" / f["file"]) for f in tuned_record["fonts"]]
    tuned = render(load(str(w / "tuned" / "style.toml"))[1], fonts, s, 20_000, 6)
    cells = [(im, [("pool", "black")]) for im in pool_images(pool)[:6]]
    cells += [(im, [("fitted", "#b00")]) for im in fitted] + [(im, [("tuned on the page", "blue")]) for im in tuned]
    write_grid(cells, out, columns=6)
    im = Image.open(out).convert("RGB")  # 60% and 128 colours: a figure for the docs, not a dataset
    small = im.resize((im.width * 6 // 10, im.height * 6 // 10), Image.Resampling.LANCZOS)
    small.quantize(128).save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--generators", default="kaptcha,claptcha")
    parser.add_argument("--seconds", default="", help="seconds the tuning took, per generator (as timed)")
    parser.add_argument("--looks", default="", help="looks asked of the page, per generator")
    parser.add_argument("--figures", type=Path, help="write <folder>/tuned-<generator>.png")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    gens = args.generators.split(",")
    seconds = dict(zip(gens, args.seconds.split(","), strict=False))
    looks = dict(zip(gens, args.looks.split(","), strict=False))
    adapt_rows = [json.loads(line) for line in ADAPT_RESULTS.read_text().splitlines()]
    for gen in gens:
        w = args.work / gen
        test = sorted((w / "test").glob("*.png"))[:1000]
        fit = read_record(w / "adapt" / "fit")
        tuned = json.loads((w / "tuned" / "tune.json").read_text())
        for style, run in (("fitted", "adapt"), ("tuned", "adapt-tuned")):
            alone, _ = score(ours(w / run / "runs" / "synthetic" / "best.pt", gen), test)
            # The latest adapt_study row of this run (its command names the run's OUT).
            adapted = [r for r in adapt_rows if r.get("generator") == gen and f"/{run} " in r.get("command", "")][-1]
            row = {"generator": gen, "style": style,
                   "distance": round(fit.distance if style == "fitted" else tuned["distance"], 4),  # type: ignore[union-attr]
                   "floor": round(fit.floor, 4),  # type: ignore[union-attr]
                   "synthetic_alone_exact": alone["exact"], "synthetic_alone_ignoring_case": alone["ignoring_case"],
                   "adapt_exact": adapted["exact"], "adapt_ignoring_case": adapted["ignoring_case"],
                   "adapt_kept": adapted["kept"], "adapt_minutes": adapted["minutes"], "load1": adapted.get("load1"),
                   "images": len(test), "command": adapted["command"]}  # fmt: skip
            if style == "tuned":
                row |= {"tuning_seconds": seconds.get(gen), "looks": looks.get(gen),
                        "fonts": [f["file"] for f in tuned["fonts"]], "style_file": tuned["style"]}  # fmt: skip
            report(row, args.results, hidden=("style_file", "command"))
        if args.figures:
            figure(w, gen, args.figures / f"tuned-{gen}.png")


if __name__ == "__main__":
    main()
