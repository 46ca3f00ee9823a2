"""How well models read a pool of unlabelled captchas, estimated without a label.

Each model reads the same seeded sample of the pool under the same rule (characters, lengths, case), and
four signals are taken from its readings:

- confidence: the mean probability it gives its own readings. Ranks models that were not trained on the
  pool, but a model self-trained on its own readings grows sure of them, right or wrong.
- views: the share of images it reads the same in the image and in three slightly shifted copies of it.
- fits: of its readings at any length, the share with an allowed length (None when no length is known).
- peers: the mean share of images it reads exactly as each other model does. Wrong readings of several
  characters rarely coincide, right ones always do, so agreeing with models that were trained apart
  tracks being right; a model and its own teacher are not apart.

`estimate` is the one figure models are ranked by (see its docstring); the others are shown beside it.
A model is ranked above one listed before it only when its estimate is clearly higher (`clearly_above`: a
paired bootstrap over the images): on a pool that no model reads, estimates of 0.002 and 0.001 are noise,
and the earlier model (the one adapt started from) stays. With labelled images, accuracy on them decides
where it tells the two apart by the same rule, then the estimate, then their count (`reads_better`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from trainer.data.preprocess import BadImage, load_array
from trainer.inference.decode import greedy
from trainer.inference.reader import Reader

# (rows, columns) each view moves the image by; pixels moved in are copies of the edge
VIEW_SHIFTS = ((0, 2), (1, -2), (-1, 1))


@dataclass(frozen=True)
class PoolEstimate:
    model: str
    images: int
    confidence: float
    views: float
    fits: float | None
    peers: float | None  # None: no other model to compare with
    readings: tuple[str, ...]
    labelled: float | None = None  # accuracy on the user's labelled images, when there are some
    right: tuple[bool, ...] = ()  # each labelled image's: read right
    confidences: tuple[float, ...] = ()  # each image's: the probability of its reading
    alike: tuple[bool, ...] = ()  # each image's: read the same in every view
    paths: tuple[str, ...] = ()  # the images read, in the order of `readings` (an unreadable one is left out)

    @property
    def estimate(self) -> float:
        """confidence x views: the probability it gives its readings, discounted by how often a shift of a
        few pixels changes them. The figure adapt ranks by."""
        return self.confidence * self.views

    def row(self) -> dict[str, object]:
        return {"model": self.model, "images": self.images, "estimate": round(self.estimate, 4),
                "confidence": round(self.confidence, 4), "views": round(self.views, 4),
                "fits": None if self.fits is None else round(self.fits, 4),
                "peers": None if self.peers is None else round(self.peers, 4),
                "labelled": None if self.labelled is None else round(self.labelled, 4)}  # fmt: skip


def shifted(arrays: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """uint8 images [N, ..., H, W] moved by (rows, cols), the edge repeated into the space left."""
    pad = [(0, 0)] * (arrays.ndim - 2) + [(abs(rows), abs(rows)), (abs(cols), abs(cols))]
    padded = np.pad(arrays, pad, mode="edge")
    h, w = arrays.shape[-2:]
    top, left = abs(rows) - rows, abs(cols) - cols
    return np.ascontiguousarray(padded[..., top : top + h, left : left + w])


def load_sample(paths: list[str], reader: Reader) -> tuple[np.ndarray, list[str]]:
    """The readable images of `paths` as the reader's input, and their paths (an unreadable one is left out)."""
    arrays, kept = [], []
    for p in paths:
        try:
            arrays.append(load_array(p, reader.pre))
        except BadImage:
            continue
        kept.append(p)
    return (np.stack(arrays) if arrays else np.zeros((0, *reader.pre.array_shape), dtype=np.uint8)), kept


def read_pool(reader: Reader, name: str, paths: list[str], batch_size: int = 64) -> PoolEstimate:
    """One model's signals on the sample (peers left to `compare`)."""
    arrays, read_paths = load_sample(paths, reader)
    readings: list[tuple[str, float]] = []
    same = np.ones(len(arrays), dtype=bool)
    fits: list[bool] = []
    lengths = reader.lengths
    for start in range(0, len(arrays), batch_size):
        batch = arrays[start : start + batch_size]
        logits = reader.logits(batch)
        read = reader.read_logits(logits)
        readings += read
        for rows, cols in VIEW_SHIFTS:
            moved = reader.read_arrays(shifted(batch, rows, cols))
            same[start : start + len(batch)] &= np.array([a[0] == b[0] for a, b in zip(read, moved, strict=True)])
        if lengths is not None:  # the same outputs read at any length: does the model itself find the length?
            fits += [lengths[0] <= len(t) <= lengths[1] for t in greedy(logits.transpose(0, 1), reader.alphabet)]
    n = len(arrays)
    return PoolEstimate(
        model=name,
        images=n,
        confidence=float(np.mean([c for _, c in readings])) if n else 0.0,
        views=float(same.mean()) if n else 0.0,
        fits=float(np.mean(fits)) if fits else None,
        peers=None,
        readings=tuple(t for t, _ in readings),
        confidences=tuple(float(c) for _, c in readings),
        alike=tuple(bool(x) for x in same),
        paths=tuple(read_paths),
    )


