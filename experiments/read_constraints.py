"""Reading under what the user knows (issue 39, item 2): a bundled model on third-party captchas, read at any
length against the length the generator draws, and, where it draws both cases, with case ignored.

Each generator's set is made by experiments/foreign.py (seed 7 here: images no other experiment trains on).
Every reading goes through the Reader that `captchagen eval --length --case` uses; each row is appended to
`--results`.

    python -m experiments.read_constraints --model base-v3 --n 500 --results docs/studies/results/read_constraints.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import machine, report
from experiments.foreign import make
from experiments.zero_shot import READS

LENGTHS = {
    "multicolor": 4,
    "wheezy": 4,
    "simple": 6,
    "gvcode": 5,
    "kaptcha": 4,
    "claptcha": 5,
}  # what each generator draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base-v3")
    parser.add_argument("--generators", default=",".join(LENGTHS))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=Path("bench-out/read-constraints"))
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()

    from trainer.inference.reader import Reader
    from trainer.inference.scoring import score_dataset
    from trainer.runs import resolve_model

    for generator in args.generators.split(","):
        folder = args.data / generator
        make(generator, args.n, args.seed, folder)
        cased = READS[generator] != READS[generator].upper()
        for case in ("sensitive", "ignore") if cased else ("sensitive",):
            for length in ("any", LENGTHS[generator]):
                reader = Reader(resolve_model(Path("runs"), args.model)[0])
                reader.restrict(READS[generator])
                reader.read_lengths("any" if length == "any" else (length, length))
                if case == "ignore":
                    reader.ignore_case()
                scored, _ = score_dataset(reader, folder, args.data / "cache")
                right = sum(s.correct for s in scored)
                off_length = sum(len(s.text) != LENGTHS[generator] for s in scored)
                row = {"generator": generator, "model": args.model, "length": length, "case": case,
                       "images": len(scored), "seq_accuracy": right / len(scored),
                       "read_another_length": off_length / len(scored), "seed": args.seed,
                       **machine()}  # fmt: skip
                report(row, args.results)


if __name__ == "__main__":
    main()
