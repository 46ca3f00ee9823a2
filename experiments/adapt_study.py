"""`captchagen adapt` on a pool of each third-party generator's captchas, at 0 labels and more, scored on
held-out ones beside base-v3 and ddddocr (issue 39, item 5).

For each generator: a pool of `--pool` images (seed 0) copied under label-free names (<index>.png: adapt
never sees a label from them), 1,000 held-out images (seed 1), then `captchagen adapt POOL` with what a user
knows (the alphabet and the length), once per `--labels` count N: N labelled pool images (the first N of
the pool, as a person labelling it would give them) as `adapt --labels`; 0 runs adapt with none. Every run
uses the same OUT, so the fit, the synthetic set and its fine-tuning are made once and only what the labels
change is redone. `--ablate threshold` adds a run at 0 labels with `--pseudo threshold` (the fixed-threshold
self-training adapt used before); `--ablate nofit`, one with `--style varied` (no fit: the synthetic set in
the family base-v3 was trained on, widened); `--ablate nolength`, one with `--length 1-10` (what a user who
does not know the length gives: `make`'s whole range; its own OUT, adapt-nolength: the fit, the synthetic
set and the fine-tunes are drawn at that range too, and no reading is held to the length; scored under
that range, and under the length too); `--tuned DIR`, one at 0 labels in the style a person made on
`tune-style`'s page (DIR/style.toml in DIR/fonts; its own OUT, adapt-tuned). After each run OUT/model.pt,
the model adapt returns, is scored on the held-out set under the generator's characters and length, beside
which model adapt kept, the estimates and labelled accuracies it saw, its rounds of pseudo-labels, the
minutes it took and the machine's load. base-v3 (under the same rule) and ddddocr are scored once per
generator. Rows are appended to --results.

    python -m experiments.adapt_study --work bench-out/adapt --generators wheezy,simple --labels 0,20 \
      --n 5000 --minutes 2 --self-minutes 4
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from captchagen.fitting.pool_fit import read_record
from experiments.common import captchagen, machine, report
from experiments.foreign import KNOWN, make
from experiments.zero_shot import READS, _ddddocr, score

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "studies" / "results" / "adapt_rounds.jsonl"
ANY_LENGTH = "1-10"  # `--ablate nolength`: make's whole range, what a user who does not know the length gives


def pool(gen: str, n: int, work: Path) -> Path:
    """The first `n` images of the generator's set 0, as <index>.png (no label in the name)."""
    labelled = make(gen, n, 0, work / "pool-labelled")
    out = work / "pool"
    out.mkdir(parents=True, exist_ok=True)
    for p in sorted(labelled.glob("*.png"))[:n]:
        target = out / f"{p.name.split('_', 1)[0]}.png"
        if not target.exists():
            shutil.copyfile(p, target)
    return out


def labels(work: Path, n: int) -> Path:
    """The first `n` pool images with their labels, as `captchagen label` writes them: <index>_<label>.png."""
    folder = work / f"labels-{n}"
    folder.mkdir(exist_ok=True)
    for p in sorted((work / "pool-labelled").glob("*.png"))[:n]:
        if not (folder / p.name).exists():
            shutil.copyfile(p, folder / p.name)
    return folder


