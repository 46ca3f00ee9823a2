"""ONNX Runtime against PyTorch on the CPU: per-image latency at batch 1 and batch 64, for the model alone
(uint8 images to logits) and end to end (plus CTC decoding and the exact confidence), same images, same run.

    python bench/onnx_speed.py data/test-seed1 --n 640      # exports best.pt of runs/LATEST to a temp file
    python bench/onnx_speed.py data/test-seed1 --onnx model.onnx --model best.pt
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trainer.data.preprocess import load_array
from trainer.device import Dist, set_threads
from trainer.inference.export import export_onnx
from trainer.inference.reader import Reader
from trainer.runs import default_model


def per_image_ms(fn, arrays: np.ndarray, batch: int, repeats: int) -> float:
    """Median over `repeats` passes of ms per image, reading `arrays` in batches of `batch`."""
    fn(arrays[:batch])  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(arrays), batch):
            fn(arrays[i : i + batch])
        times.append((time.perf_counter() - start) * 1000 / len(arrays))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="data/test-seed1")
    parser.add_argument("--model", help="checkpoint  [default: best.pt of runs/LATEST]")
    parser.add_argument("--onnx", help="exported model  [default: export --model to a temp file]")
    parser.add_argument("--n", type=int, default=640, help="images per pass")
    parser.add_argument("--repeats", type=int, default=5, help="passes; the median is reported")
    args = parser.parse_args()
    threads = set_threads(torch.device("cpu"), Dist())
    ckpt = default_model(Path("runs"), args.model)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(args.onnx) if args.onnx else export_onnx(ckpt, Path(tmp) / "model.onnx").path
        readers = {"PyTorch": Reader(ckpt), "ONNX Runtime": Reader(onnx_path)}
        files = sorted(Path(args.data).glob("shard-*/*.png"))[: args.n]
        arrays = np.stack([load_array(f, readers["PyTorch"].pre) for f in files])
        results = {}
        for name, reader in readers.items():
            for batch in (1, 64):
                results[name, batch, "model"] = per_image_ms(reader.logits, arrays, batch, args.repeats)
                results[name, batch, "e2e"] = per_image_ms(reader.read_arrays, arrays, batch, args.repeats)
        texts = {name: [t for t, _ in r.read_arrays(arrays)] for name, r in readers.items()}

    print(
        f"{len(arrays)} images from {args.data}, {threads} threads, torch {torch.__version__}, median of {args.repeats}"
    )
    print(f"{'':32}{'PyTorch':>10}{'ORT':>10}{'ORT/PyTorch':>13}")
    for batch in (1, 64):
        for part, label in (("model", "model only"), ("e2e", "+ decode & confidence")):
            pt, ort = results["PyTorch", batch, part], results["ONNX Runtime", batch, part]
            print(f"batch {batch:<3} {label:<22}{pt:>8.3f}ms{ort:>8.3f}ms{ort / pt:>12.2f}x")
    same = sum(a == b for a, b in zip(texts["PyTorch"], texts["ONNX Runtime"], strict=True))
    print(f"same strings: {same}/{len(arrays)}")


if __name__ == "__main__":
    main()
