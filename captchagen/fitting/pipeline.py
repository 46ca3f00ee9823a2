"""`captchagen adapt`'s plan: four commands, each of which a user can also run alone, and what is done.

fit-style (a style fitted to the pool) -> make (a labelled set in that style) -> train (fine-tune the best
base model on it) -> train --unlabeled (self-train on the pool). The plan is data: argument lists for
`captchagen`, built from the options and, for `make`, from the fit's record. A state file in the output
folder records each finished step with its arguments; a step is skipped only when its arguments are the
same as when it finished, and a training step whose run folder holds a last.pt of the same arguments is
resumed (`train --resume`), so an interrupted adapt goes on where it stopped.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from captchagen import atomic
from captchagen.errors import BadInput

STATE = "adapt.json"
FIT, DATA, RUNS = "fit", "data", "runs"
SYNTHETIC, ADAPTED = "synthetic", "adapted"
SAMPLE = 200  # pool images a fit compares with (`fit-style --sample`): adapt checks that sample's digest


@dataclass(frozen=True)
class Options:
    pool: Path
    out: Path
    alphabet: str
    min_len: int
    max_len: int
    n: int
    base: str
    minutes: float  # training on the synthetic set
    self_minutes: float  # self-training on the pool
    seed: int
    fonts: tuple[str, ...]
    font_pack: str | None
    rounds: int
    workers: int | None


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[str, ...]  # after `captchagen`
    run: Path | None = None  # a training step's run folder

    def resume_args(self) -> tuple[str, ...]:
        assert self.run is not None
        return ("train", "--resume", str(self.run))


def fit_step(o: Options) -> Step:
    fonts = [a for f in o.fonts for a in ("--font", f)] + (["--font-pack", o.font_pack] if o.font_pack else [])
    workers = ["--workers", str(o.workers)] if o.workers else []
    return Step("fit", ("fit-style", str(o.pool), "--out", str(o.out / FIT), "--alphabet", o.alphabet, "--length",
                        f"{o.min_len}-{o.max_len}", "--rounds", str(o.rounds), "--seed", str(o.seed), *fonts,
                        *workers))  # fmt: skip


def later_steps(o: Options, record: dict) -> list[Step]:
    """make, train and self-train, once the fit's record says the size and fonts."""
    width, height = record["size"]
    fonts = [a for f in record["fonts"] for a in ("--font", f["path"])]
    workers = ["--workers", str(o.workers)] if o.workers else []
    data, runs = o.out / DATA, o.out / RUNS
    make = ("make", "--n", str(o.n), "--style", str(o.out / FIT / "style.toml"), *fonts, "--width", str(width),
            "--height", str(height), "--alphabet", o.alphabet, "--min-len", str(o.min_len), "--max-len",
            str(o.max_len), "--seed", str(o.seed), *workers, "--out", str(data))  # fmt: skip
    common = ("--runs-dir", str(runs), "--seed", str(o.seed), "--cache-dir", str(o.out / "cache"))
    train = ("train", str(data), "--init-from", o.base, "--time-limit", f"{o.minutes:g}", "--epochs", "1000",
             "--name", SYNTHETIC, *common)  # fmt: skip
    # Its validation images are synthetic: the epoch that reads them best is not the one that has learnt the
    # pool longest (on wheezy.captcha, epoch 1 of 56 read 76.9% of held-out captchas, the last 90.9%).
    adapted = ("train", str(data), "--init-from", str(runs / SYNTHETIC / "best.pt"), "--unlabeled", str(o.pool),
               "--keep", "last", "--time-limit", f"{o.self_minutes:g}", "--epochs", "1000", "--name", ADAPTED,
               *common)  # fmt: skip
    return [Step("make", make), Step("train", train, runs / SYNTHETIC), Step("self-train", adapted, runs / ADAPTED)]


class State:
    """Which steps finished, with the arguments they finished with (out/adapt.json, written atomically)."""

    def __init__(self, out: Path) -> None:
        self.path = out / STATE
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = {}
        self.done: dict[str, list[str]] = data.get("done", {}) if isinstance(data, dict) else {}
        self.started: dict[str, list[str]] = data.get("started", {}) if isinstance(data, dict) else {}
        self.made: list[str] = data.get("made", []) if isinstance(data, dict) else []  # steps that wrote a run

    def is_done(self, step: Step) -> bool:
        return self.done.get(step.name) == list(step.args)

    def resumable(self, step: Step) -> bool:
        """A training step begun with these arguments whose run saved a last.pt: `train --resume` goes on."""
        return step.run is not None and self.started.get(step.name) == list(step.args) and (
            step.run / "last.pt").exists()  # fmt: skip

    def clear_stale(self, step: Step) -> str | None:
        """Make way for a training step that starts afresh: its run folder, if adapt made it (recorded here)
        from other arguments or an earlier step's older output, is removed, and a notice says so. A folder
        adapt did not make is never removed: BadInput."""
        if step.run is None or not step.run.exists():
            return None
        if step.name not in self.done and step.name not in self.started and step.name not in self.made:
            raise BadInput(f"{step.run} exists and was not made by this adapt; remove it or use another --out",
                           param="out")  # fmt: skip
        shutil.rmtree(step.run)
        return f"removed {step.run}: made from other options or an earlier step's output"

    def mark(self, step: Step, finished: bool) -> None:
        (self.done if finished else self.started)[step.name] = list(step.args)
        if finished:
            self.started.pop(step.name, None)
        if step.run is not None and step.name not in self.made:
            self.made.append(step.name)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(self.path, {"done": self.done, "started": self.started, "made": self.made})

    def forget_after(self, names: list[str]) -> None:
        """A redone step invalidates the steps that used its output: neither skipped nor resumed."""
        for name in names:
            self.done.pop(name, None)
            self.started.pop(name, None)
