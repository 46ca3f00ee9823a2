"""`captchagen label`: the queue (active-learning order, atomic labelled files, resuming, undo), the page's
HTTP rules (token, loopback Host, no paths from requests), and keyboard-only labelling in headless Chromium."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from captchagen import codec
from captchagen.errors import BadInput
from tests.helpers import Server, run_cli, shard_images
from trainer.data.sources import open_source
from trainer.inference.reader import Reader
from trainer.labeling.queue import LabelQueue, image_id, order


@pytest.fixture
def pool(reading_model, tmp_path) -> Path:
    """Twelve captchas under collected names (no labels in them), and a file that is not an image."""
    folder = tmp_path / "pool"
    folder.mkdir()
    for i, p in enumerate(shard_images(reading_model[0])[:12]):
        shutil.copy(p, folder / f"site_{i:03d}.png")
    (folder / "broken.png").write_text("not a picture")
    return folder


def test_with_a_model_the_least_sure_images_come_first_with_its_reading(reading_model, pool, tmp_path):
    reader = Reader(reading_model[1])
    queue = LabelQueue(pool, tmp_path / "out", reader=reader)
    readings = {p.path: (p.text, p.confidence) for p in reader.read_paths([str(p) for p in sorted(pool.iterdir())])}
    offered = []
    while (item := queue.next()) is not None:
        assert (item.reading, item.confidence) == readings[str(item.path)]
        offered.append(item.confidence)
        queue.answer(item.key, "7")
    assert offered == sorted(offered) and len(offered) == 12  # the broken file is not offered
    assert queue.unreadable == 1
    assert [p for p, _, _ in order(reader, [str(p) for p in pool.iterdir()])][:3] == [
        str(p) for p, _ in sorted(readings.items(), key=lambda kv: (kv[1][1] if kv[1][1] is not None else 2, kv[0]))
    ][:3]


def test_an_answer_is_a_copy_named_for_train_and_a_new_session_goes_on_where_it_stopped(pool, tmp_path):
    out = tmp_path / "out"
    queue = LabelQueue(pool, out)
    first = queue.next()
    # No model: by name, blank; broken.png (not an image) is never offered
    assert first.path.name == "site_000.png" and first.reading == "" and queue.unreadable == 1
    queue.skip(first.key)
    item = queue.next()
    written = queue.answer(item.key, " 42 ")
    assert written.name == "site-001_42.png" and written.read_bytes() == item.path.read_bytes()
    assert item.path.exists()  # copied, not moved
    assert codec.parse_name(written.name).label == "42" and image_id(item.path) == "site-001"
    again = LabelQueue(pool, out)
    assert again.stats()["labelled"] == 1 and again.stats()["remaining"] == 11
    assert all(i.path.name != "site_001.png" for i in again.items)
    (source,) = [open_source(out)]
    assert [g.labels for g in source.groups] == [("42",)]  # what `train` reads


def test_undo_takes_the_file_back_and_offers_the_image_again(pool, tmp_path):
    queue = LabelQueue(pool, tmp_path / "out", move=True)
    queue.skip(queue.next().key)  # site_000.png
    item = queue.next()
    written = queue.answer(item.key, "5")
    assert written.exists() and not item.path.exists()  # moved
    undone = queue.undo()
    assert undone.key == item.key and item.path.exists() and not written.exists()
    assert queue.next().key == item.key
    assert queue.undo() is None


def test_bad_answers_are_refused_and_nothing_is_written(pool, tmp_path):
    out = tmp_path / "out"
    queue = LabelQueue(pool, out, alphabet="digits")
    key = next(i.key for i in queue.items if i.id != "broken")
    for label, message in (("  ", "empty"), ("12a", "'a' is not in the alphabet"), ("9" * 65, "at most 64")):
        with pytest.raises(BadInput, match=message):
            queue.answer(key, label)
    assert not out.exists()
    queue.answer(key, "1")
    with pytest.raises(KeyError):
        queue.answer(key, "2")  # answered already


def test_odd_labels_names_and_files_are_refused_or_named_so_train_reads_them(pool, tmp_path):
    out = tmp_path / "out"
    queue = LabelQueue(pool, out)
    key = next(i.key for i in queue.items if i.id != "broken")
    for label, message in (("1 2", "spaces"), ("1\x002", "control"), ("ü" * 60, "over 255 bytes")):
        with pytest.raises(BadInput, match=message):
            queue.answer(key, label)
    assert queue.unreadable == 1 and "broken" not in {i.id for i in queue.items}  # never offered
    item = queue.next()
    item.path.write_text("overwritten since")  # no longer an image when answered: not copied into OUT
    with pytest.raises(BadInput, match="not an image"):
        queue.answer(item.key, "1")
    assert not out.exists() or not list(out.iterdir())
    only_suffix = pool / ".png"
    shutil.copy(pool / "site_005.png", only_suffix)
    queue = LabelQueue(pool, out)
    item = next(i for i in queue.items if i.path == only_suffix)
    assert queue.answer(item.key, "12").name == "unnamed_12.png"  # not `.png_12`, which train would not see
    with pytest.raises(BadInput, match="empty"):
        LabelQueue(pool, out, alphabet="")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput, match="is a file"):
        LabelQueue(pool, tmp_path / "file")


def test_links_out_of_the_pool_are_not_offered(pool, tmp_path):
    outside = tmp_path / "secret.png"
    shutil.copy(pool / "site_000.png", outside)
    (pool / "link.png").symlink_to(outside)
    (pool / "inside.png").symlink_to(pool / "site_001.png")
    offered = {i.path.name for i in LabelQueue(pool, tmp_path / "out").items}
    assert "link.png" not in offered and "inside.png" in offered and "site_000.png" in offered


def test_a_deleted_pool_image_or_labelled_file_is_a_one_line_refusal(pool, tmp_path):
    queue = LabelQueue(pool, tmp_path / "out", move=True)
    first = next(i for i in queue.items if i.id != "broken")
    first.path.unlink()
    with pytest.raises(BadInput, match="cannot write"):
        queue.answer(first.key, "1")
    second = next(i for i in queue.items if i.key != first.key and i.path.exists() and i.id != "broken")
    written = queue.answer(second.key, "2")
    written.unlink()  # deleted from OUT after a --move: nothing can go back
    with pytest.raises(BadInput, match="deleted meanwhile"):
        queue.undo()
    assert queue.undo() is None


def test_a_move_across_file_systems_copies_then_removes_and_undo_brings_it_back(pool, tmp_path, monkeypatch):
    queue = LabelQueue(pool, tmp_path / "out", move=True)
    item = next(i for i in queue.items if i.id != "broken")
    data = item.path.read_bytes()
    real = os.replace

    def replace(src, dst):  # a rename between the pool and OUT fails as it does across file systems
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    written = queue.answer(item.key, "7")
    assert written.read_bytes() == data and not item.path.exists()
    assert queue.undo() is item  # probe LB2: undo answered EXDEV
    assert item.path.read_bytes() == data and not written.exists()


def test_a_new_session_removes_only_its_own_temp_files(pool, tmp_path):
    """Probe LB1: every hidden *.tmp in OUT was taken for one of label's."""
    from captchagen import atomic, codec

    out = tmp_path / "out"
    out.mkdir()
    mine = [out / ".my-notes.tmp", out / ".notes.txt.123.tmp", out / ".draft.tmp"]
    for p in mine:
        p.write_text("mine")
    left = atomic.temp_path(out / "img001_7.png")
    left.write_bytes(b"half an image")
    assert atomic.remove_temp_files(out, codec.IMAGE_SUFFIXES) == 1
    assert not left.exists() and all(p.read_text() == "mine" for p in mine)


