"""Speed of each architecture on this machine: training images/s and reading ms/image at batch 1 and 64,
each printed with its ratio to `crnn` measured in the same run, in three settings: the default layout in
fp32, channels_last in fp32 (what `train` uses on the CPU), and channels_last under bf16 autocast (what
`--precision bf16` gives; `auto` picks it only on CPUs with AMX). The last column is each setting's training
speed against the same architecture's first setting.

    python bench/arch_speed.py                 # 32x160 grayscale, as `make`'s images are read
    python bench/arch_speed.py --height 64 --width 320 --channels 3
"""

from __future__ import annotations

import argparse
import time

import torch

from trainer import models
from trainer.device import Dist, autocast, set_threads
from trainer.models.catalog import CATALOG
from trainer.models.config import ModelConfig
from trainer.training.forward import ctc_loss_sum
from trainer.training.optim import make_optimizer


def train_rate(model: torch.nn.Module, x: torch.Tensor, steps: int, classes: int, precision: str) -> float:
    opt = make_optimizer(model, 1e-3, 0.01)
    n = x.shape[0]
    targets, lengths = torch.randint(1, classes, (n * 6,)), torch.full((n,), 6, dtype=torch.long)
    model.train()

    def step() -> None:
        with autocast(torch.device("cpu"), precision):
            logits = model(x)
        loss = ctc_loss_sum(logits, targets, lengths) / n
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * n / (time.perf_counter() - t0)


@torch.no_grad()
def read_ms(model: torch.nn.Module, x: torch.Tensor, repeats: int, precision: str) -> float:
    model.eval()
    with autocast(torch.device("cpu"), precision):
        model(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return 1000 * (time.perf_counter() - t0) / (repeats * x.shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, help="[default: as train chooses]")
    args = parser.parse_args()
    threads = set_threads(torch.device("cpu"), Dist(), args.threads)
    torch.manual_seed(0)
    classes = 37
    print(f"CPU, {threads} threads, {args.channels}x{args.height}x{args.width}; ratios against crnn, same setting")
    print(f"{'arch':<8}{'setting':<20}{'params':>10}{'train img/s':>13}{'x':>6}{'ms/img b1':>11}{'x':>6}"
          f"{'ms/img b64':>12}{'x':>6}{'x own first':>13}")  # fmt: skip
    settings = (("contiguous", "fp32"), ("channels_last", "fp32"), ("channels_last", "bf16"))
    first: dict[str, float] = {}
    for layout, precision in settings:
        base: tuple[float, float, float] | None = None
        for name in CATALOG:
            config = ModelConfig(num_classes=classes, arch=name, height=args.height, width=args.width,
                                 channels=args.channels)  # fmt: skip
            model = models.build(config)
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            model = model.to(memory_format=fmt)
            batch = torch.rand(64, args.channels, args.height, args.width).to(memory_format=fmt)
            one = batch[:1].contiguous(memory_format=fmt)
            figures = (
                train_rate(model, batch, args.steps, classes, precision),
                read_ms(model, one, 20, precision),
                read_ms(model, batch, 3, precision),
            )
            base = base or figures
            first.setdefault(name, figures[0])
            params = sum(p.numel() for p in model.parameters())
            r = [f / b for f, b in zip(figures, base, strict=True)]
            setting = f"{layout} {precision}"
            print(f"{name:<8}{setting:<20}{params:>10,}{figures[0]:>13.0f}{r[0]:>6.2f}"
                  f"{figures[1]:>11.2f}{r[1]:>6.2f}{figures[2]:>12.2f}{r[2]:>6.2f}"
                  f"{figures[0] / first[name]:>13.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
