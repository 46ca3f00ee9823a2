"""What a training run reports while it runs, and what it returns: small frozen dataclasses, so a misspelt
field fails where it is read, not an hour into a run. Free of torch: the CLI imports these to render them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from trainer.records import Metrics


@dataclass(frozen=True)
class CacheProgress:
    """Images decoded into the cache so far (before training starts)."""

    done: int
    total: int
    path: str


@dataclass(frozen=True)
class Notice:
    """One line worth showing that is not an error, e.g. a cache entry rebuilt."""

    message: str


@dataclass(frozen=True)
class Started:
    run: str
    train: int  # training images
    val: int  # validation images
    device: str
    precision: str
    threads: int
    world: int  # processes
    alphabet: str
    params: int
    steps_per_epoch: int
    epochs: int
    resumed_epoch: int | None
    skipped: int  # bad files skipped
    mixed: int = 0  # images of --mix sets drawn into the batches beside the training images
    unlabeled: int = 0  # unlabelled images drawn into the batches (`unlabeled`)
    pseudo: str | None = None  # how their readings are chosen ("ranked" or "threshold"); None: no pool


@dataclass(frozen=True)
class EpochStarted:
    epoch: int  # from 1
    batches: int
    done: int  # batches already done (a resumed epoch)


@dataclass(frozen=True)
class BatchDone:
    epoch: int
    batch: int
    loss: float


@dataclass(frozen=True)
class EpochEnded:
    """One line of metrics.jsonl (all but `best`): an epoch's losses and validation metrics."""

    epoch: int
    complete: bool  # False when the time limit stopped it part way
    train_loss: float
    val_loss: float
    seq_accuracy: float
    mean_edit_distance: float
    cer: float
    images_per_s: float
    elapsed_s: float
    lr: float
    val_images: int = 0  # what the validation figures are counted over
    # With `unlabeled` (trainer.training.steps.PseudoCounts): readings of unlabelled images and how many
    # passed the threshold, and the teacher's readings of the validation images at or over it, and right.
    pseudo: dict[str, float | int] | None = None
    best: bool = False  # the best validation accuracy so far: best.pt was written

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "best" and not (k == "pseudo" and v is None)}


@dataclass
class PseudoCounts:
    """An epoch's pseudo-labelling (`unlabeled`, trainer.training.semi), summed over the processes: what the
    epoch's metrics row records as `pseudo`."""

    read: int = 0  # unlabelled images the teacher read
    passed: int = 0  # readings at or over the threshold, learnt (`ranked`: the round's chosen readings)
    val: int = 0  # validation images the teacher read at the end of the epoch
    val_confident: int = 0  # of them, readings at or over the threshold
    val_right: int = 0  # of those, readings equal to the label
    # `ranked` only (trainer.training.pseudo.Round): the round; readings alike in every view, of the allowed
    # lengths and characters; the chosen readings' mean confidence; the teacher's pool estimate at its start
    round: int | None = None  # from 1
    eligible: int | None = None
    estimated_precision: float | None = None
    pool_estimate: float | None = None

    def as_row(self) -> dict[str, float | int]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TrainResult:
    """What train() returns (and emits last)."""

    run: str
    best: Metrics  # the figures of the epoch best.pt holds
    stopped_by_time: bool
    skipped: list[tuple[str, str]]  # the first 20 (path, reason)
    skipped_count: int
    elapsed_s: float
    keep: str = "best"  # which epoch best.pt holds: the best on validation, or the last (TrainRequest.keep)


Event = CacheProgress | Notice | Started | EpochStarted | BatchDone | EpochEnded | TrainResult
Events = Callable[[Event], None]
ROW_FIELDS = tuple(f.name for f in fields(EpochEnded) if f.name != "best")
