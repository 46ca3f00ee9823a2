"""The decode-once cache is used only when it provably matches its images; anything else is rebuilt."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from captchagen.errors import CaptchagenError
from tests.helpers import tiny_dataset
from trainer.data import cache as cache_module
from trainer.data.loading import CaptchaDataset, load
from trainer.data.preprocess import Preprocessing, load_array

PRE = Preprocessing(height=16, width=48)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("made") / "d", n=40, shard_size=40)


def pixels_match_files(loaded) -> bool:
    """Every usable row holds the pixels of the file it is paired with."""
    batch = CaptchaDataset(loaded).__getitems__(list(range(len(loaded.rows))))
    decoded = np.stack([load_array(p, PRE) for p in batch.paths])
    return np.array_equal(batch.images.numpy(), decoded)


def truncate(npy):
    npy.write_bytes(npy.read_bytes()[:-500])


def overwrite_header(npy):
    data = bytearray(npy.read_bytes())
    data[:64] = b"x" * 64
    npy.write_bytes(bytes(data))


def empty(npy):
    npy.write_bytes(b"")


def zero_pixels(npy):
    arr = np.load(npy, mmap_mode="r+")
    arr[:] = 0
    arr.flush()


def flip_one_pixel(npy):
    arr = np.load(npy, mmap_mode="r+")
    arr[3, 5, 7] ^= 1
    arr.flush()


def bad_json(npy):
    npy.with_suffix(".json").write_text("{not json")


def json_of_another_size(npy):
    meta_path = npy.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["rows"] += 1
    meta_path.write_text(json.dumps(meta))


def no_json(npy):
    npy.with_suffix(".json").unlink()


def no_npy(npy):
    npy.unlink()


@pytest.mark.parametrize(
    "damage",
    [truncate, overwrite_header, empty, zero_pixels, flip_one_pixel, bad_json, json_of_another_size, no_json, no_npy],
)
def test_a_damaged_entry_is_rebuilt_with_a_notice(made, tmp_path, damage):
    cache = tmp_path / "cache"
    load(made, PRE, cache)
    (npy,) = cache.glob("*.npy")
    damage(npy)
    notices: list[str] = []
    loaded = load(made, PRE, cache, notice=notices.append)
    assert len(notices) == 1 and "rebuilding" in notices[0] and npy.name in notices[0], notices
    assert pixels_match_files(loaded)
    again: list[str] = []
    load(made, PRE, cache, notice=again.append)
    assert again == []  # the rebuilt entry is sound


def test_an_image_deleted_after_caching_rebuilds_the_entry(made, tmp_path):
    data = tmp_path / "d"
    shutil.copytree(made, data)
    cache = tmp_path / "cache"
    first = load(data, PRE, cache)
    assert len(first.rows) == 40
    victim = sorted(data.glob("shard-00000/*.png"))[10]
    victim.unlink()
    notices: list[str] = []
    loaded = load(data, PRE, cache, notice=notices.append)
    assert len(loaded.rows) == 39 and loaded.groups[0].images.shape[0] == 39
    assert str(victim) not in loaded.groups[0].paths
    assert pixels_match_files(loaded)  # no row is paired with its neighbour's image
    assert any("39 images where the manifest says 40" in n for n in notices), notices


def test_a_replaced_image_of_the_same_name_rebuilds_the_entry(made, tmp_path):
    data = tmp_path / "d"
    shutil.copytree(made, data)
    cache = tmp_path / "cache"
    load(data, PRE, cache)
    a, b = sorted(data.glob("shard-00000/*.png"))[:2]
    a.write_bytes(b.read_bytes())  # same name and label, other pixels
    loaded = load(data, PRE, cache)
    assert pixels_match_files(loaded)


def test_a_full_disk_is_one_clear_error_and_leaves_no_temp_file(made, tmp_path, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module.os, "posix_fallocate", full, raising=False)
    cache = tmp_path / "cache"
    with pytest.raises(CaptchagenError, match=r"no space left in .*cache.*`cache_dir`"):
        load(made, PRE, cache)
    assert list(cache.iterdir()) == []


def test_temp_files_of_dead_builds_are_removed(made, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = cache / f".{'0' * 32}.npy.{int(dead.stdout)}.tmp"
    live = cache / f".{'1' * 32}.npy.{os.getpid()}.tmp"  # a build in progress in a live process
    stale.write_bytes(b"x" * 100)
    live.write_bytes(b"x")
    load(made, PRE, cache)
    assert not stale.exists() and live.exists()
