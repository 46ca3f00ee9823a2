"""Labelling the captchas people collect (`captchagen label`): the queue in active-learning order (queue),
and the page that serves it (app; the serve extra)."""

from trainer.labeling.queue import LabelQueue, order

__all__ = ["LabelQueue", "order"]
