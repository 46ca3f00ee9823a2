"""Synthetic-to-real: held-out accuracy on captchas we did not make, against N real labelled images.

Stand-in "real" captchas come from multicolorcaptcha (experiments/common.py; `pip install -e ".[bench]"`):
a pool of training images (seed 0) and a held-out test set (seed 1), 640x360 by default. For each N, four
ways to use the first N of the pool:

  a  scratch      train on the N alone
  b  fine-tune    --init-from the bundled base model (trained on synthetic captchas of the default look and
                  the presets)
  c  b + mix      the same, with --mix of a default-look synthetic set (half of every batch)
  d  styled       --init-from a model pre-trained (from the base model) on synthetic captchas in a style made
                  by eye to resemble the real ones (--style, default experiments/styles/multicolor.toml, in the
                  fonts given with --styled-font, or in multicolorcaptcha's own with --their-fonts), with
                  --mix of that set. The pre-trained model alone is scored too (N=0). The pre-training
                  starts from --pretrain-from (default: the base model; a run folder continues it).

The real captchas tell neighbouring characters apart by colour, so every cell and the pre-training read
colour (--colour; the grayscale base model's first layer is spread over R, G and B). Every cell trains
for the same number of steps (--epochs x --steps-per-epoch batches of --batch-size), validates on a fifth
of its N (the only real labels it may see), and its best.pt is scored on the test set. Every command is
printed; results are appended to WORK/results.jsonl (a rerun skips cells already there), then a table and
WORK/curve.png.

    python -m experiments.finetune_curve --work bench-out/curve --styled-font /usr/share/fonts/truetype/dejavu
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from PIL import Image

from captchagen.style import load as load_style
from experiments.common import ALPHABET, captchagen, eval_scores
from experiments.common import ensure as ensure_foreign
from experiments.common import font_files as foreign_fonts
from experiments.common import make as make_foreign
from trainer.data.inputs import sampled_crop

HERE = Path(__file__).resolve().parent
METHODS = {"a": "scratch", "b": "fine-tune", "c": "fine-tune + mix", "d": "styled pre-train + fine-tune + mix"}


def list_file(pool: Path, n: int, out: Path) -> Path:
    """A list file of the first `n` images of the pool (`<path> <label>` lines)."""
    files = sorted(pool.glob("*.png"))[:n]
    # Absolute paths: a list file's relative paths are read relative to the list file, not the cwd.
    out.write_text("".join(f"{p.resolve()} {p.stem.split('_', 1)[1]}\n" for p in files))
    return out


def cropped_copy(src: Path, out: Path, crop: tuple[float, float, float, float] | None) -> Path:
    """`src`'s images cut to `crop` (fractions), in `out`; made once."""
    if not out.exists():
        tmp = out.with_name(out.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for path in sorted(src.glob("*.png")):
            with Image.open(path) as im:
                w, h = im.size
                edges = crop or (0, 0, 1, 1)
                box = tuple(round(c * n) for c, n in zip(edges, (w, h) * 2, strict=True))
                im.crop(box).save(tmp / path.name)
        tmp.rename(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("bench-out/curve"))
    parser.add_argument("--ns", default="50,100,200,500,1000,2000")
    parser.add_argument("--methods", default="abcd")
    parser.add_argument("--test", type=int, default=1000, help="held-out real images")
    parser.add_argument("--size", type=int, default=2, help="multicolorcaptcha size number (2: 640x360)")
    parser.add_argument("--synthetic", type=int, default=20000, help="images in each synthetic set")
    parser.add_argument("--pretrain-minutes", type=float, default=10.0, help="the styled pre-training (d)")
    parser.add_argument(
        "--pretrain-from", default="base", help="the model the styled pre-training (d) starts from (default: base)"
    )
    parser.add_argument("--pretrain-lr", type=float, default=3e-3, help="its peak learning rate")
    parser.add_argument(
        "--style", type=Path, default=HERE / "styles/multicolor.toml", help="the style file of the styled set (d)"
    )
    parser.add_argument(
        "--styled-font", dest="styled_fonts", action="append", default=[],
        help="a font, or a folder of fonts, for the styled set (repeat); default: the bundled fonts",
    )  # fmt: skip
    parser.add_argument(
        "--their-fonts", action="store_true",
        help="draw the styled set in the .ttf fonts multicolorcaptcha draws with (a site that knows its own fonts)",
    )  # fmt: skip
    parser.add_argument(
        "--height", type=int, help="model input height for every run (default: the base model's, 32)"
    )  # the base model's weights start a taller model too (train resamples the one layer that depends on it)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps-per-epoch", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    ns = [int(n) for n in args.ns.split(",")]  # run in this order: the one that matters most first
    cache = ["--cache-dir", str(w / "cache"), "--runs-dir", str(w / "runs")]
    height = ["--height", str(args.height)] if args.height else []

    pool, test = w / "real-pool", w / "real-test"
    ensure_foreign(max(ns), 0, pool, args.size)  # a larger N extends the pool; the first images stay the same
    if not test.exists():
        make_foreign(args.test, 1, test, args.size)
    synth = {"default": w / "synth-default", "styled": w / "synth-styled"}
    styled_fonts = [*args.styled_fonts, *(foreign_fonts() if args.their_fonts else [])]
    looks = {
        "default": [],
        "styled": ["--style", str(args.style), "--min-len", "4", "--max-len", "4",
                   "--width", "256", "--height", "64", *(f for font in styled_fonts for f in ("--font", font))],
    }  # fmt: skip
    needed = {"default": {"c"}, "styled": {"d"}}
    for look, folder in synth.items():
        if set(args.methods) & needed[look]:
            captchagen("make", "--n", str(args.synthetic), "--alphabet", ALPHABET, *looks[look], "--out", str(folder))
    styled = w / "runs" / "pretrain-styled"
    if "d" in args.methods and (styled / "best.pt").exists():
        made = json.loads((styled / "config.json").read_text())
        asked = {"init_from": args.pretrain_from, "lr": args.pretrain_lr, "time_limit": args.pretrain_minutes}
        if changed := [k for k, v in asked.items() if made.get(k) != v]:
            sys.exit(f"{styled} was pre-trained with other settings ({', '.join(changed)}): use another --work")
    elif "d" in args.methods:
        captchagen(
            "train", str(synth["styled"]), "--init-from", args.pretrain_from, "--colour", "--time-limit",
            str(args.pretrain_minutes), "--epochs", "1000", "--steps-per-epoch", "100", "--batch-size", "128",
            "--lr", str(args.pretrain_lr), "--warmup", "0.03", "--name", styled.name, *height, *cache,
        )  # fmt: skip

    results_path = w / "results.jsonl"
    lines = results_path.read_text().splitlines() if results_path.exists() else []
    # A (d) row counts only for the style settings it was measured with: an edited style is measured afresh.
    # (Its synthetic set is protected already: `make` refuses to add to a dataset made in another style.)
    settings = json.dumps(load_style(str(args.style))[1].to_dict(), sort_keys=True)  # what it draws, not its comments
    style_id = f"{args.style.stem}@{hashlib.sha256(settings.encode()).hexdigest()[:12]}"
    done = {(r["n"], r["method"]) for r in of_style([json.loads(line) for line in lines], style_id)}

    def score(n: int, method: str, model: Path, seconds: float, images: Path = test) -> None:
        scores = eval_scores(images, model, w / "cache")
        row = {"n": n, "method": method, "accuracy": scores["seq_accuracy"], "cer": scores["cer"],
               "train_s": round(seconds), **({"height": args.height} if args.height else {}),
               **({"style": style_id} if method == "d" else {})}  # fmt: skip
        print(row, flush=True)
        with results_path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    if "d" in args.methods and (0, "d") not in done:
        # The styled model before it sees a real image. It has no crop of its own (its synthetic images
        # have no margins), so it reads the test set cut to the band a fine-tuned model would crop to.
        score(
            0,
            "d",
            styled / "best.pt",
            0,
            cropped_copy(test, w / "real-test-cropped", sampled_crop(sorted(pool.glob("*.png")))),
        )
    budget = ["--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps_per_epoch),
              "--batch-size", str(args.batch_size)]  # fmt: skip
    for n in ns:
        data = str(list_file(pool, n, w / f"real-{n}.txt"))
        for method in args.methods:
            if (n, method) in done:
                continue
            extra = {
                "a": [],
                "b": ["--init-from", "base"],
                "c": ["--init-from", "base", "--mix", f"{synth['default']}:0.5"],
                "d": ["--init-from", str(styled), "--mix", f"{synth['styled']}:0.5"],
            }[method]
            name = f"n{n}-{method}"
            started = time.perf_counter()
            # The alphabet is given: a few images need not show every character the test set holds.
            captchagen(
                "train", data, "--alphabet", ALPHABET, "--val-fraction", "0.2", "--colour", *budget, *extra,
                "--name", name, *height, *cache,
            )  # fmt: skip
            score(n, method, w / "runs" / name / "best.pt", time.perf_counter() - started)
    report(results_path, w / "curve.png", args, style_id)


def of_style(rows: list[dict], style_id: str) -> list[dict]:
    """The rows that hold for the style `style_id`: every (a)-(c) row, and the (d) rows measured with it."""
    return [r for r in rows if r["method"] != "d" or r.get("style") == style_id]


def report(results_path: Path, png: Path, args: argparse.Namespace, style_id: str) -> None:
    rows = of_style([json.loads(line) for line in results_path.read_text().splitlines()], style_id)
    ns = sorted({r["n"] for r in rows})
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    acc = {(r["n"], r["method"]): r["accuracy"] for r in rows}
    print(f"\nheld-out sequence accuracy on {args.test} real images; every cell {args.epochs} x {args.steps_per_epoch} "
          f"steps of {args.batch_size} images, styled pre-training {args.pretrain_minutes:g} min\n")  # fmt: skip
    print("| N real | " + " | ".join(f"{m}: {METHODS[m]}" for m in methods) + " |")
    print("|---:|" + "---:|" * len(methods))
    for n in ns:
        print(f"| {n} | " + " | ".join(f"{100 * acc[(n, m)]:.1f}%" if (n, m) in acc else "-" for m in methods) + " |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    if (0, "d") in acc:  # the styled pre-training alone: no real image, no point on a log axis
        ax.axhline(100 * acc[(0, "d")], color="gray", linestyle="--", label="d before fine-tuning (N=0)")
    for m in methods:
        points = [(n, 100 * acc[(n, m)]) for n in ns if n and (n, m) in acc]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{m}: {METHODS[m]}")
    ax.set_xscale("log")
    ax.set_xticks([n for n in ns if n], [str(n) for n in ns if n])
    ax.set_xlabel("real labelled training images (N)")
    ax.set_ylabel("held-out sequence accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("multicolorcaptcha, read by captchagen")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
