"""Scoring a model on a dataset: metrics by length, confusions, confidence calibration, a reject curve."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from captchagen import arithmetic
from trainer.data import loading as data
from trainer.inference.reader import Reader
from trainer.metrics import Counts

REJECT_SHARES = (0.01, 0.05, 0.10)


@dataclass(frozen=True)
class Scored:
    path: str
    truth: str
    text: str
    confidence: float

    @property
    def correct(self) -> bool:
        return self.text == self.truth


def score_dataset(
    reader: Reader,
    data_path: Path,
    cache_dir: Path,
    *,
    beam: int = 0,
    batch_size: int = 64,  # a CPU reads batches of 64 faster than of 256 (docs/studies/speed.md)
    skip_bad: bool = False,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> tuple[list[Scored], int]:
    """Read every image of a dataset the trainer reads; return the results and how many files were skipped."""
    loaded = data.load(
        data_path, reader.pre, cache_dir, alphabet=reader.alphabet, skip_bad=skip_bad, workers=workers, notice=notice
    )
    dataset = data.CaptchaDataset(loaded)
    sampler = data.ShardedBatchSampler(len(dataset), batch_size, shuffle=False, drop_last=False)
    scored: list[Scored] = []
    for batch in data.loader(dataset, sampler, cuda=False):
        results = reader.read_arrays(batch.images.numpy(), beam)
        for path, truth, (text, confidence) in zip(batch.paths, batch.labels, results, strict=True):
            scored.append(Scored(path, reader.as_checked(truth), text, confidence))  # the truth as the site checks it
        if progress:
            progress(len(scored), len(dataset))
    return scored, len(loaded.skipped)


def confusions(scored: list[Scored], top: int = 10) -> list[tuple[str, str, int]]:
    """The commonest (true character, read as) pairs; '' stands for a missing or an extra character."""
    counter: Counter[tuple[str, str]] = Counter()
    for s in scored:
        if s.correct:
            continue
        for op in Levenshtein.editops(s.truth, s.text):
            if op.tag == "replace":
                counter[(s.truth[op.src_pos], s.text[op.dest_pos])] += 1
            elif op.tag == "delete":
                counter[(s.truth[op.src_pos], "")] += 1
            else:
                counter[("", s.text[op.dest_pos])] += 1
    return [(a, b, n) for (a, b), n in counter.most_common(top)]


def reject_curve(scored: list[Scored], shares: tuple[float, ...] = REJECT_SHARES) -> list[dict]:
    """Accuracy on what is left after rejecting the least confident share, and the threshold that does it."""
    ranked = sorted(scored, key=lambda s: s.confidence)
    curve = []
    for share in shares:
        k = int(round(share * len(ranked)))
        kept = ranked[k:]
        curve.append(
            {
                "rejected_share": share,
                "threshold": kept[0].confidence if kept else None,
                "kept": len(kept),
                "accuracy": sum(s.correct for s in kept) / len(kept) if kept else 0.0,
            }
        )
    return curve


def report(scored: list[Scored]) -> dict:
    counts = Counts()
    counts.add([s.text for s in scored], [s.truth for s in scored])
    right = [s.confidence for s in scored if s.correct]
    wrong = [s.confidence for s in scored if not s.correct]
    # A reader gives texts and confidences, not the CTC loss: the loss is left out rather than shown as 0.
    summary = {k: v for k, v in counts.summary().items() if k != "loss"}
    return {
        **summary,
        "confusions": [{"truth": a, "read": b, "count": n} for a, b, n in confusions(scored)],
        "mean_confidence_correct": sum(right) / len(right) if right else None,
        "mean_confidence_wrong": sum(wrong) / len(wrong) if wrong else None,
        "reject_curve": reject_curve(scored),
    }


def worst(scored: list[Scored], n: int) -> list[Scored]:
    """The mistakes the model was surest of."""
    return sorted((s for s in scored if not s.correct), key=lambda s: s.confidence, reverse=True)[:n]


def answer_accuracy(scored: list[Scored]) -> float:
    """Share of the images whose reading has the answer their label has (a misread that happens to give the
    right sum counts, as the site would take it); an image whose label is not an expression counts wrong."""
    if not scored:
        return 0.0
    right = sum(
        1 for s in scored if (truth := arithmetic.answer(s.truth)) is not None and arithmetic.answer(s.text) == truth
    )
    return right / len(scored)