BOOTSTRAP = 1000  # resamples of the images
CLEARLY = 0.975  # the share of them in which the higher figure must stay higher
# what a comparison with labels ranks by (compare's JSON says so: a reader of an older one knows it did not)
LABELS_THEN_ESTIMATE = "the labelled images where they tell, else the estimate where it does, else the labels' count"


def _resamples(n: int, seed: int) -> np.ndarray:
    """[BOOTSTRAP, n] indices: seeded resamples of n images, with replacement, the same for every model."""
    return np.random.default_rng(seed).integers(0, n, size=(BOOTSTRAP, n))


def clearly_above(a: PoolEstimate, b: PoolEstimate, seed: int = 0) -> bool:
    """Whether `a` reads the pool better than `b` beyond the chance of which images were sampled: in at least
    97.5% of seeded resamples of the images (the same images for both), a's estimate is the higher. Models
    that read different images (or kept no per-image figures) are compared by their estimates alone."""
    n = len(a.confidences)
    if n == 0 or n != len(b.confidences) or n != len(a.alike) or n != len(b.alike):
        return a.estimate > b.estimate
    picks = _resamples(n, seed)

    def estimates(e: PoolEstimate) -> np.ndarray:
        return np.asarray(e.confidences)[picks].mean(axis=1) * np.asarray(e.alike, dtype=float)[picks].mean(axis=1)

    return float(np.mean(estimates(a) > estimates(b))) >= CLEARLY


def _more_right(a: tuple[bool, ...], b: tuple[bool, ...], picks: np.ndarray) -> bool:
    """Whether `a` reads more of the labelled images right than `b` in at least CLEARLY of the resamples."""
    return float(np.mean(np.asarray(a)[picks].sum(axis=1) > np.asarray(b)[picks].sum(axis=1))) >= CLEARLY


def reads_better(a: PoolEstimate, b: PoolEstimate, seed: int = 0) -> bool:
    """Whether `a` reads the pool better than `b`, each signal heard only where it can tell: first the
    labelled images, where both read the same ones and one reads more of them right in 97.5% of seeded
    resamples of them; then the estimate, where one is clearly above the other (clearly_above); then, where
    neither tells the two apart, the labelled images' count as it stands (kaptcha at 20 labels: base-v3 read
    1 of them and a fine-tune 0, one image's luck, where the estimate put the fine-tune clearly first; on
    wheezy.captcha two fine-tunes tied by the estimate, and 17 of 20 against 15 chose the one that read
    more held-out images). With no label, or an exact tie, False: the earlier model stays."""
    n = len(a.right)
    labelled = bool(n) and n == len(b.right)
    if labelled:
        picks = _resamples(n, seed)
        if _more_right(a.right, b.right, picks):
            return True
        if _more_right(b.right, a.right, picks):
            return False
    if clearly_above(a, b, seed):
        return True
    if clearly_above(b, a, seed):
        return False
    return labelled and sum(a.right) > sum(b.right)


def labelled_right(reader: Reader, labelled: list[tuple[str, str]]) -> tuple[bool, ...]:
    """For each (path, label) pair, whether it is read right, compared as the reader's rule checks (its case)."""
    read = reader.read_paths([p for p, _ in labelled])
    pairs = zip(read, labelled, strict=True)
    return tuple(r.error is None and r.text == reader.as_checked(label) for r, (_, label) in pairs)


def compare(
    readers: dict[str, Reader],
    paths: list[str],
    progress: Callable[[str], None] | None = None,
    labelled: list[tuple[str, str]] | None = None,
) -> list[PoolEstimate]:
    """Every model's signals on the same sample, peers included, in the order given; with `labelled`
    (path, label) pairs, each model's accuracy on them too."""
    found = []
    for name, reader in readers.items():
        if progress:
            progress(name)
        e = read_pool(reader, name, paths)
        if labelled:
            right = labelled_right(reader, labelled)
            e = replace(e, labelled=sum(right) / len(right), right=right)
        found.append(e)
    out = []
    for i, e in enumerate(found):
        others = [o for j, o in enumerate(found) if j != i and o.images == e.images]
        peers = (
            float(np.mean([np.mean([a == b for a, b in zip(e.readings, o.readings, strict=True)]) for o in others]))
            if others and e.images
            else None
        )
        out.append(replace(e, peers=peers))
    return out


def best(found: list[PoolEstimate]) -> PoolEstimate:
    """The model that reads the pool best: each model in turn takes the place of the best so far only where
    it reads better beyond chance (reads_better: by the labelled images where they tell the two apart, else
    by the estimate), so the earlier keeps a tie or a doubt."""
    chosen = found[0]
    for e in found[1:]:
        if reads_better(e, chosen):
            chosen = e
    return chosen
