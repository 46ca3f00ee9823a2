"""`captchagen adapt` as a library: check everything, then run the stages (captchagen.adapt.plan) through one
runner.

check() reads and writes nothing: a bad pool, an OUT that is a file or inside the pool are refused before
any work. run() then makes OUT, holds its lock (one adapt per OUT), refuses anything in OUT that adapt did not
make, and runs each stage that is not done: a stage begun with the same inputs goes on where it stopped
(`train --resume`, make finishing its shards); one whose inputs changed has its old output removed (adapt's
own, never a folder another process holds) and runs afresh. What it says goes through `say`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from shlex import join, quote

from captchagen import atomic, outfolder, unlabeled
from captchagen.adapt import labels as labelling
from captchagen.adapt import readings as read_back
from captchagen.adapt.plan import (
    COMPARED,
    ESTIMATES,
    LABELS,
    LEARNT,
    MODEL,
    OUTPUTS,
    READINGS,
    RESULT,
    START,
    Candidate,
    Options,
    Score,
    Stage,
    adapted_candidate,
    base_candidate,
    compare_stage,
    file_sha256,
    finished,
    fit_stage,
    look_images,
    looks,
    make_stage,
    read_comparison,
    self_train_stage,
    synthetic_candidate,
    train_minutes,
    train_stage,
)
from captchagen.adapt.runner import run_captchagen
from captchagen.adapt.state import State
from captchagen.errors import BadInput, CaptchagenError
from captchagen.fitting.pool_fit import SAMPLE, Pool, open_pool, read_record
from captchagen.lock import FolderLock

Say = Callable[[str], None]
Runner = Callable[[Sequence[str]], int]
Clock = Callable[[], float]


class Minutes:
    """Where this run's minutes went, by kind of step (fit, make, train, compare, self-train), for the line
    adapt ends with: the steps' own minutes depend on the pool's image size and the machine, the training
    steps' on their time limits. A step found done before this run took none of them."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.started = clock()
        self.spent: dict[str, float] = {}  # kind -> seconds, in the order the kinds first ran
        self.done_before: list[str] = []

    def add(self, kind: str, seconds: float) -> None:
        self.spent[kind] = self.spent.get(kind, 0.0) + seconds

    def skipped(self, kind: str) -> None:
        if kind not in self.done_before:
            self.done_before.append(kind)

    def line(self) -> str:
        steps = ", ".join(f"{kind} {seconds / 60:.1f}" for kind, seconds in self.spent.items()) or "no step ran"
        before = f" (done before this run: {', '.join(self.done_before)})" if self.done_before else ""
        return f"minutes: {steps}; {(self.clock() - self.started) / 60:.1f} in all{before}"


# How a changed input is named in a notice.
INPUT_NAMES = {"pool": "the pool", "style": "the fitted style", "data": "the dataset", "base": "the base model",
               "start": "the model it starts from", "fonts": "the fonts", "models": "the models compared",
               "labels": "the labelled images", "pseudo": "`pseudo`", "case": "whether case counts",
               "held out": "the pool images held out of self-training", "sample": "the images compared",
               "reader": "the model whose view the fit matches"}  # fmt: skip


class StageFailed(CaptchagenError):
    """A stage's command ended with an error (what it printed says why)."""


def check(o: Options) -> Pool:
    """Refuse a pool or an OUT that cannot work, before anything is written; the pool's sample."""
    if not o.pool.is_dir():
        raise BadInput(f"pool {o.pool} is not a folder of images", param="pool")
    unlabeled.check_apart(o.pool, o.out)
    if o.out.exists() and not o.out.is_dir():
        raise BadInput(f"`out` {o.out} is a file, not a folder", param="out")
    if o.labels is not None:
        out, labels = o.out.resolve(), o.labels.resolve()
        if out == labels or labels in out.parents:
            raise BadInput(f"`out` {o.out} is inside `labels` {o.labels}: what adapt writes would be read as "
                           "labelled captchas; put it beside them", param="out")  # fmt: skip
        if out in labels.parents:
            raise BadInput(f"`labels` {o.labels} is inside `out` {o.out}, which adapt writes: give a folder of "
                           "yours beside it", param="labels")  # fmt: skip
        labelling.read_labelled(o.labels)  # a folder with no labelled image: now, not after the training
    return open_pool(o.pool, SAMPLE, o.seed)


