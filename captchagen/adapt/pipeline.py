"""`captchagen adapt` as a library: check everything, then run the four stages through one runner.

check() reads and writes nothing: a bad pool, an OUT that is a file or inside the pool are refused before
any work. run() then makes OUT, holds its lock (one adapt per OUT), refuses anything in OUT that adapt did not
make, and runs each stage that is not done: a stage begun with the same inputs goes on where it stopped
(`train --resume`, make finishing its shards); one whose inputs changed has its old output removed (adapt's
own, never a folder another process holds) and runs afresh. What it says goes through `say`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from captchagen import outfolder, unlabeled
from captchagen.adapt.plan import (
    ADAPTED,
    FIT,
    OUTPUTS,
    RUNS,
    Options,
    Stage,
    finished,
    fit_stage,
    make_stage,
    self_train_stage,
    train_stage,
)
from captchagen.adapt.runner import run_captchagen
from captchagen.adapt.state import State
from captchagen.errors import BadInput, CaptchagenError
from captchagen.fitting.pool_fit import SAMPLE, Pool, open_pool, read_record
from captchagen.lock import FolderLock

Say = Callable[[str], None]
Runner = Callable[[Sequence[str]], int]

# How a changed input is named in a notice.
INPUT_NAMES = {"pool": "the pool", "style": "the fitted style", "data": "the dataset", "base": "the base model",
               "start": "the model it starts from", "fonts": "the fonts"}  # fmt: skip


class StageFailed(CaptchagenError):
    """A stage's command ended with an error (what it printed says why)."""


def check(o: Options) -> Pool:
    """Refuse a pool or an OUT that cannot work, before anything is written; the pool's sample."""
    if not o.pool.is_dir():
        raise BadInput(f"pool {o.pool} is not a folder of images", param="pool")
    unlabeled.check_apart(o.pool, o.out)
    if o.out.exists() and not o.out.is_dir():
        raise BadInput(f"`out` {o.out} is a file, not a folder", param="out")
    return open_pool(o.pool, SAMPLE, o.seed)


def run(o: Options, say: Say, runner: Runner = run_captchagen) -> Path:
    """Run every stage that is not done; the adapted model's path. Stopped (from the runner) when asked to
    stop, StageFailed when a stage fails, BadInput for an OUT holding what adapt did not make."""
    outfolder.prepare(o.out)
    with FolderLock(o.out, "adapt"):
        state = State.read(o.out)
        if state.notice:
            say(f"note: {state.notice}")
        _refuse_foreign(o.out, state)
        _do(fit_stage(o), state, say, runner)
        record = read_record(o.out / FIT)
        if record is None:
            raise CaptchagenError(f"fit-style left no readable record in {o.out / FIT}")
        for stage in (lambda: make_stage(o, record), lambda: train_stage(o), lambda: self_train_stage(o)):
            _do(stage(), state, say, runner)
    return o.out / RUNS / ADAPTED / "best.pt"


def _refuse_foreign(out: Path, state: State) -> None:
    foreign = [out / top for top in OUTPUTS if (out / top).exists() and not state.owns(top)]
    if foreign:
        names = ", ".join(str(p) for p in foreign)
        raise BadInput(
            f"{names} {'is' if len(foreign) == 1 else 'are'} in `out` but not made by this adapt; adapt replaces "
            f"nothing it did not make: move {'it' if len(foreign) == 1 else 'them'} away, or give another `out`",
            param="out",
        )


def _do(stage: Stage, state: State, say: Say, runner: Runner) -> None:
    if state.is_done(stage) and finished(stage):
        say(f"{stage.name}: done ({stage.output})")
        return
    argv = stage.args
    if state.begun(stage) and stage.output.exists():
        if stage.trains and (stage.output / "last.pt").exists():
            argv = stage.resume_args()
        elif stage.trains:
            _remove(stage, say, "its earlier start, with these same inputs, stopped before it saved anything")
        # make finishes the shards it had not written; fit-style writes its files again
    else:
        changed = [INPUT_NAMES.get(k, f"`{k}`") for k in state.changed(stage)]
        if changed:
            say(f"note: {', '.join(changed)} changed since {stage.name} last ran; running it again")
        if stage.output.exists():
            why = f"made from {', '.join(changed)} as it was before" if changed else "left by an unfinished run"
            _remove(stage, say, why)
    state.claim(stage.output.relative_to(state.path.parent).parts[0])
    state.start(stage)
    say(f"+ captchagen {' '.join(argv)}")
    code = runner(argv)
    if code:
        raise StageFailed(f"step {stage.name} failed (exit code {code}); its output is above")
    state.finish(stage)


def _remove(stage: Stage, say: Say, why: str) -> None:
    """Delete a stage's old output (adapt's own): never while another process holds it (FolderBusy)."""
    what = "train" if stage.trains else "make" if stage.name == "make" else "fit-style"
    with FolderLock(stage.output, what):
        shutil.rmtree(stage.output)
    say(f"note: removed {stage.output}: {why}")