def ours(model: Path | str, gen: str, lengths: str | None = None):
    """`model` reading as `test --reads ... --length ...` would, for zero_shot.score: under the generator's
    length, or under `lengths` ("A-B") where given."""
    from trainer import bundled
    from trainer.inference.reader import Reader

    lo, _, hi = (lengths or KNOWN[gen][1]).partition("-")
    reader = Reader(bundled.named(str(model)) or Path(model))
    reader.restrict(READS[gen])
    reader.read_lengths((int(lo), int(hi or lo)))
    return lambda paths: [p.text or "" for p in reader.read_paths([str(p) for p in paths])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/adapt"))
    parser.add_argument("--generators", default="wheezy,simple,kaptcha,claptcha")
    parser.add_argument("--labels", default="0,20", help="labelled pool images per run, comma-separated")
    parser.add_argument("--ablate", default="", help="threshold, nofit, nolength: also runs at 0 labels with "
                        "--pseudo threshold, with --style varied instead of a fit, or with --length 1-10")  # fmt: skip
    parser.add_argument("--tuned", type=Path, help="also run at 0 labels in this tune-style folder's style and fonts")
    parser.add_argument("--pool", type=int, default=3000)
    parser.add_argument("--n", type=int, default=20000, help="synthetic images adapt makes")
    parser.add_argument("--fit", default="both", choices=("both", "statistics", "reader"), help="adapt --fit")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--self-minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--case", default="sensitive", choices=("sensitive", "ignore"), help="adapt --case")
    parser.add_argument("--no-ddddocr", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    for gen in args.generators.split(","):
        w = args.work / gen
        alphabet, length = KNOWN[gen]
        unlabelled = pool(gen, args.pool, w)
        test = sorted(make(gen, 1000, 1, w / "test").glob("*.png"))[:1000]
        common = {"generator": gen, "alphabet": alphabet, "length": length, "pool": args.pool}
        readers = [("base-v3", ours("base-v3", gen))] + [("ddddocr", _ddddocr())] * (not args.no_ddddocr)
        for name, read in readers:
            figures, _ = score(read, test)
            report({**common, "reader": name, **figures}, args.results)
        ablate = args.ablate.split(",")
        runs: list[tuple[int, str, str | None, list[str], str]] = [(int(n), "ranked", None, [], length) for n in
                                                                   args.labels.split(",") if n]  # fmt: skip
        runs += [(0, "threshold", None, [], length)] * ("threshold" in ablate)
        runs += [(0, "ranked", "varied", [], length)] * ("nofit" in ablate)
        runs += [(0, "ranked", None, [], ANY_LENGTH)] * ("nolength" in ablate)
        if args.tuned:
            runs.append((0, "ranked", str(args.tuned / "style.toml"), ["--font", str(args.tuned / "fonts")], length))
        for n, pseudo, style, fonts, given in runs:
            kind = "adapt-tuned" if fonts else "adapt-nolength" if given != length else "adapt"
            out = w / (kind + ("-nocase" if args.case == "ignore" else ""))
            cmd = ["adapt", str(unlabelled), "--out", str(out), "--alphabet", alphabet, "--length", given, "--n",
                   str(args.n), "--time-limit", f"{args.minutes:g}", "--self-time-limit", f"{args.self_minutes:g}",
                   "--rounds", str(args.rounds), "--pseudo", pseudo, *(["--fit", args.fit] if not style else []),
                   *(["--labels", str(labels(w, n))] if n else []), *(["--style", style] if style else []),
                   *fonts, *(["--case", "ignore"] if args.case == "ignore" else [])]  # fmt: skip
            started = time.perf_counter()
            captchagen(*cmd)
            minutes = (time.perf_counter() - started) / 60
            figures, _ = score(ours(out / "model.pt", gen, given), test)  # read as the user would, with what they gave
            if given != length:  # and under the length they did not give, to tell the training from the reading
                figures["at_the_length"] = score(ours(out / "model.pt", gen), test)[0]["exact"]
            state = json.loads((out / "adapt.json").read_text())
            fit, seen = read_record(out / "fit"), read_record(out / "fit-reader")
            metrics = [
                json.loads(line) for line in (out / "runs" / "adapted" / "metrics.jsonl").read_text().splitlines()
            ]
            named = "tuned" if fonts else style or "fitted"
            row = {**common, "length_given": given, "reader": "adapt", "labels": n, "pseudo": pseudo, "style": named,
                   "case": args.case,
                   **figures, "kept": _kept(out), "estimates": state.get("estimates"),
                   "labelled": state.get("labelled"), "rounds": [m.get("pseudo") for m in metrics],
                   "fit_distance": fit.distance if fit else None, "fit_floor": fit.floor if fit else None,
                   "fit": args.fit if not style else None,
                   "reader_fit_distance": seen.distance if seen else None,
                   "reader_fit_floor": seen.floor if seen else None,
                   "minutes": round(minutes, 1), "command": "captchagen " + " ".join(cmd), **machine()}  # fmt: skip
            report(row, args.results, hidden=("rounds", "estimates", "labelled"))


def _kept(out: Path) -> str:
    """Which model OUT/model.pt is: the candidate whose best.pt holds its bytes, else the base model."""
    model = (out / "model.pt").read_bytes()
    found = [
        name
        for name in ("adapted", "synthetic", "synthetic-reader")
        if (out / "runs" / name / "best.pt").is_file() and (out / "runs" / name / "best.pt").read_bytes() == model
    ]
    return found[0] if found else "base"


if __name__ == "__main__":
    main()
