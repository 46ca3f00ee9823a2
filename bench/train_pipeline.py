"""Input-pipeline cost of training on the CPU: the share of each step spent waiting for data, printed next
to model-only throughput on tensors already in memory, both measured in this run.

    python bench/train_pipeline.py data/captchas --steps 60
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from trainer import models
from trainer.data import loading as data
from trainer.training.optim import make_optimizer
from trainer.training.plan import make_plan
from trainer.training.request import TrainRequest
from trainer.training.steps import SupervisedStep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="data/captchas")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    # The input size, crop, schedule and machine as `train` would choose them for these images, on the CPU.
    plan = make_plan(TrainRequest(data=args.data, device="cpu"))
    schedule, runtime, pre = plan.schedule, plan.runtime, plan.pre
    torch.manual_seed(0)
    loaded = data.load(Path(args.data), pre, plan.cache_dir, workers=2, source=plan.sources[args.data])
    dataset = data.CaptchaDataset(loaded)
    sampler = data.ShardedBatchSampler(len(dataset), schedule.batch_size, shuffle=True, seed=0)
    model = models.build(plan.model)
    optimizer = make_optimizer(model, schedule.lr, schedule.weight_decay)
    train_step = SupervisedStep(model, optimizer, torch.amp.GradScaler("cuda", enabled=False), plan)
    model.train()

    # 1. The real loop: time spent in next(loader) against time spent in the step.
    batches = iter(data.loader(dataset, sampler, cuda=False))
    for _ in range(3):  # warm up
        train_step(next(batches))
    wait = compute = 0.0
    for _ in range(args.steps):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        train_step(batch)
        t2 = time.perf_counter()
        wait, compute = wait + t1 - t0, compute + t2 - t1
    pipeline_ips = args.steps * schedule.batch_size / (wait + compute)

    # 2. Model only: the same step on one batch that is already in memory.
    fixed = dataset.__getitems__(list(range(schedule.batch_size)))
    t0 = time.perf_counter()
    for _ in range(args.steps):
        train_step(fixed)
    model_ips = args.steps * schedule.batch_size / (time.perf_counter() - t0)

    shape = f"{plan.model.height}x{plan.model.width}"
    print(f"{runtime.threads} threads, {runtime.precision}, batch {schedule.batch_size}, {shape}, {args.steps} steps")
    print(f"{'time waiting for data':<34}{100 * wait / (wait + compute):8.2f} % of each step")
    print(f"{'mean wait per batch':<34}{1000 * wait / args.steps:8.2f} ms")
    print(f"{'training throughput, real pipeline':<34}{pipeline_ips:8.0f} img/s")
    print(f"{'model only, batch in memory':<34}{model_ips:8.0f} img/s")
    print(f"{'pipeline / model-only':<34}{pipeline_ips / model_ips:8.2f} x")


if __name__ == "__main__":
    main()
