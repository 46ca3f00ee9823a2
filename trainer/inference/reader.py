"""Reading captchas with a trained checkpoint: its own alphabet and preprocessing, batched, error per file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from captchagen.alphabet import PRESETS, Alphabet
from captchagen.errors import BadInput, CaptchagenError
from trainer import checkpoint
from trainer.data.preprocess import BadImage, load_array
from trainer.inference.decode import case_folds, case_table, decode, suppressed_classes, under_rule
from trainer.inference.lengths import LengthChoice, chosen_lengths
from trainer.inference.onnx_model import OnnxModel
from trainer.models.arch import ImageReader
from trainer.records import Metrics


@dataclass(frozen=True)
class Prediction:
    path: str
    text: str | None = None
    confidence: float | None = None  # P(text | image), summed over CTC alignments
    error: str | None = None


class Reader:
    """A loaded model with everything it needs to read an image: a checkpoint (.pt, run by PyTorch) or an
    exported model (.onnx, run by ONNX Runtime), each carrying its own alphabet and preprocessing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() == ".onnx":
            self.kind = "onnx"
            onnx_model = OnnxModel(self.path)
            meta = onnx_model.meta
            self.name = meta["name"]
            self.alphabet = Alphabet(meta["alphabet"])
            self.pre = meta["preprocessing"]
            self.max_label_len = meta["max_label_len"]
            self.trained_lengths: tuple[int, int] | None = meta["lengths"]
            self.metrics = Metrics()  # an export keeps no figures
            self._run = lambda arrays: torch.from_numpy(onnx_model(arrays))
        else:
            self.kind = "checkpoint"
            record = checkpoint.read(self.path)
            self.name = checkpoint.model_name(self.path)
            model, self.alphabet, self.pre = checkpoint.load_model(record, self.path)
            self.max_label_len = record.config().max_label_len
            self.trained_lengths = record.config().lengths
            self.metrics = record.metrics
            self.net = ImageReader(model, self.pre).eval()
            self._run = self._run_torch
        self.reads = self.alphabet.chars  # what it may output; restrict() narrows it
        self._suppressed: torch.Tensor | None = None
        # The lengths it reads under: by default those it was trained on (None: any length); read_lengths()
        # sets them.
        self.lengths = self.trained_lengths
        self.case = "sensitive"  # or "ignore": see ignore_case()
        self._folds: list[tuple[int, int]] = []  # (kept class, class folded into it)
        self._checked: dict[int, str] = {}  # str.translate table: each folded letter to the one kept

    def read_lengths(self, choice: LengthChoice) -> None:
        """Read only strings of the chosen lengths: the most probable string of an allowed length, not a
        reading refused after the fact."""
        lengths = chosen_lengths(choice, self.trained_lengths)
        if lengths is not None and self.max_label_len and lengths[1] > 2 * self.max_label_len:
            raise BadInput(
                f"`length` {lengths[0]}-{lengths[1]}: the model {self.name} was trained on labels of up to "
                f"{self.max_label_len} characters and reads nothing that long"
            )
        self.lengths = lengths

    def ignore_case(self) -> None:
        """Read as a site that ignores case checks: a letter's two cases are one character, whose
        probability is the sum of both, read in lower case (where the model reads both). Call after
        restrict(), which decides which cases are read at all."""
        self.case = "ignore"
        self._folds = case_folds(self.alphabet, self.reads)
        self._checked = case_table(self.alphabet, self._folds)

    def as_checked(self, text: str) -> str:
        """`text` as the site compares it: lower case for the letters read case-blind."""
        return text.translate(self._checked)

    def restrict(self, spec: str) -> None:
        """Read only the characters of `spec` (a preset such as `upper`, or the characters): the model's
        other characters are never output, and confidences are over the allowed ones. For a captcha whose
        alphabet is known, read by a model that knows more (the base model reads digits and both cases)."""
        if not spec:
            raise BadInput(f"`reads` is empty: give a preset ({', '.join(PRESETS)}) or the characters to read")
        try:
            chars = Alphabet.from_spec(spec).chars
        except ValueError as e:
            raise BadInput(f"`reads` {spec!r}: {e}") from None
        unknown = "".join(c for c in chars if c not in self.alphabet)
        if unknown:
            raise BadInput(f"`reads` {spec!r}: the model {self.name} cannot read {unknown!r}")
        self.reads = chars
        self._suppressed = suppressed_classes(self.alphabet, chars)

    @torch.no_grad()
    def _run_torch(self, arrays: np.ndarray) -> torch.Tensor:
        return self.net(torch.from_numpy(arrays))

    def logits(self, arrays: np.ndarray) -> torch.Tensor:
        """uint8 [N, *pre.array_shape] from preprocess.to_array to float logits [N, T, C] (-inf for the
        characters `restrict` rules out; log-probabilities with the cases summed after ignore_case)."""
        return under_rule(self._run(np.ascontiguousarray(arrays, dtype=np.uint8)), self._suppressed, self._folds)

    def read_arrays(self, arrays: np.ndarray, beam: int = 0) -> list[tuple[str, float]]:
        """(text, confidence) per image of uint8 [N, *pre.array_shape] from preprocess.to_array. A model
        whose output is not finite reads nothing: CaptchagenError, never a NaN confidence."""
        return self.read_logits(self.logits(arrays), beam)

    def read_logits(self, logits: torch.Tensor, beam: int = 0) -> list[tuple[str, float]]:
        """(text, confidence) per image of `logits` [N, T, C] from logits(), under the reader's rule."""
        if bool(torch.isnan(logits).any()) or bool(torch.isposinf(logits).any()):
            raise CaptchagenError(f"{self.name} gives NaN or infinite outputs; its readings would be meaningless")
        return decode(logits.transpose(0, 1), self.alphabet, beam, self.lengths)

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
