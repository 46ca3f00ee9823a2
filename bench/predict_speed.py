"""Prediction on the CPU: images/s at batch 1 and 64, cold start of `captchagen test one.png`, and the same
images through ddddocr (a pretrained captcha reader from PyPI that ships its own model), side by side.

    pip install ddddocr          # bench-only; not a dependency of captchagen
    python bench/predict_speed.py data/test-seed1 --n 1000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from captchagen import codec
from trainer.data.preprocess import load_array
from trainer.device import Dist, set_threads
from trainer.inference.reader import Reader
from trainer.runs import default_model


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="data/test-seed1")
    parser.add_argument("--model", help="checkpoint  [default: best.pt of runs/LATEST]")
    parser.add_argument("--n", type=int, default=1000, help="images to read")
    args = parser.parse_args()
    threads = set_threads(torch.device("cpu"), Dist())
    model = default_model(Path("runs"), args.model)
    files = sorted(Path(args.data).glob("shard-*/*.png"))[: args.n]
    truths = [codec.parse_name(f.name).label for f in files]
    reader = Reader(model)
    reader.read_paths([str(files[0])])  # warm up

    # Ours, end to end from the file: decode, preprocess, model, CTC decode, confidence.
    ours_1, t1 = timed(lambda: [reader.read_paths([str(f)])[0].text for f in files])
    ours_64, t64 = timed(lambda: [p.text for p in reader.read_paths([str(f) for f in files], batch_size=64)])
    arrays = np.stack([load_array(f, reader.pre) for f in files])
    _, t64_model = timed(lambda: [reader.read_arrays(arrays[i : i + 64]) for i in range(0, len(arrays), 64)])

    # Cold start: a new process, from exec to the printed answer.
    cold = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "captchagen.cli", "test", str(files[0]), "--model", str(model), "--json"],
            check=True,
            capture_output=True,
        )
        cold.append(time.perf_counter() - start)

    n = len(files)
    acc = sum(p == t for p, t in zip(ours_64, truths, strict=True)) / n
    print(f"{n} images of {args.data}, model {model}, {threads} threads")
    print(f"{'captchagen, batch 1 (from file)':<40}{n / t1:8.0f} img/s  {1000 * t1 / n:7.2f} ms/img")
    print(f"{'captchagen, batch 64 (from file)':<40}{n / t64:8.0f} img/s  {1000 * t64 / n:7.2f} ms/img")
    print(f"{'captchagen, batch 64 (model + decode)':<40}{n / t64_model:8.0f} img/s")
    print(f"{'captchagen test one.png, cold start':<40}{statistics.median(cold):8.2f} s (median of 3)")
    print(f"{'captchagen sequence accuracy':<40}{100 * acc:8.2f} %")
    assert ours_1 == ours_64, "batch size changed the answers"
    try:
        import ddddocr
    except ImportError:
        print("ddddocr is not installed: pip install ddddocr to compare")
        return
    ocr = ddddocr.DdddOcr(show_ad=False)
    blobs = [f.read_bytes() for f in files]
    ocr.classification(blobs[0])
    theirs, t_dd = timed(lambda: [ocr.classification(b) for b in blobs])
    acc_dd = sum(p.upper() == t for p, t in zip(theirs, truths, strict=True)) / n
    print(f"{'ddddocr, one image at a time':<40}{n / t_dd:8.0f} img/s  {1000 * t_dd / n:7.2f} ms/img")
    print(f"{'ddddocr sequence accuracy (any case)':<40}{100 * acc_dd:8.2f} %")
    print(f"{'latency ratio, ours batch 1 / ddddocr':<40}{t1 / t_dd:8.2f} x")


if __name__ == "__main__":
    main()
