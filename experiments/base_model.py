"""The bundled base model (trainer/bundled/base.pt), regenerated from nothing.

Data: a broad mix of what `captchagen make` draws: alphanumeric labels (digits, upper and lower case) of
1 to 10 characters, in the default look (DATA, validated on its held-out split) and in every other preset
style (each drawn as a --mix share of every batch). Then one training run with a time limit, and the
model card: accuracy by style and by label length on fresh held-out sets (other seeds), as JSON in
docs/studies/results/base_model.json and as a table.

    python -m experiments.base_model --work bench-out/base            # make, train, install, card
    python -m experiments.base_model --work bench-out/base --stage card  # only re-score the bundled model

Every command is printed. Each stage skips what is already done (made datasets resume; a finished run
is not retrained), so an interrupted recipe is rerun with the same command.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from captchagen import atomic
from captchagen.workers import cpu_count
from experiments.common import captchagen
from trainer import checkpoint

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "trainer" / "bundled" / "base.pt"
RESULTS = ROOT / "docs" / "studies" / "results" / "base_model.json"

ALPHABET = "alnum"
# name: (style, images, seed). The default look is DATA; the others are mixed into every batch.
TRAIN_SETS = {
    "default": ("default", 160000, 100),
    "clean": ("clean", 40000, 101),
    "heavy": ("heavy", 40000, 102),
    "photocopy": ("photocopy", 40000, 103),
    "colour": ("colour", 40000, 104),
}
MIX_SHARE = 0.125  # of every batch, per mixed style: half the batch is the default look
# Trained on one GPU (see the model card for which): on 2 CPU cores the same time buys about 1/30 of the steps.
TRAIN_MINUTES = 5.0
BATCH_SIZE = 256
SEED = 0
HELD_OUT = 2000  # images per style in the model card's test sets
HELD_OUT_SEED = 1000  # + the style's index: no image shares a seed with the training sets


def make(out: Path, style: str, n: int, seed: int) -> None:
    captchagen("make", "--n", str(n), "--alphabet", ALPHABET, "--style", style, "--seed", str(seed), "--out", str(out))


def stage_make(w: Path) -> None:
    for name, (style, n, seed) in TRAIN_SETS.items():
        make(w / "data" / name, style, n, seed)


def stage_train(w: Path, runs: Path, minutes: float) -> Path:
    """One run of `minutes` (epochs enough that the time limit ends it); an interrupted run is resumed.
    The machine it ran on is written beside it (machine.json), for the model card."""
    run = runs / "base"
    common = ["--cache-dir", str(w / "cache")]
    if (run / "last.pt").exists():
        done = checkpoint.read_resumable(run / "last.pt").elapsed
        if done < minutes * 60 - 60:  # more than a minute left: go on
            captchagen("train", "--resume", str(run), *common)
        return run
    mix = []
    for name in TRAIN_SETS:
        if name != "default":
            mix += ["--mix", f"{w / 'data' / name}:{MIX_SHARE}"]
    captchagen("train", str(w / "data" / "default"), *mix, "--time-limit", str(minutes), "--epochs", "1000",
               "--batch-size", str(BATCH_SIZE), "--seed", str(SEED), "--runs-dir", str(runs), "--name", "base",
               *common)  # fmt: skip
    atomic.write_json(run / "machine.json", {"trained_on": _machine(), "minutes": minutes})
    return run


def stage_install(run: Path) -> None:
    """The run's best.pt (the model alone: no optimiser state) becomes the bundled base model."""
    atomic.write_bytes(BUNDLED, (run / "best.pt").read_bytes())
    print(f"installed {run / 'best.pt'} as {BUNDLED.relative_to(ROOT)}", flush=True)


def score(test: Path, w: Path, *extra: str) -> dict:
    out = captchagen("eval", str(test), "--model", str(BUNDLED), "--worst", "0", "--cache-dir", str(w / "cache"),
                     "--json", *extra, capture=True)  # fmt: skip
    return _summary(json.loads(out))


def stage_card(w: Path, runs: Path) -> dict:
    """Scores on fresh held-out sets: each training style (alphanumeric), and what a plain `captchagen make`
    draws (upper case only), read as it is and with `--reads upper`."""
    scores = {}
    for i, (name, (style, _, _)) in enumerate(TRAIN_SETS.items()):
        test = w / "held-out" / name
        make(test, style, HELD_OUT, HELD_OUT_SEED + i)
        scores[name] = score(test, w)
    plain = w / "held-out" / "plain-make"
    captchagen("make", "--n", str(HELD_OUT), "--seed", str(HELD_OUT_SEED + len(TRAIN_SETS)), "--out", str(plain))
    scores["plain make (upper)"] = score(plain, w)
    scores["plain make, --reads upper"] = score(plain, w, "--reads", "upper")
    machine = runs / "base" / "machine.json"
    trained = json.loads(machine.read_text()) if machine.exists() else {}
    return {
        "alphabet": ALPHABET,
        "train_sets": {k: {"style": s, "n": n, "seed": seed} for k, (s, n, seed) in TRAIN_SETS.items()},
        "mix_share": MIX_SHARE,
        "batch_size": BATCH_SIZE,
        "trained_on": trained.get("trained_on", "unknown (no machine.json beside the run)"),
        "train_minutes": trained.get("minutes"),
        "held_out": {"n": HELD_OUT, "seed": f"{HELD_OUT_SEED} + the set's index"},
        "scored_on": _machine(),
        "scores": scores,
    }


def _machine() -> str:
    where = f"{cpu_count()} CPU cores ({platform.machine()})"
    if torch.cuda.is_available():
        where = f"one {torch.cuda.get_device_name(0)} GPU, " + where
    return f"{where}, PyTorch {torch.__version__}"


def _summary(ev: dict) -> dict:
    return {
        "seq_accuracy": ev["seq_accuracy"],
        "cer": ev["cer"],
        "by_length": {k: v["accuracy"] for k, v in ev["by_length"].items()},
    }


def print_card(card: dict) -> None:
    scores = card["scores"]
    lengths = sorted({int(k) for s in scores.values() for k in s["by_length"]})
    print("| style | all | CER | " + " | ".join(str(n) for n in lengths) + " |")
    print("|---|---:|---:|" + "---:|" * len(lengths))
    for name, s in scores.items():
        by = [f"{100 * s['by_length'][str(n)]:.1f}" if str(n) in s["by_length"] else "-" for n in lengths]
        print(f"| {name} | {100 * s['seq_accuracy']:.2f}% | {100 * s['cer']:.2f}% | " + " | ".join(by) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/base"))
    parser.add_argument("--stage", choices=["all", "build", "make", "train", "card"], default="all",
                        help="build: make and train (and install), no card")  # fmt: skip
    parser.add_argument("--runs", type=Path, help="where the run folder goes (default: WORK/runs)")
    parser.add_argument("--minutes", type=float, default=TRAIN_MINUTES, help="training time limit")
    args = parser.parse_args()
    w = args.work
    runs = args.runs or w / "runs"
    w.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.stage in ("all", "build", "make"):
        stage_make(w)
    if args.stage in ("all", "build", "train"):
        stage_install(stage_train(w, runs, args.minutes))
    if args.stage in ("all", "card"):
        card = stage_card(w, runs)
        atomic.write_json(RESULTS, card)
        print_card(card)
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
