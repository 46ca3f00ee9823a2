"""The pool rule (captchagen.unlabeled): what fit-style, adapt, label and `train --unlabeled` take as a pool's
captchas, and images that cannot be read."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from captchagen.unlabeled import UnreadableImage, check_apart, list_images, open_image
from tests.helpers import REPO, TINY, run_cli


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels and holds none (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def captcha(path: Path, shade: int = 40) -> Path:
    Image.new("RGB", (80, 32), (shade, 200, 255 - shade)).save(path)
    return path


def test_a_made_datasets_preview_hidden_folders_and_links_out_are_left_out(tmp_path):
    code, out = run_cli("make", "--n", "6", *TINY, "--out", str(tmp_path / "made"))
    assert code == 0, out
    listed = list_images(tmp_path / "made")
    assert len(listed.paths) == 6 and all(p.parent.name.startswith("shard-") for p in listed.paths)

    pool = tmp_path / "pool"
    (pool / "sub").mkdir(parents=True)
    inside = captcha(pool / "sub" / "a.png")
    (pool / ".thumbnails").mkdir()
    captcha(pool / ".thumbnails" / "a.png")
    (pool / ".x.png.123.tmp").write_bytes(b"")
    (pool / "notes.txt").write_text("not an image")
    outside = captcha(tmp_path / "outside.png")
    (pool / "link-out.png").symlink_to(outside)
    (pool / "link-in.png").symlink_to(inside)
    (pool / "folder-link").symlink_to(tmp_path / "made", target_is_directory=True)
    listed = list_images(pool)
    assert [p.name for p in listed.paths] == ["link-in.png", "a.png"]
    assert {p.name for p, _ in listed.left_out} == {"link-out.png", "folder-link"}


def test_the_digest_follows_every_file_and_not_where_the_pool_is_named(tmp_path, monkeypatch):
    pool = tmp_path / "pool"
    pool.mkdir()
    images = [captcha(pool / f"{i}.png", shade=i) for i in range(300)]
    digest = list_images(pool).digest()
    monkeypatch.chdir(tmp_path)
    assert list_images(Path("pool")).digest() == digest == list_images(pool.resolve()).digest()
    captcha(images[250], shade=99)  # far outside any 200-image sample
    assert list_images(pool).digest() != digest


def test_truncated_files_and_decompression_bombs_are_unreadable_not_tracebacks(tmp_path):
    whole = captcha(tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[:60])
    (tmp_path / "bomb.png").write_bytes(png_header_only(20000, 20000))
    (tmp_path / "big.png").write_bytes(png_header_only(8000, 8000))
    assert open_image(tmp_path / "whole.png").size == (80, 32)
    for name, why in [("cut.png", "not a readable image"), ("bomb.png", "pixels"), ("big.png", "more than")]:
        with pytest.raises(UnreadableImage, match=why):
            open_image(tmp_path / name)


def test_fit_style_leaves_unreadable_pool_files_out_and_refuses_a_pool_of_them(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(6):
        captcha(pool / f"ok{i}.png", shade=20 * i)
    (pool / "cut.png").write_bytes((pool / "ok0.png").read_bytes()[:60])
    (pool / "bomb.png").write_bytes(png_header_only(20000, 20000))
    (pool / "empty.png").write_bytes(b"")
    fit = ["--alphabet", "AB", "--length", "2", "--rounds", "1", "--workers", "1", "--font",
           str(REPO / "fonts" / "DejaVuSans-Bold.ttf")]  # fmt: skip
    code, out = run_cli("fit-style", str(pool), "--out", str(tmp_path / "fit"), *fit)
    assert code == 0 and "3 sampled pool files could not be read" in out and "Traceback" not in out, out
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(5):
        (bad / f"cut{i}.png").write_bytes((pool / "ok0.png").read_bytes()[:60])
    code, out = run_cli("fit-style", str(bad), "--out", str(tmp_path / "fit2"), *fit)
    assert code == 2 and "fewer than 4 of its files are readable images" in out and "Traceback" not in out


def test_fit_style_refuses_an_out_it_cannot_write_before_the_search(tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(4):
        captcha(pool / f"{i}.png", shade=30 * i)
    (tmp_path / "afile").write_text("")
    for out, message in [(tmp_path / "afile", "is a file"), (tmp_path / "afile" / "sub", "cannot write to --out")]:
        code, text = run_cli("fit-style", str(pool), "--out", str(out), "--alphabet", "AB", "--rounds", "1")
        assert code == 2 and message in text and "Traceback" not in text and "searching" not in text, text


def test_an_output_folder_is_never_the_pool_or_inside_it(tmp_path):
    with pytest.raises(ValueError, match="the pool itself"):
        check_apart(tmp_path, tmp_path / ".")
    with pytest.raises(ValueError, match="inside the pool"):
        check_apart(tmp_path, tmp_path / "a" / "b")
    check_apart(tmp_path / "pool", tmp_path / "out")


def test_fit_style_label_and_train_count_a_made_datasets_images_alike(tmp_path):
    """A made dataset is the obvious pool to try adapt on: its preview.png was a 'captcha' to some of them."""
    from captchagen.fitting.pool_fit import open_pool
    from trainer.data.sources import open_unlabeled
    from trainer.labeling.queue import LabelQueue

    code, out = run_cli("make", "--n", "7", *TINY, "--out", str(tmp_path / "made"))
    assert code == 0 and (tmp_path / "made" / "preview.png").exists(), out
    assert open_pool(tmp_path / "made", 200, 0).total == 7
    assert open_unlabeled(tmp_path / "made").size == 7
    assert len(LabelQueue(tmp_path / "made", tmp_path / "out").items) == 7
