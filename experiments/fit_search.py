"""Issue 40, item 3: the fit's search, the hand-written cross-entropy method against CatCMA (the `cmaes`
library's mixed continuous and categorical CMA-ES), at the same renders: fit-style's defaults (24 rounds of
24 candidates, 12 captchas each, the same font scoring), on the same pool sample, from the same start.

The choice is made on the development generators (multicolor, wheezy, simple); gvcode, kaptcha and
claptcha are measured and reported, never used to choose (experiments/foreign.py).

    python -m experiments.fit_search --seeds 0,1 --results docs/studies/results/fit_search.jsonl

Each row: the generator, the search, the seed, the fit's distance on fresh renders, the pool's floor, their
ratio, the best distance after each round, and seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from cmaes import CatCMA  # bench-only (`pip install -e ".[bench]"`): the optimiser compared

from captchagen.alphabet import expand
from captchagen.fitting.pool_fit import SAMPLE, candidate_fonts, open_pool, pool_images
from captchagen.fitting.search import CrossEntropy, Settings, fit
from captchagen.fitting.space import CHOICES, KNOBS, Point
from experiments import foreign
from experiments.common import machine, report


class CatCMASearch:
    """The `cmaes` library's CatCMA (Hamano et al., GECCO 2024: CMA-ES over the knobs, a categorical
    distribution per choice, learnt together), started where the cross-entropy search starts: its mean,
    its spread per knob and its leanings per choice. No elitism: CMA-ES learns from its own samples only
    (the fit still keeps the best it has seen)."""

    def __init__(self, start: CrossEntropy, population: int, seed: int) -> None:
        sizes = np.array([len(options) for options in CHOICES.values()])
        params = np.zeros((len(sizes), sizes.max()))
        for j, probs in enumerate(start.probs):
            params[j, : len(probs)] = probs
        sigma = 0.3
        self.cma = CatCMA(
            mean=start.mean.copy(),
            sigma=sigma,
            cat_num=sizes,
            bounds=np.tile([0.0, 1.0], (len(KNOBS), 1)),
            seed=seed,
            population_size=population,
            cov=np.diag((start.std / sigma) ** 2),
            cat_param=params,
        )
        self.asked: list[tuple[np.ndarray, np.ndarray]] = []

    def propose(self, n: int, rng: np.random.Generator, best: Point | None) -> list[Point]:
        self.asked = [self.cma.ask() for _ in range(n)]
        return [Point(tuple(float(round(k, 4)) for k in np.clip(x, 0, 1)), tuple(int(i) for i in c.argmax(axis=1)))
                for x, c in self.asked]  # fmt: skip

    def learn(self, points: list[Point], scores: list[float]) -> None:
        self.cma.tell(list(zip(self.asked, scores, strict=True)))


SEARCHES = {"cross-entropy": None, "catcma": lambda start, s: CatCMASearch(start, s.population, s.seed)}
DEVELOPMENT = ("multicolor", "wheezy", "simple")
HELD_OUT = ("gvcode", "kaptcha", "claptcha")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generators", default=",".join(DEVELOPMENT + HELD_OUT))
    parser.add_argument("--searches", default="cross-entropy,catcma")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--work", type=Path, default=Path("bench-out/fit-search"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    for name in args.generators.split(","):
        folder = foreign.make(name, SAMPLE, 11, args.work / name)
        pool = open_pool(folder, SAMPLE, 0)
        images = pool_images(pool)
        preset, length = foreign.KNOWN[name]  # what a user knows: the alphabet and the length
        chars, lo, hi = expand(preset), int(length), int(length)
        fonts = candidate_fonts((), None, chars)
        for seed in (int(s) for s in args.seeds.split(",")):
            for search in args.searches.split(","):
                s = Settings(alphabet=chars, min_len=lo, max_len=hi, width=pool.size[0], height=pool.size[1],
                             seed=seed)  # fmt: skip
                started = time.perf_counter()
                result = fit(images, fonts, s, workers=args.workers, search=SEARCHES[search])
                row = {
                    "generator": name,
                    "held_out": name in HELD_OUT,
                    "search": search,
                    "seed": seed,
                    "distance": round(result.distance, 4),
                    "floor": round(result.floor, 4),
                    "ratio": round(result.distance / result.floor, 2),
                    "history": [round(h, 4) for h in result.history],
                    "renders": s.rounds * s.population * s.images + len(fonts) * s.images,
                    "fonts": len(fonts),
                    "seconds": round(time.perf_counter() - started, 1),
                    **machine(),
                }
                report(row, args.results, hidden=("history",))


if __name__ == "__main__":
    main()
