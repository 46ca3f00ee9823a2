"""Semi-supervised training (`train --unlabeled`): a teacher reads unlabelled images, the model learns the
readings it is sure of.

The teacher is an exponential moving average of the model's weights (Mean Teacher), kept in eval mode and
updated after every step (`ema_decay`). Each batch holds `batch_size` labelled images and as many
unlabelled ones as make `unlabeled_share` of it (trainer.data.sources.UNLABELED marks them). The teacher
reads those under the weak augmentation training always uses, under the label lengths of the labelled data
(the most probable string of such a length, as `test` reads by default: a label of another length is never
learnt); a reading whose whole-string probability (the CTC sum over alignments, as `test` reports it)
reaches `pseudo_threshold` becomes that image's label,
and the model learns it under strong augmentation (augment.strong), beside the labelled images of the
batch, in one forward pass (FixMatch). The unlabelled loss is summed over the pseudo-labelled images and
divided by the batch's unlabelled images, so it weighs as much as the share that passed.

Per epoch the run reports how many readings passed, and how good such readings are: the teacher reads the
validation set (labelled, never drawn from the pool), and of its readings at or over the threshold, the
share that are right.

With `pseudo` "ranked" (trainer.training.pseudo) the threshold is not used: at the start of each round (a
few whole epochs) the teacher re-reads the whole pool once, and the round's chosen readings are the labels
the pool images of its batches are learnt by (an image not chosen this round is not learnt from). Per
round the run reports how many were chosen of the pool, their estimated precision, and the teacher's pool
estimate.

Either way a pseudo-label holds only the labelled data's characters (Semi.reads) and lengths.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from captchagen.alphabet import Alphabet
from trainer.data import loading as data
from trainer.data.augment import strong
from trainer.data.preprocess import Preprocessing
from trainer.data.sources import UNLABELED
from trainer.device import Runtime, all_sum
from trainer.inference.decode import case_folds, case_table, decode, suppressed_classes, under_rule
from trainer.training.events import PseudoCounts
from trainer.training.forward import ctc_loss_sum, forward, on_device
from trainer.training.plan import Plan, Semi
from trainer.training.pseudo import Round, choose, epochs_per_round, read_pool, round_share
from trainer.training.steps import Step

PoolBatches = Callable[[], Iterable[tuple[list[str], torch.Tensor]]]  # the whole pool: (paths, uint8 images)


class Teacher:
    """An exponential moving average of a model's weights; its buffers (batch-norm statistics) are copied."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for mine, theirs in zip(self.module.parameters(), model.parameters(), strict=True):
            mine.lerp_(theirs.detach(), 1 - self.decay)
        for buffer, source in zip(self.module.buffers(), model.buffers(), strict=True):
            buffer.copy_(source)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


