"""What a run says about how it is going: a plan with too few steps to learn, a run still reading nothing,
and which of two epochs is the better one."""

from __future__ import annotations

from pathlib import Path

from trainer.records import Metrics

# CTC models often read nothing for their first few hundred steps; past these, 0% means something is wrong.
STUCK_EPOCHS, STUCK_STEPS = 3, 1500


def too_few_steps(images: int, steps_per_epoch: int, epochs: int, batch_size: int) -> str:
    """What a run from random weights planned with too few steps to learn says before it starts: with the
    last partial batch dropped, 200 images in batches of 128 are one step an epoch."""
    return (
        f"{images:,} training images make {steps_per_epoch} step(s) of {batch_size} per epoch, "
        f"{steps_per_epoch * epochs:,} in all: from random weights a CRNN needs thousands. Count epochs in "
        "steps (`steps_per_epoch` 100 cycles the images), take a smaller `batch_size`, or fine-tune a trained "
        "model (`init_from` base)"
    )


def stuck_notice(epochs: int, steps: int, inputs: Path, lr: float, from_scratch: bool) -> str:
    """What a run still reading nothing says. From random weights a CRNN can stay at its starting loss on
    hard captchas however much data it has (multicolorcaptcha, 19,000 images: docs/studies/real-ceiling.md),
    where a trained model's weights get it moving: so a run from scratch is also pointed at --init-from."""
    line = (
        f"validation accuracy is still 0% after {epochs} epochs ({steps:,} steps): look at {inputs} (can you read "
        f"those images, and are their labels right?), and try a larger --height or a lower --lr (this run: {lr:g})"
    )
    return line + (", or start from a trained model: --init-from base" if from_scratch else "")


def better(accuracy: float, cer: float, loss: float, best: Metrics) -> bool:
    """Higher sequence accuracy wins; at equal accuracy, the lower character error rate; at equal CER too,
    the lower validation loss. Without the tie-breaks a run that reads no whole captcha yet (0% for every
    epoch, as small fine-tuning runs begin) would keep its first epoch as best.pt however much its CER
    fell, and a run validated on a few dozen images would keep the first epoch that read them all: on
    wheezy.captcha with 200 labels, epoch 5 of 15 (83.1% held-out) where the last read 90.5%."""
    mine = (accuracy, -cer, -loss)
    return mine > (best.seq_accuracy, -best.cer, -best.loss)


def zero_streak(rows: list[dict]) -> int:
    """How many of the last epochs in a row had 0% sequence accuracy."""
    streak = 0
    for row in rows:
        streak = streak + 1 if row["seq_accuracy"] == 0 else 0
    return streak
