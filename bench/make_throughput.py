"""Throughput of `captchagen make` against the tutorial's naive loop, measured side by side in one run.

Naive: one process, one `ImageCaptcha.write(label, path)` per image with default PNG settings, same image
size, fonts and n. Also measures the bare render cost of the captcha library (generate_image only, no
encoding, no file) so we can say how close a worker gets to it.

    python bench/make_throughput.py --n 2000
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from captcha.image import ImageCaptcha

from captchagen.config import GenerationConfig, resolve
from captchagen.make import make_dataset
from captchagen.render import Renderer
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
        renderer.captcha.generate_image(renderer.label(i)[1])
    return (time.perf_counter() - start) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=cpu_count())
    args = parser.parse_args()
    config = GenerationConfig(n=args.n)
    resolved = resolve(config)
    root = Path(tempfile.mkdtemp(prefix="captchagen-bench-"))
    try:
        t_naive = naive(config, resolved.font_paths, root / "naive")
        start = time.perf_counter()
        make_dataset(config, root / "ours", workers=args.workers, preview=False)
        t_ours = time.perf_counter() - start
        bare = bare_render_ms(resolved, min(args.n, 500))
    finally:
        shutil.rmtree(root)
    worker_ms = t_ours * args.workers / args.n * 1000
    print(f"n={args.n}, {config.width}x{config.height}, {os.cpu_count()} cores, {args.workers} workers")
    print(f"{'naive (1 process, ImageCaptcha.write)':<44}{args.n / t_naive:8.0f} img/s   {t_naive:6.1f} s")
    print(f"{'captchagen make':<44}{args.n / t_ours:8.0f} img/s   {t_ours:6.1f} s")
    print(f"{'speed-up over naive':<44}{t_naive / t_ours:8.2f} x")
    print(f"{'bare captcha render (generate_image only)':<44}{bare:8.2f} ms/img")
    print(f"{'captchagen worker, all included':<44}{worker_ms:8.2f} ms/img  ({worker_ms / bare:.2f} x bare render)")


if __name__ == "__main__":
    main()
