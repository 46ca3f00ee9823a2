"""The default recipe's accuracy: train on `make --n 100000` (seed 0) under a time limit, then score the best
checkpoint on 10,000 fresh images made with seed 1, overall and by label length.

    python -m experiments.train_accuracy --time-limit 60            # makes the data if missing, trains, scores
    python -m experiments.train_accuracy --time-limit 0 -- --epochs 20   # a fixed budget instead of the clock
    python -m experiments.train_accuracy --run runs/NAME            # only score an existing run
    python -m experiments.train_accuracy --time-limit 60 -- --init-from base --epochs 100 --steps-per-epoch 742 \
        --batch-size 128 --lr 1e-3 --warmup 0.03                 # anything after -- goes to `train`
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import captchagen
from trainer.data.cache import default_cache_dir
from trainer.inference.reader import Reader
from trainer.inference.scoring import report, score_dataset
from trainer.runs import latest_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-data", default="data/captchas")
    parser.add_argument("--test-data", default="data/test-seed1")
    parser.add_argument("--time-limit", type=float, default=60.0, help="minutes; 0: none (give --epochs after --)")
    parser.add_argument("--run", help="score this run instead of training a new one")
    parser.add_argument("train_args", nargs="*", help="more `captchagen train` options, after --")
    args = parser.parse_args()
    if not Path(args.test_data, "manifest.json").exists():
        captchagen("make", "--n", "10000", "--seed", "1", "--out", args.test_data)
    if args.run:
        run = Path(args.run)
    else:
        if not Path(args.train_data, "manifest.json").exists():
            captchagen("make", "--n", "100000", "--seed", "0", "--out", args.train_data)
        limit = ["--time-limit", str(args.time_limit)] if args.time_limit else []
        captchagen("train", args.train_data, *limit, *args.train_args)
        run = latest_run(Path("runs"))
    reader = Reader(run / "best.pt")
    scored, _ = score_dataset(reader, Path(args.test_data), default_cache_dir(), workers=2)
    r = report(scored)
    print(f"run {run}, best epoch {reader.metrics.epoch}, scored on {r['samples']:,} images of {args.test_data}")
    print(f"{'sequence accuracy':<22}{100 * r['seq_accuracy']:8.2f} %")
    print(f"{'character error rate':<22}{100 * r['cer']:8.2f} %")
    print(f"{'mean edit distance':<22}{r['mean_edit_distance']:8.4f}")
    print("accuracy by label length:")
    for length, v in r["by_length"].items():
        print(f"  {length:>2}  {v['n']:6,} images  {100 * v['accuracy']:6.2f} %")


if __name__ == "__main__":
    main()
