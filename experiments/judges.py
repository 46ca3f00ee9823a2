"""Which label-free judge tells a self-trained model from its start? (issue 39, items 1 and 5)

For each generator of an adapt study's work folder (experiments/adapt_study.py: WORK/GEN/test holds 1,000
labelled held-out images, WORK/GEN/adapt the run), the start (base-v3) and each candidate (adapt's fine-tune
on the fitted style, its self-trained model, and any `--extra GEN:NAME=PATH`) read the held-out images as
if unlabelled, under the generator's characters and length. No candidate trained on them. Per model:

- estimate: what `compare` ranks by (mean confidence x the share read alike in shifted views);
- atc: average thresholded confidence (Garg et al., ICLR 2022): the share of images read at a confidence
  above the threshold that, on labelled synthetic images in the fitted style (500, seed 99, made here), is
  exceeded as often as the model is right there. It corrects a model's own calibration, as measured on
  images with labels;
- keeps: of the start's sure readings (confidence >= 0.9; the start never saw the pool, so its confidence
  there is close to calibrated), the share this model reads the same: a model better than its start should
  rarely contradict it where the start is almost surely right; `sure_right` is the start's own precision
  there (from the labels: what `keeps` should come near);
- truth: exact accuracy, from the file names.

One JSON row per model is printed, and appended to --results.

    python -m experiments.judges --work /tmp/ts --generators claptcha,simple \\
      --extra claptcha:adapted-learnt-all=/tmp/ts/claptcha/adapted-learnt-all/best.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from experiments.common import captchagen, machine, report
from experiments.foreign import KNOWN
from experiments.zero_shot import READS

SURE = 0.9  # the start's readings at or above this confidence are the ones `keeps` checks


def calibration_set(out: Path, gen: str) -> list[Path]:
    """500 labelled images in the style adapt fitted to the generator's pool, at the pool's size."""
    folder = out.parent / "calibration"
    if not (folder / "manifest.json").is_file():
        record = json.loads((out / "fit" / "fit.json").read_text())
        fonts = [a for f in record["fonts"] for a in ("--font", f["path"])]
        width, height = record["size"]
        alphabet, length = KNOWN[gen]
        captchagen("make", "--n", "500", "--style", str(out / "fit" / "style.toml"), *fonts, "--width", str(width),
                   "--height", str(height), "--alphabet", alphabet, "--min-len", length, "--max-len", length,
                   "--seed", "99", "--out", str(folder), capture=True)  # fmt: skip
    return sorted(folder.glob("shard-*/*.png"))


def label(p: Path) -> str:
    return p.stem.split("_", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--generators", default="claptcha")
    parser.add_argument("--extra", action="append", default=[], metavar="GEN:NAME=PATH")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()

    from trainer import bundled
    from trainer.inference.estimate import read_pool
    from trainer.inference.reader import Reader

    for gen in args.generators.split(","):
        w = args.work / gen
        length = int(KNOWN[gen][1])
        test = sorted((w / "test").glob("*.png"))[:1000]
        calib = calibration_set(w / "adapt", gen)
        models = {"base-v3": "base-v3", "synthetic": str(w / "adapt" / "runs" / "synthetic" / "best.pt"),
                  "adapted": str(w / "adapt" / "runs" / "adapted" / "best.pt")}  # fmt: skip
        models |= {e.split(":", 1)[1].split("=")[0]: e.split("=", 1)[1] for e in args.extra if e.startswith(gen + ":")}
        start_read: tuple[str, ...] = ()
        start_conf = np.zeros(0)
        truth = [label(p) for p in test]
        for name, path in models.items():
            reader = Reader(bundled.named(path) or Path(path))
            reader.restrict(READS[gen])
            reader.read_lengths((length, length))
            e = read_pool(reader, name, [str(p) for p in test])
            right = np.array([a == b for a, b in zip(e.readings, truth, strict=True)])
            cal = reader.read_paths([str(p) for p in calib])
            cal_conf = np.array([c.confidence or 0.0 for c in cal])
            cal_right = np.array([c.text == label(p) for c, p in zip(cal, calib, strict=True)])
            threshold = float(np.quantile(cal_conf, 1 - cal_right.mean())) if cal_right.mean() < 1 else 0.0
            conf = np.asarray(e.confidences)
            if name == "base-v3":
                start_read, start_conf = e.readings, conf
            sure = start_conf >= SURE
            same = np.array([a == b for a, b in zip(e.readings, start_read, strict=True)])
            start_right = np.array([a == b for a, b in zip(start_read, truth, strict=True)])
            row = {"generator": gen, "model": name, "path": path, "images": len(test),
                   "estimate": round(e.estimate, 4), "confidence": round(e.confidence, 4), "views": round(e.views, 4),
                   "atc": round(float((conf > threshold).mean()), 4), "calibration_accuracy": round(float(
                       cal_right.mean()), 4), "sure": int(sure.sum()),
                   "keeps": round(float(same[sure].mean()), 4) if sure.any() else None,
                   "sure_right": round(float(start_right[sure].mean()), 4) if sure.any() else None,
                   "truth": round(float(right.mean()), 4), **machine()}  # fmt: skip
            report(row, args.results)


if __name__ == "__main__":
    main()
