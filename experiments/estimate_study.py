"""Does the label-free pool estimate rank models as their held-out accuracy does? (issue 39, item 1)

For each generator (experiments/foreign.py): every model in `--models` plus the ones given per generator
(`--extra gen=path,...`) reads a seeded sample of an unlabelled pool (`--pool-seed`; file names unused)
with trainer.inference.estimate, and a labelled held-out set of the same generator (`--test-seed`, never
trained on) under the same rule (the generator's characters and length). Prints and appends one row per
(generator, model) with every signal and the truth, then each signal's Spearman rank correlation with the
truth per generator.

    python -m experiments.estimate_study --generators wheezy,simple --extra wheezy=runs/a/best.pt
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from experiments.common import machine, report
from experiments.foreign import make
from experiments.read_constraints import LENGTHS
from experiments.zero_shot import READS

SIGNALS = ("estimate", "confidence", "views", "fits", "peers")


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Rank correlation (average ranks for ties); None when either side is constant."""

    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=v.__getitem__)
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sx = sum((a - mx) ** 2 for a in rx) ** 0.5
    sy = sum((b - my) ** 2 for b in ry) ** 0.5
    if not sx or not sy:
        return None
    return sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True)) / (sx * sy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="base,base-v2,base-v3")
    parser.add_argument("--extra", action="append", default=[], metavar="GEN=PATH[,PATH]")
    parser.add_argument("--generators", default="wheezy,simple")
    parser.add_argument("--sample", type=int, default=256)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--pool-seed", type=int, default=8)
    parser.add_argument("--test-seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=Path("bench-out/estimate"))
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()

    from captchagen.codec import image_files
    from trainer.inference.estimate import compare
    from trainer.inference.reader import Reader
    from trainer.inference.scoring import score_dataset
    from trainer.runs import resolve_model

    extra: dict[str, list[str]] = {}
    for item in args.extra:
        gen, _, paths = item.partition("=")
        extra.setdefault(gen, []).extend(paths.split(","))
    for generator in args.generators.split(","):
        pool = make(generator, max(args.sample, 2000), args.pool_seed, args.data / f"pool-{generator}")
        test = make(generator, args.test, args.test_seed, args.data / f"test-{generator}")
        files = [str(p) for p in image_files(pool)]
        sample = sorted(random.Random(0).sample(files, args.sample))
        names = args.models.split(",") + extra.get(generator, [])
        readers = {}
        for name in names:
            reader = Reader(resolve_model(Path("runs"), name)[0])
            reader.restrict(READS[generator])
            reader.read_lengths((LENGTHS[generator], LENGTHS[generator]))
            readers[name] = reader
        rows = []
        for est in compare(readers, sample):
            scored, _ = score_dataset(readers[est.model], test, args.data / "cache")
            truth = sum(s.correct for s in scored) / len(scored)
            row = {"generator": generator, **est.row(), "held_out_accuracy": round(truth, 4),
                   **machine()}  # fmt: skip
            rows.append(row)
            report(row, args.results)
        truth = [r["held_out_accuracy"] for r in rows]
        for signal in SIGNALS:
            values = [r[signal] for r in rows]
            if any(v is None for v in values):
                continue
            rho = spearman(values, truth)
            print(f"{generator}: {signal} rank correlation with held-out accuracy: "
                  f"{'-' if rho is None else f'{rho:+.2f}'} over {len(rows)} models", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
