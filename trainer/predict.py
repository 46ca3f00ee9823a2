"""Reading captchas with a trained checkpoint: its own alphabet and preprocessing, batched, error per file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainer import checkpoint
from trainer.decode import decode
from trainer.preprocess import BadImage, load_array, normalize


@dataclass(frozen=True)
class Prediction:
    path: str
    text: str | None = None
    confidence: float | None = None  # P(text | image), summed over CTC alignments
    error: str | None = None


class Reader:
    """A loaded model with everything it needs to read an image, all taken from the checkpoint."""

    def __init__(self, path: str | Path) -> None:
        data = checkpoint.load(path)
        self.path = Path(path)
        self.model, self.alphabet, self.pre = checkpoint.build_model(data)
        self.metrics = data.get("metrics", {})

    @torch.no_grad()
    def read_arrays(self, arrays: np.ndarray, beam: int = 0) -> list[tuple[str, float]]:
        """arrays: uint8 [N, H, W] from preprocess.to_array."""
        logits = self.model(normalize(torch.from_numpy(arrays), self.pre))  # [T, N, C]
        return decode(logits, self.alphabet, beam)

    def read_paths(self, paths: list[str], beam: int = 0, batch_size: int = 64) -> list[Prediction]:
        """One Prediction per path, in order; a file that cannot be read gets an error, the rest are read."""
        results: list[Prediction] = []
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            arrays, good = [], []
            errors: dict[int, str] = {}
            for i, p in enumerate(chunk):
                try:
                    arrays.append(load_array(p, self.pre))
                    good.append(i)
                except BadImage as e:
                    errors[i] = str(e)
            read = iter(self.read_arrays(np.stack(arrays), beam) if arrays else [])
            for i, p in enumerate(chunk):
                if i in errors:
                    results.append(Prediction(path=p, error=errors[i]))
                else:
                    text, confidence = next(read)
                    results.append(Prediction(path=p, text=text, confidence=confidence))
        return results
