"""Continuing a stopped run: its settings, its time limit, and where it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from captchagen.errors import BadInput
from trainer import checkpoint
from trainer.checkpoint import ResumeState
from trainer.training.request import TrainRequest


@dataclass
class Progress:
    """Where the run is: what a resume restores and last.pt records."""

    epoch: int = 0  # the epoch to start from (0-based)
    batch: int = 0  # batches of that epoch already done
    step: int = 0  # optimisation steps so far
    elapsed_before: float = 0.0  # seconds trained before this process started
    best: dict[str, Any] = field(default_factory=lambda: {"seq_accuracy": -1.0})
    # What the epoch interrupted at `batch` had counted, summed over the processes (loss_sum, seen, read,
    # passed), so that its row after a resume covers the whole epoch; empty at an epoch's start.
    partial: dict[str, float] = field(default_factory=dict)


def resumed_config(saved: dict[str, Any], given: TrainRequest) -> TrainRequest:
    """A resumed run's settings are the saved ones, time limit included (the schedule is stretched over
    it), unless a new `time_limit` is given."""
    time_limit = given.time_limit if given.time_limit is not None else saved.get("time_limit")
    return replace(TrainRequest(**saved), time_limit=time_limit)


def resume_state(cfg: TrainRequest, resume: Path | None) -> tuple[ResumeState | None, TrainRequest]:
    """The resumed state and settings, or (None, cfg) for a new run."""
    if resume is None:
        return None, cfg
    if cfg.init_from:
        raise BadInput(
            "`resume` continues a run from its own last.pt, so `init_from` cannot be given with it: "
            "drop `init_from`, or start a new run from that model"
        )
    state = checkpoint.read_resumable(resume)
    cfg = resumed_config(state.model.train_config, cfg)
    limit = cfg.time_limit * 60 if cfg.time_limit else None
    if limit is not None and state.elapsed >= limit:
        raise BadInput(
            f"{Path(resume).parent} has trained for its whole time limit of {cfg.time_limit:g} minutes; "
            "pass a larger `time_limit` (in minutes, counting the time already trained) to train on"
        )
    return state, cfg


def restore(state: ResumeState, model: torch.nn.Module, optimizer: torch.optim.Optimizer, cuda: bool) -> Progress:
    model.load_state_dict(state.model.weights)
    optimizer.load_state_dict(state.optimizer)
    torch.set_rng_state(state.rng["torch"])
    if cuda and state.rng.get("cuda") is not None:
        torch.cuda.set_rng_state(state.rng["cuda"])
    return Progress(
        epoch=state.epoch,
        batch=state.batch,
        step=state.step,
        elapsed_before=state.elapsed,
        best=state.model.metrics,
        partial=dict(state.partial),
    )
