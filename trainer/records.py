"""Records a checkpoint holds inside it, typed: a model's validation figures (Metrics) and what an epoch
stopped midway had counted (PartialCounts); the random generators' states (checkpoint.RngState) hold
tensors and live beside the checkpoint.

Each is written as the dict checkpoints have always held (`to_dict`) and read back from it (`from_dict`),
so files made before these classes load unchanged. Free of torch: the CLI renders Metrics.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Metrics:
    """A model's figures on its validation images, as checkpoints keep them (`metrics`) and a run reports
    its best epoch. Before a run's first validation there are none: `epoch` None and `seq_accuracy` -1, so
    that any validated epoch is better."""

    seq_accuracy: float = -1.0
    cer: float = math.inf
    loss: float = math.inf
    mean_edit_distance: float = math.inf
    samples: int = 0
    by_length: dict[str, dict[str, float]] = field(default_factory=dict)  # "4" -> {"n": images, "accuracy": share}
    epoch: int | None = None  # 1-based

    @property
    def validated(self) -> bool:
        return self.epoch is not None

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> Metrics:
        """As a checkpoint stores it: keys this version does not know are left out, missing ones take the
        defaults (TypeError when it is not a dict of figures)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(saved).items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """As checkpoints have always stored it: every figure, or only `seq_accuracy` before a validation."""
        if not self.validated:
            return {"seq_accuracy": self.seq_accuracy}
        return {
            "samples": self.samples,
            "seq_accuracy": self.seq_accuracy,
            "mean_edit_distance": self.mean_edit_distance,
            "cer": self.cer,
            "loss": self.loss,
            "by_length": self.by_length,
            "epoch": self.epoch,
        }


@dataclass(frozen=True)
class PartialCounts:
    """What an epoch stopped midway (Ctrl-C, or a time limit) had counted, summed over the processes, so
    that its metrics row after a resume covers the whole epoch: the training loss summed over the images
    seen, and the pool images the teacher read and the readings learnt (0 without a pool)."""

    loss_sum: float = 0.0
    seen: int = 0
    read: int = 0
    passed: int = 0

    def plus(self, before: PartialCounts | None) -> PartialCounts:
        """These counts and those an earlier stop of the same epoch had carried in, if any."""
        if before is None:
            return self
        return PartialCounts(*(a + b for a, b in zip(astuple(self), astuple(before), strict=True)))

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> PartialCounts:
        return cls(float(saved["loss_sum"]), int(saved["seen"]), int(saved["read"]), int(saved["passed"]))

    def to_dict(self) -> dict[str, float]:
        return {"loss_sum": self.loss_sum, "seen": self.seen, "read": self.read, "passed": self.passed}