def run(o: Options, say: Say, runner: Runner = run_captchagen, clock: Clock = time.monotonic) -> Path:
    """Run every stage that is not done; OUT/model.pt, a copy of the model adapt returns: the self-trained
    one, unless its estimate on the pool is below the estimate of the model it started from. Stopped (from
    the runner) when asked to stop, StageFailed when a stage fails, BadInput for an OUT holding what adapt
    did not make. With `labels`, the comparisons rank by accuracy on labelled images the compared models
    never trained on, and self-training learns from a part of them (captchagen.adapt.labels)."""
    minutes = Minutes(clock)
    outfolder.prepare(o.out)
    with FolderLock(o.out, "adapt"):
        state = State.read(o.out)
        if state.notice:
            say(f"note: {state.notice}")
        _refuse_foreign(o.out, state)
        train_labels, check_labels = _split_labels(o, state, say) if o.labels is not None else (None, None)
        fitted = looks(o)
        if len(fitted) > 1:
            say(f"{len(fitted)} looks, each fitted, made and fine-tuned on ({look_images(o):,} of the {o.n:,} "
                f"synthetic images and {train_minutes(o):g} of the {o.time_limit:g} training minutes each): "
                f"{', '.join(look.name for look in fitted)}")  # fmt: skip
        for look in fitted:
            record = None
            if o.style is None:
                _do(fit_stage(o, look), state, say, runner, minutes)
                record = read_record(o.out / look.fit)
                if record is None:
                    raise CaptchagenError(f"fit-style left no readable record in {o.out / look.fit}")
            else:
                say(f"fit-style: skipped (the synthetic set is drawn in --style {o.style})")
            _do(make_stage(o, record, look), state, say, runner, minutes)
            _do(train_stage(o, look), state, say, runner, minutes)
        # the base model is a candidate only where it knows the characters (fine-tuning can teach it new ones)
        tuned = {synthetic_candidate(o, look).model: look for look in fitted}
        starts = [base_candidate(o)] * o.base_reads_alphabet + [synthetic_candidate(o, look) for look in fitted]
        # no start trained on the user's labels: all of them choose
        first = _compare(o, START, starts, state, say, runner, minutes, o.labels)
        start = _best(first, starts)
        # beside the pool, self-training draws the synthetic set of its start, or of the fine-tune that reads best
        look = tuned.get(start.model) or tuned[max(tuned, key=lambda model: first[model].rank)]
        by = _decided_by(first, start, starts) if o.labels is not None else "the estimate"
        beside = f"; beside the pool it learns {o.out / look.data}" if len(fitted) > 1 else ""
        say(f"self-training starts from {start.name} ({start.model}): it reads the pool best by {by}{beside}")
        # said before the longest step, where stopping costs nothing done: with --case ignore the fits, sets and
        # fine-tunes are kept, and the comparisons and self-training redone as the site checks
        early = _case_note(o, read_back.read_readings(o.out / ESTIMATES / START / COMPARED), start)
        if early is not None:
            say(f"{early}; self-training learns case as read: to learn as such a site checks, stop now (Ctrl-C) "
                "and run this command again with --case ignore (the fits, sets and fine-tunes are kept)")  # fmt: skip
        _hold_out(o, say)
        _do(self_train_stage(o, start, train_labels, look), state, say, runner, minutes)
        adapted = adapted_candidate(o)
        # the self-trained model learnt the `train` part: only the `check` part may judge it
        scores = _compare(o, RESULT, [*starts, adapted], state, say, runner, minutes, check_labels)
        kept = adapted if scores[adapted.model].beats(scores[start.model], start.model) else start
        if kept is start:
            a, s = scores[adapted.model], scores[start.model]
            why = (f"accuracy on the held-back labels is not above its start's ({a.labelled:.1%} against "
                   f"{s.labelled:.1%})" if check_labels is not None else
                   f"estimate on the pool is not clearly above its start's ({a.estimate:.3f} against "
                   f"{s.estimate:.3f})")  # fmt: skip
            say(f"note: the self-trained model's {why}; adapt returns the start, {start.model}")
        elif check_labels is None:
            # in the page's order, not the model's least sure first: those would judge it on its worst images
            say(f"note: kept on the label-free estimate alone, which a self-trained model can fool (its confidence "
                "rises over the pool's look, right or wrong: docs/studies/adapt.md); 20 labelled pool images "
                f"measure instead: captchagen label {quote(str(o.pool))} --out LABELLED, then this command again "
                "with --labels LABELLED (the fit, make and first training are kept)")  # fmt: skip
        model = _keep(kept, o.out / MODEL, state, say)
        _show_readings(o, kept, start if kept is adapted else adapted, state, say, noted=early is not None)
        say(minutes.line())
        return model


