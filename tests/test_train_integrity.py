"""What a training run must never do: validate on images it trains on, share its run folder with another
process, or promise a resume it cannot keep."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from captchagen.errors import BadInput
from tests.helpers import run_cli, tiny_dataset, tiny_train_args, tiny_train_config
from trainer.data.preprocess import Preprocessing
from trainer.device import Dist
from trainer.training.datasets import load_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data") / "digits")


def _sets(cfg):
    pre = Preprocessing.for_shape(cfg.shape)
    notices = []
    return load_data(cfg, pre, Dist(), notices.append, None), [n.message for n in notices if hasattr(n, "message")]


def _trained_and_validated(sets) -> tuple[set[Path], set[Path]]:
    return {Path(p).resolve() for p in sets.train.paths()}, {Path(p).resolve() for p in sets.val.paths()}


def test_mixing_data_into_itself_leaves_its_validation_images_out_of_training(data, tmp_path):
    cfg = tiny_train_config(data, tmp_path, mix=((str(data), 0.5),), steps_per_epoch=2)
    sets, notices = _sets(cfg)
    trained, validated = _trained_and_validated(sets)
    assert validated and not trained & validated
    dropped = [n for n in notices if "validation images too" in n]
    assert len(dropped) == 1 and f"{len(validated):,} images" in dropped[0] and "--mix" in dropped[0]
    assert sets.sizes[1] == 640 - len(validated)  # the rest of the mixed-in set is still drawn


def test_a_copy_of_the_validation_set_mixed_in_is_found_by_content(data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    val = tiny_dataset(tmp_path / "other", seed=9)
    cfg = tiny_train_config(copy, tmp_path, val_data=str(data), mix=((str(val), 0.3),), steps_per_epoch=2)
    with pytest.raises(BadInput, match="every training image of DATA .* is also a validation image"):
        _sets(cfg)


def test_val_data_overlapping_data_drops_the_shared_images(data, tmp_path):
    part = tmp_path / "part"
    part.mkdir()
    shared = sorted(data.rglob("*.png"))[:100]
    for p in shared:
        (part / p.name).symlink_to(p)  # another path to the same files
    cfg = tiny_train_config(data, tmp_path, val_data=str(part))
    sets, notices = _sets(cfg)
    trained, validated = _trained_and_validated(sets)
    assert len(validated) == 100 and not trained & {p.resolve() for p in shared}
    assert len(sets.train) == 540
    assert any("DATA" in n and "100 images are validation images too" in n for n in notices)


def test_val_data_equal_to_data_is_refused_in_one_line(data, tmp_path):
    code, out = run_cli("train", str(data), "--val-data", str(data), *tiny_train_args(tmp_path))
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and "--val-data" in errors[0] and "Traceback" not in out, out
    assert not (tmp_path / "r").exists()
