"""Which distance between a style and a pool foretells reading (issue 40, item 1)? Per generator, candidate
styles are each rendered, fine-tuned on and read with; then each distance's Spearman rank correlation with
the held-out reading says whether it ranks the styles as reading does (-1: the nearer, the better read).

Candidates per generator: the automatic fit (WORK/GEN/adapt/fit, as adapt_study left it, or fitted here),
the style tuned on `tune-style`'s page where there is one (WORK/GEN/tuned), and the presets default, clean,
heavy, colour, photocopy and varied in the bundled fonts. For each: `make --n N` at the pool's size in
that style, `train --init-from base-v3 --epochs E` (fixed work: a busy machine slows it, it does not change
it), the fine-tuned model read on the 1,000 held-out images (seed 1) under the generator's length.

Distances, each between the pool's sample (200 images) and the first 200 images of the candidate's set:
- stats: fit-style's own (captchagen.fitting.features: colours, edges, ink, strokes, spectrum);
- cnn: base-v3's convolutional features (the columns the LSTM reads, averaged over the width), each
  dimension's gap in mean and (half weight) spread over the pool's spread, averaged: a reader's view;
- lstm: the same over base-v3's LSTM outputs (what the CTC head reads).

    python -m experiments.style_objective --work /tmp/ts --generators kaptcha,claptcha,wheezy,simple
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captchagen.alphabet import expand
from captchagen.fitting.features import distance, summarise
from captchagen.fitting.pool_fit import open_pool, pool_images, read_record
from captchagen.fitting.search import Settings
from captchagen.fonts import bundled_fonts
from experiments.adapt_study import ours, pool
from experiments.common import captchagen, machine, report
from experiments.foreign import KNOWN, make
from experiments.zero_shot import score

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "studies" / "results" / "style_objective.jsonl"
PRESET_CANDIDATES = ("default", "clean", "heavy", "colour", "photocopy", "varied")


def candidates(w: Path) -> dict[str, tuple[str, list[str]]]:
    """{name: (style spec, font files)}: the fit, the tuned style if any, the presets in the bundled fonts."""
    fit = read_record(w / "adapt" / "fit")
    assert fit is not None, f"no fit in {w / 'adapt' / 'fit'}"
    out = {"fitted": (str(w / "adapt" / "fit" / "style.toml"), [f.path for f in fit.fonts])}
    if (w / "tuned" / "tune.json").is_file():
        tuned = json.loads((w / "tuned" / "tune.json").read_text())
        out["tuned"] = (
            str(w / "tuned" / "style.toml"),
            [str(w / "tuned" / "fonts" / f["file"]) for f in tuned["fonts"]],
        )
    bundled = [str(f) for f in bundled_fonts()]
    out |= {name: (name, bundled) for name in PRESET_CANDIDATES}
    return out


class ReaderFeatures:
    """base-v3's view of images: per image, the mean over the columns of its CNN features and of its LSTM
    outputs."""

    def __init__(self) -> None:
        from trainer import bundled
        from trainer.inference.reader import Reader

        self.reader = Reader(bundled.named("base-v3"))
        net = self.reader.net.model
        self.seen: dict[str, torch.Tensor] = {}
        net.proj.register_forward_hook(lambda m, args, out: self.seen.__setitem__("cnn", args[0].mean(0)))
        net.rnn.register_forward_hook(lambda m, args, out: self.seen.__setitem__("lstm", out[0].mean(0)))

    def __call__(self, images: list) -> dict[str, np.ndarray]:
        from trainer.data.preprocess import to_array

        arrays = np.stack([to_array(im, self.reader.pre) for im in images])
        got: dict[str, list[np.ndarray]] = {"cnn": [], "lstm": []}
        for i in range(0, len(arrays), 64):
            self.reader.logits(arrays[i : i + 64])
            for k in got:
                got[k].append(self.seen[k].float().numpy())  # [N, C*H'] and [N, 2*hidden]
        return {k: np.concatenate(v) for k, v in got.items()}


def feature_distance(pool: np.ndarray, other: np.ndarray) -> float:
    """fit-style's rule on another space: per dimension |mean gap| + half |spread gap|, over the pool's spread
    plus a floor, averaged."""
    scale = pool.std(0) + 0.02 + 0.1 * np.abs(pool.mean(0))
    gap = np.abs(pool.mean(0) - other.mean(0)) + 0.5 * np.abs(pool.std(0) - other.std(0))
    return float(np.mean(gap / scale))


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (ties share their mean rank)."""

    def ranks(v: list[float]) -> np.ndarray:
        a = np.asarray(v, dtype=float)
        order = a.argsort(kind="stable")
        r = np.empty(len(a))
        r[order] = np.arange(len(a), dtype=float)
        for value in np.unique(a):
            r[a == value] = r[a == value].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--generators", default="kaptcha,claptcha,wheezy,simple")
    parser.add_argument("--n", type=int, default=3000, help="synthetic images per candidate")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    features = ReaderFeatures()
    for gen in args.generators.split(","):
        w = args.work / gen
        alphabet, length = KNOWN[gen]
        chars = expand(alphabet)
        unlabelled = pool(gen, 3000, w)
        test = sorted(make(gen, 1000, 1, w / "test").glob("*.png"))[:1000]
        if read_record(w / "adapt" / "fit") is None:
            captchagen("fit-style", str(unlabelled), "--out", str(w / "adapt" / "fit"), "--alphabet", alphabet,
                       "--length", length, "--rounds", "24", "--seed", "0")  # fmt: skip
        sample = open_pool(unlabelled, 200, 0)
        pool_ims = pool_images(sample)
        target, target_reader = summarise(pool_ims), features(pool_ims)
        s = Settings(alphabet=chars, min_len=int(length), max_len=int(length), width=sample.size[0],
                     height=sample.size[1])  # fmt: skip
        rows = []
        for name, (spec, fonts) in candidates(w).items():
            data, runs = w / "objective" / name, w / "objective" / "runs"
            if not (data / "manifest.json").is_file():
                captchagen("make", "--n", str(args.n), "--style", spec, *[a for f in fonts for a in ("--font", f)],
                           "--width", str(s.width), "--height", str(s.height), "--alphabet", alphabet, "--length",
                           length, "--seed", "0", "--out", str(data))  # fmt: skip
            if not (runs / name / "best.pt").is_file():
                captchagen("train", str(data), "--init-from", "base-v3", "--epochs", str(args.epochs), "--seed", "0",
                           "--name", name, "--runs-dir", str(runs))  # fmt: skip
            # The distances over 200 of the images fine-tuning saw (a `randomize` style draws a style per
            # image in `make`, which fit-style's own renderer does not).
            rendered = [Image.open(p).convert("RGB") for p in sorted(data.glob("shard-*/*.png"))[:200]]
            seen = features(rendered)
            figures, _ = score(ours(runs / name / "best.pt", gen), test)
            row = {"generator": gen, "candidate": name, "stats": round(distance(target, summarise(rendered)), 4),
                   "cnn": round(feature_distance(target_reader["cnn"], seen["cnn"]), 4),
                   "lstm": round(feature_distance(target_reader["lstm"], seen["lstm"]), 4),
                   "exact": figures["exact"], "ignoring_case": figures["ignoring_case"], "n": args.n,
                   "epochs": args.epochs, **machine()}  # fmt: skip
            report(row, args.results)
            rows.append(row)
        read = [r["ignoring_case"] for r in rows]
        rho = {f"spearman_{k}": round(spearman([r[k] for r in rows], read), 3) for k in ("stats", "cnn", "lstm")}
        summary = {"generator": gen, "candidates": len(rows), **rho}
        report(summary, args.results)


if __name__ == "__main__":
    main()
