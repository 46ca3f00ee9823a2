"""Few labels on captchas nobody here drew: the fine-tuning curve from each bundled model, `--mix` of
randomised data, `--unlabeled` pools and labels chosen by active learning.

For each third-party generator (experiments/foreign.py, bench-only): a pool of 5,200 images (seed 0, in
the generator's own random order) and a held-out test set of 1,000 (seed 1). Every cell fine-tunes a
bundled model (`--init-from`) on N labelled images of the pool for the same 750 steps (the fine-tuning
defaults: 15 epochs of 50 batches of 32), validates on a fifth of its N (the only labels it may see), and
scores its best.pt on the test set:

  ft    the first N of the pool, fine-tuning alone
  mix   ft, with half of every batch drawn from a randomised synthetic set (the base-v2 family: the random
        style in the `wide` font pack, 160x60, 4-6 characters; `captchagen fonts` installs the fonts)
  u     ft, with the rest of the pool (5,000 images) given unlabelled (`--unlabeled`)
  al    N chosen by active learning: the images of the pool the model is least sure of
        (trainer.labeling.order), fine-tuning alone
  alu   al, with the rest of the pool unlabelled
  al2   active learning in two rounds, as a user of `captchagen label` would: the first N/2 of the pool
        (at random), a fine-tune on them (the ft cell of N/2), then the N/2 of the rest that model is least
        sure of; fine-tuned on all N from the bundled model
  al2u  al2, with the rest of the pool unlabelled
  ftu   two runs: the ft cell, then the rest of the pool unlabelled from its best.pt (the teacher starts
        from a model that reads the generator already), another 750 steps on the same labels
  ft2   ftu's control: the same two runs, the second without the pool

A cell is METHOD-MODEL-N, with `@EPOCHS` after it for a longer run than the defaults' 15 epochs of 50 steps,
and `:sSEED` for another seed of the weights' new rows, the batches and the augmentation (default 0).

Models read the generators' characters only (A-Z, 0-9: `--alphabet`). multicolorcaptcha tells
neighbouring characters apart by colour, so its cells train in colour (`--colour`). Every command is
printed; results are appended to WORK/results.jsonl (a rerun skips the cells already there).

    python -m experiments.few_labels --work bench-out/few --cells ft-base-50,ft-base-v2-50 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from captchagen import atomic
from experiments import foreign
from experiments.common import captchagen, eval_scores

POOL, TEST, N_MAX_UNLABELED = 5200, 1000, 5000
COLOUR = {"multicolor"}
MIX_SET = (
    ["--style", "random", "--font-pack", "wide", "--alphabet", foreign.ALPHANUMERIC]
    + ["--min-len", "4", "--max-len", "6", "--width", "160", "--height", "60", "--n", "10000", "--seed", "300"]
)  # fmt: skip
METHODS = ("ft", "mix", "u", "al", "alu", "al2", "al2u", "ftu", "ft2")
UNLABELED = ("u", "alu", "al2u", "ftu")


def parse_cell(cell: str) -> tuple[str, str, int, int | None, int]:
    """'ft-base-v2-200' -> ('ft', 'base-v2', 200, None, 0); 'u-base-200@30:s1' -> ('u', 'base', 200, 30, 1)."""
    cell, _, seed = cell.partition(":s")
    cell, _, epochs = cell.partition("@")
    method, rest = cell.split("-", 1)
    model, n = rest.rsplit("-", 1)
    if method not in METHODS:
        raise SystemExit(f"unknown method {method!r} in cell {cell!r}; one of {', '.join(METHODS)}")
    return method, model, int(n), int(epochs) if epochs else None, int(seed or 0)


def sets(work: Path, name: str) -> tuple[Path, Path]:
    root = work / name
    return foreign.make(name, POOL, 0, root / "pool"), foreign.make(name, TEST, 1, root / "test")


def label_of(path: Path) -> str:
    return path.stem.split("_", 1)[1]


def write_list(paths: list[Path], out: Path, labelled: bool) -> Path:
    """A list file: `<path> <label>` lines for a labelled set, `<path>` lines for an unlabelled one."""
    lines = [f"{p.resolve()} {label_of(p)}" if labelled else str(p.resolve()) for p in paths]
    atomic.write_bytes(out, "".join(line + "\n" for line in lines).encode())
    return out


def least_sure(model: str | Path, paths: list[Path], n: int, reads: str) -> list[Path]:
    """The `n` of `paths` the model is least sure of (trainer.labeling.order, as `captchagen label` offers them)."""
    from trainer import bundled
    from trainer.inference.reader import Reader
    from trainer.labeling import order

    reader = Reader(bundled.named(str(model)) or model)
    reader.restrict(reads)
    return [Path(p) for p, _, _ in order(reader, [str(p) for p in paths])[:n]]


def chosen(work: Path, name: str, method: str, model: str, n: int, pool: list[Path], threads: int) -> list[Path]:
    """The N images to label: the first N (the pool is in the generator's random order), or those active
    learning chooses, remembered in a list so that a rerun labels the same ones."""
    if not method.startswith("al"):
        return pool[:n]
    out = work / name / "lists" / f"chosen-{method.rstrip('u')}-{model}-{n}.txt"  # not a cell's own list
    if not out.exists():
        if method in ("al", "alu"):
            picked = least_sure(model, pool, n, foreign.ALPHANUMERIC)
        else:  # two rounds: half at random, then half chosen by a model fine-tuned on the first half
            first = pool[: n // 2]
            run = fine_tune(work, name, f"ft-{model}-{n // 2}", first, model, threads, [])
            rest = [p for p in pool if p not in set(first)]
            picked = first + least_sure(run / "best.pt", rest, n - n // 2, foreign.ALPHANUMERIC)
        atomic.write_bytes(out, "".join(f"{p}\n" for p in picked).encode())
    return [Path(line) for line in out.read_text().splitlines()]


def fine_tune(
    work: Path, name: str, cell: str, labelled: list[Path], model: str, threads: int, extra: list[str]
) -> Path:
    """`captchagen train` of cell `cell` (unless its best.pt exists); its run folder."""
    lists = work / name / "lists"
    args = [
        "train", str(write_list(labelled, lists / f"{cell}.txt", True)),
        "--init-from", model, "--alphabet", foreign.ALPHANUMERIC, "--val-fraction", "0.2",
        "--runs-dir", str(work / "runs"), "--name", f"{name}-{cell}", "--cache-dir", str(work / "cache"),
        "--threads", str(threads), *(["--colour"] if name in COLOUR else []), *extra,
    ]  # fmt: skip
    run = work / "runs" / f"{name}-{cell}"
    if not (run / "best.pt").exists():
        captchagen(*args)
    return run


def run_cell(work: Path, name: str, cell: str, threads: int) -> dict:
    method, model, n, epochs, seed = parse_cell(cell)
    pool_dir, test_dir = sets(work, name)
    pool = sorted(pool_dir.glob("*.png"))
    lists = work / name / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    started = time.time()
    labelled = chosen(work, name, method, model, n, pool, threads)
    extra = (["--epochs", str(epochs)] if epochs else []) + ["--seed", str(seed)]
    if method == "mix":
        mix = work / "mix-random"
        if not (mix / "manifest.json").exists():
            captchagen("make", *MIX_SET, "--out", str(mix), "--workers", str(threads))
        extra += ["--mix", f"{mix}:0.5"]
    if method in UNLABELED:
        picked = set(labelled)
        rest = [p for p in pool if p not in picked][:N_MAX_UNLABELED]
        extra += ["--unlabeled", str(write_list(rest, lists / f"{cell}-unlabeled.txt", False))]
    parent = model
    if method in ("ftu", "ft2"):  # start from the ft cell's model
        parent = str(fine_tune(work, name, f"ft-{model}-{n}", labelled, model, threads, []) / "best.pt")
    run = fine_tune(work, name, cell, labelled, parent, threads, extra)
    scores = eval_scores(test_dir, run / "best.pt", work / "cache")
    return {
        "generator": name,
        "cell": cell,
        "method": method,
        "model": model,
        "n": n,
        "epochs": epochs or 15,
        "seed": seed,
        "seq_accuracy": scores["seq_accuracy"],
        "cer": scores["cer"],
        "test_images": scores["samples"],
        "minutes": round((time.time() - started) / 60, 1),
    }


def table(rows: list[dict]) -> str:
    out = ["| generator | cell | N | held-out accuracy | CER |", "|---|---|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["generator"], r["method"], r["model"], r["n"])):
        out.append(
            f"| {r['generator']} | {r['method']} from {r['model']} | {r['n']} "
            f"| {100 * r['seq_accuracy']:.1f}% | {100 * r['cer']:.1f}% |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/few"))
    parser.add_argument("--generators", default="wheezy,simple,multicolor")
    parser.add_argument("--cells", default="ft-base-50,ft-base-v2-50,ft-base-200,ft-base-v2-200")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = args.work / "results.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    for name in args.generators.split(","):
        for cell in args.cells.split(","):
            if any(r["generator"] == name and r["cell"] == cell for r in done):
                continue
            row = run_cell(args.work, name, cell, args.threads)
            print(json.dumps(row), flush=True)
            done.append(row)
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
    print(table(done))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
