"""Trainer data: sources, the decode-once cache, bad files, the split and the sharded sampler."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput
from tests.helpers import tiny_dataset
from trainer.data import cache as cache_module
from trainer.data.loading import CaptchaDataset, ShardedBatchSampler, load, split
from trainer.data.preprocess import Preprocessing, load_array, to_array
from trainer.data.sources import open_unlabeled

PRE = Preprocessing(height=16, width=48)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("made") / "d", n=60, shard_size=25)


def write_png(path, text_color=0, size=(64, 32), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, "white" if mode == "RGB" else 255).save(path)
    return path


def test_made_dataset_uses_its_manifest_alphabet_and_every_shard(made, tmp_path):
    loaded = load(made, PRE, tmp_path / "cache")
    assert loaded.alphabet.chars == "0123456789"
    assert len(loaded.rows) == 60 and len(loaded.groups) == 3
    assert loaded.groups[0].images.shape == (25, 16, 48) and loaded.groups[0].images.dtype == np.uint8
    batch = CaptchaDataset(loaded).__getitems__([0, 59])
    assert batch.images.shape == (2, 16, 48)
    assert batch.target_lengths.tolist() == [len(batch.labels[0]), len(batch.labels[1])]
    assert batch.targets.tolist() == loaded.alphabet.encode(batch.labels[0]) + loaded.alphabet.encode(batch.labels[1])


def test_folder_tree_and_list_file_with_alphabet_from_labels(tmp_path):
    root = tmp_path / "mine"
    write_png(root / "a" / "x1_CAB.png")
    Image.new("RGB", (50, 20), "white").save(root / "b" / "deep" / "x2_DA.jpg") if (root / "b" / "deep").mkdir(
        parents=True
    ) is None else None
    Image.new("L", (50, 20), 255).save(root / "x3_BB.bmp")
    (root / "notes.txt").write_text("not an image")
    loaded = load(root, PRE, tmp_path / "cache")
    assert loaded.alphabet.chars == "ABCD"  # sorted, whatever order the files were found in
    assert sorted(g.labels[r] for g, r in ((loaded.groups[g], r) for g, r in loaded.rows)) == ["BB", "CAB", "DA"]

    listing = tmp_path / "list.txt"
    listing.write_text(f"# comment\nmine/a/x1_CAB.png QQ\n{root / 'x3_BB.bmp'} ZZ\n\n")
    loaded = load(listing, PRE, tmp_path / "cache", alphabet=Alphabet("QZ"))
    assert sorted(loaded.groups[0].labels) == ["QQ", "ZZ"]


def test_the_cache_decodes_once_and_is_rebuilt_when_content_changes(tmp_path, monkeypatch):
    root = tmp_path / "mine"
    write_png(root / "1_AB.png")
    write_png(root / "2_BA.png")
    load(root, PRE, tmp_path / "cache")
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(entries) == 2  # one .npy and one .json

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a PNG although the cache was complete")

    monkeypatch.setattr(cache_module, "load_array", no_decoding)
    load(root, PRE, tmp_path / "cache")  # served from the cache
    monkeypatch.undo()

    write_png(root / "2_BA.png", size=(70, 30))  # new content, new key
    load(root, PRE, tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 4


def test_a_changed_shard_hash_invalidates_its_cache(made, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(made, copy)
    first = load(copy, PRE, tmp_path / "cache")
    m = json.loads((copy / "manifest.json").read_text())
    m["shards"][0]["sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(m))
    second = load(copy, PRE, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4  # three shards, then shard 0 again
    assert np.array_equal(first.groups[0].images, second.groups[0].images)


@pytest.mark.parametrize("kind", ["not-an-image", "truncated", "bad-label", "no-label"])
def test_bad_files_are_named_or_skipped_and_counted(tmp_path, kind):
    root = tmp_path / "mine"
    for i in range(3):
        write_png(root / f"{i}_AB.png")
    if kind == "not-an-image":
        bad = root / "9_AB.png"
        bad.write_text("hello")
    elif kind == "truncated":
        bad = write_png(root / "9_AB.png", size=(200, 100))
        Image.effect_noise((200, 100), 50).save(bad)
        bad.write_bytes(bad.read_bytes()[:300])
    elif kind == "bad-label":
        bad = write_png(root / "9_AZ.png")
    else:
        bad = write_png(root / "9.png")
    with pytest.raises(BadInput) as info:
        load(root, PRE, tmp_path / "cache", alphabet=Alphabet("AB"))
    assert bad.name in str(info.value) and "`skip_bad`" in str(info.value)
    loaded = load(root, PRE, tmp_path / "cache", alphabet=Alphabet("AB"), skip_bad=True)
    assert len(loaded.rows) == 3 and len(loaded.skipped) == 1 and bad.name in loaded.skipped[0][0]


def test_an_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no labelled images found in"):
        load(tmp_path / "empty", PRE, tmp_path / "cache")


def test_split_is_deterministic_disjoint_and_complete(made, tmp_path):
    loaded = load(made, PRE, tmp_path / "cache")
    train, val = split(loaded, 0.2, seed=0)
    again_train, again_val = split(loaded, 0.2, seed=0)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not set(train) & set(val) and len(train) + len(val) == 60
    assert 3 <= len(val) <= 25
    with pytest.raises(BadInput, match="between 0 and 1"):
        split(loaded, 1.5, seed=0)


def test_sharded_sampler_splits_an_epoch_across_ranks_and_resumes_mid_epoch():
    ranks = [ShardedBatchSampler(103, 10, shuffle=True, seed=3, rank=r, world=2) for r in range(2)]
    for s in ranks:
        s.set_epoch(4)
    batches = [list(s) for s in ranks]
    assert len(batches[0]) == len(batches[1]) == 5 == len(ranks[0])
    seen = [i for rank in batches for b in rank for i in b]
    assert len(seen) == len(set(seen)) == 100
    ranks[0].set_epoch(5)
    assert list(ranks[0]) != batches[0]  # a new order each epoch
    ranks[0].set_epoch(4, start=2)
    assert list(ranks[0]) == batches[0][2:] and len(ranks[0]) == 3


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "LA", "I;16", "1"])
def test_any_image_mode_goes_through_the_same_preprocessing(tmp_path, mode):
    base = Image.new("RGB", (90, 30), "white")
    base.paste((20, 20, 20), (10, 5, 40, 25))  # a dark block on white
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    elif mode in ("RGBA", "LA"):
        image = base.convert(mode)
        image.putalpha(Image.new("L", base.size, 255))
    else:
        image = base.convert(mode)
    path = tmp_path / "x.png"
    image.save(path)
    arr = load_array(path, PRE)
    reference = to_array(base, PRE)
    assert arr.shape == (16, 48) and arr.dtype == np.uint8
    assert np.abs(arr.astype(int) - reference.astype(int)).mean() < 8


def test_transparent_pixels_read_as_white_background(tmp_path):
    image = Image.new("RGBA", (48, 16), (0, 0, 0, 0))  # fully transparent black
    image.paste((0, 0, 0, 255), (0, 0, 24, 16))
    arr = to_array(image, Preprocessing(height=16, width=48, autocontrast=False))
    assert arr[:, :20].max() < 30 and arr[:, 28:].min() > 225


def test_an_unfinished_make_is_named_and_trains_on_the_shards_it_made(made, tmp_path):
    """An interrupted `make` leaves a manifest of the shards finished so far: training on it says so (and on
    none, the error says to run the make again, not that no labelled image exists)."""
    cut = tmp_path / "cut"
    shutil.copytree(made, cut)
    data = json.loads((cut / "manifest.json").read_text())
    for shard in data["shards"][1:]:
        (cut / shard["dir"]).rename(cut / (shard["dir"] + ".partial"))
    data["shards"], data["complete"] = data["shards"][:1], False
    (cut / "manifest.json").write_text(json.dumps(data))
    said: list[str] = []
    loaded = load(cut, PRE, tmp_path / "cache", notice=said.append)
    assert len(loaded.rows) == 25
    assert any("stopped before it finished (1 of 3 shards made, the rest left out)" in line for line in said)
    (cut / data["shards"][0]["dir"]).rename(cut / (data["shards"][0]["dir"] + ".partial"))
    data["shards"] = []
    (cut / "manifest.json").write_text(json.dumps(data))
    for read in (lambda: load(cut, PRE, tmp_path / "cache"), lambda: open_unlabeled(cut)):  # DATA, --unlabeled
        with pytest.raises(BadInput, match=r"stopped before it finished \(0 of 3 shards made\): run the same make"):
            read()
