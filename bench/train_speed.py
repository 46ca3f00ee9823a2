"""Training speed of this tree against a git revision, side by side on the same data and the same cores:
adapt's two training steps (fine-tuning base-v3 on labelled images; self-training it with an unlabelled
pool beside them), run by each tree's own `captchagen train`, alternating, several rounds.

    python bench/train_speed.py --against bc3771b --rounds 3 --steps 60

REV is exported beside the tree (git archive, into a temporary folder) and run with its own code; the data
are made once, by this tree. Each run is one epoch of `--steps` steps: its images per second (the metrics
row's, labelled and pool images alike) and its validation accuracy (so a speed-up that reads less shows).
Printed: the median of each side per step kind and the ratio this tree / REV.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
LOOK = ["--alphabet", "ABCDEFGHJKMNPQRSTUVWXYZ23456789", "--length", "4-6", "--width", "160", "--height", "60"]


def captchagen(tree: Path, *args: str) -> None:
    """`captchagen ARGS` with the code of `tree` (its folder first on the path); its error, if it fails."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-m", "captchagen", *args], cwd=tree, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"captchagen {args[0]} failed in {tree} (exit {done.returncode}):\n{done.stderr[-2000:]}")


def make_adapt_data(work: Path, n: int, pool_n: int) -> tuple[Path, Path]:
    """work/data, `n` labelled captchas in `--style varied` (a fitted style stands in), and work/pool, `pool_n`
    others in `--style heavy` renamed as a site's unlabelled ones: what adapt's two training steps read.
    Made by this tree, so both sides of a comparison read the same bytes."""
    captchagen(HERE, "make", "--n", str(n), *LOOK, "--style", "varied", "--seed", "1", "--out", str(work / "data"))
    captchagen(HERE, "make", "--n", str(pool_n), *LOOK, "--style", "heavy", "--seed", "2", "--out", str(work / "made"))
    pool = work / "pool"
    pool.mkdir()
    for i, p in enumerate(sorted((work / "made").glob("shard-*/*.png"))):
        os.link(p, pool / f"{i:05d}.png")
    return work / "data", pool


def export(rev: str, into: Path) -> Path:
    """REV's files in `into`/tree (what git tracks at REV, nothing built)."""
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(HERE), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def one_run(tree: Path, work: Path, name: str, steps: int, threads: int | None, pool: Path | None) -> dict:
    """One epoch of `steps` from base-v3 with `tree`'s code: its metrics row."""
    runs = work / "runs"
    args = ["train", str(work / "data"), "--init-from", "base-v3", "--epochs", "1", "--steps-per-epoch", str(steps),
            "--runs-dir", str(runs), "--name", name, "--cache-dir", str(work / f"cache-{tree.name}"), "--seed", "0",
            *(["--threads", str(threads)] if threads else []),
            *(["--unlabeled", str(pool)] if pool else [])]  # fmt: skip
    captchagen(tree, *args)
    return json.loads((runs / name / "metrics.jsonl").read_text().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, metavar="REV", help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="steps per run (batches of 32, plus 32 pool images)")
    parser.add_argument("--n", type=int, default=2000, help="labelled images (and as many in the pool)")
    parser.add_argument("--threads", type=int, help="training threads of both sides (default: as train chooses)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        theirs = export(args.against, work)
        _, pool = make_adapt_data(work, args.n, args.n)
        sides = {"REV": theirs, "this tree": HERE}
        rows: dict[tuple[str, str], list[dict]] = {}
        for r in range(args.rounds):
            for kind, unlabeled in (("fine-tune", None), ("self-train", pool)):
                order = list(sides.items()) if r % 2 == 0 else list(reversed(sides.items()))  # alternate who goes first
                for side, tree in order:
                    row = one_run(
                        tree, work, f"{kind}-{side.replace(' ', '-')}-{r}", args.steps, args.threads, unlabeled
                    )
                    rows.setdefault((kind, side), []).append(row)
                    print(f"round {r + 1} {kind:<10} {side:<9} {row['images_per_s']:7.0f} img/s, "
                          f"validation {100 * row['seq_accuracy']:.1f}%", flush=True)  # fmt: skip
        print(f"\nmedians of {args.rounds} rounds, {args.steps} steps each; REV = {args.against}")
        print(f"{'step':<12}{'REV img/s':>11}{'this img/s':>12}{'ratio':>8}{'REV val':>10}{'this val':>10}")
        for kind in ("fine-tune", "self-train"):
            rev, ours = rows[(kind, "REV")], rows[(kind, "this tree")]
            speed = [statistics.median(r["images_per_s"] for r in side) for side in (rev, ours)]
            acc = [statistics.median(r["seq_accuracy"] for r in side) for side in (rev, ours)]
            print(f"{kind:<12}{speed[0]:11.0f}{speed[1]:12.0f}{speed[1] / speed[0]:7.2f}x"
                  f"{100 * acc[0]:9.1f}%{100 * acc[1]:9.1f}%")  # fmt: skip


if __name__ == "__main__":
    main()
