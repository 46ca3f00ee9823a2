"""Ranked rounds of pseudo-labels (`pseudo` "ranked"): training goes in rounds of whole epochs; at each
round's start the teacher re-reads the whole pool once, and the readings learnt are chosen by rank rather
than by a fixed threshold.

A fixed threshold learns nothing where the teacher is never sure (a start that reads a tenth of the pool
gives 0 to 2 readings over 0.9 in 1,600), and learns everything at once where it is. A round here:

1. reads every pool image (a round lasts the whole epochs the batches need to draw the pool ROUND_PASSES
   times: once) in the image and in shifted views of it (estimate.VIEW_SHIFTS: the views that `compare` and
   adapt judge models by), under the labelled data's lengths and characters;
2. keeps the readings that are the same in every view, not empty, and of those lengths and characters;
3. ranks them by the teacher's whole-string probability and takes the most certain, `share` of the pool
   (round r takes min(1, r x growth): 20%, 40%, ... by default), balanced over characters: no character
   is taken more than BALANCE times as often as an even spread of the round's characters would take it,
   so a few easy characters cannot fill the round;
4. reports what it chose: how many, and their estimated precision (the mean probability the teacher gives
   the chosen readings: what share of them is right, were it calibrated), beside the pool estimate of
   the teacher itself (mean confidence x view agreement over the whole pool, as `compare` computes it).

Everything here is a pure function of the teacher's weights and the pool: every process of a distributed
run reads the whole pool and chooses the same labels. last.pt keeps the round the run is in, so a resumed
run goes on with the labels it was learning, and reads the pool again only where a new round starts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from captchagen.alphabet import Alphabet
from trainer.data.preprocess import Preprocessing
from trainer.device import Runtime
from trainer.inference.decode import decode, under_rule
from trainer.inference.estimate import VIEW_SHIFTS, shifted
from trainer.training.forward import forward, on_device

BALANCE = 2.0  # a character's share of a round is at most this many times an even spread's

# A round lasts whole epochs, at least enough for the batches to draw the pool this many times. Once: from the
# same start and in the same 10 minutes, rounds that drew the pool once re-read it 9 and 11 times where rounds
# of three passes re-read it 6 and 5, and read more of the held-out images (wheezy.captcha 88.3% against 84.0%,
# flask-simple-captcha 90.9% against 87.4%; docs/studies/adapt.md), though reading the pool in four views takes
# about as long as a pass of training on it (half of each round): a teacher that improves is worth asking again
# sooner. A round is never shorter than a whole epoch (adapt's are 150 steps).
ROUND_PASSES = 1


def read_batch(device: torch.device) -> int:
    """Pool images per forward pass when a round reads the pool: 256 on CUDA; 64 on a CPU, where a batch of
    256 falls out of the caches (base-v3 read 642 images a second in batches of 64 and 489 in batches of 256
    on 2 cores, bf16; docs/studies/speed.md)."""
    return 256 if device.type == "cuda" else 64


@dataclass(frozen=True)
class PoolReading:
    """The teacher's reading of every pool image, in the pool's order."""

    paths: tuple[str, ...]
    texts: tuple[str, ...]
    confidence: np.ndarray  # float64 [n], the whole-string probability of each reading (the unshifted image)
    agree: np.ndarray  # bool [n], read the same in every shifted view

    @property
    def estimate(self) -> float:
        """mean confidence x share read the same in every view: how `compare` ranks a model on a pool."""
        n = len(self.texts)
        return float(self.confidence.mean() * self.agree.mean()) if n else 0.0


def epochs_per_round(pool: int, per_batch: int, steps_per_epoch: int, world: int = 1) -> int:
    """Whole epochs in a round: enough for the batches of every process to draw the pool ROUND_PASSES times."""
    steps = ROUND_PASSES * pool / max(1, per_batch * world)
    return max(1, math.ceil(steps / max(1, steps_per_epoch) - 1e-9))


@dataclass(frozen=True)
class Round:
    """What one round chose: pseudo-labels by image path, and the figures printed for it."""

    index: int  # 0-based
    labels: dict[str, str]
    read: int  # pool images read
    eligible: int  # readings alike in every view, of the allowed lengths and characters
    share: float  # the round's target share of the pool
    estimated_precision: float  # mean confidence of the chosen readings (0 when none is chosen)
    estimate: float  # the teacher's pool estimate (PoolReading.estimate)

    def to_dict(self) -> dict[str, Any]:
        """As last.pt keeps it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Round:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def round_share(round_index: int, growth: float) -> float:
    """The share of the pool round `round_index` (0-based) takes: growth, 2 x growth, ..., at most 1."""
    return min(1.0, (round_index + 1) * growth)


