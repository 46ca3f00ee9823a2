"""What fine-tuning base-v3 on the fitted style loses, and what keeps it (issue 40, goal 1; issue 39, adapt's
first training step).

Fine-tuning base-v3 on the fitted style alone lowered held-out reading on claptcha and flask-simple-captcha
(docs/studies/fit-style.md). Two suspects: the model forgets the wide family it learnt while it learns one
look that is not quite the site's (rehearsal would keep part of every batch from that family), or it is
made to read at another input size than the one it learnt (train chooses the width from the images:
claptcha's 200x80 at 32x80, where base-v3 reads everything at 32x160). Per generator of an adapt study's
work folder (WORK/GEN/adapt/fit is the fit, WORK/GEN/test the 1,000 labelled held-out images), each arm at
the same steps (`--epochs E` over its main set, fixed work) from base-v3:

- fitted: `make --n N` in the fitted style and fonts at the pool's size, `train --init-from base-v3` at
  the width chosen from the images' shape (`--width`, as train chose it before f8d7422);
- fitted @base: the same at base-v3's input width (`--width 160`, what adapt does since 2026-12-07);
- fitted+varied S (@base): with `--mix VARIED:S` (S of every batch from N images of `--style varied`, the
  family base-v3 was trained on, in the bundled fonts, at the same size, characters and length);
- varied (@base): the varied set alone;
- reader (@base): the style fitted with `fit-style --model base-v3` (what base-v3 sees of the images
  matched beside the statistics; WORK/GEN/fit-reader, fitted here with adapt's fit settings).

One JSON row per (generator, arm), appended to --results.

    python -m experiments.fitted_finetune --work /tmp/ts --generators claptcha,simple,wheezy,kaptcha
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.adapt_study import ours
from experiments.common import captchagen, machine, report
from experiments.foreign import KNOWN
from experiments.zero_shot import score

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "studies" / "results" / "fitted_finetune.jsonl"
BASE_WIDTH = 160  # base-v3's input width


def complete(data: Path) -> bool:
    manifest = data / "manifest.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("complete", False)


def own_width(data: Path, length: int) -> int:
    """The width `train` chooses from the images' shape (what `--init-from` took before f8d7422)."""
    from trainer.data.inputs import choose_input

    return choose_input(sorted(data.glob("shard-*/*.png")), length).width


def reader_fit(w: Path, alphabet: str, length: str) -> list[str]:
    """make's --style and --font arguments for the fit that also matches base-v3's view (fitted if missing)."""
    out = w / "fit-reader"  # beside adapt's OUT: adapt makes its own fit-reader/ and refuses one it did not make
    if not (out / "fit.json").is_file():
        captchagen("fit-style", str(w / "pool"), "--out", str(out), "--alphabet", alphabet, "--length", length,
                   "--rounds", "24", "--seed", "0", "--model", "base-v3")  # fmt: skip
    record = json.loads((out / "fit.json").read_text())
    return ["--style", str(out / "style.toml"), *[a for f in record["fonts"] for a in ("--font", f["path"])]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--generators", default="claptcha,simple,wheezy,kaptcha")
    parser.add_argument("--n", type=int, default=3000, help="synthetic images per set")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--share", default="0.5", help="the --mix share of the varied set")
    parser.add_argument("--arms", default="fitted,fitted @base,fitted+varied @base,varied @base,fitted+varied,varied")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    for gen in args.generators.split(","):
        w = args.work / gen
        alphabet, length = KNOWN[gen]
        record = json.loads((w / "adapt" / "fit" / "fit.json").read_text())
        width, height = record["size"]
        shape = ["--width", str(width), "--height", str(height), "--alphabet", alphabet, "--length", length]
        fonts = [a for f in record["fonts"] for a in ("--font", f["path"])]
        sets = {"fitted": ["--style", str(w / "adapt" / "fit" / "style.toml"), *fonts], "varied": ["--style", "varied"]}
        if "reader" in args.arms:
            sets["reader"] = reader_fit(w, alphabet, length)
        for name, look in sets.items():
            if name not in args.arms:
                continue
            if not complete(w / "rehearsal" / name):  # an interrupted make goes on where it stopped
                captchagen("make", "--n", str(args.n), *look, *shape, "--seed", "0",
                           "--out", str(w / "rehearsal" / name))  # fmt: skip
        test = sorted((w / "test").glob("*.png"))[:1000]
        for arm in args.arms.split(","):
            looks, _, at = arm.partition(" @")
            data, _, rehearsed = looks.partition("+")
            extra = ["--mix", f"{w / 'rehearsal' / rehearsed}:{args.share}"] if rehearsed else []
            extra += ["--width", str(BASE_WIDTH if at == "base" else own_width(w / "rehearsal" / data, int(length)))]
            runs = w / "rehearsal" / "runs"
            name = looks.replace("+", "-") + (f"-{args.share}" if rehearsed else "") + ("-base-width" if at else "")
            if not (runs / name / "best.pt").is_file():
                captchagen("train", str(w / "rehearsal" / data), "--init-from", "base-v3", "--epochs",
                           str(args.epochs), "--seed", "0", "--name", name, "--runs-dir", str(runs),
                           *extra)  # fmt: skip
            figures, _ = score(ours(runs / name / "best.pt", gen), test)
            row = {"generator": gen, "arm": arm, "share": args.share if rehearsed else None,
                   "exact": figures["exact"], "ignoring_case": figures["ignoring_case"], "n": args.n,
                   "epochs": args.epochs, **machine()}  # fmt: skip
            report(row, args.results)


if __name__ == "__main__":
    main()
