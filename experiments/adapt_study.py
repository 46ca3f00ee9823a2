"""Zero labels: `captchagen adapt` on a pool of each third-party generator's captchas, scored on held-out ones.

For each generator: a pool of `--pool` images (seed 0) copied under label-free names (<index>.png: adapt
never sees a label), 1,000 held-out images (seed 1), then `captchagen adapt POOL` with what a user knows
(the alphabet and the length), and the held-out accuracy of its two models (trained on the fitted style
alone; then self-trained on the pool), exact and ignoring case, beside the fit's distance and the
teacher's pseudo-label counts. With `--labels N`, also N labelled pool images (the first N of the pool, its
labels now used) fine-tuned on from the adapted model with the rest of the pool unlabelled. Rows are
appended to --results as JSON lines; `--figure` draws, per generator, pool images, fitted ones, and
held-out ones with what each model read.

    python -m experiments.adapt_study --work bench-out/adapt --generators wheezy,simple --minutes 6
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from captchagen.fitting.pool_fit import read_record
from experiments.common import captchagen
from experiments.foreign import make
from experiments.zero_shot import READS, _ours, score

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "studies" / "results" / "adapt.jsonl"
# What a user would know of each generator: its alphabet (an adapt preset) and label length.
KNOWN = {
    "wheezy": ("upper-digits", "4"),
    "simple": ("upper-digits", "6"),
    "multicolor": ("upper-digits", "4"),
    "gvcode": ("alnum", "5"),
    "kaptcha": ("alnum", "4"),
}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/adapt"))
    parser.add_argument("--generators", default="wheezy,simple,multicolor,gvcode,kaptcha")
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--n", type=int, default=20000, help="synthetic images adapt makes")
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--self-minutes", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--labels", type=int, default=0, help="also fine-tune on this many labelled pool images")
    parser.add_argument("--label-minutes", type=float, default=4.0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--figure", type=Path, help="a PNG of pool, fitted and held-out images per generator")
    args = parser.parse_args()
    cells: list = []
    for gen in args.generators.split(","):
        w = args.work / gen
        alphabet, length = KNOWN[gen]
        unlabelled = pool(gen, args.pool, w)
        test = sorted(make(gen, 1000, 1, w / "test").glob("*.png"))[:1000]
        out = w / "adapt"
        cmd = ["adapt", str(unlabelled), "--out", str(out), "--alphabet", alphabet, "--length", length, "--n",
               str(args.n), "--time-limit", f"{args.minutes:g}", "--self-time-limit", f"{args.self_minutes:g}",
               "--rounds", str(args.rounds)]  # fmt: skip
        captchagen(*cmd)
        fit = read_record(out / "fit")
        assert fit is not None, f"adapt left no fit record in {out / 'fit'}"
        metrics = [json.loads(line) for line in (out / "runs" / "adapted" / "metrics.jsonl").read_text().splitlines()]
        pseudo = [m["pseudo"] for m in metrics if m.get("pseudo")]
        row = {"generator": gen, "alphabet": alphabet, "length": length, "command": "captchagen " + " ".join(cmd),
               "fit_distance": fit.distance, "fit_floor": fit.floor, "pseudo_last_epoch": pseudo[-1] if pseudo
               else None}  # fmt: skip
        stages = ["synthetic", "adapted"]
        if args.labels:
            stages.append(labelled(gen, args, w, out, alphabet))
        read: dict[str, list[str]] = {}
        for stage in stages:
            figures, read[stage] = score(_ours(str(out / "runs" / stage / "best.pt"), READS[gen]), test)
            row[stage] = figures
            print(f"{gen:<12}{stage:<14}{figures['exact']:>8.1%}{figures['ignoring_case']:>9.1%}{figures['cer']:>8.1%}",
                  flush=True)  # fmt: skip
        with args.results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        cells += figure_cells(gen, unlabelled, out, test, read)
    if args.figure:
        from captchagen.preview import write_grid

        print(write_grid(cells, args.figure, columns=6))


def labelled(gen: str, args: argparse.Namespace, w: Path, out: Path, alphabet: str) -> str:
    """Fine-tune the adapted model on the first `--labels` pool images (labelled) with the pool unlabelled;
    the run's name. The labelled images' copies in the pool are left out of it by `train` itself."""
    name = f"labels-{args.labels}"
    if (out / "runs" / name / "best.pt").exists():
        return name
    chosen = w / name
    chosen.mkdir(exist_ok=True)
    for p in sorted((w / "pool-labelled").glob("*.png"))[: args.labels]:
        shutil.copyfile(p, chosen / p.name)
    cmd = ["train", str(chosen), "--init-from", str(out / "runs" / "adapted" / "best.pt"), "--unlabeled",
           str(w / "pool"), "--alphabet", alphabet, "--val-fraction", "0.2", "--time-limit",
           f"{args.label_minutes:g}", "--epochs", "1000", "--runs-dir", str(out / "runs"), "--name", name,
           "--cache-dir", str(out / "cache")]  # fmt: skip
    captchagen(*cmd)
    return name


def figure_cells(gen: str, pool_dir: Path, out: Path, test: list[Path], read: dict[str, list[str]]) -> list:
    """Two pool images, two fitted ones, two held-out ones with what each model read (green: right)."""
    fitted = sorted((out / "data").glob("shard-*/*.png"))[:2]
    cells: list = [(p, [(f"{gen}: pool", "black")]) for p in sorted(pool_dir.glob("*.png"))[:2]]
    cells += [(p, [(f"{gen}: fitted style", "blue")]) for p in fitted]
    for i, p in enumerate(test[:2]):
        truth = p.stem.split("_", 1)[1]
        caption = [(f"{gen}: held out {truth}", "black")]
        caption += [(f"{stage}: {texts[i]}", "green" if texts[i].upper() == truth.upper() else "red")
                    for stage, texts in read.items()]  # fmt: skip
        cells.append((p, caption))
    return cells


if __name__ == "__main__":
    main()
