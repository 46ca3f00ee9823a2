"""Fit a style to a pool of unlabelled captchas by analysis by synthesis: a cross-entropy search.

Each round draws candidate points of the style space (fitting.space) from a distribution, renders a few
captchas in each (the same labels and seeds for every candidate, so they differ only in style), and keeps
the candidates whose images' statistics lie nearest the pool's (fitting.features). The distribution
moves to those: a Gaussian per knob, a probability per choice. Midway, every candidate font is scored on
its own in the best style so far, and the search goes on with the nearest fonts. Every draw comes from
one seeded generator: the same pool and settings give the same style. With a `reader` (what a reading
model sees of images: trainer.inference.features, handed in by the command, since this package runs no
model), the workers send their renders back and the reader's view of them counts for half the distance.
(Against CatCMA, a well-kept optimiser of mixed spaces, at the same renders, this search found nearer
styles on every development generator: docs/studies/fit-style.md.)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

from captchagen.fitting.features import Summary, distance, group_distances, summarise
from captchagen.fitting.space import CHOICES, KNOBS, Point, to_style
from captchagen.render import StyledCaptcha, image_rng, sample_label, seeded_captcha
from captchagen.style import Style
from captchagen.workers import WorkerPool

FitProgress = Callable[[str, int, int, float], None]  # (phase, done, total, best distance so far)
SeenBy = Callable[[Sequence[Image.Image]], Mapping[str, np.ndarray]]  # images -> {group: [N, D]}


@dataclass(frozen=True)
class Settings:
    """What the user knows (alphabet, lengths) and how hard to search."""

    alphabet: str
    min_len: int
    max_len: int
    width: int
    height: int
    rounds: int = 24
    population: int = 24
    images: int = 12  # rendered per candidate
    keep_fonts: int = 8
    seed: int = 0


@dataclass(frozen=True)
class Fit:
    style: Style
    fonts: tuple[str, ...]
    distance: float
    floor: float  # the distance between two halves of the pool: what "as close as it gets" looks like
    groups: dict[str, float]
    history: tuple[float, ...]  # the best distance after each round
    font_scores: dict[str, float] = field(default_factory=dict)


def render(style: Style, fonts: Sequence[str], s: Settings, seed: int, n: int) -> list[Image.Image]:
    """`n` captchas of random labels in `style`, image i drawn from image_rng(seed, i)."""
    drawer = StyledCaptcha(s.width, s.height, list(fonts), style)
    images = []
    for i in range(n):
        rng = image_rng(seed, i)
        label = sample_label(rng, s.alphabet, s.min_len, s.max_len)
        with seeded_captcha(rng):
            images.append(drawer.generate_image(label))
    return images


Task = tuple[Style, tuple[str, ...], Settings, int, int]  # (style, fonts, settings, seed, images)


def _summary(task: Task) -> Summary:
    style, fonts, s, seed, n = task
    return summarise(render(style, fonts, s, seed, n))


def _summary_and_images(task: Task) -> tuple[Summary, list[Image.Image]]:
    style, fonts, s, seed, n = task
    images = render(style, fonts, s, seed, n)
    return summarise(images), images


def _summaries(wp: WorkerPool, tasks: list[Task], reader: SeenBy | None) -> Iterator[Summary]:
    """Each task's summary in order, rendered by the workers (as each is done, without a reader); the reader
    (in this process) sees every task's images in one call."""
    if reader is None:
        yield from wp.map(_summary, tasks)
        return
    done = list(wp.map(_summary_and_images, tasks))
    seen = reader([im for _, images in done for im in images])
    start = 0
    for summary, images in done:
        stop = start + len(images)
        yield summary.extend({g: v[start:stop] for g, v in seen.items()})
        start = stop


class Search(Protocol):
    """What a search does each round: propose candidates (the best so far given, for elitism), then learn
    from their distances to the pool (lower is nearer)."""

    def propose(self, n: int, rng: np.random.Generator, best: Point | None) -> list[Point]: ...

    def learn(self, points: list[Point], scores: list[float]) -> None: ...