def _case_note(o: Options, found: read_back.Readings | None, candidate: Candidate) -> str | None:
    """readings.case_note on what `candidate` read in a comparison's `found` readings, where case counts (None
    where it keeps to both cases, or the comparison kept no readings)."""
    if o.case != "sensitive" or found is None or candidate.model not in found.by_model:
        return None
    return read_back.case_note(found.by_model[candidate.model], o.alphabet, _shown(o, candidate))


def _show_readings(o: Options, kept: Candidate, other: Candidate, state: State, say: Say, noted: bool) -> None:
    """OUT/READINGS: held-out pool images with the returned model's reading and the other's under each (what no
    estimate can judge, a person reads at a glance); and, unless the start's readings `noted` it, a note where
    the returned model's letters keep to one case of an alphabet that has both (the site then cannot check
    case: --case ignore). A sheet that cannot be drawn from this comparison is removed: it would show an
    earlier one's readings."""
    target = o.out / READINGS
    found = read_back.read_readings(o.out / ESTIMATES / RESULT / COMPARED)
    rows = [(_shown(o, c), c.model) for c in (kept, other)]
    if found is not None:
        state.claim(READINGS)
    sheet = read_back.write_sheet(found, rows, target) if found is not None else None
    if sheet is None and target.exists() and state.owns(READINGS):
        target.unlink()
    if found is None:
        say(f"note: {o.out / ESTIMATES / RESULT} was made before compare kept each model's readings: no "
            f"{READINGS} (remove that folder and run adapt again to draw it)")  # fmt: skip
        return
    if sheet is not None:
        held = "held-out " if o.held_out else ""
        say(f"readings: {sheet} ({held}pool images, each with what {rows[0][0]} (returned) and {rows[1][0]} read): "
            "no estimate can tell a consistent wrong reading from a right one; a glance at it can")  # fmt: skip
    note = None if noted else _case_note(o, found, kept)
    if note is not None:
        say(note)


def _shown(o: Options, c: Candidate) -> str:
    """A candidate as the sheet and notes name it: the base model as it was given (base-v3), unless that is a
    path (too long for a caption)."""
    return (o.base if "/" not in o.base else "base") if c.name == "base" else c.name


def _hold_out(o: Options, say: Say) -> None:
    """OUT/estimates/LEARNT: the pool images self-training learns, every one but those the comparisons read
    (unlabeled.seeded_sample, as `compare` draws them), relative to the list file. Rewritten only when what
    it lists changed: a resumed self-training checks that its pool is the one it started on."""
    if not o.held_out:
        say(f"note: the pool holds {o.pool_images} images, too few to keep any out of self-training: the last "
            "comparison reads images the self-trained model learnt, where its estimate flatters it")  # fmt: skip
        return
    paths = unlabeled.list_images(o.pool).paths
    compared = set(unlabeled.seeded_sample(paths, o.held_out, o.seed))
    target = o.out / ESTIMATES / LEARNT
    here = target.parent.resolve()
    lines = [os.path.relpath(p.resolve(), here) for p in paths if p not in compared]
    odd = next((line for line in lines if "\n" in line or "\r" in line or not line.isprintable()), None)
    if odd is not None:
        raise BadInput(f"pool {o.pool}: the file name {odd!r} cannot be listed for self-training (a line break "
                       "or bytes that are not UTF-8); rename it", param="pool")  # fmt: skip
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    if not target.is_file() or target.read_bytes() != data:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(target, data)
    say(f"self-training learns {len(paths) - len(compared):,} of the pool's {len(paths):,} images ({target}); the "
        f"{len(compared):,} others are held out for the comparisons to read")  # fmt: skip


def _split_labels(o: Options, state: State, say: Say) -> tuple[Path, Path | None]:
    """OUT/labels/train and OUT/labels/check from the user's labelled folder (copies; theirs is only read)."""
    assert o.labels is not None
    labelled = labelling.read_labelled(o.labels)
    state.claim(LABELS)
    train, check = labelling.split(labelled, o.out / LABELS, o.seed)
    n_check = len(labelling.split_parts(labelled, o.seed)[1])
    say(f"labels: {len(labelled.files) - n_check} of the {len(labelled.files)} labelled images are trained on, "
        f"{n_check} held back to check the self-trained model with ({o.out / LABELS})")  # fmt: skip
    return train, check