def test_the_pool_cannot_be_its_own_output_and_clashing_ids_are_named(pool, tmp_path):
    with pytest.raises(BadInput, match="is the pool itself"):
        LabelQueue(pool, pool)
    with pytest.raises(BadInput, match="inside the pool"):
        LabelQueue(pool, pool / "held-out", move=True)
    shutil.copy(pool / "site_001.png", pool / "site-001.png")
    with pytest.raises(BadInput, match="2 images in .* would be labelled as 'site-001'"):
        LabelQueue(pool, tmp_path / "out")


# ---- the server ----


@pytest.fixture
def server(reading_model, pool, tmp_path):
    srv = Server(reading_model[1], str(pool), "--out", str(tmp_path / "out"), verb="label")
    yield srv
    srv.stop()


def token_of(srv: Server) -> str:
    _, page = srv.request("GET", "/")
    return page.split('const TOKEN = "', 1)[1].split('"', 1)[0]


def post(srv: Server, path: str, body: dict, token: str | None, **headers: str):
    sent = {"Content-Type": "application/json", **headers}
    if token is not None:
        sent["X-Label-Token"] = token
    return srv.request("POST", path, json.dumps(body).encode(), sent)


def test_the_server_writes_answers_only_with_its_token_and_names_images_by_key(server, tmp_path):
    status, state = server.request("GET", "/api/next")
    assert status == 200 and state["stats"]["remaining"] == 12 and state["stats"]["order"] == "least sure first"
    key = state["item"]["key"]
    assert post(server, "/api/answer", {"key": key, "label": "3"}, None)[0] == 403
    assert post(server, "/api/answer", {"key": key, "label": "3"}, "wrong")[0] == 403
    assert not list((tmp_path / "out").glob("*.png"))  # the folder exists (locked by the page), with no answer
    status, image = server.request("GET", state["item"]["src"])
    assert status == 200 and image.startswith(b"\x89PNG")
    for path in ("/image/999", "/image/-1", "/image/..%2F..%2Fetc%2Fpasswd"):
        assert server.request("GET", path)[0] in (404, 422), path
    token = token_of(server)
    status, answered = post(server, "/api/answer", {"key": key, "label": "3"}, token)
    assert status == 200 and answered["stats"]["labelled"] == 1 and answered["item"]["key"] != key
    assert (tmp_path / "out" / answered["written"]).is_file()
    assert post(server, "/api/answer", {"key": key, "label": "3"}, token)[0] == 409
    assert post(server, "/api/answer", {"key": "../x", "label": "3"}, token)[0] == 400
    assert post(server, "/api/answer", {"key": answered["item"]["key"], "label": ""}, token)[0] == 422
    assert post(server, "/api/answer", {"key": 1, "label": "x" * 5000}, token)[0] == 413
    status, undone = post(server, "/api/undo", {}, token)
    assert status == 200 and undone["item"]["key"] == key and not list((tmp_path / "out").glob("*.png"))


