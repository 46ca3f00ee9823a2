"""The training loop: from a TrainRequest to a run folder with checkpoints, as a few named steps.

train() works the run out once (plan.make_plan: defaults, size, crop, alphabet, every dataset opened, the
machine), sets it up (`_set_up`: the data through datasets.load_data, the model, the step, a restored state
or a new run folder), then is the epoch loop: train (steps.train_epoch), validate (validate.validate), save
(`_Run.save`). Nothing here reads the request: only the plan. What it reports and returns are the
dataclasses of trainer.training.events.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NoReturn

import torch
from torch.nn.parallel import DistributedDataParallel

from captchagen import atomic
from captchagen.errors import BadInput
from captchagen.lock import FolderLock
from trainer import checkpoint, models, runs
from trainer.checkpoint import ModelRecord, ResumeState, RngState
from trainer.data import loading as data
from trainer.data.mixing import StreamBatchSampler
from trainer.device import all_sum, memory_format
from trainer.metrics import Counts
from trainer.records import PartialCounts
from trainer.training.advice import STUCK_EPOCHS, STUCK_STEPS, better, stuck_notice, too_few_steps, zero_streak
from trainer.training.datasets import Data, load_data, train_sampler, write_inputs
from trainer.training.events import (
    EpochEnded,
    EpochStarted,
    Events,
    Notice,
    Started,
    TrainResult,
)
from trainer.training.finetune import transplant
from trainer.training.interrupt import Interrupted, StopRequest
from trainer.training.optim import lr_at, make_optimizer, set_lr
from trainer.training.plan import Plan, make_plan
from trainer.training.pseudo import read_batch
from trainer.training.request import TrainRequest
from trainer.training.resume import Position, restore
from trainer.training.semi import SemiStep, Teacher
from trainer.training.steps import Diverged, Step, SupervisedStep, finite, kept, train_epoch
from trainer.training.validate import validate


def train(request: TrainRequest, events: Events | None = None, resume: Path | None = None) -> TrainResult:
    """Train a model as `request` asks (or continue the run whose last.pt is `resume`); return the best metrics.

    A run folder has one writer: the run's process holds its lock (captchagen.lock) from the moment it is
    made or resumed until train returns, so a second `resume` of it, or a second run of the same name, is
    refused in one line naming the first. Ctrl-C stops at the next batch boundary with last.pt saved, and
    raises Interrupted."""
    with contextlib.ExitStack() as held:
        if resume is not None and int(os.environ.get("RANK", "0")) == 0 and Path(resume).parent.is_dir():
            held.enter_context(FolderLock(Path(resume).parent, "train"))
        plan = make_plan(request, resume)
        main = plan.runtime.dist.main
        emit: Events = events if (events and main) else (lambda event: None)
        return _epochs(_set_up(plan, emit, held, resume), emit)


@dataclass
class _Clock:
    """The run's time: seconds trained (by earlier processes too) against the limit, if any, leaving room for
    a validation as long as the last one."""

    before: float  # seconds trained before this process started
    limit: float | None  # seconds; None: no limit
    started: float = field(default_factory=time.perf_counter)
    val_seconds: float = 0.0  # the last validation's

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.started

    def late(self) -> bool:
        return self.limit is not None and self.elapsed() + self.val_seconds * 1.1 >= self.limit

    def used(self) -> float:
        """The share of the time limit used (0 without one)."""
        return self.elapsed() / self.limit if self.limit else 0.0


@dataclass
class _Run:
    """A run set up: what the epoch loop works on."""

    plan: Plan
    folder: Path
    model: torch.nn.Module
    net: torch.nn.Module  # the model, or its DDP wrapper
    sets: Data
    optimizer: torch.optim.Optimizer
    step: Step
    sampler: data.ShardedBatchSampler | StreamBatchSampler
    steps_per_epoch: int
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    at: Position
    stop: StopRequest
    teacher: Teacher | None  # with `unlabeled`: the moving average that pseudo-labels the pool
    clock: _Clock
    rows: list[dict]  # metrics.jsonl's rows so far
    warned: bool = False  # the stuck notice was given

    def learn(self, batch: data.Batch) -> float:
        """One step, at the learning rate of where the run is: the larger of steps done / planned and time
        used / limit sets the progress."""
        schedule = self.plan.schedule
        progress = max(self.at.step / (self.steps_per_epoch * schedule.epochs), self.clock.used())
        set_lr(self.optimizer, lr_at(progress, schedule.lr, schedule.warmup))
        return self.step(batch)

    def should_stop(self) -> str | None:
        """ "interrupt" (Ctrl-C), "time" or None. Every process stops at the same batch: the flags are summed
        over them."""
        flags = all_sum(torch.tensor([float(self.clock.late()), float(self.stop.asked)]), self.plan.runtime.dist)
        return "interrupt" if flags[1] > 0 else "time" if flags[0] > 0 else None

    def save(self, epoch: int, improved: bool) -> None:
        """best.pt when validation improved; last.pt always, with what a resume needs. The run is registered
        in runs/LATEST when its first best.pt is written: until then it holds no model for `test` to read."""
        plan, at = self.plan, self.at
        record = plan.record.to_dict()
        model = ModelRecord.of(self.model, plan.alphabet, plan.pre, plan.model, record, at.best, epoch)
        if improved:
            first = not (self.folder / "best.pt").exists()
            checkpoint.save(self.folder / "best.pt", model)
            if first:
                runs.register(self.folder)
        state = ResumeState(
            model=model,
            optimizer=self.optimizer.state_dict(),
            rng=RngState.now(plan.runtime.cuda),
            epoch=at.epoch,
            batch=at.batch,
            step=at.step,
            elapsed=self.clock.elapsed(),
            teacher=self.teacher.state_dict() if self.teacher is not None else None,
            partial=at.partial,
            pseudo_round=self.step.carried(),  # the round the next epoch may go on with
        )
        checkpoint.save(self.folder / "last.pt", state)


def _set_up(plan: Plan, emit: Events, held: contextlib.ExitStack, resume: Path | None) -> _Run:
    schedule, runtime, info = plan.schedule, plan.runtime, plan.runtime.dist
    torch.manual_seed(schedule.seed)
    sets = load_data(plan, emit)
    model = _build_model(plan)
    for note in plan.notes:
        emit(Notice(note))
    if plan.parent is not None:
        emit(Notice(transplant(model, plan.model, plan.parent, plan.alphabet)))
    optimizer = make_optimizer(model, schedule.lr, schedule.weight_decay)
    sampler = train_sampler(plan, sets)
    val_sampler = data.ShardedBatchSampler(
        len(sets.val), 256, shuffle=False, rank=info.rank, world=info.world, drop_last=False
    )
    at = restore(plan.resume, model, optimizer, runtime.cuda) if plan.resume is not None else Position()
    teacher = Teacher(model, plan.semi.ema_decay) if plan.semi is not None else None
    if teacher is not None and plan.resume is not None and plan.resume.teacher is not None:
        teacher.load_state_dict(plan.resume.teacher)
    # From here on a Ctrl-C waits for the next batch boundary, where last.pt is saved: before this point
    # there is no run folder to leave half made (a Ctrl-C while caching just stops).
    stop = held.enter_context(StopRequest())
    folder = Path(resume).parent if resume is not None else _open_run(plan, held)
    if info.main:
        write_inputs(folder, sets)
    sampler.set_epoch(0)
    if plan.resume is None and not plan.fine_tuned and len(sampler) * schedule.epochs < STUCK_STEPS:
        emit(Notice(too_few_steps(sets.sizes[0], len(sampler), schedule.epochs, schedule.batch_size)))
    emit(_started(plan, folder, sets, model, len(sampler), at))
    net = DistributedDataParallel(model) if info.enabled else model
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.precision == "fp16")
    step = _make_step(plan, net, optimizer, scaler, teacher, sets, len(sampler))
    return _Run(
        plan=plan,
        folder=folder,
        model=model,
        net=net,
        sets=sets,
        optimizer=optimizer,
        step=step,
        sampler=sampler,
        steps_per_epoch=len(sampler),
        train_loader=data.loader(sets.train, sampler, runtime.cuda),
        val_loader=data.loader(sets.val, val_sampler, runtime.cuda),
        at=at,
        stop=stop,
        teacher=teacher,
        clock=_Clock(at.elapsed_before, schedule.time_limit * 60 if schedule.time_limit else None),
        rows=runs.read_metrics(folder) if plan.resume is not None else [],
    )


def _make_step(
    plan: Plan,
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    teacher: Teacher | None,
    sets: Data,
    steps_per_epoch: int,
) -> Step:
    """A self-training step when the run has a teacher, a supervised one otherwise."""
    if teacher is None or plan.semi is None:
        return SupervisedStep(net, optimizer, scaler, plan)
    pool = _pool_batches(sets, read_batch(plan.runtime.device))
    return SemiStep(net, optimizer, scaler, plan, teacher, plan.semi, pool, sets.unlabeled, steps_per_epoch)


def _pool_batches(sets: Data, size: int) -> Callable[[], Iterator[tuple[list[str], torch.Tensor]]]:
    """The whole unlabelled pool (the last `sets.unlabeled` images of the training set), in order, in batches
    of (paths, uint8 images): what a round of ranked pseudo-labels reads."""

    def batches() -> Iterator[tuple[list[str], torch.Tensor]]:
        first = len(sets.train) - sets.unlabeled
        for start in range(first, len(sets.train), size):
            batch = sets.train.__getitems__(list(range(start, min(start + size, len(sets.train)))))
            yield [str(p) for p in batch.paths], batch.images

    return batches


def _started(plan: Plan, folder: Path, sets: Data, model: torch.nn.Module, steps: int, at: Position) -> Started:
    runtime = plan.runtime
    return Started(
        run=str(folder),
        train=sets.sizes[0],
        val=len(sets.val),
        device=str(runtime.device),
        precision=runtime.precision,
        threads=runtime.threads,
        world=runtime.dist.world,
        alphabet=plan.alphabet.chars,
        params=sum(p.numel() for p in model.parameters()),
        steps_per_epoch=steps,
        epochs=plan.schedule.epochs,
        resumed_epoch=at.epoch if plan.resume else None,
        skipped=len(sets.skipped),
        mixed=sets.mixed,
        unlabeled=sets.unlabeled,
        pseudo=plan.semi.mode if plan.semi is not None else None,
    )


def _epochs(r: _Run, emit: Events) -> TrainResult:
    """The epoch loop over a run set up: train, validate, keep, report; until the epochs or the time run out."""
    stopped_by_time = False
    try:
        for epoch in range(r.at.epoch, r.plan.schedule.epochs):
            trained = _train(r, epoch, emit)
            if trained.stopped == "interrupt":
                _stop_here(r, epoch, trained)
            stopped_by_time = trained.stopped == "time"
            if stopped_by_time and trained.seen == 0 and r.at.best.validated:
                break  # the time ran out before this epoch's first step: nothing new to validate, save or show
            validated = _validate(r, epoch, trained)
            emit(replace(validated.ended, best=_keep(r, epoch, validated)))
            _advise(r, emit)
            if stopped_by_time:
                break
    except KeyboardInterrupt as e:  # a second Ctrl-C, or one during validation: nothing more is saved
        r.stop.mute()
        if isinstance(e, Interrupted):
            raise
        raise Interrupted(str(r.folder), (r.folder / "last.pt").exists()) from None
    return _finish(r, stopped_by_time, emit)


@dataclass(frozen=True)
class _Trained:
    """An epoch's training by this process group: its loss and images summed over the processes, the batch
    it stopped at, why it stopped early (None: the epoch ended) and its seconds."""

    loss_sum: float
    seen: int
    batch: int
    stopped: str | None
    seconds: float


@dataclass(frozen=True)
class _Validated:
    """An epoch validated: its metrics row (the whole epoch's, counts carried in by a resume included), the
    validation counts, and what it counted, for a resume should it have stopped early."""

    ended: EpochEnded
    counts: Counts
    batch: int
    totals: PartialCounts


def _train(r: _Run, epoch: int, emit: Events) -> _Trained:
    """One epoch's steps, from where a resume left off, until it ends, the time runs out or Ctrl-C."""
    r.sampler.set_epoch(epoch, r.at.batch if epoch == r.at.epoch else 0)
    emit(EpochStarted(epoch=epoch + 1, batches=r.steps_per_epoch, done=r.sampler.start))
    started = time.perf_counter()
    carried, r.at.pseudo_round = r.at.pseudo_round, None  # a resumed epoch's round, once
    r.step.new_epoch(epoch, carried)
    r.net.train()
    try:
        loss_sum, seen, batch, stopped = train_epoch(
            r.learn, r.train_loader, epoch, r.sampler.start, r.at, r.plan.runtime, emit, r.should_stop
        )
    except Diverged as e:
        raise Diverged(f"training diverged: {e}; {kept(r.folder, r.at.best)}. {_lower_lr(r)}") from None
    summed = all_sum(torch.tensor([loss_sum, float(seen)]), r.plan.runtime.dist).tolist()
    return _Trained(summed[0], int(summed[1]), batch, stopped, time.perf_counter() - started)


def _stop_here(r: _Run, epoch: int, trained: _Trained) -> NoReturn:
    """Ctrl-C inside an epoch: last.pt where it stopped, with what the epoch had counted (best.pt stays as the
    last validated epoch made it); then Interrupted."""
    read, passed = all_sum(torch.tensor([float(n) for n in r.step.pseudo_so_far()]), r.plan.runtime.dist).tolist()
    if r.plan.runtime.dist.main:
        r.at.epoch, r.at.batch = epoch, trained.batch
        r.at.partial = PartialCounts(trained.loss_sum, trained.seen, int(read), int(passed)).plus(r.at.partial)
        r.save(epoch, False)
    r.stop.mute()
    raise Interrupted(str(r.folder), True, f"epoch {epoch + 1}, batch {trained.batch} of {r.steps_per_epoch}")


def _validate(r: _Run, epoch: int, trained: _Trained) -> _Validated:
    """The epoch's model on the validation set, and its row; Diverged if its weights or loss are not finite."""
    plan = r.plan
    started = time.perf_counter()
    counts = validate(r.model, r.val_loader, plan.alphabet, plan.pre, plan.runtime)
    pseudo = r.step.pseudo_report(r.val_loader)
    r.clock.val_seconds = time.perf_counter() - started
    # The epoch's counts, and those of its part before a stop if it was resumed midway.
    read, passed = (pseudo.read, pseudo.passed) if pseudo else (0, 0)
    totals = PartialCounts(trained.loss_sum, trained.seen, read, passed).plus(r.at.partial)
    r.at.partial = None
    ended = EpochEnded(
        epoch=epoch + 1,
        complete=trained.stopped is None,
        train_loss=totals.loss_sum / max(1, totals.seen),
        val_loss=counts.loss,
        seq_accuracy=counts.accuracy,
        mean_edit_distance=counts.mean_edit_distance,
        cer=counts.cer,
        images_per_s=trained.seen / trained.seconds if trained.seconds else 0.0,
        elapsed_s=r.clock.elapsed(),
        lr=r.optimizer.param_groups[0]["lr"],
        val_images=counts.samples,
        pseudo=replace(pseudo, read=totals.read, passed=totals.passed).as_row() if pseudo else None,
    )
    if not finite(r.model) or not math.isfinite(counts.loss):
        raise Diverged(
            f"training diverged: the weights became NaN or infinite in epoch {epoch + 1}; "
            f"{kept(r.folder, r.at.best)}. {_lower_lr(r)}"
        )
    return _Validated(ended, counts, trained.batch, totals)


def _keep(r: _Run, epoch: int, v: _Validated) -> bool:
    """Whether the epoch is the best so far (or `keep` is "last"): where the run is, on every process alike
    (the counts are summed over them), so that all of them decide the next epoch the same way; then, on
    the main process, best.pt if so, last.pt, the metrics row and the curves."""
    plan, at, ended = r.plan, r.at, v.ended
    improved = plan.schedule.keep == "last" or better(ended.seq_accuracy, ended.cer, ended.val_loss, at.best)
    if improved:
        at.best = v.counts.metrics(epoch + 1)
    at.epoch, at.batch = (epoch + 1, 0) if ended.complete else (epoch, v.batch)
    # Stopped by the time limit: resumed with a larger one, the epoch's full row adds these.
    at.partial = None if ended.complete else v.totals
    if plan.runtime.dist.main:
        r.save(epoch + 1, improved)
        runs.append_metrics(r.folder, ended.row())
        r.rows.append(ended.row())
        runs.plot_curves(r.folder, r.rows)
    return improved


def _advise(r: _Run, emit: Events) -> None:
    """Once a run: a notice when validation has read nothing for STUCK_EPOCHS epochs after STUCK_STEPS steps."""
    zeros = zero_streak(r.rows)
    if r.plan.runtime.dist.main and not r.warned and zeros >= STUCK_EPOCHS and r.at.step >= STUCK_STEPS:
        r.warned = True
        schedule, inputs = r.plan.schedule, r.folder / "inputs.png"
        emit(Notice(stuck_notice(zeros, r.at.step, inputs, schedule.lr, from_scratch=not r.plan.fine_tuned)))


def _finish(r: _Run, stopped_by_time: bool, emit: Events) -> TrainResult:
    result = TrainResult(
        run=str(r.folder),
        best=r.at.best,
        stopped_by_time=stopped_by_time,
        skipped=r.sets.skipped[:20],
        skipped_count=len(r.sets.skipped),
        elapsed_s=r.clock.elapsed(),
        keep=r.plan.schedule.keep,
    )
    emit(result)
    if r.plan.runtime.dist.enabled:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


def _lower_lr(r: _Run) -> str:
    return f"Try a lower `lr` (this run: {r.plan.schedule.lr:g})"


def _build_model(plan: Plan) -> torch.nn.Module:
    device = plan.runtime.device
    try:
        return models.build(plan.model).to(device, memory_format=memory_format(device))  # type: ignore[call-overload]
    except ValueError as e:  # input size against the longest label, or not a multiple of the pooling
        raise BadInput(str(e)) from None


def _open_run(plan: Plan, held: contextlib.ExitStack) -> Path:
    """A new run folder, locked for this process, with its config.json (rank 0 only; the others never write):
    the settled request (every field, decisions written in, as checkpoints keep it), the network, the
    preprocessing, and `request`, the fields as they were given."""
    if not plan.runtime.dist.main:
        return plan.runs_dir / "not-rank-0"
    run = runs.new_run_dir(plan.runs_dir, plan.name)
    held.enter_context(FolderLock(run, "train"))
    config = {
        **plan.record.to_dict(),
        "model": asdict(plan.model),
        "preprocessing": plan.pre.to_dict(),
        "request": plan.request,
    }
    atomic.write_json(run / "config.json", config)
    return run
