"""Estimating, with no label, how well models read a pool: the signals, and `captchagen compare`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from captchagen import codec
from tests.helpers import run_cli, run_cli_streams, shard_images
from trainer.data.preprocess import load_array
from trainer.inference.estimate import (
    VIEW_SHIFTS,
    PoolEstimate,
    best,
    clearly_above,
    compare,
    reads_better,
    shifted,
)
from trainer.inference.reader import Reader


def test_a_shift_moves_the_image_and_repeats_the_edge():
    image = np.arange(20, dtype=np.uint8).reshape(1, 4, 5)
    right = shifted(image, 0, 2)
    assert (right[0, :, 2:] == image[0, :, :3]).all() and (right[0, :, :2] == image[0, :, :1]).all()
    up = shifted(image, -1, 0)
    assert (up[0, :3] == image[0, 1:]).all() and (up[0, 3] == image[0, 3]).all()
    colour = np.zeros((2, 3, 4, 5), dtype=np.uint8)
    assert shifted(colour, 1, -2).shape == colour.shape  # [N, C, H, W]: only the last two axes move


def test_the_signals_are_what_each_model_reads(reading_model):
    data, model = reading_model
    paths = [str(p) for p in shard_images(data)[:40]]
    readers = {"a": Reader(model), "b": Reader(model)}
    readers["b"].restrict("0123")
    found = compare(readers, paths)
    assert [e.model for e in found] == ["a", "b"] and all(e.images == 40 for e in found)
    a_reads = readers["a"].read_paths(paths)
    assert found[0].readings == tuple(p.text for p in a_reads)
    assert found[0].confidence == pytest.approx(np.mean([p.confidence for p in a_reads]))
    # views: the share read the same in every shifted copy
    arrays = np.stack([load_array(p, readers["a"].pre) for p in paths])
    same = np.ones(len(paths), dtype=bool)
    for rows, cols in VIEW_SHIFTS:
        moved = readers["a"].read_arrays(shifted(arrays, rows, cols))
        same &= np.array([m[0] == p.text for m, p in zip(moved, a_reads, strict=True)])
    assert found[0].views == pytest.approx(same.mean())
    assert found[0].estimate == pytest.approx(found[0].confidence * found[0].views)
    # fits: read at any length, the share of the model's own trained lengths (1-3)
    assert found[0].fits is not None and 0 <= found[0].fits <= 1
    # peers: the share read exactly as the other model does, the same both ways
    agree = np.mean([x == y for x, y in zip(found[0].readings, found[1].readings, strict=True)])
    assert found[0].peers == found[1].peers == pytest.approx(agree)


def test_an_unreadable_image_is_left_out_and_the_paths_say_which_were_read(reading_model, tmp_path):
    data, model = reading_model
    paths = [str(p) for p in shard_images(data)[:6]]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    found = compare({"a": Reader(model)}, [*paths[:3], str(broken), *paths[3:]])[0]
    assert found.images == 6 and found.paths == tuple(paths)
    assert found.readings == tuple(r.text for r in Reader(model).read_paths(paths))


def test_compare_ranks_models_on_a_pool_and_writes_json(reading_model, tmp_path):
    data, model = reading_model
    out = tmp_path / "sub" / "estimates.json"
    args = ["compare", str(data), "--model", str(model), "--model", str(model.parent), "--sample", "24"]
    code, printed, err = run_cli_streams(*args, "--out", str(out), "--json")
    assert code == 0 and "reading the pool with" in err, printed + err
    numbers = json.loads(printed)
    assert numbers == json.loads(out.read_text()) and numbers["sample"] == 24
    rows = numbers["models"]
    assert [r["model"] for r in rows] == [str(model), str(model.parent)] and numbers["best"] == str(model)
    assert rows[0]["estimate"] == rows[1]["estimate"]  # the same model, the same sample: the same figures
    assert rows[0]["clearly_above"] == rows[1]["clearly_above"] == []  # and neither above the other
    assert numbers["lengths"] == [1, 3]  # the model's trained lengths, as every reading command
    # each model's readings, in the order of the images read (adapt's readings sheet draws them)
    images = numbers["images"]
    assert len(images) == 24 and all(Path(p).is_file() and Path(p).is_relative_to(data) for p in images)
    read = [r.text for r in Reader(model).read_paths(images)]
    assert rows[0]["readings"] == rows[1]["readings"] == read
    assert json.loads(run_cli_streams(*args, "--json")[1]) == numbers  # seeded: the same again
    code, table = run_cli(*args, "--length", "2", env={"COLUMNS": "200"})
    assert code == 0 and "estimate" in table and "reads this pool best by the estimate" in table


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ([], "give two or more models"),
        (["--model", "nosuch.pt"], "does not exist"),
        (["--model", "base", "--length", "x"], "--length"),
    ],
)
def test_compare_refuses_bad_input_in_one_line(reading_model, extra, says):
    data, model = reading_model
    code, out = run_cli("compare", str(data), "--model", str(model), *extra)
    assert code in (1, 2) and says in out and len(out.strip().splitlines()) == 1, out


def test_compare_refuses_a_pool_with_no_images(reading_model, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out = run_cli("compare", str(tmp_path / "empty"), "--model", str(reading_model[1]), "--model", "base")
    assert code == 2 and "holds no images" in out, out


def test_labelled_images_rank_the_models_and_are_scored_as_eval_scores_them(reading_model, tmp_path):
    data, model = reading_model
    labels = tmp_path / "labels"
    labels.mkdir()
    for p in shard_images(data)[:12]:
        (labels / p.name).write_bytes(p.read_bytes())
    (labels / "nolabel.png").write_bytes(shard_images(data)[0].read_bytes())  # a name without a label: left out
    code, printed, err = run_cli_streams("compare", str(data), "--model", str(model), "--model", "base",
                                         "--reads", "0123456789", "--sample", "16", "--labels", str(labels),
                                         "--json")  # fmt: skip
    assert code == 0, printed + err
    numbers = json.loads(printed)
    assert numbers["labelled"] == 12
    reader = Reader(model)
    want = sum(r.text == codec.parse_name(Path(r.path).name).label
               for r in reader.read_paths([str(p) for p in sorted(labels.glob("*_*.png"))])) / 12  # fmt: skip
    assert numbers["models"][0]["labelled"] == pytest.approx(want, abs=1e-4)
    first, second = numbers["models"]
    assert numbers["best"] == (second if first["model"] in second["clearly_above"] else first)["model"]
    assert numbers["clearly_above_by"]  # what a labelled comparison ranks by: adapt reads it
    (tmp_path / "none").mkdir()
    code, out = run_cli("compare", str(data), "--model", str(model), "--model", "base", "--labels",
                        str(tmp_path / "none"))  # fmt: skip
    assert code == 2 and "holds no labelled images" in out, out


def _estimate(name: str, confidences: list[float], alike: list[bool]) -> PoolEstimate:
    n = len(confidences)
    return PoolEstimate(name, n, float(np.mean(confidences)), float(np.mean(alike)), None, None, ("",) * n,
                        confidences=tuple(confidences), alike=tuple(alike))  # fmt: skip


def test_only_an_estimate_clearly_above_the_sample_s_chance_takes_the_place_of_an_earlier_model():
    rng = np.random.default_rng(3)
    # A pool no model reads: estimates of 0.002 and 0.001, one image's luck apart.
    low_a = _estimate("a", list(rng.uniform(0, 0.004, 256)), [True] * 2 + [False] * 254)
    low_b = _estimate("b", list(rng.uniform(0, 0.004, 256)), [True] * 3 + [False] * 253)
    assert low_b.estimate > low_a.estimate
    assert not clearly_above(low_b, low_a) and best([low_a, low_b]) is low_a
    # A model that reads a fifth more images alike, as sure of them: clearly above, either way round in the list.
    sure = list(rng.uniform(0.5, 0.9, 256))
    weak = _estimate("weak", sure, [i % 2 == 0 for i in range(256)])
    strong = _estimate("strong", sure, [i % 10 < 7 for i in range(256)])
    assert clearly_above(strong, weak) and not clearly_above(weak, strong)
    assert best([weak, strong]) is strong and best([strong, weak]) is strong
    assert clearly_above(strong, weak) == clearly_above(strong, weak)  # seeded: the same answer every time
    # Without per-image figures (or on different images): the estimates alone.
    assert clearly_above(_estimate("c", [0.5], [True]), _estimate("d", [0.4, 0.4], [True, True]))


def test_labels_decide_where_they_tell_then_the_estimate_where_it_does_then_the_labels_count():
    rng = np.random.default_rng(5)
    sure = list(rng.uniform(0.5, 0.9, 256))
    weak = _estimate("weak", sure, [i % 2 == 0 for i in range(256)])
    strong = _estimate("strong", sure, [i % 10 < 7 for i in range(256)])
    assert clearly_above(strong, weak)
    # 1 of 20 right against 0 of 20: one image's luck; the estimate decides, either way round
    one = replace(weak, labelled=0.05, right=(True,) + (False,) * 19)
    none = replace(strong, labelled=0.0, right=(False,) * 20)
    assert reads_better(none, one) and not reads_better(one, none)
    assert best([one, none]) is none
    # 12 of 20 against 2 of 20 on the same images: the labels decide, against the estimate
    many = replace(weak, labelled=0.6, right=(True,) * 12 + (False,) * 8)
    few = replace(strong, labelled=0.1, right=(True,) * 2 + (False,) * 18)
    assert reads_better(many, few) and not reads_better(few, many)
    assert best([few, many]) is many and best([many, few]) is many
    # labels of different images (or none kept per image): the estimate
    assert reads_better(strong, replace(weak, labelled=0.9, right=(True,) * 5))
    # neither tells (17 of 20 against 15, on one estimate): the count; an exact tie keeps the earlier
    level = _estimate("level", sure, [i % 2 == 0 for i in range(256)])
    seventeen = replace(level, model="17", labelled=0.85, right=(True,) * 17 + (False,) * 3)
    fifteen = replace(level, model="15", labelled=0.75, right=(True,) * 15 + (False,) * 5)
    assert reads_better(seventeen, fifteen) and not reads_better(fifteen, seventeen)
    assert best([fifteen, seventeen]) is seventeen
    assert best([seventeen, replace(seventeen, model="again")]) is seventeen
    # and without labels, a doubt keeps the earlier
    assert not reads_better(_estimate("x", sure, [True] * 256), _estimate("y", sure, [True] * 256))
