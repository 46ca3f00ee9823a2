"""Run folders: runs/<name>/ with config.json, metrics.jsonl, last.pt, best.pt and curves.png, and the
pointer runs/LATEST, a text file holding the newest run's name."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from captchagen import atomic
from captchagen.errors import CaptchagenError
from trainer import bundled

LATEST = "LATEST"


def new_run_dir(runs: Path, name: str | None) -> Path:
    base = name or time.strftime("%Y%m%d-%H%M%S")
    path, k = runs / base, 2
    while path.exists():
        if name:
            raise CaptchagenError(f"run {path} already exists: choose another `name`, or `resume` it")
        path, k = runs / f"{base}-{k}", k + 1
    path.mkdir(parents=True)
    atomic.write_bytes(runs / LATEST, (path.name + "\n").encode())
    return path


def latest_run(runs: Path) -> Path:
    """The folder runs/LATEST names; raise CaptchagenError saying how to make one if there is none."""
    try:
        name = (runs / LATEST).read_text("utf-8").strip()
    except FileNotFoundError:
        raise CaptchagenError(f"no trained model in {runs}: run `captchagen train` first") from None
    path = runs / name
    if not path.is_dir():
        raise CaptchagenError(f"{runs / LATEST} names {name}, which does not exist: run `captchagen train`")
    return path


def default_model(runs: Path, model: str | Path | None = None) -> Path:
    """The model a command uses (the rule the README documents); see `resolve_model`."""
    return resolve_model(runs, model)[0]


def resolve_model(runs: Path, model: str | Path | None = None) -> tuple[Path, str | None]:
    """The model a command uses, and a line to show when the user did not choose it: `model` if given
    (`base` names the bundled base model), else best.pt of the run that runs/LATEST names, else, when
    nothing was ever trained there, the bundled base model."""
    if model is not None and str(model) == bundled.BASE:
        return bundled.base_model(), None
    if model:
        return Path(model), None
    if not (runs / LATEST).exists() and bundled.base_model().is_file():
        return bundled.base_model(), (
            f"no trained model in {runs}: using the bundled base model (--model base); "
            "`captchagen train` makes your own"
        )
    return latest_run(runs) / "best.pt", None


def append_metrics(run: Path, row: dict) -> None:
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def plot_curves(run: Path, rows: list[dict]) -> Path:
    """curves.png: train and validation loss, and validation accuracy and CER, by epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    left.plot(epochs, [r["val_loss"] for r in rows], marker="o", label="validation")
    left.set(xlabel="epoch", ylabel="CTC loss per image", yscale="log", title="Loss")
    left.legend()
    right.plot(epochs, [100 * r["seq_accuracy"] for r in rows], marker="o", label="sequence accuracy %")
    right.plot(epochs, [100 * r["cer"] for r in rows], marker="o", label="character error rate %")
    right.set(xlabel="epoch", title="Validation")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    out = run / "curves.png"
    atomic.write_bytes(out, buf.getvalue())
    return out
