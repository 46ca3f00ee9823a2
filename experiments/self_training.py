"""Ranked rounds against a fixed threshold: does self-training climb, and from how low? (issue 39, item 3)

For each case GENERATOR:START (experiments/foreign.py generators; START a bundled model or a .pt): an
unlabelled pool (2,000 images, `--pool-seed`; the labels in its file names are never read by training), a
held-out labelled set (`--test-seed`), and a synthetic labelled set (`make --style varied` at the
generator's characters and length, the labelled side of every batch). Then, for each mode in `--modes`,
`captchagen train SYN --init-from START --unlabeled POOL --pseudo MODE --keep last` for `--minutes` on
`--threads` threads, and the result is scored on the held-out set under the generator's characters and
length. Per run: the start's and the result's held-out accuracy, the rounds' figures from metrics.jsonl,
and a check of the last round's estimated precision: the final model reads the pool as a round does, and
the share of its chosen readings that equal the file names' labels is set beside their mean confidence.

    python -m experiments.self_training --cases simple:base-v3,simple:base-v2 --minutes 4 \
      --results docs/studies/results/self_training.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.common import captchagen, machine, report
from experiments.foreign import make
from experiments.read_constraints import LENGTHS
from experiments.zero_shot import READS

ALPHABETS = {"wheezy": "upper-digits", "simple": "upper-digits", "multicolor": "upper-digits", "kaptcha": "alnum",
             "gvcode": "alnum"}  # fmt: skip


def held_out(model: str, generator: str, test: Path, cache: Path) -> float:
    from trainer.inference.reader import Reader
    from trainer.inference.scoring import score_dataset
    from trainer.runs import resolve_model

    reader = Reader(resolve_model(Path("runs"), model)[0])
    reader.restrict(READS[generator])
    reader.read_lengths((LENGTHS[generator], LENGTHS[generator]))
    scored, _ = score_dataset(reader, test, cache)
    return sum(s.correct for s in scored) / len(scored)


def check_round(model: Path, generator: str, pool: Path, share: float) -> dict[str, float]:
    """The final model reads the pool as a round does; of the readings a round of `share` would choose, the
    share right (by the file names) against their mean confidence (the estimated precision)."""
    import numpy as np
    import torch

    from captchagen.codec import image_files
    from trainer.device import Dist, Runtime
    from trainer.inference.decode import suppressed_classes
    from trainer.inference.reader import Reader
    from trainer.training.pseudo import choose, read_pool

    reader = Reader(model)
    length = LENGTHS[generator]
    files = [str(p) for p in image_files(pool)]
    from trainer.data.preprocess import load_array

    arrays = np.stack([load_array(p, reader.pre) for p in files])
    batches = [(files[i : i + 256], torch.from_numpy(arrays[i : i + 256])) for i in range(0, len(files), 256)]
    cpu = Runtime(torch.device("cpu"), "fp32", torch.get_num_threads(), Dist())
    reading = read_pool(reader.net.model, batches, reader.alphabet, reader.pre, cpu, (length, length),
                        suppressed_classes(reader.alphabet, READS[generator]))  # fmt: skip
    chosen = choose(reading, share, (length, length), READS[generator])
    truth = {p: Path(p).stem.split("_", 1)[1] for p in files}
    right = sum(text == truth[p] for p, text in chosen.labels.items())
    return {"chosen": len(chosen.labels), "estimated_precision": round(chosen.estimated_precision, 4),
            "true_precision": round(right / max(1, len(chosen.labels)), 4),
            "pool_accuracy": round(float(np.mean([t == truth[p] for p, t in zip(reading.paths, reading.texts,
                                                                                 strict=True)])), 4)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="simple:base-v3,wheezy:base-v3,simple:base-v2")
    parser.add_argument("--modes", default="ranked,threshold")
    parser.add_argument("--minutes", type=float, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--growth", type=float, default=0.2)
    parser.add_argument("--n", type=int, default=3000, help="synthetic labelled images")
    parser.add_argument("--pool-seed", type=int, default=8)
    parser.add_argument("--test-seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=Path("bench-out/self-training"))
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()

    cache = args.data / "cache"
    for case in args.cases.split(","):
        generator, start = case.split(":", 1)
        pool = make(generator, 2000, args.pool_seed, args.data / f"pool-{generator}")
        test = make(generator, 500, args.test_seed, args.data / f"test-{generator}")
        syn = args.data / f"syn-{generator}"
        if not (syn / "manifest.json").is_file():
            captchagen("make", "--n", str(args.n), "--style", "varied", "--alphabet", ALPHABETS[generator],
                       "--length", str(LENGTHS[generator]), "--seed", "3", "--out", str(syn))  # fmt: skip
        before = held_out(start, generator, test, cache)
        for mode in args.modes.split(","):
            name = f"{generator}-{Path(start).stem}-{mode}-{args.minutes:g}m"
            runs = args.data / "runs"
            run = runs / name
            if not (run / "best.pt").is_file():  # a run made by an earlier start of the study is scored as it is
                captchagen("train", str(syn), "--init-from", start, "--unlabeled", str(pool), "--pseudo", mode,
                       "--pseudo-growth", str(args.growth), "--keep", "last", "--time-limit", f"{args.minutes:g}",
                       "--epochs", "1000", "--threads", str(args.threads), "--seed", "0", "--name", name,
                       "--runs-dir", str(runs), "--cache-dir", str(cache))  # fmt: skip
            rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            after = held_out(str(run / "best.pt"), generator, test, cache)
            last = rows[-1].get("pseudo") or {}
            share = min(1.0, last.get("round", len(rows)) * args.growth)
            row = {"generator": generator, "start": start, "mode": mode, "minutes": args.minutes,
                   "threads": args.threads, "epochs": len(rows), "rounds": last.get("round"),
                   "start_accuracy": round(before, 4),
                   "accuracy": round(after, 4), "pseudo": [r.get("pseudo") for r in rows],
                   "last_round_check": check_round(run / "best.pt", generator, pool, share),
                   "images_per_s": round(sum(r["images_per_s"] for r in rows) / len(rows), 1),
                   **machine()}  # fmt: skip
            report(row, args.results)


if __name__ == "__main__":
    main()
