"""Each architecture from random weights on a few thousand images of third-party generators: held-out
accuracy for the same training steps. The backbones study (docs/studies/backbones.md) reads its table from here.

For each generator (experiments/foreign.py) it makes `--n` training images (seed 2) and `--test` held-out
ones (seed 1), trains every `--archs` architecture on the training images for the same `--epochs` (5% of them
validate; the time each took is recorded), and scores each best.pt on the held-out images.

    python -m experiments.arch_compare --work bench-out/arch --generators wheezy,simple --archs crnn,resnet
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from experiments.common import captchagen, eval_scores
from experiments.foreign import ALPHANUMERIC, make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/arch"))
    parser.add_argument("--generators", default="wheezy,simple")
    parser.add_argument("--archs", default="crnn,resnet")
    parser.add_argument("--n", type=int, default=2000, help="training images per generator")
    parser.add_argument("--test", type=int, default=1000, help="held-out images per generator (seed 1)")
    parser.add_argument("--epochs", type=int, default=60, help="passes over the training images, the same for each")
    parser.add_argument("--minutes", type=float, help="or a training time per run (the schedule fits it)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--height", type=int, default=32)
    args = parser.parse_args()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    results = w / "results.jsonl"
    done = (
        {(r["generator"], r["arch"]) for r in map(json.loads, results.read_text().splitlines())}
        if results.exists()
        else set()
    )
    for gen in args.generators.split(","):
        train, test = make(gen, args.n, 2, w / gen / "train"), make(gen, args.test, 1, w / gen / "test")
        for arch in args.archs.split(","):
            if (gen, arch) in done:
                continue
            name = f"{gen}-{arch}"
            limit = ["--time-limit", str(args.minutes)] if args.minutes else []
            started = time.perf_counter()
            captchagen(
                "train", str(train), "--arch", arch, "--alphabet", ALPHANUMERIC, "--height", str(args.height),
                "--batch-size", str(args.batch_size), "--epochs", str(args.epochs), *limit,
                "--threads", str(args.threads), "--workers", str(args.threads), "--name", name,
                "--runs-dir", str(w / "runs"), "--cache-dir", str(w / "cache"),
            )  # fmt: skip
            seconds = time.perf_counter() - started
            run = w / "runs" / name
            epochs = len((run / "metrics.jsonl").read_text().splitlines())
            scores = eval_scores(test, run / "best.pt", w / "cache")
            row = {"generator": gen, "arch": arch, "n": args.n, "height": args.height, "minutes": args.minutes,
                   "batch_size": args.batch_size, "threads": args.threads, "epochs": epochs,
                   "epochs_planned": args.epochs, "accuracy": scores["seq_accuracy"], "cer": scores["cer"],
                   "wall_s": round(seconds)}  # fmt: skip
            print(row, flush=True)
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
