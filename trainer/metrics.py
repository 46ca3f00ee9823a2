"""Recognition metrics from summed counts over a whole set, never from averaged per-batch averages."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from rapidfuzz.distance import Levenshtein

from trainer.records import Metrics

MAX_TRACKED_LEN = 64


@dataclass
class Counts:
    """Sums that add across batches and across processes."""

    samples: int = 0
    correct: int = 0
    edits: int = 0  # total Levenshtein distance, prediction to truth
    chars: int = 0  # total characters in the truths
    loss_sum: float = 0.0  # sum of per-sample losses
    by_length: dict[int, list[int]] = field(default_factory=dict)  # truth length -> [samples, correct]

    def add(self, predictions: list[str], truths: list[str], loss_sum: float = 0.0) -> None:
        for p, t in zip(predictions, truths, strict=True):
            ok = p == t
            self.samples += 1
            self.correct += ok
            self.edits += Levenshtein.distance(p, t)
            self.chars += len(t)
            slot = self.by_length.setdefault(len(t), [0, 0])
            slot[0] += 1
            slot[1] += ok
        self.loss_sum += loss_sum

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples if self.samples else 0.0

    @property
    def mean_edit_distance(self) -> float:
        return self.edits / self.samples if self.samples else 0.0

    @property
    def cer(self) -> float:
        return self.edits / self.chars if self.chars else 0.0

    @property
    def loss(self) -> float:
        return self.loss_sum / self.samples if self.samples else 0.0

    def accuracy_by_length(self) -> dict[int, tuple[int, float]]:
        return {k: (n, c / n) for k, (n, c) in sorted(self.by_length.items()) if n}

    def to_tensor(self) -> torch.Tensor:
        t = torch.zeros(5 + 2 * MAX_TRACKED_LEN, dtype=torch.float64)
        t[:5] = torch.tensor([self.samples, self.correct, self.edits, self.chars, self.loss_sum], dtype=torch.float64)
        for k, (n, c) in self.by_length.items():
            if k < MAX_TRACKED_LEN:
                t[5 + 2 * k], t[6 + 2 * k] = n, c
        return t

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> Counts:
        v = t.tolist()
        by_length = {k: [int(v[5 + 2 * k]), int(v[6 + 2 * k])] for k in range(MAX_TRACKED_LEN) if v[5 + 2 * k]}
        return cls(int(v[0]), int(v[1]), int(v[2]), int(v[3]), v[4], by_length)

    def metrics(self, epoch: int) -> Metrics:
        """These counts as the figures of `epoch` (1-based), as a checkpoint keeps them."""
        return Metrics(**self.summary(), epoch=epoch)

    def summary(self) -> dict:
        return {
            "samples": self.samples,
            "seq_accuracy": self.accuracy,
            "mean_edit_distance": self.mean_edit_distance,
            "cer": self.cer,
            "loss": self.loss,
            "by_length": {str(k): {"n": n, "accuracy": a} for k, (n, a) in self.accuracy_by_length().items()},
        }
