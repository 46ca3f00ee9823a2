"""Where and how tensors run: device choice, mixed precision, threads, and torchrun's process group."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from captchagen.errors import BadInput
from captchagen.workers import cpu_count


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


@dataclass(frozen=True)
class Runtime:
    """Where a run computes, decided once: the device, its precision, the CPU threads, torchrun's processes."""

    device: torch.device
    precision: str  # fp32, bf16 or fp16 (autocast)
    threads: int
    dist: Dist

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def make_runtime(device: str, precision: str, threads: int | None) -> Runtime:
    """Join torchrun's process group when launched by it, then pick the device, precision and threads."""
    dist = setup_distributed(device)
    chosen = pick_device(device, dist)
    return Runtime(chosen, pick_precision(precision, chosen), set_threads(chosen, dist, threads), dist)


def setup_distributed(device: str) -> Dist:
    """Join torchrun's process group if launched by torchrun (NCCL on CUDA, gloo on the CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    info = Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        cuda = device != "cpu" and torch.cuda.is_available()
        dist.init_process_group("nccl" if cuda else "gloo")
    return info


def pick_device(spec: str, info: Dist) -> torch.device:
    """auto: CUDA when there is a GPU (one per local rank), else the CPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if not spec.startswith("cuda"):
        raise BadInput(f"`device` must be auto, cpu, cuda or cuda:N, got {spec!r}")
    if not torch.cuda.is_available():
        raise BadInput(f"`device` {spec}: no CUDA GPU is available (PyTorch {torch.__version__})")
    index = int(spec.split(":", 1)[1]) if ":" in spec else info.local_rank
    if index >= torch.cuda.device_count():
        raise BadInput(f"`device` {spec}: only {torch.cuda.device_count()} CUDA device(s)")
    torch.cuda.set_device(index)
    torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels once
    return torch.device("cuda", index)


def pick_precision(spec: str, device: torch.device) -> str:
    """auto: bf16 (or fp16) autocast on CUDA; bf16 on CPUs with AMX units, where it is about twice as fast;
    fp32 elsewhere. The CTC loss is always computed in fp32."""
    if spec not in ("auto", "fp32", "bf16", "fp16"):
        raise BadInput(f"`precision` must be auto, fp32, bf16 or fp16, got {spec!r}")
    if spec != "auto":
        if spec == "fp16" and device.type == "cpu":
            raise BadInput("`precision` fp16 needs CUDA; use bf16 or fp32 on the CPU")
        return spec
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return "bf16" if amx else "fp32"


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on the CPU, where oneDNN's convolutions are faster in it (bench/arch_speed.py, 1 core:
    resnet trained at 67 img/s against 49, and both architectures read batches of 64 1.4-1.5x faster); the
    default on CUDA, where mixed precision already picks its kernels."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def set_threads(device: torch.device, info: Dist, requested: int | None = None) -> int:
    """On the CPU: `requested` threads, else the cores of this machine not busy with other work (measured
    for a moment, see busy_cores; under torchrun, every core), shared out between the processes of this
    machine.

    Why not simply every core: each parallel region waits for its slowest thread, and a thread whose core
    another process holds is the slowest. Beside one busy process on 2 cores, 2 threads trained at 0.34x
    of their idle speed and 1 thread at 0.91x of its own (bench/train_contention.py)."""
    if device.type != "cpu":
        return torch.get_num_threads()
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", info.world)))
    if requested is not None:
        threads = requested
    else:
        cores = cpu_count()
        # Under torchrun the other processes of this run are busy starting up beside us: not measured, the
        # cores are shared out as they are.
        free = cores - busy_cores() if cores > 1 and local == 1 else cores
        threads = max(1, int(free + 0.25) // local)  # a core three-quarters free still counts
    torch.set_num_threads(threads)
    return threads


def busy_cores(seconds: float = 0.25) -> float:
    """How many cores' worth of CPU other processes used over the next `seconds` (0 where /proc/stat is
    not there). This process sleeps meanwhile, so what is busy is someone else's."""

    def ticks() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
        return sum(fields), idle

    before = ticks()
    time.sleep(seconds)
    after = ticks()
    if before is None or after is None or after[0] == before[0]:
        return 0.0
    total, idle = after[0] - before[0], after[1] - before[1]
    all_cores = os.cpu_count() or 1  # /proc/stat counts every core of the machine, not only ours
    return max(0.0, min(float(cpu_count()), (total - idle) / total * all_cores))


def all_sum(t: torch.Tensor, info: Dist) -> torch.Tensor:
    if info.enabled:
        t = t.clone()
        dist.all_reduce(t)
    return t
