"""Where a training step's time goes on the CPU: fine-tuning base-v3 (resnet) on labelled synthetic images,
and self-training it on an unlabelled pool beside them, as adapt's two training steps do.

Each step runs through the real loop (trainer.training.loop.train); the parts it is made of are wrapped in
timers for the run (the weak and strong augmentations, the teacher's reading, the forward pass, the CTC
loss, backward and the optimiser, the teacher's update), and what is left of each step's time is the data
loader and the loop itself. Shares, not absolute times, are what carry over to another machine.

    python bench/train_profile.py --steps 30
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from train_speed import make_adapt_data  # bench/, beside this script

from trainer.training import semi, steps
from trainer.training.events import BatchDone, Event, Started
from trainer.training.loop import train
from trainer.training.plan import pool_per_batch
from trainer.training.request import FINE_TUNE, TrainRequest

SPENT: collections.Counter[str] = collections.Counter()
_STACK: list[list[Any]] = []  # [label, seconds spent in timed calls inside it]
TEACHER = "teacher reads the pool (decode, confidence)"


def timed(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, its own time added to SPENT[label]: the time of timed calls inside it is theirs (exclusive
    times add up to the step's). A forward pass inside the teacher's reading is the teacher's forward."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = "teacher forward" if label == "forward" and any(f[0] == TEACHER for f in _STACK) else label
        frame = [name, 0.0]
        _STACK.append(frame)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - t0
            _STACK.pop()
            SPENT[name] += elapsed - frame[1]
            if _STACK:
                _STACK[-1][1] += elapsed

    return wrapper


@contextlib.contextmanager
def parts_timed() -> Iterator[None]:
    """The step's parts wrapped in timers, restored afterwards."""
    originals: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, label: str) -> None:
        originals.append((owner, name, getattr(owner, name)))
        setattr(owner, name, timed(label, getattr(owner, name)))

    wrap(steps, "random_affine", "weak augmentation")
    wrap(semi, "strong", "strong augmentation (pool)")
    wrap(semi, "confident_readings", TEACHER)
    wrap(steps.Step, "images", "to tensor, normalise")
    wrap(semi.Teacher, "update", "teacher EMA update")
    wrap(steps, "ctc_loss_sum", "CTC loss")
    wrap(semi, "ctc_loss_sum", "CTC loss")
    wrap(steps, "forward", "forward")
    wrap(semi, "forward", "forward")
    wrap(steps.Step, "update", "backward, clip, optimiser")
    try:
        yield
    finally:
        for owner, name, value in reversed(originals):
            setattr(owner, name, value)


def profile(request: TrainRequest) -> tuple[dict[str, float], float, str]:
    """(seconds per part, seconds, threads and precision) of the steps after the first (which warms up): from the first
    BatchDone to the last, so neither the set-up nor the epoch's validation counts."""
    marks: list[float] = []
    threads = ""
    first: dict[str, float] = {}
    last: dict[str, float] = {}

    def on(event: Event) -> None:
        nonlocal threads, first, last
        if isinstance(event, Started):
            threads = f"{event.threads} thread(s), {event.precision}"
        if isinstance(event, BatchDone):
            marks.append(time.perf_counter())
            last = dict(SPENT)
            if len(marks) == 1:
                first = last

    SPENT.clear()
    with parts_timed():
        train(request, on)
    return {k: v - first.get(k, 0.0) for k, v in last.items()}, marks[-1] - marks[0], threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="steps per run (the first one warms up)")
    parser.add_argument("--n", type=int, default=1200, help="labelled images (and half as many in the pool)")
    parser.add_argument("--threads", type=int, help="CPU threads for training (default: as train chooses)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, pool = make_adapt_data(root, args.n, args.n // 2)
        common = dict(
            data=str(data), init_from="base-v3", device="cpu", epochs=1, steps_per_epoch=args.steps,
            runs_dir=str(root / "runs"), cache_dir=str(root / "cache"), val_fraction=0.05, threads=args.threads,
        )  # fmt: skip
        runs = {
            "fine-tune (labelled)": TrainRequest(**common, name="fine"),
            "self-train (labelled + pool)": TrainRequest(**common, name="semi", unlabeled=str(pool)),
        }
        batch = FINE_TUNE["batch_size"]
        for (title, request), images in zip(runs.items(), (batch, batch + pool_per_batch(batch, 0.5)), strict=True):
            spent, seconds, threads = profile(request)
            timed_steps = args.steps - 1
            rest = seconds - sum(spent.values())
            per_step, speed = 1000 * seconds / timed_steps, images * timed_steps / seconds
            line = f"{timed_steps} steps, {threads}, {per_step:.0f} ms/step of {images} images, {speed:.0f} img/s"
            print(f"\n{title}: {line}")
            print(f"  {'part':<44}{'ms/step':>9}{'share':>8}")
            for part, s in sorted({**spent, "data loader and loop (the rest)": rest}.items(), key=lambda kv: -kv[1]):
                print(f"  {part:<44}{1000 * s / timed_steps:9.1f}{100 * s / seconds:7.1f}%")


if __name__ == "__main__":
    main()
