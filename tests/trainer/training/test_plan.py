"""A run is worked out once (trainer.training.plan): defaults, size, crop, alphabet, each dataset opened once."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

from tests.helpers import tiny_dataset, tiny_train_config
from trainer.data import loading
from trainer.data import sources as sources_module
from trainer.training import plan as plan_module
from trainer.training.loop import train
from trainer.training.plan import make_plan
from trainer.training.request import FINE_TUNE, SCRATCH

SCHEDULE = tuple(SCRATCH)


def test_the_library_fine_tunes_with_the_fine_tuning_defaults(data, reading_model, tmp_path):
    """`train(TrainRequest(init_from=...))` fine-tunes at FINE_TUNE's schedule, as `train --init-from` does."""
    unset = {k: None for k in SCHEDULE}
    tuned = make_plan(tiny_train_config(data, tmp_path, init_from=str(reading_model[1]), **unset)).schedule
    assert {k: getattr(tuned, k) for k in SCHEDULE} == FINE_TUNE
    scratch = make_plan(tiny_train_config(data, tmp_path, **unset)).schedule
    assert {k: getattr(scratch, k) for k in SCHEDULE} == SCRATCH
    asked = tiny_train_config(
        data, tmp_path, init_from=str(reading_model[1]), lr=0.5, steps_per_epoch=7, batch_size=None
    )
    given = make_plan(asked).schedule
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
    settled = plan.record.to_dict()
    assert (settled["width"], settled["arch"], settled["lr"], settled["channels"]) == (
        plan.model.width,
        "crnn",
        3e-3,
        1,
    )
    assert (plan.schedule.lr, plan.model.arch, plan.pre.channels) == (3e-3, "crnn", 1)
    assert settled["sources"] == {str(data): settled["sources"][str(data)]} and settled["sources"][str(data)]
    assert plan.model.max_label_len == max(len(label) for g in plan.sources[str(data)].groups for label in g.labels)
    run = Path(train(cfg).run)
    recorded = json.loads((run / "config.json").read_text())
    for name in ("width", "height", "arch", "lr", "epochs", "batch_size", "channels", "sources"):
        assert recorded[name] == settled[name], name
    # ... beside the request as it was given: what the user left to the plan is None there
    assert recorded["request"]["width"] is None and recorded["request"]["lr"] is None
    assert recorded["request"] == json.loads(json.dumps(asdict(cfg)))
    resumed = make_plan(replace(cfg, width=999), resume=run / "last.pt")  # a given width is not re-decided
    assert resumed.model.width == plan.model.width and resumed.resume is not None
    assert resumed.alphabet == plan.alphabet


def test_a_schedule_field_is_a_request_field_and_options_are_request_fields_by_name():
    """Adding a hyperparameter is a TrainRequest field, a Schedule field and an option: the plan fills the
    Schedule from the request by name, and the command line passes its options to the request by name."""
    from captchagen.cli.train import train as command
    from trainer.training.plan import Schedule
    from trainer.training.request import TrainRequest

    asked = set(TrainRequest.__dataclass_fields__)
    assert set(Schedule.__dataclass_fields__) <= asked
    own = {"resume", "colour"}  # the command's own: which run to continue, and --colour/--gray for `channels`
    assert {p.name for p in command.params} - own <= asked
