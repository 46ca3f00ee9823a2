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
    """Make a new run folder. Made with one mkdir, so of two runs started at once with the same `name` one
    gets the folder and the other an error; without a name, the second takes the next free suffix."""
    base = name or time.strftime("%Y%m%d-%H%M%S")
    runs.mkdir(parents=True, exist_ok=True)
    path, k = runs / base, 2
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            if name:
                raise CaptchagenError(f"run {path} already exists: choose another `name`, or `resume` it") from None
            path, k = runs / f"{base}-{k}", k + 1


def register(run: Path) -> None:
    """Make `run` the one runs/LATEST names (once it holds a best.pt)."""
    atomic.write_bytes(run.parent / LATEST, (run.name + "\n").encode())


def latest_run(runs: Path) -> Path:
    """The folder runs/LATEST names; raise CaptchagenError saying how to make one if there is none, or
    what is wrong with LATEST if it does not hold a run's name."""
    pointer = runs / LATEST
    try:
        name = pointer.read_text("utf-8").strip()
    except FileNotFoundError:
        raise CaptchagenError(f"no trained model in {runs}: run `captchagen train` first") from None
    except (OSError, UnicodeDecodeError) as e:
        why = "is a folder" if pointer.is_dir() else f"cannot be read as text ({type(e).__name__})"
        raise CaptchagenError(
            f"{pointer} {why}; it should hold a run folder's name: delete it, or pass --model PATH"
        ) from None
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise CaptchagenError(
            f"{pointer} holds {name[:40]!r}, not a run folder's name: delete it, or pass --model PATH"
        )
    path = runs / name
    if not path.is_dir():
        raise CaptchagenError(f"{pointer} names {name}, which does not exist: run `captchagen train`")
    return path


def default_model(runs: Path, model: str | Path | None = None) -> Path:
    """The model a command uses (the rule the README documents); see `resolve_model`."""
    return resolve_model(runs, model)[0]


def resolve_model(runs: Path, model: str | Path | None = None) -> tuple[Path, str | None]:
    """The model a command uses, and a line naming it when the user did not choose it: `model` if given
    (`base` or `base-v2` names a bundled model, trainer.bundled.MODELS; a run folder, its best.pt), else
    best.pt of the run that runs/LATEST names, else, when nothing was ever trained there, the bundled base
    model."""
    shipped = bundled.named(model)
    if shipped is not None:
        return shipped, None
    if model:
        path = Path(model)
        return (path / "best.pt" if path.is_dir() else path), None  # a run folder names its best model
    if not (runs / LATEST).exists() and bundled.base_model().is_file():
        return bundled.base_model(), (
            f"no trained model in {runs}: using the bundled base model (--model base); "
            "`captchagen train` makes your own"
        )
    path = latest_run(runs) / "best.pt"
    return path, f"no --model: using {path}, the newest run's best model ({runs / LATEST})"


def below_base(model: Path) -> str | None:
    """A line when the run's model `model` scored below the bundled base model, each on its own validation
    images (a run of a few steps reads nothing: `test` without --model would silently read with it)."""
    from trainer import checkpoint

    try:
        ours = checkpoint.read(model).metrics.seq_accuracy
        base = checkpoint.read(bundled.base_model()).metrics.seq_accuracy
    except CaptchagenError:
        return None  # reading with it says what is wrong
    if not isinstance(ours, float | int) or not isinstance(base, float | int) or ours < 0 or ours >= base:
        return None
    return (
        f"note: {model} read {100 * ours:.2f}% of its validation images, fewer than the base model reads of its "
        f"own ({100 * base:.2f}%); --model base reads with that one"
    )


def append_metrics(run: Path, row: dict) -> None:
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def plot_curves(run: Path, rows: list[dict]) -> Path:
    """curves.png (see curve_figure), written atomically."""
    from matplotlib import pyplot as plt

    fig = curve_figure(rows)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    out = run / "curves.png"
    atomic.write_bytes(out, buf.getvalue())
    return out


def curve_figure(rows: list[dict]):  # -> matplotlib Figure
    """Train and validation loss, and the validation error rates (sequence and character), by epoch. Error
    rates on a log scale: accuracy near 99% on a 0-100 axis looks flat, while 2% -> 1% errors is the
    halving that matters. Epochs are whole numbers on the axis (a partial epoch keeps its number)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    epochs = [r["epoch"] for r in rows]
    n = rows[-1].get("val_images") if rows else None
    floor = 100 / max(n or 1000, 1) / 2  # half of one image in the set: 0% errors drawn there, not lost
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    left.plot(epochs, [r["val_loss"] for r in rows], marker="o", label="validation")
    left.set(xlabel="epoch", ylabel="CTC loss per image", yscale="log", title="Loss")
    left.legend()
    sequence = [max(floor, 100 * (1 - r["seq_accuracy"])) for r in rows]
    characters = [max(floor, 100 * r["cer"]) for r in rows]
    right.plot(epochs, sequence, marker="o", label="sequence error % (100 - accuracy)")
    right.plot(epochs, characters, marker="o", label="character error rate %")
    right.set(xlabel="epoch", yscale="log", title="Validation errors (lower is better)")
    # Minor ticks too: a log axis labels them in its own notation (2x10^0 beside 1%) when few decades show.
    for axis, unit in ((left.yaxis, ""), (right.yaxis, "%")):
        axis.set_major_formatter(FuncFormatter(lambda v, _, u=unit: f"{v:g}{u}"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _, u=unit: f"{v:g}{u}" if f"{v:g}"[0] in "25" else ""))
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
