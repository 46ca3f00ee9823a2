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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from captchagen import atomic
from captchagen.errors import BadInput
from captchagen.lock import FolderLock
from trainer import checkpoint, runs
from trainer.checkpoint import ModelRecord, ResumeState
from trainer.data import loading as data
from trainer.data.mixing import StreamBatchSampler
from trainer.device import all_sum, memory_format
from trainer.model import build_model
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
from trainer.training.request import TrainRequest
from trainer.training.resume import Progress, restore
from trainer.training.semi import SemiStep, Teacher, check_readings
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
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    at: Progress
    stop: StopRequest
    teacher: Teacher | None  # with `unlabeled`: the moving average that pseudo-labels the pool

    def save(self, epoch: int, improved: bool, elapsed: float) -> None:
        """best.pt when validation improved; last.pt always, with what a resume needs. The run is registered
        in runs/LATEST when its first best.pt is written: until then it holds no model for `test` to read."""
        plan, at = self.plan, self.at
        model = ModelRecord.of(self.model, plan.alphabet, plan.pre, plan.model, plan.record, at.best, epoch)
        if improved:
            first = not (self.folder / "best.pt").exists()
            checkpoint.save(self.folder / "best.pt", model)
            if first:
                runs.register(self.folder)
        rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if plan.runtime.cuda else None}
        state = ResumeState(
            model=model,
            optimizer=self.optimizer.state_dict(),
            rng=rng,
            epoch=at.epoch,
            batch=at.batch,
            step=at.step,
            elapsed=elapsed,
            teacher=self.teacher.state_dict() if self.teacher is not None else None,
            partial=at.partial,
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
    at = restore(plan.resume, model, optimizer, runtime.cuda) if plan.resume is not None else Progress()
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
    emit(
        Started(
            run=str(folder),
            train=sets.sizes[0],
            val=len(sets.val),
            device=str(runtime.device),
            precision=runtime.precision,
            threads=runtime.threads,
            world=info.world,
            alphabet=plan.alphabet.chars,
            params=sum(p.numel() for p in model.parameters()),
            steps_per_epoch=len(sampler),
            epochs=schedule.epochs,
            resumed_epoch=at.epoch if plan.resume else None,
            skipped=len(sets.skipped),
            mixed=sets.mixed,
            unlabeled=sets.unlabeled,
        )
    )
    net = DistributedDataParallel(model) if info.enabled else model
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.precision == "fp16")
    step: Step = (
        SemiStep(net, optimizer, scaler, plan, teacher, plan.semi)
        if teacher is not None and plan.semi is not None
        else SupervisedStep(net, optimizer, scaler, plan)
    )
    return _Run(
        plan=plan,
        folder=folder,
        model=model,
        net=net,
        sets=sets,
        optimizer=optimizer,
        step=step,
        sampler=sampler,
        train_loader=data.loader(sets.train, sampler, runtime.cuda),
        val_loader=data.loader(sets.val, val_sampler, runtime.cuda),
        at=at,
        stop=stop,
        teacher=teacher,
    )


