"""Continuing a stopped run: its settings, its time limit, and where it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from captchagen.errors import BadInput
from trainer import checkpoint
from trainer.checkpoint import ResumeState
from trainer.records import Metrics, PartialCounts
from trainer.training.request import TrainRecord, TrainRequest


@dataclass
class Position:
    """Where the run is: what a resume restores and last.pt records."""

    epoch: int = 0  # the epoch to start from (0-based)
    batch: int = 0  # batches of that epoch already done
    step: int = 0  # optimisation steps so far
    elapsed_before: float = 0.0  # seconds trained before this process started
    best: Metrics = field(default_factory=Metrics)  # the figures of the epoch best.pt holds; none yet
    partial: PartialCounts | None = None  # what the epoch stopped at `batch` had counted; None at its start
    pseudo_round: dict[str, Any] | None = None  # the round of ranked pseudo-labels the run was in


def resumed_record(saved: dict[str, Any], given: TrainRequest) -> TrainRecord:
    """A resumed run's record is the saved one, time limit included (the schedule is stretched over it),
    unless a new `time_limit` is given."""
    record = TrainRecord.from_dict(saved)
    return record.with_time_limit(given.time_limit if given.time_limit is not None else record.settled.time_limit)


def resume_state(cfg: TrainRequest, resume: Path) -> tuple[ResumeState, TrainRecord]:
    """The state last.pt holds and the run's record, for a resume."""
    if cfg.init_from:
        raise BadInput(
            "`resume` continues a run from its own last.pt, so `init_from` cannot be given with it: "
            "drop `init_from`, or start a new run from that model"
        )
    state = checkpoint.read_resumable(resume)
    try:
        record = resumed_record(state.model.train_config, cfg)
    except TypeError as e:
        raise BadInput(f"{resume}: its training settings are damaged ({e})") from None
    minutes = record.settled.time_limit
    if minutes and state.elapsed >= minutes * 60:
        raise BadInput(
            f"{Path(resume).parent} has trained for its whole time limit of {minutes:g} minutes; "
            "pass a larger `time_limit` (in minutes, counting the time already trained) to train on"
        )
    return state, record


def restore(state: ResumeState, model: torch.nn.Module, optimizer: torch.optim.Optimizer, cuda: bool) -> Position:
    model.load_state_dict(state.model.weights)
    optimizer.load_state_dict(state.optimizer)
    state.rng.restore(cuda)
    return Position(
        epoch=state.epoch,
        batch=state.batch,
        step=state.step,
        elapsed_before=state.elapsed,
        best=state.model.metrics,
        partial=state.partial,
        pseudo_round=state.pseudo_round,
    )
