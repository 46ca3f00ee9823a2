"""`captchagen make`: layout, manifest, reproducibility across workers, shard splits and resumption."""

from __future__ import annotations

import json
import os
import shutil

from PIL import Image

from captchagen import codec
from captchagen.alphabet import PRESETS
from captchagen.config import GenerationConfig
from captchagen.make import CHUNK, make_dataset
from captchagen.manifest import verify
from tests.helpers import TINY, run_cli, tree_digest


def test_layout_manifest_and_labels(make_tiny):
    out = make_tiny(n=40, shard_size=16)
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] and m["images"] == 40 and m["num_shards"] == 3
    assert [s["count"] for s in m["shards"]] == [16, 16, 8]
    assert m["settings"]["alphabet"] == PRESETS["upper"]
    assert m["settings"]["seed"] == 0 and m["settings"]["width"] == 80
    assert set(m["environment"]) >= {"captchagen", "captcha", "pillow"}
    assert m["codec"]["name"] == codec.NAME
    assert all(len(s["sha256"]) == 64 for s in m["shards"])
    indices = []
    for shard in m["shards"]:
        for p in sorted((out / shard["dir"]).glob("*.png")):
            parsed = codec.parse_name(p.name)
            assert 1 <= len(parsed.label) <= 4 and set(parsed.label) <= set(PRESETS["upper"])
            indices.append(int(parsed.stem))
            with Image.open(p) as im:
                assert im.size == (80, 32)
    assert indices == list(range(40))
    assert verify(out).ok
    assert (out / "preview.png").is_file()


def test_same_bytes_whatever_the_number_of_workers(make_tiny):
    one = make_tiny("one", n=3 * CHUNK, shard_size=100, workers=1)
    two = make_tiny("two", n=3 * CHUNK, shard_size=100, workers=2)
    assert tree_digest(one) == tree_digest(two)
    assert len(tree_digest(one)) == 3 * CHUNK
    m1, m2 = (json.loads((d / "manifest.json").read_text()) for d in (one, two))
    assert m1["shards"] == m2["shards"]


def test_a_custom_alphabet_with_unsafe_characters_round_trips_through_file_names(make_tiny):
    out = make_tiny("punct", "--alphabet", "AB/%:*", "--font", "fonts/DejaVuSans-Bold.ttf", n=30)
    labels = [codec.parse_name(p.name).label for p in out.glob("shard-*/*.png")]
    assert len(labels) == 30
    assert set("".join(labels)) == set("AB/%:*")
    assert verify(out).ok


def test_shards_made_on_several_machines_union_to_the_whole(make_tiny, tmp_path):
    whole = make_tiny("whole", n=50, shard_size=10)
    part_a = make_tiny("a", "--shards", ":2", n=50, shard_size=10)
    part_b = make_tiny("b", "--shards", "2:", n=50, shard_size=10)
    assert json.loads((part_a / "manifest.json").read_text())["complete"] is False
    union = {**tree_digest(part_a), **tree_digest(part_b)}
    assert union == tree_digest(whole)
    assert not set(tree_digest(part_a)) & set(tree_digest(part_b))

    # Copy the parts into one folder and run the same command there: nothing is rendered again.
    merged = tmp_path / "merged"
    shutil.copytree(part_a, merged)
    for shard in part_b.glob("shard-*"):
        shutil.copytree(shard, merged / shard.name)
    config = GenerationConfig(n=50, shard_size=10, width=80, height=32, max_len=4)
    result = make_dataset(config, merged, workers=1)
    assert result.images_rendered == 0 and result.complete
    assert (merged / "manifest.json").read_text() == (whole / "manifest.json").read_text()


def test_resume_keeps_complete_shards_and_finishes_a_partial_one(make_tiny):
    whole = make_tiny("whole", n=40, shard_size=16)
    out = make_tiny("cut", n=40, shard_size=16)
    # Put the folder back in the state an interruption in shard 1 leaves: the shard is still partial,
    # some images are missing, a temp file is half written, the manifest lists only shard 0.
    shard = out / "shard-00001"
    partial = out / "shard-00001.partial"
    (shard / "shard.json").unlink()
    os.rename(shard, partial)
    for p in sorted(partial.glob("*.png"))[5:]:
        p.unlink()
    (partial / ".000030_XYZ.png.123.tmp").write_bytes(b"\x89PNG half")
    shutil.rmtree(out / "shard-00002")
    config = GenerationConfig(n=40, shard_size=16, width=80, height=32, max_len=4)
    result = make_dataset(config, out, workers=1)
    assert result.images_rendered == 11 + 8  # the 11 missing images of shard 1 and all of shard 2
    assert result.shards_kept == 1 and result.shards_made == 2
    assert tree_digest(out) == tree_digest(whole)
    assert not list(out.glob("**/*.tmp")) and not list(out.glob("*.partial"))
    assert (out / "manifest.json").read_text() == (whole / "manifest.json").read_text()


def test_running_a_finished_dataset_again_renders_nothing(make_tiny):
    out = make_tiny(n=20, shard_size=10)
    code, output = run_cli(
        "make",
        "--n",
        "20",
        "--shard-size",
        "10",
        "--out",
        str(out),
        *TINY,
        "--workers",
        "1",
    )
    assert code == 0 and "0 images rendered" in output and "2 already complete" in output


def test_other_settings_against_an_existing_dataset_need_overwrite(make_tiny):
    out = make_tiny(n=20, shard_size=10)
    before = tree_digest(out)
    args = [
        "make",
        "--n",
        "20",
        "--shard-size",
        "10",
        "--out",
        str(out),
        *TINY,
        "--workers",
        "1",
        "--seed",
        "7",
    ]
    code, output = run_cli(*args)
    assert code == 2
    assert "other settings (settings.seed (0 there, 7 now))" in output and "--overwrite" in output
    assert tree_digest(out) == before
    code, output = run_cli(*args, "--overwrite")
    assert code == 0, output
    assert tree_digest(out) != before and len(tree_digest(out)) == 20
    assert json.loads((out / "manifest.json").read_text())["settings"]["seed"] == 7


def test_preview_command_draws_a_grid(make_tiny, tmp_path):
    out = make_tiny(n=12, shard_size=12)
    sheet = tmp_path / "sheet.png"
    code, output = run_cli("preview", str(out), "--out", str(sheet), "--count", "6", "--columns", "3")
    assert code == 0, output
    with Image.open(sheet) as im:
        # 3 columns of 80-pixel images and 2 rows of 32-pixel images with a label strip under each
        assert im.size[0] > 3 * 80 and 2 * 32 < im.size[1] < 3 * (32 + 40)


def test_verify_finds_a_changed_file(make_tiny):
    out = make_tiny(n=20, shard_size=10)
    code, output = run_cli("verify", str(out))
    assert code == 0 and "20 images in 2 shards" in output
    victim = sorted((out / "shard-00001").glob("*.png"))[3]
    victim.write_bytes(victim.read_bytes() + b"x")
    code, output = run_cli("verify", str(out))
    assert code == 1 and "shard-00001 content hash differs" in output


def test_a_manifest_of_another_format_version_is_refused(make_tiny):
    out = make_tiny(n=10, shard_size=10)
    m = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**m, "format_version": 2}))
    code, output = run_cli("verify", str(out))
    assert code == 1 and "captchagen dataset manifest format version 2; this captchagen reads version 1" in output
    code, output = run_cli(
        "make",
        "--n",
        "10",
        "--shard-size",
        "10",
        "--out",
        str(out),
        *TINY,
        "--workers",
        "1",
    )
    assert code == 2 and "format version 2" in output
