"""Input-pipeline cost of training on the CPU: the share of each step spent waiting for data, printed next
to model-only throughput on tensors already in memory, both measured in this run.

    python bench/train_pipeline.py data/captchas --steps 60
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from trainer.data import loading as data
from trainer.data.cache import default_cache_dir
from trainer.device import Dist, pick_precision, set_threads
from trainer.model import build_model
from trainer.models.config import ModelConfig
from trainer.training.config import TrainConfig
from trainer.training.optim import make_optimizer
from trainer.training.plan import make_plan
from trainer.training.steps import train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="data/captchas")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    # The input size and crop as `train` would choose them from these images.
    plan = make_plan(TrainConfig(data=args.data))
    cfg = plan.cfg
    device = torch.device("cpu")
    precision = pick_precision(cfg.precision, device)
    threads = set_threads(device, Dist())
    torch.manual_seed(0)
    pre = plan.pre
    loaded = data.load(Path(args.data), pre, default_cache_dir(), workers=2, source=plan.sources[args.data])
    dataset = data.CaptchaDataset(loaded)
    sampler = data.ShardedBatchSampler(len(dataset), cfg.batch_size, shuffle=True, seed=0)
    mc = ModelConfig.from_shape(cfg.shape, num_classes=loaded.alphabet.num_classes)
    model = build_model(mc)
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    model.train()

    # 1. The real loop: time spent in next(loader) against time spent in the step.
    batches = iter(data.loader(dataset, sampler, cuda=False))
    for _ in range(3):  # warm up
        train_step(model, optimizer, scaler, next(batches), pre, device, precision, cfg)
    wait = compute = 0.0
    for _ in range(args.steps):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        train_step(model, optimizer, scaler, batch, pre, device, precision, cfg)
        t2 = time.perf_counter()
        wait, compute = wait + t1 - t0, compute + t2 - t1
    pipeline_ips = args.steps * cfg.batch_size / (wait + compute)

    # 2. Model only: the same step on one batch that is already in memory.
    fixed = dataset.__getitems__(list(range(cfg.batch_size)))
    t0 = time.perf_counter()
    for _ in range(args.steps):
        train_step(model, optimizer, scaler, fixed, pre, device, precision, cfg)
    model_ips = args.steps * cfg.batch_size / (time.perf_counter() - t0)

    print(f"{threads} threads, {precision}, batch {cfg.batch_size}, {cfg.height}x{cfg.width}, {args.steps} steps")
    print(f"{'time waiting for data':<34}{100 * wait / (wait + compute):8.2f} % of each step")
    print(f"{'mean wait per batch':<34}{1000 * wait / args.steps:8.2f} ms")
    print(f"{'training throughput, real pipeline':<34}{pipeline_ips:8.0f} img/s")
    print(f"{'model only, batch in memory':<34}{model_ips:8.0f} img/s")
    print(f"{'pipeline / model-only':<34}{pipeline_ips / model_ips:8.2f} x")


if __name__ == "__main__":
    main()