def _epochs(r: _Run, emit: Events) -> TrainResult:
    """The epoch loop over a run set up: train, validate, save, report; until the epochs or the time run out."""
    plan = r.plan
    schedule, runtime, info = plan.schedule, plan.runtime, plan.runtime.dist
    at, run, model, optimizer = r.at, r.folder, r.model, r.optimizer
    steps_per_epoch = len(r.sampler)
    total_steps = steps_per_epoch * schedule.epochs
    limit = schedule.time_limit * 60 if schedule.time_limit else None
    started = time.perf_counter()
    val_seconds = 0.0
    stopped_by_time = False
    rows = runs.read_metrics(run) if plan.resume is not None else []

    def elapsed() -> float:
        return at.elapsed_before + time.perf_counter() - started

    def should_stop() -> str | None:
        # Every process stops at the same batch: the flags are summed over them.
        late = limit is not None and elapsed() + val_seconds * 1.1 >= limit
        flags = all_sum(torch.tensor([float(late), float(r.stop.asked)]), info)
        return "interrupt" if flags[1] > 0 else "time" if flags[0] > 0 else None

    def step(batch: data.Batch) -> float:
        # The learning rate now: the larger of steps done / planned and time used / limit sets the progress.
        progress = max(at.step / total_steps, elapsed() / limit if limit else 0.0)
        set_lr(optimizer, lr_at(progress, schedule.lr, schedule.warmup))
        return r.step(batch)

    first_epoch, first_batch = at.epoch, at.batch
    warned = False
    try:
        for epoch in range(first_epoch, schedule.epochs):
            r.sampler.set_epoch(epoch, first_batch if epoch == first_epoch else 0)
            emit(EpochStarted(epoch=epoch + 1, batches=steps_per_epoch, done=r.sampler.start))
            epoch_started = time.perf_counter()
            pseudo = r.step.new_epoch()
            r.net.train()
            try:
                loss_sum, seen, batch_index, stopped = train_epoch(
                    step, r.train_loader, epoch, r.sampler.start, at, runtime, emit, should_stop
                )
            except Diverged as e:
                raise Diverged(
                    f"training diverged: {e}; {kept(run, at.best)}. Try a lower `lr` (this run: {schedule.lr:g})"
                ) from None
            if stopped == "interrupt":
                # Every process stops at the same batch, so the counts so far can be summed over them.
                sofar = all_sum(torch.tensor([loss_sum, float(seen), float(pseudo.read), float(pseudo.passed)]), info)
                if info.main:
                    at.epoch, at.batch = epoch, batch_index
                    at.partial = _carried(at.partial, sofar.tolist())
                    # last.pt where it stopped; best.pt stays as the last validated epoch made it
                    r.save(epoch, False, elapsed())
                r.stop.mute()
                raise Interrupted(str(run), True, f"epoch {epoch + 1}, batch {batch_index} of {steps_per_epoch}")
            stopped_by_time = stopped == "time"
            train_seconds = time.perf_counter() - epoch_started
            seen_total = int(all_sum(torch.tensor([float(seen)]), info).item())
            if stopped_by_time and seen_total == 0 and "epoch" in at.best:
                break  # the time ran out before this epoch's first step: nothing new to validate, save or show
            val_started = time.perf_counter()
            counts = validate(model, r.val_loader, plan.alphabet, plan.pre, runtime)
            if r.teacher is not None and plan.semi is not None:
                check_readings(r.teacher, r.val_loader, plan.alphabet, plan.pre, runtime, plan.semi.threshold, pseudo)
            val_seconds = time.perf_counter() - val_started
            loss_total = float(all_sum(torch.tensor([loss_sum]), info).item())
            seen_here = seen_total  # by this process group since it started: the speed
            if at.partial:  # this epoch began before an interrupted process stopped: its counts come too
                loss_total += at.partial["loss_sum"]
                seen_total += int(at.partial["seen"])
                pseudo.read += int(at.partial["read"])
                pseudo.passed += int(at.partial["passed"])
                at.partial = {}
            ended = EpochEnded(
                epoch=epoch + 1,
                complete=not stopped_by_time,
                train_loss=loss_total / max(1, seen_total),
                val_loss=counts.loss,
                seq_accuracy=counts.accuracy,
                mean_edit_distance=counts.mean_edit_distance,
                cer=counts.cer,
                images_per_s=seen_here / train_seconds if train_seconds else 0.0,
                elapsed_s=elapsed(),
                lr=optimizer.param_groups[0]["lr"],
                val_images=counts.samples,
                pseudo=pseudo.as_row() if r.teacher is not None else None,
            )
            if not finite(model) or not math.isfinite(counts.loss):
                raise Diverged(
                    f"training diverged: the weights became NaN or infinite in epoch {epoch + 1}; "
                    f"{kept(run, at.best)}. Try a lower `lr` (this run: {schedule.lr:g})"
                )
            improved = False
            if info.main:
                improved = schedule.keep == "last" or better(counts.accuracy, counts.cer, counts.loss, at.best)
                if improved:
                    at.best = {**counts.summary(), "epoch": epoch + 1}
                at.epoch, at.batch = (epoch + 1, 0) if ended.complete else (epoch, batch_index)
                if not ended.complete:  # resumed with a larger time limit, the epoch's full row adds these
                    at.partial = dict(
                        zip(PARTIAL_KEYS, (loss_total, seen_total, pseudo.read, pseudo.passed), strict=True)
                    )
                r.save(epoch + 1, improved, elapsed())
                runs.append_metrics(run, ended.row())
                rows.append(ended.row())
                runs.plot_curves(run, rows)
            emit(replace(ended, best=improved))
            zeros = zero_streak(rows)
            if info.main and not warned and zeros >= STUCK_EPOCHS and at.step >= STUCK_STEPS:
                warned = True  # said once
                inputs = run / "inputs.png"
                emit(Notice(stuck_notice(zeros, at.step, inputs, schedule.lr, from_scratch=not plan.fine_tuned)))
            if stopped_by_time:
                break
    except KeyboardInterrupt as e:  # a second Ctrl-C, or one during validation: nothing more is saved
        r.stop.mute()
        if isinstance(e, Interrupted):
            raise
        raise Interrupted(str(run), (run / "last.pt").exists()) from None

    result = TrainResult(
        run=str(run),
        best=at.best,
        stopped_by_time=stopped_by_time,
        skipped=r.sets.skipped[:20],
        skipped_count=len(r.sets.skipped),
        elapsed_s=elapsed(),
        keep=schedule.keep,
    )
    emit(result)
    if info.enabled:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


PARTIAL_KEYS = ("loss_sum", "seen", "read", "passed")  # what an epoch stopped midway has counted


def _carried(before: dict[str, float], sofar: list[float]) -> dict[str, float]:
    """The counts an interrupted epoch carries into its resume: these (loss_sum, seen, read, passed) and
    what it had carried in itself, if it was resumed before."""
    return {k: before.get(k, 0.0) + v for k, v in zip(PARTIAL_KEYS, sofar, strict=True)}


def _build_model(plan: Plan) -> torch.nn.Module:
    device = plan.runtime.device
    try:
        return build_model(plan.model).to(device, memory_format=memory_format(device))  # type: ignore[call-overload]
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
    config = {**plan.record, "model": asdict(plan.model), "preprocessing": plan.pre.to_dict(), "request": plan.request}
    atomic.write_json(run / "config.json", config)
    return run