class CrossEntropy:
    """The search: a Gaussian per knob (clipped to [0, 1]) and a probability vector per choice, moved each round
    towards the nearest quarter of the candidates. Its starting state is where every search starts."""

    def __init__(self, pool: Summary) -> None:
        self.mean = np.full(len(KNOBS), 0.5)
        self.std = np.full(len(KNOBS), 0.3)
        self.probs = [np.full(len(options), 1 / len(options)) for options in CHOICES.values()]
        # What the pool shows outright starts the search near it: its background and ink colours, whether
        # they change from image to image, and whether it has colour at all.
        palette, spread = pool.mean["palette"], pool.std["palette"]
        for i, name in enumerate(("background_r", "background_g", "background_b", "text_r", "text_g", "text_b")):
            self.mean[KNOBS.index(name)] = palette[i]
            # The background is seen as it is drawn; the ink's colour is mixed with the background at its
            # edges and by the library's brightness-masked paste, so it is a rougher start.
            self.std[KNOBS.index(name)] = 0.03 if name.startswith("background") else 0.08
        self._lean("background_colour", "fixed" if spread[:3].mean() < 0.06 else "ranges")
        self._lean("text_colour", "fixed" if spread[3:6].mean() < 0.06 else "ranges")
        self._lean("grayscale", "on" if pool.mean["colour"][-1] < 0.03 else "off")
        # The looks few sites draw start near off (the search turns them on where the pool shows them).
        for name in ("shadow", "fisheye", "invert"):
            self.mean[KNOBS.index(name)] = 0.1
        self._lean("glyph_blocks", "smooth")
        self._lean("char_colours", "one", 0.6)

    def _lean(self, choice: str, option: str, weight: float = 0.7) -> None:
        options = CHOICES[choice]
        j = list(CHOICES).index(choice)
        probs = np.full(len(options), (1 - weight) / (len(options) - 1))
        probs[options.index(option)] = weight
        self.probs[j] = probs

    def propose(self, n: int, rng: np.random.Generator, best: Point | None) -> list[Point]:
        """`n` candidates; the best so far among them (elitism: it competes again)."""
        points = [self.draw(rng) for _ in range(n)]
        if best is not None:
            points[0] = best
        return points

    def learn(self, points: list[Point], scores: list[float]) -> None:
        order = np.argsort(scores, kind="stable")
        self.update([points[i] for i in order[: max(2, len(points) // 4)]])

    def draw(self, rng: np.random.Generator) -> Point:
        knobs = np.clip(rng.normal(self.mean, self.std), 0, 1)
        choices = tuple(int(rng.choice(len(p), p=p)) for p in self.probs)
        return Point(tuple(float(round(k, 4)) for k in knobs), choices)

    def update(self, elite: list[Point], smoothing: float = 0.7) -> None:
        knobs = np.array([p.knobs for p in elite])
        self.mean = smoothing * knobs.mean(axis=0) + (1 - smoothing) * self.mean
        self.std = np.maximum(smoothing * knobs.std(axis=0) + (1 - smoothing) * self.std, 0.03)
        for j, probs in enumerate(self.probs):
            counts = np.bincount([p.choices[j] for p in elite], minlength=len(probs)) / len(elite)
            mixed = smoothing * counts + (1 - smoothing) * probs
            self.probs[j] = np.maximum(mixed, 0.02) / np.maximum(mixed, 0.02).sum()


def fit(
    pool: Sequence[Image.Image],
    fonts: Sequence[str],
    s: Settings,
    workers: int = 1,
    progress: FitProgress | None = None,
    search: Callable[[CrossEntropy, Settings], Search] | None = None,
    reader: SeenBy | None = None,
) -> Fit:
    """The style (and fonts) whose renders look most like `pool`. `pool`: images at the fit's size.
    `search`: another search, made from the cross-entropy one's start (experiments/fit_search.py compares
    one; docs/studies/fit-style.md). `reader`: what a reading model sees, matched beside the statistics."""
    if len(pool) < 4:
        raise ValueError("a fit needs at least 4 pool images")
    seen = reader(pool) if reader is not None else {}  # what the reader sees of the pool, once

    def summary_of(part: slice) -> Summary:
        return summarise(pool[part]).extend({g: v[part] for g, v in seen.items()})

    half = len(pool) // 2
    target = summary_of(slice(None))
    floor = distance(summary_of(slice(None, half)), summary_of(slice(half, None)))
    rng = np.random.default_rng(s.seed)
    # A first font set: a seeded sample, so each round renders in the same few fonts.
    start_fonts = tuple(random.Random(s.seed).sample(list(fonts), min(len(fonts), s.keep_fonts)))
    start = CrossEntropy(target)
    dist = search(start, s) if search is not None else start
    best: tuple[float, Point] | None = None
    history: list[float] = []
    font_scores: dict[str, float] = {}
    chosen = start_fonts
    rounds_before_fonts = max(1, (2 * s.rounds) // 3)
    with WorkerPool(max(1, workers)) as wp:
        for r in range(s.rounds):
            if r == rounds_before_fonts and len(fonts) > s.keep_fonts and best is not None:
                font_scores = _score_fonts(wp, to_style(best[1]), fonts, s, target, progress, reader)
                chosen = tuple(sorted(font_scores, key=lambda f: font_scores[f])[: s.keep_fonts])
                best = None  # the fonts changed: the old best's distance is not comparable
            points = dist.propose(s.population, rng, best[1] if best else None)
            tasks = [(to_style(p), chosen, s, s.seed + 1 + r, s.images) for p in points]
            scores = [distance(target, summary) for summary in _summaries(wp, tasks, reader)]
            order = np.argsort(scores, kind="stable")
            if best is None or scores[order[0]] < best[0]:
                best = (scores[order[0]], points[order[0]])
            dist.learn(points, scores)
            history.append(best[0])
            if progress:
                progress("style", r + 1, s.rounds, best[0])
        assert best is not None
        style = to_style(best[1])
        # The final figure on fresh images (another seed, more of them): not the draw the search kept.
        final = next(_summaries(wp, [(style, chosen, s, s.seed + 10_000, max(len(pool), 2 * s.images))], reader))
    return Fit(style, chosen, distance(target, final), floor, group_distances(target, final), tuple(history),
               font_scores)  # fmt: skip


def _score_fonts(
    wp: WorkerPool,
    style: Style,
    fonts: Sequence[str],
    s: Settings,
    target: Summary,
    progress: FitProgress | None,
    reader: SeenBy | None,
) -> dict[str, float]:
    """Each font's distance to the pool, rendering `s.images` captchas in `style` with that font alone. With a
    reader, in batches of fonts: the reader sees a batch's images at once, and progress still moves."""
    scores: dict[str, float] = {}
    tasks: list[Task] = [(style, (f,), s, s.seed + 5_000, s.images) for f in fonts]
    step = 32 if reader is not None else max(1, len(tasks))
    for start in range(0, len(tasks), step):
        batch = _summaries(wp, tasks[start : start + step], reader)
        for f, summary in zip(fonts[start : start + step], batch, strict=True):
            scores[f] = distance(target, summary)
            if progress:
                progress("fonts", len(scores), len(fonts), min(scores.values()))
    return scores
