"""The training loop: one readable function from a TrainConfig to a run folder with checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

import captchagen
from captchagen import atomic
from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput, CaptchagenError
from trainer import checkpoint, runs
from trainer.data import loading as data
from trainer.data.augment import random_affine
from trainer.data.cache import default_cache_dir
from trainer.data.preprocess import Preprocessing, normalize
from trainer.device import all_sum, autocast, pick_device, pick_precision, set_threads, setup_distributed
from trainer.model import CRNN, ModelConfig, check_input_size
from trainer.training.config import TrainConfig
from trainer.training.optim import lr_at, make_optimizer, set_lr
from trainer.training.validate import ctc_loss_sum, evaluate

Events = Callable[[str, dict[str, Any]], None]


def train_step(
    net,
    optimizer,
    scaler,
    batch: data.Batch,
    pre: Preprocessing,
    device: torch.device,
    precision: str,
    cfg: TrainConfig,
) -> float:
    """One optimisation step on a batch; returns the mean CTC loss per image."""
    images = normalize(batch.images.to(device, non_blocking=True), pre)  # [N, 1, H, W]
    if cfg.augment:
        images = random_affine(images)
    with autocast(device, precision):
        logits = net(images)  # [T, N, C]
    loss = ctc_loss_sum(logits, batch.targets, batch.target_lengths) / len(batch.labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, cfg.clip)
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def _checkpoint_payload(model, alphabet, pre, mc, cfg, best, epoch) -> dict[str, Any]:
    return {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "alphabet": alphabet.chars,
        "preprocessing": pre.to_dict(),
        "model_config": asdict(mc),
        "train_config": asdict(cfg),
        "metrics": best,
        "epoch": epoch,
        "captchagen_version": captchagen.__version__,
    }


RESUMABLE = {"optimizer", "position", "scheduler", "rng"}  # what last.pt has and best.pt lacks


def resumed_config(saved: dict[str, Any], given: TrainConfig) -> TrainConfig:
    """A resumed run's settings are the saved ones, time limit included (the schedule is stretched over
    it), unless a new --time-limit is given."""
    time_limit = given.time_limit if given.time_limit is not None else saved.get("time_limit")
    return replace(TrainConfig(**saved), time_limit=time_limit)


class Diverged(CaptchagenError):
    """The loss or the weights became NaN or infinite."""


def _finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def train(cfg: TrainConfig, events: Events | None = None, resume: Path | None = None) -> dict[str, Any]:
    """Train a CRNN as `cfg` says (or continue the run whose last.pt is `resume`); return the best metrics."""
    state = None
    if resume is not None:
        state = checkpoint.load(resume)
        if not RESUMABLE <= state.keys():
            raise BadInput(
                f"{resume} holds a model but not the state to resume from; pass the run folder or its last.pt"
            )
        cfg = resumed_config(state["train_config"], cfg)
        limit = cfg.time_limit * 60 if cfg.time_limit else None
        if limit is not None and state["scheduler"]["elapsed"] >= limit:
            raise BadInput(
                f"{Path(resume).parent} has trained for its whole time limit of {cfg.time_limit:g} minutes; "
                "pass a larger `time_limit` (in minutes, counting the time already trained) to train on"
            )
    info = setup_distributed(cfg.device)
    emit = events if (events and info.main) else (lambda kind, payload: None)
    device = pick_device(cfg.device, info)
    precision = pick_precision(cfg.precision, device)
    threads = set_threads(device, info)
    torch.manual_seed(cfg.seed)

    try:
        check_input_size(cfg.height, cfg.width)  # before any image is decoded at that size
    except ValueError as e:
        raise BadInput(str(e)) from None
    pre = Preprocessing(height=cfg.height, width=cfg.width)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    given = Alphabet.from_spec(cfg.alphabet) if cfg.alphabet else None
    if state is not None:
        given = Alphabet(state["alphabet"])

    def load(path: str, alphabet: Alphabet | None) -> data.Loaded:
        # Rank 0 fills the cache; the others wait for it and then read it.
        if info.enabled and not info.main:
            torch.distributed.barrier()
        loaded = data.load(
            Path(path),
            pre,
            cache,
            alphabet=alphabet,
            skip_bad=cfg.skip_bad,
            workers=cfg.workers,
            progress=lambda done, total: emit("cache", {"done": done, "total": total, "path": path}),
            notice=lambda message: emit("notice", {"message": message}),
        )
        if info.enabled and info.main:
            torch.distributed.barrier()
        return loaded

    loaded = load(cfg.data, given)
    alphabet = loaded.alphabet
    if cfg.val_data:
        val_loaded = load(cfg.val_data, alphabet)
        train_set, val_set = data.CaptchaDataset(loaded), data.CaptchaDataset(val_loaded)
        skipped = loaded.skipped + val_loaded.skipped
        max_len = max(loaded.max_len, val_loaded.max_len)
    else:
        train_idx, val_idx = data.split(loaded, cfg.val_fraction, cfg.seed)
        train_set, val_set = data.CaptchaDataset(loaded, train_idx), data.CaptchaDataset(loaded, val_idx)
        skipped, max_len = loaded.skipped, loaded.max_len
    if len(train_set) < cfg.batch_size * info.world:
        raise BadInput(f"{len(train_set)} training images are fewer than one batch of {cfg.batch_size * info.world}")

    mc = ModelConfig(
        num_classes=alphabet.num_classes,
        height=cfg.height,
        width=cfg.width,
        conv=tuple(cfg.conv),
        hidden=cfg.hidden,
        lstm_layers=cfg.lstm_layers,
        dropout=cfg.dropout,
        max_label_len=max_len,
    )
    try:
        model = CRNN(mc).to(device)
    except ValueError as e:  # input size against the longest label, or not a multiple of the pooling
        raise BadInput(str(e)) from None
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    sampler = data.ShardedBatchSampler(
        len(train_set), cfg.batch_size, shuffle=True, seed=cfg.seed, rank=info.rank, world=info.world
    )
    val_sampler = data.ShardedBatchSampler(
        len(val_set), 256, shuffle=False, rank=info.rank, world=info.world, drop_last=False
    )
    train_loader = data.loader(train_set, sampler, cuda)
    val_loader = data.loader(val_set, val_sampler, cuda)

    start_epoch, start_batch, step, elapsed_before = 0, 0, 0, 0.0
    best: dict[str, Any] = {"seq_accuracy": -1.0}
    if state is not None:
        run = Path(resume).parent
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, start_batch = state["position"]["epoch"], state["position"]["batch"]
        step, elapsed_before = state["scheduler"]["step"], state["scheduler"]["elapsed"]
        best = state["metrics"]
        torch.set_rng_state(state["rng"]["torch"])
        if cuda and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"])
    elif info.main:
        run = runs.new_run_dir(Path(cfg.runs_dir), cfg.name)
        atomic.write_json(run / "config.json", {**asdict(cfg), "model": asdict(mc), "preprocessing": pre.to_dict()})
    else:
        run = Path(cfg.runs_dir) / "not-rank-0"
    net = DistributedDataParallel(model) if info.enabled else model

    sampler.set_epoch(0)
    steps_per_epoch = len(sampler)
    total_steps = steps_per_epoch * cfg.epochs
    limit = cfg.time_limit * 60 if cfg.time_limit else None
    emit(
        "start",
        {
            "run": str(run),
            "train": len(train_set),
            "val": len(val_set),
            "device": str(device),
            "precision": precision,
            "threads": threads,
            "world": info.world,
            "alphabet": alphabet.chars,
            "params": sum(p.numel() for p in model.parameters()),
            "steps_per_epoch": steps_per_epoch,
            "epochs": cfg.epochs,
            "resumed_epoch": start_epoch if state else None,
            "skipped": len(skipped),
        },
    )

    started = time.perf_counter()
    val_seconds = 0.0
    stopped_by_time = False
    rows = runs.read_metrics(run) if state is not None else []

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - started

    def out_of_time() -> bool:
        if limit is None:
            return False
        flag = torch.tensor([float(elapsed() + val_seconds * 1.1 >= limit)])
        return bool(all_sum(flag, info).item() > 0)

    for epoch in range(start_epoch, cfg.epochs):
        sampler.set_epoch(epoch, start_batch if epoch == start_epoch else 0)
        emit("epoch_start", {"epoch": epoch + 1, "batches": steps_per_epoch, "done": sampler.start})
        net.train()
        loss_sum, seen, batch_index = 0.0, 0, sampler.start
        epoch_started = time.perf_counter()
        for batch in train_loader:
            if out_of_time():
                stopped_by_time = True
                break
            progress = max(step / total_steps, elapsed() / limit if limit else 0.0)
            set_lr(optimizer, lr_at(progress, cfg.lr, cfg.warmup))
            loss_value = train_step(net, optimizer, scaler, batch, pre, device, precision, cfg)
            if all_sum(torch.tensor([float(not math.isfinite(loss_value))]), info).item() > 0:
                raise Diverged(
                    f"training diverged: the loss became {loss_value} at epoch {epoch + 1}, batch {batch_index + 1}; "
                    f"{_kept(run, best)}. Try a lower `lr` (this run: {cfg.lr:g})"
                )
            step += 1
            batch_index += 1
            loss_sum += loss_value * len(batch.labels)
            seen += len(batch.labels)
            emit("batch", {"epoch": epoch + 1, "batch": batch_index, "loss": loss_value})
        train_seconds = time.perf_counter() - epoch_started
        val_started = time.perf_counter()
        counts = evaluate(model, val_loader, alphabet, pre, device, precision, info)
        val_seconds = time.perf_counter() - val_started
        seen_total = int(all_sum(torch.tensor([float(seen)]), info).item())
        train_loss = float(all_sum(torch.tensor([loss_sum]), info).item()) / max(1, seen_total)
        finished = not stopped_by_time
        row = {
            "epoch": epoch + 1,
            "complete": finished,
            "train_loss": train_loss,
            "val_loss": counts.loss,
            "seq_accuracy": counts.accuracy,
            "mean_edit_distance": counts.mean_edit_distance,
            "cer": counts.cer,
            "images_per_s": seen_total / train_seconds if train_seconds else 0.0,
            "elapsed_s": elapsed(),
            "lr": optimizer.param_groups[0]["lr"],
        }
        if not _finite(model) or not math.isfinite(counts.loss):
            raise Diverged(
                f"training diverged: the weights became NaN or infinite in epoch {epoch + 1}; {_kept(run, best)}. "
                f"Try a lower `lr` (this run: {cfg.lr:g})"
            )
        if info.main:
            improved = counts.accuracy > best["seq_accuracy"]
            if improved:
                best = {**counts.summary(), "epoch": epoch + 1}
            payload = _checkpoint_payload(model, alphabet, pre, mc, cfg, best, epoch + 1)
            if improved:
                checkpoint.save(run / "best.pt", payload)
            rng = {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if cuda else None}
            position = {"epoch": epoch + 1, "batch": 0} if finished else {"epoch": epoch, "batch": batch_index}
            checkpoint.save(
                run / "last.pt",
                {
                    **payload,
                    "optimizer": optimizer.state_dict(),
                    "rng": rng,
                    "position": position,
                    "scheduler": {"step": step, "elapsed": elapsed()},
                },
            )
            runs.append_metrics(run, row)
            rows.append(row)
            runs.plot_curves(run, rows)
        emit("epoch_end", {**row, "best": improved if info.main else False})
        if stopped_by_time:
            break

    result = {
        "run": str(run),
        "best": best,
        "stopped_by_time": stopped_by_time,
        "skipped": skipped[:20],
        "skipped_count": len(skipped),
        "elapsed_s": elapsed(),
    }
    emit("done", result)
    if info.enabled:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


def _kept(run: Path, best: dict[str, Any]) -> str:
    if "epoch" not in best:
        return "nothing was saved"
    return f"{run / 'best.pt'} (epoch {best['epoch']}) and {run / 'last.pt'} hold the last good weights"
