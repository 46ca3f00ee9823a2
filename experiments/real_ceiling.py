"""The ceiling under the synthetic-to-real curve: how well the model reads multicolorcaptcha when it is
trained on plenty of it (20,000 images by default, seed 2) rather than on a few hundred: from random weights
or from the bundled base model, at one or more input heights. Every run sees the same number of images;
each best.pt is scored on the curve's held-out test set (seed 1), so the figures sit beside
experiments/finetune_curve.py's.

If the model cannot read these captchas even from thousands of real ones, no synthetic set will get it
there, and the lever is the model's input and size; if it can, the lever is how much the synthetic images
resemble the real ones.

    python -m experiments.real_ceiling --work bench-out/ceiling --heights 32,64 --starts scratch,base
    python -m experiments.real_ceiling --work bench-out/ceiling --heights 64 --archs resnet --time-limit 30
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from experiments.common import ALPHABET, captchagen, eval_scores
from experiments.common import ensure as ensure_foreign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/ceiling"))
    parser.add_argument("--heights", default="32,64", help="model input heights to compare (multiples of 16)")
    parser.add_argument("--starts", default="scratch", help="scratch (random weights) and/or base (--init-from base)")
    parser.add_argument("--n", type=int, default=20000, help="real training images")
    parser.add_argument("--test", type=int, default=1000, help="held-out real images (seed 1)")
    parser.add_argument("--size", type=int, default=2, help="multicolorcaptcha size number (2: 640x360)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--archs", default="crnn", help="architectures to compare (train --arch)")
    parser.add_argument("--time-limit", type=float, help="minutes of training per run (the schedule fits it)")
    args = parser.parse_args()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    train, test = w / "real-train", w / "real-test"
    ensure_foreign(args.n, 2, train, args.size)
    ensure_foreign(args.test, 1, test, args.size)
    cache = ["--cache-dir", str(w / "cache"), "--runs-dir", str(w / "runs")]
    results = w / "results.jsonl"
    rows = map(json.loads, results.read_text().splitlines()) if results.exists() else []
    done = {(r["height"], r.get("start", "scratch"), r.get("arch", "crnn"), r["n"]) for r in rows}
    runs = [
        (int(h), start, arch)
        for arch in args.archs.split(",")
        for start in args.starts.split(",")
        for h in args.heights.split(",")
    ]
    steps = (args.n - args.n // 20) // args.batch_size  # about a pass over the training split (5% validates)
    for height, start, arch in runs:
        if (height, start, arch, args.n) in done:
            continue
        name = f"h{height}" + ("" if start == "scratch" else f"-{start}") + ("" if arch == "crnn" else f"-{arch}")
        name += "" if args.n == 20000 else f"-n{args.n}"
        limit = ["--time-limit", str(args.time_limit)] if args.time_limit else []
        arch_flag = [] if start != "scratch" else ["--arch", arch]  # from a parent: the parent's architecture
        # From the base model the fine-tuning defaults would apply (50-step epochs, lr 1e-3, batch 32): give
        # the same epochs and batches as from scratch, at the fine-tuning learning rate.
        init = [] if start == "scratch" else ["--init-from", start, "--steps-per-epoch", str(steps)]
        started = time.perf_counter()
        captchagen(
            "train", str(train), "--alphabet", ALPHABET, "--colour", "--height", str(height), *init,
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--name", name, *cache,
            *arch_flag, *limit,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        scores = eval_scores(test, w / "runs" / name / "best.pt", w / "cache")
        row = {"height": height, "start": start, "arch": arch, "n": args.n, "epochs": args.epochs,
               "batch_size": args.batch_size, "time_limit_min": args.time_limit,
               "accuracy": scores["seq_accuracy"], "cer": scores["cer"], "train_s": round(seconds)}  # fmt: skip
        print(row, flush=True)
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
