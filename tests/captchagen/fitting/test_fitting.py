"""Fitting a style to a pool: the image statistics, the style space, the search and the style file."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from captchagen import style
from captchagen.fitting import features, space
from captchagen.fitting.pool_fit import style_toml
from captchagen.fitting.search import Settings, fit, render
from captchagen.fonts import bundled_fonts

FONTS = [str(f) for f in bundled_fonts()]
SMALL = Settings(alphabet="ABCDEFGH123", min_len=4, max_len=4, width=100, height=40, rounds=3, population=6,
                 images=4, keep_fonts=2)  # fmt: skip
# A look far from the default: light text on a dark, fixed background, upright, no noise.
TARGET = replace(style.PRESETS["clean"], background=(20, 30, 90), text_color=(230, 230, 120), smooth=False)


def test_a_set_is_near_itself_and_far_from_another_look():
    pool = features.summarise(render(TARGET, FONTS, SMALL, seed=1, n=16))
    same_look = features.summarise(render(TARGET, FONTS, SMALL, seed=2, n=16))
    other_look = features.summarise(render(style.PRESETS["heavy"], FONTS, SMALL, seed=2, n=16))
    assert features.distance(pool, same_look) < 0.5 * features.distance(pool, other_look)
    gaps = features.group_distances(pool, other_look)
    assert set(gaps) == set(features.GROUPS) and gaps["palette"] > gaps["orientation"]


def test_every_group_has_one_length_whatever_the_image_size():
    small = features.image_features(Image.new("RGB", (60, 20), "white"))
    large = features.image_features(Image.new("RGB", (300, 90), "white"))
    assert {g: v.shape for g, v in small.items()} == {g: v.shape for g, v in large.items()}
    assert all(np.isfinite(v).all() for v in small.values())  # a blank image gives numbers, not NaN


def test_every_point_of_the_space_is_a_valid_style_and_its_file_reads_back(tmp_path):
    rng = random.Random(0)
    for i in range(200):
        knobs = tuple(rng.choice([0.0, 1.0, rng.random()]) for _ in space.KNOBS)
        choices = tuple(rng.randrange(len(options)) for options in space.CHOICES.values())
        fitted = space.to_style(space.Point(knobs, choices))
        path = tmp_path / f"s{i}.toml"
        path.write_text(style_toml(fitted))
        assert style.load(str(path))[1] == fitted  # checked by the style file's own rules, and exact


def test_the_search_moves_towards_the_pool_and_repeats_with_its_seed():
    pool = render(TARGET, FONTS, SMALL, seed=7, n=12)
    first = fit(pool, FONTS, SMALL, workers=1)
    again = fit(pool, FONTS, SMALL, workers=1)
    assert first == again  # the same pool and settings give the same style, fonts and figures
    start = features.distance(features.summarise(pool), features.summarise(render(style.DEFAULT, FONTS, SMALL, 3, 12)))
    assert first.distance < start  # nearer than the default look it would otherwise draw
    assert len(first.history) == SMALL.rounds and len(first.fonts) == SMALL.keep_fonts
    assert np.mean(first.style.background) < 128  # the pool's dark background, from its statistics


def test_another_search_is_asked_for_the_candidates_and_told_their_distances():
    """The hook experiments/fit_search.py compares an optimiser through: it proposes, the fit renders and
    scores, it learns; the style returned is its nearest candidate."""
    pool = render(TARGET, FONTS, SMALL, seed=7, n=12)
    told: list[tuple[list, list[float]]] = []

    class Fixed:  # proposes the cross-entropy start's mean, and one point everywhere off
        def __init__(self, start, s):
            self.near = space.Point(tuple(float(round(k, 4)) for k in start.mean), (0,) * len(space.CHOICES))
            self.far = replace(self.near, knobs=tuple(1.0 - k for k in self.near.knobs))
            self.n = s.population

        def propose(self, n, rng, best):
            assert n == self.n
            return [self.near] + [self.far] * (n - 1)

        def learn(self, points, scores):
            told.append((points, scores))

    result = fit(pool, FONTS, SMALL, workers=1, search=Fixed)
    assert len(told) == SMALL.rounds and all(len(scores) == SMALL.population for _, scores in told)
    near = told[-1][0][0]
    assert all(scores[0] < scores[1] for _, scores in told)  # the start's mean (the pool's colours) is nearer
    assert result.style == space.to_style(near)


def test_a_pool_of_too_few_images_is_refused():
    with pytest.raises(ValueError, match="at least 4"):
        fit(render(TARGET, FONTS, SMALL, seed=1, n=3), FONTS, SMALL)


def test_a_full_disk_in_fit_style_is_one_line(tmp_path, monkeypatch):
    import errno

    from captchagen import atomic
    from tests.helpers import REPO, run_cli

    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(4):
        Image.new("RGB", (80, 32), (30 * i, 90, 200)).save(pool / f"{i}.png")

    def full(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device", str(atomic.temp_path(path)))

    monkeypatch.setattr(atomic, "write_bytes", full)
    code, out = run_cli("fit-style", str(pool), "--out", str(tmp_path / "fit"), "--alphabet", "AB", "--rounds", "1",
                        "--workers", "1", "--font", str(REPO / "fonts" / "DejaVuSans-Bold.ttf"))  # fmt: skip
    assert code == 1 and "Error: the disk is full" in out and "Traceback" not in out, out


def test_a_fit_record_as_earlier_versions_wrote_it_reads_by_attribute_and_writes_back_the_same(tmp_path):
    """fit.json keeps its format: the dict the first fit-style wrote (here as it wrote it) is read into a
    FitRecord and written back unchanged; one of another version, or damaged, is no record."""
    from captchagen.fitting.pool_fit import RECORD, read_record

    saved = {
        "version": 1,
        "pool": {"folder": "pool", "images": 250, "sampled": 200, "digest": "ab" * 32, "unreadable": 1},
        "settings": {"alphabet": "ABC", "min_len": 4, "max_len": 4, "width": 160, "height": 60, "rounds": 24},
        "size": [160, 60],
        "fonts": [{"path": "/f/a.ttf", "sha256": "cd" * 32}],
        "distance": 0.42,
        "floor": 0.05,
        "groups": {"edges": 0.1, "palette": 0.32},
        "history": [0.9, 0.6, 0.42],
        "style": {"base": "default", "noise_dots": 12},
    }
    (tmp_path / RECORD).write_text(json.dumps(saved))
    record = read_record(tmp_path)
    assert record is not None and record.size == (160, 60) and record.fonts[0].path == "/f/a.ttf"
    assert record.pool.sampled == 200 and record.history[-1] == record.distance
    assert record.to_dict() == saved
    for damaged in (
        {**saved, "version": 2},
        {**saved, "size": [160]},
        {k: v for k, v in saved.items() if k != "fonts"},
    ):
        (tmp_path / RECORD).write_text(json.dumps(damaged))
        assert read_record(tmp_path) is None


def _ink_by_column(images):
    """A stand-in for a reader's view (trainer.inference.features.SeenBy): where each image's dark ink lies
    across its width, and how much of it."""
    rows = [np.asarray(im.convert("L"), dtype=np.float32) for im in images]
    return {"reader_ink": np.stack([np.concatenate([(r < 128).mean(axis=0)[::10], [(r < 128).mean()]]) for r in rows])}


def test_a_readers_groups_weigh_as_much_as_all_the_statistics():
    images = render(TARGET, FONTS, SMALL, seed=1, n=8)
    other = render(style.PRESETS["heavy"], FONTS, SMALL, seed=2, n=8)
    pool = features.summarise(images).extend(_ink_by_column(images))
    seen = features.summarise(other).extend(_ink_by_column(other))
    gaps = features.group_distances(pool, seen)
    stats = np.mean([gaps[g] for g in features.GROUPS])
    assert set(gaps) == {*features.GROUPS, "reader_ink"}
    assert features.distance(pool, seen) == pytest.approx(0.5 * stats + 0.5 * gaps["reader_ink"])
    assert features.distance(features.summarise(images), features.summarise(other)) == pytest.approx(stats)
    with pytest.raises(ValueError, match="rows"):  # a reader's rows must be the summary's images
        features.summarise(images).extend({"reader_ink": _ink_by_column(images[:3])["reader_ink"]})


def test_a_fit_with_a_reader_shows_it_every_render_and_measures_its_view():
    pool = render(TARGET, FONTS, SMALL, seed=7, n=12)
    shown: list[int] = []

    def reader(images):
        shown.append(len(images))
        return _ink_by_column(images)

    result = fit(pool, FONTS, SMALL, workers=1, reader=reader)
    assert "reader_ink" in result.groups
    # the pool once (its halves are cut from what it saw); a call per round and per font batch, each every
    # candidate's images at once; the final figure on fresh images
    candidates = SMALL.population * SMALL.images
    assert shown[0] == 12 and shown.count(candidates) == SMALL.rounds and shown[-1] == 12
    assert sum(shown) == 12 + SMALL.rounds * candidates + len(FONTS) * SMALL.images + 12
    assert fit(pool, FONTS, SMALL, workers=1, reader=reader) == result  # the same pool, reader and seed: the same fit
    without = fit(pool, FONTS, SMALL, workers=1)
    assert "reader_ink" not in without.groups and without.floor != result.floor


def test_a_pool_taller_than_the_drawing_height_is_fitted_at_its_shape_scaled_down(tmp_path):
    """kaptcha's 260x125 cost adapt's fits and makes 7 minutes where 200x75 took 4; a reader sees 32 rows."""
    from captchagen.fitting.pool_fit import DRAW_HEIGHT, drawn_size, open_pool, pool_images

    assert drawn_size((200, 75)) == (200, 75)  # at or under the height: as it is
    assert drawn_size((260, 125)) == (166, DRAW_HEIGHT)  # the shape kept, to a pixel
    assert drawn_size((100, 400)) == (20, DRAW_HEIGHT)
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(5):
        Image.new("RGB", (260, 125) if i else (130, 60), (i, i, i)).save(pool / f"{i}.png")
    opened = open_pool(pool, 200, 0)
    assert opened.commonest == (260, 125) and opened.size == (166, 80)
    assert {im.size for im in pool_images(opened)} == {(166, 80)}  # the odd one out too
