"""Turning per-frame CTC logits into strings."""

from __future__ import annotations

import torch

from captchagen.alphabet import BLANK, Alphabet


def greedy(logits: torch.Tensor, alphabet: Alphabet) -> list[str]:
    """Best-path decoding of logits [T, N, C]: argmax per frame, merge repeats, drop blanks."""
    best = logits.argmax(dim=2).T.cpu()  # [N, T]
    keep = best != BLANK
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    return [alphabet.decode(row[mask].tolist()) for row, mask in zip(best, keep, strict=False)]