def test_a_request_for_another_host_name_is_refused(server):
    status, body = server.request("GET", "/api/next", headers={"Host": "attacker.example:80"})
    assert status == 421 and "loopback" in body["error"]
    assert server.request("GET", "/api/next", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_a_second_session_on_the_same_out_is_refused_while_the_first_runs(server, pool, tmp_path):
    code, out = run_cli("label", str(pool), "--out", str(tmp_path / "out"), "--port", "0")
    assert code == 1 and "in use by another captchagen label" in out and len(out.strip().splitlines()) == 1


def test_a_temp_file_left_by_a_killed_session_is_cleaned_by_the_next(reading_model, pool, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    left = out / ".site-000_1.png.12345.tmp"
    left.write_bytes(b"half")
    srv = Server(None, str(pool), "--out", str(out), verb="label")
    try:
        assert srv.request("GET", "/api/next")[0] == 200 and not left.exists()
    finally:
        srv.stop()


def test_a_restart_after_move_counts_what_out_holds(pool, tmp_path):
    queue = LabelQueue(pool, tmp_path / "out", move=True)
    for _ in range(2):
        queue.answer(queue.next().key, "3")
    again = LabelQueue(pool, tmp_path / "out", move=True)
    assert again.stats()["labelled"] == 2 and again.stats()["remaining"] == 10


def test_an_answer_too_large_is_refused_without_naming_an_option_label_lacks(server):
    status, body = post(server, "/api/answer", {"key": 0, "label": "1" * 5000}, token_of(server))
    assert status == 413 and "limit" in body["error"] and "--" not in body["error"]


def test_ctrl_c_stops_the_page_and_says_what_was_labelled(reading_model, pool, tmp_path):
    srv = Server(None, str(pool), "--out", str(tmp_path / "out"), verb="label")
    key = srv.request("GET", "/api/next")[1]["item"]["key"]
    post(srv, "/api/answer", {"key": key, "label": "8"}, token_of(srv))
    code, err = srv.stop()
    assert code == 0 and "Traceback" not in err
    assert "1 labelled this session, 1 in" in srv.output


def test_bad_usage_is_a_one_line_error(pool, tmp_path):
    code, out = run_cli("label", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert code == 2 and "is not a folder of images to label" in out and "Traceback" not in out
    code, out = run_cli("label", str(pool), "--out", str(tmp_path / "o"), "--reads", "digits")
    assert code == 2 and "--model" in out
    code, out = run_cli("label", str(pool), "--out", str(pool / "held-out"), "--move")
    assert code == 2 and "inside the pool" in out and not (pool / "held-out").exists()


# ---- the page, in a real browser ----


@pytest.fixture
def page(open_page, server):
    return open_page(server.url + "/")


def test_keyboard_only_labelling_in_a_browser(page, server, tmp_path):
    out = tmp_path / "out"
    page.wait_for_function("document.getElementById('progress').textContent.includes('12 remaining')")
    first = server.request("GET", "/api/next")[1]["item"]
    assert first["reading"]  # the reading model reads something: the page fills it in, selected
    assert page.input_value("#label") == first["reading"]
    assert page.evaluate("document.activeElement.id") == "label"
    assert page.evaluate("document.getElementById('label').selectionEnd") == len(first["reading"])
    page.keyboard.press("Enter")  # accept the model's reading as it is
    page.wait_for_function("document.getElementById('progress').textContent.startsWith('1 labelled')")
    second = server.request("GET", "/api/next")[1]["item"]
    page.keyboard.type("123")  # typing replaces the selected reading
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('progress').textContent.startsWith('2 labelled')")
    names = {codec.parse_name(p.name) for p in codec.image_files(out)}
    assert {(n.label) for n in names} == {first["reading"], "123"}
    assert len(names) == 2
    page.keyboard.press("Escape")  # skip the third
    page.wait_for_function("document.getElementById('saved').textContent === 'skipped'")
    page.keyboard.press("Control+z")  # undo the second answer: its file goes, and it is offered again
    page.wait_for_function("document.getElementById('progress').textContent.startsWith('1 labelled')")
    assert [codec.parse_name(p.name).label for p in codec.image_files(out)] == [first["reading"]]
    assert page.get_attribute("#image", "src") == second["src"]
    assert page.input_value("#label") == second["reading"]


def test_an_image_answered_in_another_tab_moves_the_stale_tab_on(open_page, server, tmp_path):
    first, second = open_page(server.url + "/"), open_page(server.url + "/")
    for page in (first, second):
        page.wait_for_function("document.getElementById('progress').textContent.includes('12 remaining')")
    shown = second.get_attribute("#image", "src")
    first.keyboard.press("Enter")
    first.wait_for_function("document.getElementById('saved').textContent.startsWith('saved')")
    second.keyboard.press("Enter")  # the same image, answered already in the first tab
    second.wait_for_function("document.getElementById('error').textContent.includes('not waiting')")
    second.wait_for_function("document.getElementById('progress').textContent.startsWith('1 labelled')")
    assert second.get_attribute("#image", "src") != shown
    assert len(codec.image_files(tmp_path / "out")) == 1
