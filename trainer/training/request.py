"""What the user asks of a training run: one frozen dataclass whose fields the `captchagen train` options
map onto, most of them optional (None: let the plan decide). trainer.training.plan settles it into a Plan,
and nothing after planning reads the request.

Kept free of torch so that the CLI can show these defaults in --help without importing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from trainer.shape import SHAPE


@dataclass(frozen=True)
class TrainRequest:
    """Every setting of a training run as asked. config.json records it as given (`request`); the plan
    settles it (every decision written in) into the run's TrainRecord."""

    data: str = "data/captchas"
    val_data: str | None = None
    val_fraction: float = 0.05
    alphabet: str | None = None
    # The schedule: None takes SCRATCH's value, or FINE_TUNE's with `init_from` (the plan decides).
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.01
    warmup: float | None = None
    clip: float = 5.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    time_limit: float | None = None  # minutes of training (cache building not included)
    # The model's shape, one option each; defaults from trainer.shape. Height and width None: chosen from
    # the images (trainer.data.inputs), or the parent's when fine-tuning.
    height: int | None = None
    width: int | None = None
    conv: tuple[int, ...] = SHAPE.conv
    hidden: int = SHAPE.hidden
    lstm_layers: int = SHAPE.lstm_layers
    dropout: float = SHAPE.dropout
    arch: str | None = None  # trainer.models.catalog; None: "crnn", or the parent's when fine-tuning
    augment: bool = True
    skip_bad: bool = False
    runs_dir: str = "runs"
    name: str | None = None
    cache_dir: str | None = None
    workers: int = 1  # processes decoding images into the cache
    threads: int | None = None  # CPU threads for training; None: the cores not busy with other work at the start
    crop: tuple[float, float, float, float] | None = None  # border crop (fractions); chosen with the size
    channels: int | None = None  # 1: grayscale, 3: RGB (--colour); None: the parent's when fine-tuning, else 1
    init_from: str | None = None  # fine-tuning: the checkpoint to start from
    mix: tuple[tuple[str, float], ...] = ()  # (dataset, share of every batch) drawn beside `data`
    # Semi-supervised (`unlabeled`, trainer.training.semi): a folder or list file of unlabelled images; as
    # many are added to the `batch_size` labelled images of every batch as make `unlabeled_share` of it,
    # and each one the teacher (an exponential moving average of the model, `ema_decay` per step) reads
    # with a whole-string confidence of at least `pseudo_threshold` is learnt as that string (`pseudo`
    # "threshold"); or, `pseudo` "ranked" (trainer.training.pseudo), each epoch is a round: the teacher
    # re-reads the whole pool and the most certain readings alike in shifted views are learnt, a share of
    # the pool growing by `pseudo_growth` a round, balanced over characters.
    unlabeled: str | None = None
    unlabeled_share: float = 0.5
    pseudo: str = "threshold"
    pseudo_threshold: float = 0.9
    pseudo_growth: float = 0.2
    # "ignore": a site that ignores case; the teacher reads the pool with a letter's two cases summed (in lower
    # case), and the pseudo-labels are learnt whichever case the model reads them in (decode.fold_cases).
    case: str = "sensitive"
    ema_decay: float = 0.99
    steps_per_epoch: int | None = None  # an epoch in steps; None: a pass over the images (50 with `init_from`)
    # Which epoch best.pt holds: "best" on validation, or "last" (each epoch replaces it), for runs whose
    # validation is not their target: synthetic labelled images while the --unlabeled pool is what counts.
    keep: str = "best"


@dataclass(frozen=True)
class TrainRecord:
    """What a run is, as its checkpoints keep it (`train_config`, one flat dict) and a resume starts from:
    the request settled by the plan, every decision written in; the parent it started from (name and
    sha256 of `init_from`); and each dataset it read (data, val_data, mixes, the pool) with the sha256 of its
    manifest, of the list file, or "files:" and the digest of a loose folder's files, so a model says exactly
    what it was trained on and a resume notices a dataset that changed."""

    settled: TrainRequest
    parent: dict[str, str] | None = None
    sources: dict[str, str | None] | None = None  # None: recorded before datasets were

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.settled), "parent": self.parent, "sources": self.sources}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> TrainRecord:
        """As a checkpoint stores it; a setting added since it was saved takes its default (TypeError when it
        is not such a dict)."""
        known = {f.name for f in fields(TrainRequest)}
        settled = TrainRequest(**{k: v for k, v in saved.items() if k in known})
        return cls(settled, saved.get("parent"), saved.get("sources"))

    def with_time_limit(self, minutes: float | None) -> TrainRecord:
        return replace(self, settled=replace(self.settled, time_limit=minutes))


# The schedule of a run from random weights, and of one from a parent (`init_from`), for any of these not
# given: a few hundred images want a lower peak learning rate, a longer warm-up share, smaller batches, and
# epochs counted in steps rather than passes over them.
SCRATCH = {"lr": 3e-3, "warmup": 0.03, "batch_size": 128, "epochs": 30, "steps_per_epoch": None}
FINE_TUNE = {"lr": 1e-3, "warmup": 0.1, "batch_size": 32, "epochs": 15, "steps_per_epoch": 50}