def _keep(kept: Candidate, target: Path, state: State, say: Say) -> Path:
    """Copy the kept model to OUT/model.pt (atomically; left as it is when it already holds those bytes)."""
    state.claim(MODEL)
    if not target.is_file() or file_sha256(target) != file_sha256(kept.file):
        with atomic.replacing(target) as tmp:
            shutil.copyfile(kept.file, tmp)
    say(f"{target} is the {kept.name} model ({kept.model})")
    return target


def _compare(o: Options, which: str, candidates: list[Candidate], state: State, say: Say, runner: Runner,
             minutes: Minutes, labels: Path | None = None) -> dict[str, Score]:  # fmt: skip
    """Each candidate's score on the pool (by its model), from the compare stage; kept in the state file.
    With `labels`, says whether the estimate ranks the candidates as the labels do."""
    stage = compare_stage(o, which, candidates, labels)
    _do(stage, state, say, runner, minutes)
    scores = read_comparison(stage.output)
    if scores is None or any(c.model not in scores for c in candidates):
        raise CaptchagenError(f"compare left no readable estimates in {stage.output}")
    state.keep_estimates(which, {c.name: scores[c.model].estimate for c in candidates},
                         {c.name: v for c in candidates if (v := scores[c.model].labelled) is not None})  # fmt: skip
    if labels is not None:
        by_estimate = max(candidates, key=lambda c: scores[c.model].estimate)
        chosen = _best(scores, candidates)
        if _decided_by(scores, chosen, candidates) == "the estimate":
            accuracies = ", ".join(f"{c.name} {scores[c.model].labelled or 0:.0%}" for c in candidates)
            say(f"compare {which}: the labelled images cannot tell the models apart ({accuracies}); by the "
                f"estimate, {chosen.name} reads the pool best")  # fmt: skip
        else:
            verdict = "agrees" if by_estimate is chosen else f"would have chosen {by_estimate.name}"
            say(f"compare {which}: {chosen.name} reads the labelled images best; the label-free estimate {verdict}")
    return scores


def _decided_by(scores: dict[str, Score], chosen: Candidate, candidates: list[Candidate]) -> str:
    """What chose `chosen` in a labelled comparison: the labelled images, where it reads more of them right than
    every other candidate; else the estimate (labels too few to tell the models apart, a tie among them
    included, leave the choice to it: Score.beats). At 20 labels on easycaptcha every model read none right."""
    others = max((scores[c.model].labelled or 0.0 for c in candidates if c != chosen), default=0.0)
    return "accuracy on the labelled images" if (scores[chosen.model].labelled or 0.0) > others else "the estimate"


def _best(scores: dict[str, Score], candidates: list[Candidate]) -> Candidate:
    """The candidate that reads the pool best: each in turn takes the place of the best so far only where it
    beats it (Score.beats), so the earlier (the base model before its fine-tuning) keeps a tie or a doubt."""
    chosen = candidates[0]
    for c in candidates[1:]:
        if scores[c.model].beats(scores[chosen.model], chosen.model):
            chosen = c
    return chosen


def _refuse_foreign(out: Path, state: State) -> None:
    foreign = [out / top for top in OUTPUTS if (out / top).exists() and not state.owns(top)]
    if foreign:
        names = ", ".join(str(p) for p in foreign)
        raise BadInput(
            f"{names} {'is' if len(foreign) == 1 else 'are'} in `out` but not made by this adapt; adapt replaces "
            f"nothing it did not make: move {'it' if len(foreign) == 1 else 'them'} away, or give another `out`",
            param="out",
        )


def _do(stage: Stage, state: State, say: Say, runner: Runner, minutes: Minutes) -> None:
    if state.is_done(stage) and finished(stage):
        say(f"{stage.name}: done ({stage.output})")
        minutes.skipped(stage.kind)
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
    say(f"+ captchagen {join(argv)}")  # as a shell takes it: a pool path with a space pastes whole
    started = minutes.clock()
    code = runner(argv)
    minutes.add(stage.kind, minutes.clock() - started)
    if code:
        raise StageFailed(f"step {stage.name} failed (exit code {code}); its output is above")
    state.finish(stage)


def _remove(stage: Stage, say: Say, why: str) -> None:
    """Delete a stage's old output (adapt's own): never while another process holds it (FolderBusy)."""
    what = "train" if stage.trains else "make" if stage.kind == "make" else "fit-style"
    with FolderLock(stage.output, what):
        shutil.rmtree(stage.output)
    say(f"note: removed {stage.output}: {why}")
