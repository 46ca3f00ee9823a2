"""A run is worked out once (trainer.training.plan): defaults, size, crop, alphabet, each dataset opened once."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import tiny_dataset, tiny_train_config
from trainer.data import loading
from trainer.data import sources as sources_module
from trainer.training import plan as plan_module
from trainer.training.config import FINE_TUNE, SCRATCH, TrainConfig, with_defaults
from trainer.training.loop import train
from trainer.training.plan import make_plan

SCHEDULE = tuple(SCRATCH)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data") / "digits")


def test_the_library_fine_tunes_with_the_fine_tuning_defaults(data, reading_model, tmp_path):
    """`train(TrainConfig(init_from=...))` fine-tunes at FINE_TUNE's schedule, as `train --init-from` does."""
    unset = {k: None for k in SCHEDULE}
    tuned = make_plan(tiny_train_config(data, tmp_path, init_from=str(reading_model[1]), **unset)).cfg
    assert {k: getattr(tuned, k) for k in SCHEDULE} == FINE_TUNE
    scratch = make_plan(tiny_train_config(data, tmp_path, **unset)).cfg
    assert {k: getattr(scratch, k) for k in SCHEDULE} == SCRATCH
    given = with_defaults(TrainConfig(init_from="base", lr=0.5, steps_per_epoch=7))
    assert (given.lr, given.steps_per_epoch, given.batch_size) == (0.5, 7, FINE_TUNE["batch_size"])


def test_a_run_opens_each_dataset_once(data, tmp_path, monkeypatch):
    """DATA, `val_data` and each `mix` are opened by the plan, and loading reads what it opened."""
    other = tiny_dataset(tmp_path / "other", n=64, shard_size=64, seed=5)
    val = tiny_dataset(tmp_path / "val", n=32, shard_size=32, seed=6)
    opened: Counter[str] = Counter()
    real = sources_module.open_source

    def counting(path: Path):
        opened[str(path)] += 1
        return real(path)

    for module in (plan_module, loading):  # every module of the trainer that opens a dataset
        monkeypatch.setattr(module, "open_source", counting)
    cfg = tiny_train_config(data, tmp_path, epochs=1, width=None, mix=((str(other), 0.25),), val_data=str(val))
    train(cfg)
    assert opened == {str(data): 1, str(other): 1, str(val): 1}


def test_config_json_records_the_plan(data, tmp_path):
    """What the plan decided (width, crop, channels, arch, schedule, dataset hashes) is what the run records,
    and a resume plans from that record, not from the images again."""
    cfg = tiny_train_config(data, tmp_path, epochs=1, width=None, lr=None, arch=None)
    plan = make_plan(cfg)
    assert (plan.cfg.width, plan.cfg.arch, plan.cfg.lr, plan.cfg.channels) == (plan.shape.width, "crnn", 3e-3, 1)
    assert plan.cfg.sources == {str(data): plan.cfg.sources[str(data)]} and plan.cfg.sources[str(data)]
    assert plan.max_len == max(len(label) for g in plan.sources[str(data)].groups for label in g.labels)
    run = Path(train(cfg).run)
    recorded = json.loads((run / "config.json").read_text())
    for name in ("width", "height", "arch", "lr", "epochs", "batch_size", "channels", "sources"):
        assert recorded[name] == getattr(plan.cfg, name), name
    resumed = make_plan(replace(cfg, width=999), resume=run / "last.pt")  # a given width is not re-decided
    assert resumed.cfg.width == plan.cfg.width and resumed.state is not None
    assert resumed.alphabet == plan.alphabet
