"""Throughput of `captchagen make` against the tutorial's naive loop, measured side by side in one run.

Naive: one process, one `ImageCaptcha.write(label, path)` per image with default PNG settings, same image
size, fonts and n. Also measures the bare render cost of the captcha library (generate_image only, no
encoding, no file) so we can say how close a worker gets to it. The two alternate for `--rounds` rounds, so
a machine whose speed drifts (other jobs, a shared host) moves both sides alike; each round's ratio is
printed and the median is the figure.

    python bench/make_throughput.py --n 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from captcha.image import ImageCaptcha

from captchagen.config import GenerationConfig, resolve
from captchagen.make import make_dataset
from captchagen.render import Renderer, seeded_captcha
from captchagen.workers import cpu_count


def naive(config: GenerationConfig, font_paths: list[str], out: Path) -> float:
    rng = random.Random(config.seed)
    generator = ImageCaptcha(config.width, config.height, fonts=font_paths, font_sizes=config.font_sizes)
    out.mkdir()
    start = time.perf_counter()
    for i in range(config.n):
        label = "".join(rng.choice(config.alphabet) for _ in range(rng.randint(config.min_len, config.max_len)))
        generator.write(label, str(out / f"{label}_{i}.png"))
    return time.perf_counter() - start


def bare_render_ms(resolved, count: int) -> float:
    renderer = Renderer(resolved)
    renderer.image(0)  # load the fonts outside the timing
    start = time.perf_counter()
    for i in range(count):
        rng, label = renderer.label(i)
        with seeded_captcha(rng):  # as a worker draws (the seeded draws take the blank-glyph shortcut)
            renderer.captcha.generate_image(label)
    return (time.perf_counter() - start) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = GenerationConfig(n=args.n)
    resolved = resolve(config)
    print(f"n={args.n}, {config.width}x{config.height}, {os.cpu_count()} cores, {args.workers} workers")
    print(f"{'round':<8}{'naive img/s':>14}{'make img/s':>14}{'ratio':>9}   load (1 min)")
    ratios, naive_rates, make_rates = [], [], []
    for r in range(args.rounds):
        root = Path(tempfile.mkdtemp(prefix="captchagen-bench-"))
        try:
            t_naive = naive(config, resolved.font_paths, root / "naive")
            start = time.perf_counter()
            make_dataset(config, root / "ours", workers=args.workers, preview=False)
            t_ours = time.perf_counter() - start
        finally:
            shutil.rmtree(root)
        naive_rates.append(args.n / t_naive)
        make_rates.append(args.n / t_ours)
        ratios.append(t_naive / t_ours)
        load = os.getloadavg()[0]
        print(f"{r + 1:<8}{naive_rates[-1]:>14.0f}{make_rates[-1]:>14.0f}{ratios[-1]:>8.2f}x   {load:.2f}")
    bare = bare_render_ms(resolved, min(args.n, 500))
    worker_ms = args.workers * 1000 / statistics.median(make_rates)
    print(f"{'median':<8}{statistics.median(naive_rates):>14.0f}{statistics.median(make_rates):>14.0f}"
          f"{statistics.median(ratios):>8.2f}x   speed-up of make over the naive loop")  # fmt: skip
    print(f"bare captcha render (generate_image only): {bare:.2f} ms/img; a make worker, all included: "
          f"{worker_ms:.2f} ms/img ({worker_ms / bare:.2f}x bare render)")  # fmt: skip


if __name__ == "__main__":
    main()
