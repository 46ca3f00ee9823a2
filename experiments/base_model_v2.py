"""Base model v2: trained on a domain-randomised family, regenerated from nothing by this recipe.

Data (alphanumeric, both cases): the `random` style (every image a style of its own) in the 415 fonts of
the `wide` font pack (`captchagen fonts` installs them), at 320x64 with 1 to 10 characters (DATA) and at
160x60 with 4 to 6 (a --mix share of every batch), and the default look in the bundled fonts (another
share, so that our own captchas stay read). No third-party generator was used to make or choose any of
it: those are the held-out measure (experiments/zero_shot.py).

Training: from the base model v1 (`--init-from base`; its own recipe is experiments/base_model.py), for
`--minutes`, with a schedule that fits the time. On a CPU that is what a session can afford; with a GPU,
raise `--minutes` and the set sizes. Then the card: zero-shot accuracy on default `make` images with
`--reads upper`, and on each training look's fresh held-out set, written to
docs/studies/results/base_model_v2.json; the recipe, seeds, budget and data manifests' hashes go with it.

    python -m experiments.base_model_v2 --work bench-out/basev2 --minutes 45
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from captchagen import atomic
from experiments.base_model import _machine, _summary, captchagen
from trainer import checkpoint

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "studies" / "results" / "base_model_v2.json"

# name: (make options, images, seed); the first is DATA, the others are mixed in at their share.
TRAIN_SETS = {
    "random": (["--style", "random", "--font-pack", "wide"], 40000, 200),
    "random-small": (
        [
            "--style",
            "random",
            "--font-pack",
            "wide",
            "--min-len",
            "4",
            "--max-len",
            "6",
            "--width",
            "160",
            "--height",
            "60",
        ],
        15000,
        201,
    ),  # fmt: skip
    "default": ([], 15000, 202),
}
SHARES = {"random-small": 0.25, "default": 0.2}
BATCH_SIZE, LR, STEPS_PER_EPOCH, SEED = 64, 1e-3, 500, 0
HELD_OUT, HELD_OUT_SEED = 1000, 2000


def make(out: Path, options: list[str], n: int, seed: int) -> None:
    captchagen("make", "--n", str(n), "--alphabet", "alnum", "--seed", str(seed), *options, "--out", str(out))


def stage_train(w: Path, minutes: float, threads: int | None) -> Path:
    run = w / "runs" / "base-v2"
    common = ["--cache-dir", str(w / "cache")]
    if (run / "last.pt").exists():
        if checkpoint.read_resumable(run / "last.pt").elapsed < minutes * 60 - 60:
            captchagen("train", "--resume", str(run), *common)
        return run
    mix = [a for name, share in SHARES.items() for a in ("--mix", f"{w / 'data' / name}:{share}")]
    thread = ["--threads", str(threads)] if threads else []
    captchagen("train", str(w / "data" / "random"), *mix, "--init-from", "base", "--time-limit", str(minutes),
               "--epochs", "1000", "--steps-per-epoch", str(STEPS_PER_EPOCH), "--batch-size", str(BATCH_SIZE),
               "--lr", str(LR), "--seed", str(SEED), "--runs-dir", str(w / "runs"), "--name", "base-v2",
               *thread, *common)  # fmt: skip
    return run


def card(w: Path, model: Path, minutes: float) -> dict:
    def score(test: Path, *extra: str) -> dict:
        out = captchagen("eval", str(test), "--model", str(model), "--worst", "0", "--cache-dir",
                         str(w / "cache"), "--json", *extra, capture=True)  # fmt: skip
        return _summary(json.loads(out))

    scores = {}
    plain = w / "held-out" / "plain-make"
    captchagen("make", "--n", str(HELD_OUT), "--seed", str(HELD_OUT_SEED), "--out", str(plain))
    scores["plain make, --reads upper"] = score(plain, "--reads", "upper")
    for i, (name, (options, _, _)) in enumerate(TRAIN_SETS.items(), 1):
        test = w / "held-out" / name
        make(test, options, HELD_OUT, HELD_OUT_SEED + i)
        scores[name] = score(test)
    manifests = {
        name: hashlib.sha256((w / "data" / name / "manifest.json").read_bytes()).hexdigest() for name in TRAIN_SETS
    }
    return {
        "recipe": "python -m experiments.base_model_v2 --minutes " + f"{minutes:g}",
        "start": "the base model v1 (--init-from base)",
        "train_sets": {k: {"make": o, "n": n, "seed": s, "manifest_sha256": manifests[k]}
                       for k, (o, n, s) in TRAIN_SETS.items()},  # fmt: skip
        "mix_shares": SHARES,
        "batch_size": BATCH_SIZE, "lr": LR, "steps_per_epoch": STEPS_PER_EPOCH, "seed": SEED,
        "train_minutes": minutes,
        "trained_on": _machine(),
        "held_out": {"n": HELD_OUT, "seed": f"{HELD_OUT_SEED} + the set's index"},
        "scores": scores,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/basev2"))
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--threads", type=int, help="training threads [default: as train chooses]")
    parser.add_argument("--stage", choices=["all", "make", "train", "card"], default="all")
    args = parser.parse_args()
    w = args.work
    if args.stage in ("all", "make"):
        for name, (options, n, seed) in TRAIN_SETS.items():
            make(w / "data" / name, options, n, seed)
    if args.stage in ("all", "train"):
        stage_train(w, args.minutes, args.threads)
    if args.stage in ("all", "card"):
        result = card(w, w / "runs" / "base-v2" / "best.pt", args.minutes)
        atomic.write_json(RESULTS, result)
        for name, s in result["scores"].items():
            print(f"{name:<28}{s['seq_accuracy']:>8.2%}  CER {s['cer']:.2%}")


if __name__ == "__main__":
    main()