@torch.no_grad()
def read_pool(
    teacher: nn.Module,
    batches: Iterable[tuple[list[str], torch.Tensor]],  # (paths, uint8 images [N, H, W] or [N, C, H, W])
    alphabet: Alphabet,
    pre: Preprocessing,
    runtime: Runtime,
    lengths: tuple[int, int] | None,
    suppressed: torch.Tensor | None,
    folds: list[tuple[int, int]] | None = None,
) -> PoolReading:
    """The teacher's reading of every image, and whether its shifted views read the same. `folds`
    (decode.case_folds): read as a site that ignores case, a letter's cases summed, in lower case."""
    paths: list[str] = []
    texts: list[str] = []
    confidence: list[float] = []
    agree: list[np.ndarray] = []

    def read(images: torch.Tensor) -> list[tuple[str, float]]:
        logits = forward(teacher, images, runtime).float()  # [T, N, C]
        return decode(under_rule(logits, suppressed, folds), alphabet, lengths=lengths)

    for batch_paths, uint8 in batches:
        first = read(on_device(uint8, pre, runtime))
        same = np.ones(len(first), dtype=bool)
        arrays = uint8.numpy()
        for rows, cols in VIEW_SHIFTS:  # the views `compare` reads (estimate.shifted)
            moved = read(on_device(torch.from_numpy(shifted(arrays, rows, cols)), pre, runtime))
            same &= np.array([a[0] == b[0] for a, b in zip(first, moved, strict=True)], dtype=bool)
        paths += batch_paths
        texts += [t for t, _ in first]
        confidence += [c for _, c in first]
        agree.append(same)
    return PoolReading(
        paths=tuple(paths),
        texts=tuple(texts),
        confidence=np.asarray(confidence, dtype=np.float64),
        agree=np.concatenate(agree) if agree else np.zeros(0, dtype=bool),
    )


def choose(
    reading: PoolReading,
    share: float,
    lengths: tuple[int, int] | None = None,
    reads: str | None = None,
    balance: float = BALANCE,
    index: int = 0,
) -> Round:
    """The round's pseudo-labels: the most certain eligible readings, up to `share` of the pool, balanced
    over characters (see the module's docstring), as round `index`. Ties in confidence go to the earlier
    image."""
    n = len(reading.texts)
    allowed = set(reads) if reads is not None else None
    eligible = [
        i
        for i, (text, same) in enumerate(zip(reading.texts, reading.agree.tolist(), strict=True))
        if text
        and same
        and (lengths is None or lengths[0] <= len(text) <= lengths[1])
        and (allowed is None or set(text) <= allowed)
    ]
    target = math.floor(share * n + 1e-9)
    ranked = sorted(eligible, key=lambda i: (-reading.confidence[i], i))
    chosen: list[int] = []
    if ranked and target:
        characters = Counter(c for i in ranked for c in reading.texts[i])
        mean_len = sum(len(reading.texts[i]) for i in ranked) / len(ranked)
        # an even spread of the round's characters over the characters the eligible readings hold
        cap = max(1, math.ceil(balance * target * mean_len / len(characters)))
        taken: Counter[str] = Counter()
        for i in ranked:
            if len(chosen) >= target:
                break
            counts = Counter(reading.texts[i])
            if all(taken[c] + k <= cap for c, k in counts.items()):
                chosen.append(i)
                taken.update(counts)
    precision = float(reading.confidence[chosen].mean()) if chosen else 0.0
    return Round(
        index=index,
        labels={reading.paths[i]: reading.texts[i] for i in chosen},
        read=n,
        eligible=len(eligible),
        share=share,
        estimated_precision=precision,
        estimate=reading.estimate,
    )
