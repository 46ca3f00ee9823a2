"""What each remaining speed option buys a fine-tuning step of base-v3 on this CPU, measured alone against
the step `train` takes today (channels_last, the precision `auto` picks, batches of 32, the threads given),
in one process, the options alternating round by round so that load falls on all of them alike.

    python bench/step_options.py --threads 2 --rounds 3 --steps 15

Options: `fp32` (no autocast), `compile` (torch.compile of the forward; its compile seconds printed apart),
`frozen-bn` (batch norm on its running statistics, as some fine-tuning recipes do: cheaper, but it changes
what is learnt), `frozen-bn+compile`, `batch-64` (images/s at twice the batch: it changes the schedule) and
`1-thread`. Printed: the median images/s of each and its ratio to the baseline. Random images of base-v3's
input size: speed only, no accuracy (bench/train_speed.py measures both, against a git revision).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from trainer import checkpoint
from trainer.bundled import named
from trainer.device import autocast, pick_precision
from trainer.training.forward import ctc_loss_sum
from trainer.training.optim import make_optimizer

Step = Callable[[], None]


def make_step(option: str, precision: str, batch: int, threads: int) -> tuple[Step, float]:
    """A fine-tuning step of a fresh copy of base-v3 under `option`, and the seconds its first call took."""
    net, alphabet, pre = checkpoint.load_model(checkpoint.read(named("base-v3")))
    net = net.to(memory_format=torch.channels_last).train()
    if "frozen-bn" in option:
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
    opt = make_optimizer(net, 1e-4, 0.01)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, pre.channels, pre.height, pre.width, generator=gen)
    x = x.contiguous(memory_format=torch.channels_last)
    targets = torch.randint(1, len(alphabet.chars) + 1, (batch * 5,), generator=gen)
    lengths = torch.full((batch,), 5, dtype=torch.long)
    dtype = "fp32" if option == "fp32" else precision

    def forward(images: torch.Tensor) -> torch.Tensor:
        with autocast(torch.device("cpu"), dtype):
            return net(images)

    run = torch.compile(forward) if "compile" in option else forward

    def step() -> None:
        torch.set_num_threads(1 if option == "1-thread" else threads)
        opt.zero_grad(set_to_none=True)
        (ctc_loss_sum(run(x), targets, lengths) / batch).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()

    started = time.perf_counter()
    step()
    return step, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per option per round")
    parser.add_argument("--options", default="baseline,fp32,compile,frozen-bn,frozen-bn+compile,batch-64,1-thread")
    args = parser.parse_args()
    precision = pick_precision("auto", torch.device("cpu"))
    options = args.options.split(",")
    if "baseline" not in options:
        options.insert(0, "baseline")
    steps, first, rates = {}, {}, {o: [] for o in options}
    for o in options:
        batch = 64 if o == "batch-64" else 32
        steps[o], first[o] = make_step(o, precision, batch, args.threads)
        for _ in range(2):
            steps[o]()  # warm up
    for r in range(args.rounds):
        for o in options if r % 2 == 0 else reversed(options):
            batch = 64 if o == "batch-64" else 32
            started = time.perf_counter()
            for _ in range(args.steps):
                steps[o]()
            rates[o].append(batch * args.steps / (time.perf_counter() - started))
    base = statistics.median(rates["baseline"])
    print(f"base-v3 fine-tuning step, {args.threads} thread(s), `auto` precision here: {precision}; "
          f"medians of {args.rounds} rounds of {args.steps} steps")  # fmt: skip
    print(f"{'option':<20}{'img/s':>8}{'ratio':>8}{'first step s':>14}")
    for o in options:
        rate = statistics.median(rates[o])
        print(f"{o:<20}{rate:>8.0f}{rate / base:>7.2f}x{first[o]:>14.1f}")


if __name__ == "__main__":
    main()
