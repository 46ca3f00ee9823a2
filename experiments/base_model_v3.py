"""Base model v3, a generalist: trained on the `varied` family (the random style bounded to readable images,
some bent along an arc or in perspective) at several common sizes, with a share of our default look.

Both backbones are trained side by side on the same data for the same time (crnn from base v2, resnet
from random weights), so the architecture is chosen by measurement; `--archs` names which. The recipe
fits a lent GPU (render on its cores, train each arch for `--minutes`) and continues on the CPU: run it
again with more `--minutes` and each run resumes from its last.pt (`train --resume`).

No third-party generator is used to make, style or choose any of it: those are the held-out measure
(experiments/zero_shot.py). `--fonts DIR` draws from a folder of fonts instead of the installed `wide` pack
(a machine without apt: the pack's files, copied there).

    python -m experiments.base_model_v3 --work bench-out/basev3 --minutes 6 --scale 1      # make + train
    python -m experiments.base_model_v3 --work bench-out/basev3 --stage card --archs crnn   # score a run

`--style` is the family drawn: base-v3's own, `varied` as it was (experiments/styles/varied-v3.toml, what
its datasets' manifests hold), by default; `--style varied` draws the widened family (issue 40's looks), the
recipe of a base-v4.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from captchagen import atomic
from experiments.base_model import _machine, _summary, captchagen
from trainer import checkpoint
from trainer.training.request import TrainRecord

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "studies" / "results" / "base_model_v3.json"
V3_FAMILY = str(ROOT / "experiments" / "styles" / "varied-v3.toml")  # `varied` before the wider looks

# name: (make options, images at --scale 1, seed); the first is DATA, the others are mixed in at SHARES.
TRAIN_SETS = {
    "varied": (["--style", "varied"], 90000, 300),
    "varied-small": (
        ["--style", "varied", "--width", "160", "--height", "60", "--min-len", "4", "--max-len", "6"],
        40000,
        301,
    ),  # fmt: skip
    "varied-tall": (
        ["--style", "varied", "--width", "250", "--height", "80", "--min-len", "5", "--max-len", "8"],
        30000,
        302,
    ),  # fmt: skip
    "default": ([], 20000, 303),
}
SHARES = {"varied-small": 0.3, "varied-tall": 0.15, "default": 0.15}
# What each arch starts from and its peak learning rate: crnn fine-tunes base v2; resnet has no parent.
ARCHS = {"crnn": (["--init-from", "base-v2"], 1e-3), "resnet": (["--arch", "resnet"], 2e-3)}
BATCH_SIZE, STEPS_PER_EPOCH, SEED = 256, 500, 0
HELD_OUT, HELD_OUT_SEED = 1000, 3000


def make_sets(w: Path, scale: float, fonts: str | None, workers: int | None, family: str = V3_FAMILY) -> None:
    for name, (options, n, seed) in TRAIN_SETS.items():
        options = [family if o == "varied" else o for o in options]
        font = [] if name == "default" else (["--font", fonts] if fonts else ["--font-pack", "wide"])
        more = ["--workers", str(workers)] if workers else []
        captchagen("make", "--n", str(max(8, round(n * scale))), "--alphabet", "alnum", "--seed", str(seed),
                   *options, *font, *more, "--out", str(w / "data" / name))  # fmt: skip


def train_args(w: Path, arch: str, minutes: float, device: str, workers: int | None) -> list[str]:
    """The command line that trains (or, when its last.pt exists, resumes) `arch` for `minutes` in all."""
    run = w / "runs" / f"base-v3-{arch}"
    common = ["--cache-dir", str(w / f"cache-{arch}")] + (["--workers", str(workers)] if workers else [])
    if (run / "last.pt").exists():
        return ["train", "--resume", str(run), "--time-limit", f"{minutes:g}", *common]
    start, lr = ARCHS[arch]
    mix = [a for name, share in SHARES.items() for a in ("--mix", f"{w / 'data' / name}:{share}")]
    return ["train", str(w / "data" / "varied"), *mix, *start, "--time-limit", f"{minutes:g}", "--epochs", "1000",
            "--steps-per-epoch", str(STEPS_PER_EPOCH), "--batch-size", str(BATCH_SIZE), "--lr", str(lr),
            "--seed", str(SEED), "--device", device, "--runs-dir", str(w / "runs"), "--name", f"base-v3-{arch}",
            *common]  # fmt: skip


def train_all(w: Path, archs: list[str], minutes: float, device: str, workers: int | None) -> None:
    """Train every arch at once (side by side on one GPU, or one after another on a CPU)."""
    commands = [train_args(w, arch, minutes, device, workers) for arch in archs]
    if device == "cpu":
        for c in commands:
            captchagen(*c)
        return
    procs = []
    for c in commands:
        print("+ captchagen", " ".join(c), flush=True)
        procs.append(subprocess.Popen([sys.executable, "-m", "captchagen.cli", *c]))
    if any(p.wait() for p in procs):
        sys.exit("a training run failed")


def card(w: Path, arch: str) -> dict:
    model = w / "runs" / f"base-v3-{arch}" / "best.pt"

    def score(test: Path, *extra: str) -> dict:
        out = captchagen("eval", str(test), "--model", str(model), "--worst", "0", "--cache-dir",
                         str(w / "cache-eval"), "--json", *extra, capture=True)  # fmt: skip
        return _summary(json.loads(out))

    plain = w / "held-out" / "plain-make"
    captchagen("make", "--n", str(HELD_OUT), "--seed", str(HELD_OUT_SEED), "--out", str(plain))
    scores = {"plain make, --reads upper": score(plain, "--reads", "upper")}
    for i, (name, (options, _, _)) in enumerate(TRAIN_SETS.items(), 1):
        test = w / "held-out" / name
        font = [] if name == "default" else ["--font-pack", "wide"]
        captchagen("make", "--n", str(HELD_OUT), "--alphabet", "alnum", "--seed", str(HELD_OUT_SEED + i),
                   *options, *font, "--out", str(test))  # fmt: skip
        scores[name] = score(test)
    trained = checkpoint.read(model)
    return {
        "recipe": "python -m experiments.base_model_v3 (see its docstring)",
        "arch": arch,
        "start": ARCHS[arch][0],
        "train_sets": {k: {"make": o, "n_at_scale_1": n, "seed": s} for k, (o, n, s) in TRAIN_SETS.items()},
        "mix_shares": SHARES, "batch_size": BATCH_SIZE, "lr": ARCHS[arch][1], "seed": SEED,
        "sources": TrainRecord.from_dict(trained.train_config).sources,
        "card_machine": _machine(),
        "held_out": {"n": HELD_OUT, "seed": f"{HELD_OUT_SEED} + the set's index"},
        "scores": scores,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/basev3"))
    parser.add_argument("--minutes", type=float, default=6.0, help="training time per arch, in all")
    parser.add_argument("--scale", type=float, default=1.0, help="images per set, times TRAIN_SETS' counts")
    parser.add_argument("--archs", default="crnn,resnet")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fonts", help="a folder of fonts to draw with instead of the installed `wide` pack")
    parser.add_argument("--workers", type=int, help="processes for rendering and decoding [default: all cores]")
    parser.add_argument("--stage", choices=["all", "make", "train", "card"], default="all")
    parser.add_argument("--style", default=V3_FAMILY, help="the family drawn: base-v3's (default) or `varied`")
    args = parser.parse_args()
    archs = args.archs.split(",")
    if args.stage in ("all", "make"):
        make_sets(args.work, args.scale, args.fonts, args.workers, args.style)
    if args.stage in ("all", "train"):
        train_all(args.work, archs, args.minutes, args.device, args.workers)
    if args.stage == "card":
        for arch in archs:
            result = card(args.work, arch)
            atomic.write_json(RESULTS.with_name(f"base_model_v3-{arch}.json"), result)
            for name, s in result["scores"].items():
                print(f"{arch:<8}{name:<28}{s['seq_accuracy']:>8.2%}  CER {s['cer']:.2%}")


if __name__ == "__main__":
    main()
