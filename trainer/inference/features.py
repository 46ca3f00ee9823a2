"""What a reading model sees of an image: the features its CTC head reads, as numbers a fit can match.

fit-style compares a pool of a site's captchas with candidate styles. Image statistics (colours, edges,
ink) rank styles roughly as fine-tuning on them reads the site; a reader's own view ranks them better
(docs/studies/fit-style.md: base-v3's LSTM outputs, Spearman -0.66 on average over four generators,
against -0.53 for the statistics). Per image, two vectors, each averaged over the image's columns: the
convolutional features that enter the head (`proj`'s input: every architecture has one) and the
bidirectional LSTM's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from captchagen.errors import BadInput
from trainer.data.preprocess import to_array
from trainer.inference.reader import Reader

GROUPS = ("reader_cnn", "reader_lstm")
BATCH = 64


class SeenBy:
    """`SeenBy(model)(images)` -> {"reader_cnn": [N, C*H'], "reader_lstm": [N, 2*hidden]} for PIL images
    of any size (each preprocessed as the model reads: its height, width and channels)."""

    def __init__(self, model: str | Path) -> None:
        self.reader = Reader(model)
        if self.reader.kind != "checkpoint":
            raise BadInput(f"{model}: an exported model does not show its features; give its checkpoint (.pt)")

    @torch.no_grad()
    def __call__(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        proj, rnn = self.reader.net.model.proj, self.reader.net.model.rnn  # every architecture's head has both
        assert isinstance(proj, nn.Module) and isinstance(rnn, nn.Module)
        seen: dict[str, torch.Tensor] = {}
        hooks = [
            proj.register_forward_hook(lambda m, args, out: seen.__setitem__("reader_cnn", args[0].mean(0))),
            rnn.register_forward_hook(lambda m, args, out: seen.__setitem__("reader_lstm", out[0].mean(0))),
        ]
        got: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
        try:
            for i in range(0, len(images), BATCH):
                arrays = np.stack([to_array(im, self.reader.pre) for im in images[i : i + BATCH]])
                self.reader.logits(arrays)
                for g in GROUPS:
                    got[g].append(seen[g].float().numpy())  # the mean over the columns [T, N, D] -> [N, D]
        finally:
            for h in hooks:
                h.remove()
        return {g: np.concatenate(v) if v else np.zeros((0, 0), np.float32) for g, v in got.items()}