@torch.no_grad()
def confident_readings(
    teacher: nn.Module,
    images: torch.Tensor,
    alphabet: Alphabet,
    runtime: Runtime,
    threshold: float,
    lengths: tuple[int, int] | None = None,
    suppressed: torch.Tensor | None = None,
    folds: list[tuple[int, int]] | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """(mask of the images read at or over `threshold`, every reading) for a normalised batch, read under
    `lengths` (None: any), without the `suppressed` classes, and with `folds`' cases as one (in lower case).
    An empty reading never passes: every captcha has characters."""
    if len(images) == 0:
        return torch.zeros(0, dtype=torch.bool), []
    read = decode(under_rule(forward(teacher, images, runtime), suppressed, folds), alphabet, lengths=lengths)
    texts = [t for t, _ in read]
    confidence = torch.tensor([c for _, c in read])
    nonempty = torch.tensor([bool(t) for t in texts])
    return (confidence >= threshold) & nonempty, texts


class SemiStep(Step):
    """A step on a batch of labelled and unlabelled images; its loss per image of the batch. The teacher
    follows the model after every step; `counts` are the epoch's pseudo-labels so far, this process's until
    the epoch's end sums them."""

    def __init__(
        self,
        net: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        plan: Plan,
        teacher: Teacher,
        semi: Semi,
        pool: PoolBatches | None = None,  # needed by `ranked`
        pool_size: int = 0,
        steps_per_epoch: int = 1,
    ) -> None:
        super().__init__(net, optimizer, scaler, plan)
        self.teacher, self.threshold, self.alphabet = teacher, semi.threshold, plan.alphabet
        self.semi, self.pool = semi, pool
        self.lengths = plan.model.lengths  # the labelled data's: pseudo-labels keep to them
        self.suppressed = suppressed_classes(plan.alphabet, semi.reads)
        # a site that ignores case: the pool read, and its labels learnt, with a letter's two cases as one
        self.folds = case_folds(plan.alphabet, semi.reads) if semi.case == "ignore" else []
        self.counts = PseudoCounts()  # the epoch's so far, by this process
        self.round: Round | None = None  # `ranked`: the round's chosen readings
        self.per_round = epochs_per_round(pool_size, semi.per_batch, steps_per_epoch, self.runtime.dist.world)

    @property
    def ranked(self) -> bool:
        return self.semi.mode == "ranked"

    def new_epoch(self, epoch: int = 0, carried: dict[str, Any] | None = None) -> None:
        """`ranked`: a round's first epoch reads the pool; the others go on with its labels (a resumed run
        with those last.pt carried)."""
        self.counts = PseudoCounts()
        if not self.ranked:
            return
        index = epoch // self.per_round
        if carried and carried.get("index") == index:
            self.round = Round.from_dict(carried)
        elif self.round is None or self.round.index != index:
            self.round = self.read_round(index)

    def carried(self) -> dict[str, Any] | None:
        return self.round.to_dict() if self.round is not None else None

    def read_round(self, index: int) -> Round:
        """Round `index`: the teacher reads the whole pool, and the round's share is chosen."""
        if self.pool is None:
            raise ValueError("ranked pseudo-labels need the pool's images")
        reading = read_pool(self.teacher.module, self.pool(), self.alphabet, self.pre, self.runtime, self.lengths,
                            self.suppressed, self.folds)  # fmt: skip
        return choose(reading, round_share(index, self.semi.growth), self.lengths, self.semi.reads, index=index)

    def pseudo_so_far(self) -> tuple[int, int]:
        if self.ranked:  # a round's counts are its choice, made whole at its start
            return 0, 0
        return self.counts.read, self.counts.passed

    def pseudo_report(self, val_batches: Iterable[data.Batch]) -> PseudoCounts:
        """The epoch's counts summed over the processes, with how the teacher reads the validation set;
        `ranked`: the round's choice instead (the same on every process)."""
        if self.round is not None:
            r = self.round
            return PseudoCounts(read=r.read, passed=len(r.labels), round=r.index + 1, eligible=r.eligible,
                                estimated_precision=round(r.estimated_precision, 4),
                                pool_estimate=round(r.estimate, 4))  # fmt: skip
        check_readings(
            self.teacher,
            val_batches,
            self.alphabet,
            self.pre,
            self.runtime,
            (self.threshold, self.lengths, self.suppressed, self.folds),
            self.counts,
        )
        return self.counts

    def _pseudo_labels(self, pool: torch.Tensor, paths: list[str]) -> tuple[torch.Tensor, list[str]]:
        """(mask of the batch's pool images learnt, their labels in order)."""
        if self.round is not None:
            labels = [self.round.labels.get(p, "") for p in paths]
            return torch.tensor([bool(t) for t in labels], dtype=torch.bool), [t for t in labels if t]
        keep, texts = confident_readings(self.teacher.module, self.augment(pool), self.alphabet, self.runtime,
                                         self.threshold, self.lengths, self.suppressed, self.folds)  # fmt: skip
        self.counts.read += len(pool)
        self.counts.passed += int(keep.sum())
        return keep, [t for t, k in zip(texts, keep.tolist(), strict=True) if k]

    def __call__(self, batch: data.Batch) -> float:
        images = self.images(batch)
        pooled = torch.tensor([label == UNLABELED for label in batch.labels])
        labelled, pool = images[~pooled.to(images.device)], images[pooled.to(images.device)]
        paths = [str(p) for p, is_pool in zip(batch.paths, pooled.tolist(), strict=True) if is_pool]
        keep, learnt = self._pseudo_labels(pool, paths)
        inputs = torch.cat([self.augment(labelled), strong(pool[keep.to(images.device)])])
        logits = forward(self.net, inputs, self.runtime)  # [T, N, C]
        n = len(labelled)
        loss = logits.new_zeros((), dtype=torch.float32)
        if n:
            loss = loss + ctc_loss_sum(logits[:, :n], batch.targets, batch.target_lengths[~pooled]) / n
        if learnt:
            encoded = [self.alphabet.encode(t) for t in learnt]
            targets = torch.tensor([i for e in encoded for i in e], dtype=torch.long)
            lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
            loss = loss + ctc_loss_sum(logits[:, n:], targets, lengths, self.folds) / len(pool)
        value = self.update(loss)
        self.teacher.update(self.net.module if isinstance(self.net, nn.parallel.DistributedDataParallel) else self.net)
        return value


@torch.no_grad()
def check_readings(
    teacher: Teacher,
    batches: Iterable[data.Batch],  # the validation set
    alphabet: Alphabet,
    pre: Preprocessing,
    runtime: Runtime,
    # (threshold, lengths, suppressed classes, case folds)
    rule: tuple[float, tuple[int, int] | None, torch.Tensor | None, list[tuple[int, int]]],
    counts: PseudoCounts,
) -> None:
    """Count, over the validation set, the teacher's readings at or over the threshold and how many are right
    (as the site checks them: without case under folds); and sum the epoch's counts (these and the pool's)
    over the processes, once, here at the epoch's end."""
    checked = case_table(alphabet, rule[3])
    val = confident = right = 0
    for batch in batches:
        images = on_device(batch.images, pre, runtime)
        keep, texts = confident_readings(teacher.module, images, alphabet, runtime, *rule)
        val += len(texts)
        confident += int(keep.sum())
        right += sum(k and t == label.translate(checked) for k, t, label in zip(keep.tolist(), texts, batch.labels,
                                                                                 strict=True))  # fmt: skip
    summed = all_sum(torch.tensor([float(counts.read), float(counts.passed), val, confident, right]), runtime.dist)
    counts.read, counts.passed, counts.val, counts.val_confident, counts.val_right = (int(x) for x in summed.tolist())
