"""Training speed on the CPU with another busy process beside it, as a ratio to the same run idle.

With every core given to torch, one core taken by another process slowed training 25x (13-15 img/s against
about 375) where its share of the CPU would predict well under 2x: each parallel region waits at a barrier
for its slowest thread, and a spinning OpenMP thread holds its core while the thread it waits for is
descheduled. This measures, in one run and on the same model and batch, training steps/s idle and beside a
hog, for the thread settings train can choose:

    python bench/train_contention.py            # about 2 minutes on 2 cores
    python bench/train_contention.py --steps 40 --hogs 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# One training measurement, in a fresh process so that OpenMP reads its environment at start-up.
CHILD = r"""
import json, sys, time, torch
from trainer import models
from trainer.models.config import ModelConfig
from trainer.training.optim import make_optimizer
from trainer.training.forward import ctc_loss_sum
steps, batch = int(sys.argv[2]), int(sys.argv[3])
if sys.argv[1] == "auto":  # what `captchagen train` chooses (trainer.device.set_threads)
    from trainer.device import Dist, set_threads
    set_threads(torch.device("cpu"), Dist())
else:
    torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
model = models.build(ModelConfig(num_classes=27, height=32, width=160, max_label_len=10))
opt = make_optimizer(model, 1e-3, 0.01)
x = torch.rand(batch, 1, 32, 160)
targets = torch.randint(1, 27, (batch * 6,))
lengths = torch.full((batch,), 6, dtype=torch.long)
def step():
    loss = ctc_loss_sum(model(x), targets, lengths) / batch
    opt.zero_grad()
    loss.backward()
    opt.step()
for _ in range(3):
    step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"img_s": steps * batch / (time.perf_counter() - t0), "threads": torch.get_num_threads()}))
"""

HOG = "while True: pass"


def measure(threads: int | str, env: dict[str, str], steps: int, batch: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), str(steps), str(batch)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hogs", type=int, default=1, help="busy processes beside the run")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    settings: list[tuple[str, int | str, dict[str, str]]] = [
        ("all cores, OpenMP spinning (torch's default)", cores, {}),
        ("all cores, OMP_WAIT_POLICY=PASSIVE", cores, {"OMP_WAIT_POLICY": "PASSIVE"}),
        ("all cores, GOMP_SPINCOUNT=10000 (short spin)", cores, {"GOMP_SPINCOUNT": "10000"}),
    ]
    if cores > 1:
        settings.append((f"{cores - 1} threads (a core left free)", cores - 1, {}))
    settings.append(("captchagen train's choice (free cores at start)", "auto", {}))
    print(f"{cores} cores; batch {args.batch}, {args.steps} steps per measurement; hogs: {args.hogs}")
    print(f"{'setting':<50}{'idle img/s':>12}{'with hog':>12}{'ratio':>8}{'threads':>9}")
    for name, threads, env in settings:
        idle = measure(threads, env, args.steps, args.batch)
        hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
        try:
            time.sleep(0.5)
            busy = measure(threads, env, args.steps, args.batch)
        finally:
            for h in hogs:
                h.kill()
                h.wait()
        used = f"{idle['threads']}/{busy['threads']}"
        print(f"{name:<50}{idle['img_s']:12.0f}{busy['img_s']:12.0f}{busy['img_s'] / idle['img_s']:8.2f}{used:>9}")
    print("ratio: with the hog / idle, same setting; threads: idle/with hog")


if __name__ == "__main__":
    main()
