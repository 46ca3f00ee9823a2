"""`captchagen serve`: a real server process on a loopback port, talked to over HTTP."""

from __future__ import annotations

import http.client
import io
import json
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from tests.helpers import Server, expected_readings, form_field, run_cli, shard_images

MAX_BODY = 256 * 1024  # --max-body-mb 0.25
MAX_IMAGES = 8
MAX_PIXELS = 1_000_000


@pytest.fixture(scope="module")
def server(reading_model):
    _, ckpt = reading_model
    srv = Server(ckpt, "--max-body-mb", "0.25", "--max-images", str(MAX_IMAGES), "--max-pixels", str(MAX_PIXELS))
    yield srv
    code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err


def check(predictions: list[dict], expected: list[tuple[str, float]]) -> None:
    assert [p["text"] for p in predictions] == [t for t, _ in expected]
    assert [p["confidence"] for p in predictions] == pytest.approx([c for _, c in expected], rel=1e-4, abs=1e-6)


def test_health_describes_the_model(server, reading_model):
    health = server.health()
    assert health["status"] == "ok" and health["format"] == "checkpoint"
    assert health["model"] == f"{reading_model[1].parent.name}/best.pt"
    assert health["lengths"] == [1, 3] and health["case"] == "sensitive"  # the training labels' lengths
    assert health["answer"] is False
    assert health["alphabet"] == health["reads"] == "0123456789" and health["input"] == {
        "height": 16,
        "width": 48,
        "channels": 1,
    }
    assert health["limits"] == {
        "max_body_bytes": MAX_BODY,
        "max_pixels": MAX_PIXELS,
        "max_images": MAX_IMAGES,
        "body_timeout": 30.0,
    }


def test_a_good_image_as_upload_or_raw_body(server, reading_model):
    data, ckpt = reading_model
    path = shard_images(data)[0]
    expected = expected_readings(ckpt, [path])
    status, body = server.predict([(path.name, path.read_bytes())])
    assert status == 200 and body["model"] == f"{ckpt.parent.name}/best.pt"
    assert body["predictions"][0]["name"] == path.name
    assert "answer" not in body["predictions"][0]  # only with --answer
    check(body["predictions"], expected)
    status, body = server.request("POST", "/predict", path.read_bytes(), {"Content-Type": "image/png"})
    assert status == 200
    check(body["predictions"], expected)


def test_several_images_in_one_request_are_read_as_one_batch_in_order(server, reading_model):
    data, ckpt = reading_model
    paths = shard_images(data)[1:6]
    before = server.health()["served"]
    status, body = server.predict([(p.name, p.read_bytes()) for p in paths])
    after = server.health()["served"]
    assert status == 200 and [p["name"] for p in body["predictions"]] == [p.name for p in paths]
    check(body["predictions"], expected_readings(ckpt, paths))
    assert after["batches"] - before["batches"] == 1 and after["images"] - before["images"] == 5


def test_a_request_larger_than_max_batch_is_read_in_batches_of_max_batch(reading_model):
    data, ckpt = reading_model
    paths = shard_images(data)[:5]
    srv = Server(ckpt, "--max-batch", "2")
    try:
        status, body = srv.predict([(p.name, p.read_bytes()) for p in paths])
        served = srv.health()["served"]
        assert status == 200 and [p["name"] for p in body["predictions"]] == [p.name for p in paths]
        check(body["predictions"], expected_readings(ckpt, paths))
        assert served["batches"] == 3 and served["images"] == 5  # 2 + 2 + 1, in order
    finally:
        srv.stop()


@pytest.mark.parametrize("verb", ["serve", "label"])
@pytest.mark.parametrize("gap", [0.0, 0.05, 0.3])
def test_a_second_ctrl_c_still_ends_in_stopped_and_exit_0(reading_model, tmp_path, verb, gap):
    """uvicorn raised each captured signal again after its shutdown, into asyncio's handler: two Ctrl-C gave
    a traceback (CancelledError, KeyboardInterrupt) or death by the signal."""
    data, ckpt = reading_model
    args = () if verb == "serve" else (str(data / "shard-00000"), "--out", str(tmp_path / "out"))
    srv = Server(ckpt, *args, verb=verb)
    assert srv.request("GET", "/" if verb == "label" else "/health")[0] == 200
    code, err = srv.stop(again_after=gap)
    assert code == 0 and "Traceback" not in err and "Error" not in err, err
    assert "Stopped" in srv.output


def test_64_concurrent_requests_each_get_their_own_answer(server, reading_model):
    data, ckpt = reading_model
    paths = shard_images(data)[:64]
    expected = expected_readings(ckpt, paths)
    assert len(set(expected)) > 32  # distinct answers, so a mix-up between requests would show
    start = threading.Barrier(len(paths))

    def send(path):
        start.wait()  # all 64 connect and send at once
        return server.predict([(path.name, path.read_bytes())])

    before = server.health()["served"]
    with ThreadPoolExecutor(len(paths)) as pool:
        answers = list(pool.map(send, paths))
    after = server.health()["served"]
    assert [status for status, _ in answers] == [200] * len(paths)
    check([body["predictions"][0] for _, body in answers], expected)
    assert after["images"] - before["images"] == 64
    assert after["batches"] - before["batches"] < 64  # requests in flight together were read together


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def bad_requests(data):
    good = shard_images(data)[0].read_bytes()
    bomb = png_bytes(Image.new("1", (2000, 1000)))  # 2 M pixels in a few hundred bytes
    assert len(bomb) < 10_000
    return {
        "not an image": (415, "not an image", [("notes.txt", b"hello, not a picture")]),
        "truncated png": (422, "unreadable image", [("cut.png", good[:300])]),
        "too many pixels": (413, "pixels is more than the 1,000,000 allowed (--max-pixels)", [("bomb.png", bomb)]),
        # Over twice Pillow's own limit, which Pillow refuses while opening, before our check.
        "decompression bomb": (
            413,
            "196,000,000 pixels is more than the 1,000,000 allowed (--max-pixels)",
            [("huge.png", png_bytes(Image.new("1", (14_000, 14_000))))],
        ),
        "too many images": (413, f"more than {MAX_IMAGES} images", [("a.png", good)] * (MAX_IMAGES + 1)),
        "far too many images": (413, f"more than {MAX_IMAGES} images", [("a.png", b"x")] * (5 * MAX_IMAGES)),
        "body too large": (413, "over the 262,144-byte limit", [("big.png", good + b"\0" * MAX_BODY)]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not an image",
        "truncated png",
        "too many pixels",
        "decompression bomb",
        "too many images",
        "far too many images",
        "body too large",
    ],
)
def test_bad_uploads_get_a_4xx_json_error_and_the_server_keeps_serving(server, reading_model, case):
    data, _ = reading_model
    status, message, files = bad_requests(data)[case]
    got, body = server.predict(files)
    assert got == status and message in body["error"] and body["status"] == status
    good = shard_images(data)[0]
    assert server.predict([(good.name, good.read_bytes())])[0] == 200


def test_bad_requests_of_other_shapes(server, reading_model):
    data, _ = reading_model
    chunks = (b"\0" * 65536 for _ in range(8))  # 512 KiB with no Content-Length
    status, body = server.request("POST", "/predict", chunks, {"Content-Type": "image/png"}, chunked=True)
    assert status == 413 and "byte limit" in body["error"]
    assert server.request("POST", "/predict", b"")[0] == 400
    broken = {"Content-Type": "multipart/form-data; boundary=xyz"}
    assert server.request("POST", "/predict", b"garbage", broken) == (
        400,
        {"error": "Invalid multipart data.", "status": 400},
    )
    assert server.request("POST", "/predict", b"1", {"Content-Length": "zebra"})[0] == 400
    assert server.request("GET", "/predict") == (405, {"error": "Method Not Allowed", "status": 405})
    assert server.request("GET", "/etc/passwd")[0] == 404
    good = shard_images(data)[0]
    assert server.predict([(good.name, good.read_bytes())])[0] == 200


def test_a_client_that_asks_before_sending_a_huge_body_is_refused_without_sending_it(server):
    with socket.create_connection((server.host, server.port), timeout=30) as conn:
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n"
        )
        response = http.client.HTTPResponse(conn)  # no body was sent: the answer must come anyway
        response.begin()
        status, answer = response.status, json.loads(response.read())
    assert status == 413 and "byte limit" in answer["error"]


def test_a_path_in_the_request_is_never_opened(server, reading_model):
    data, _ = reading_model
    real = str(shard_images(data)[0].resolve())  # a file the server could read, were it to read paths
    for method, path, body, headers in [
        ("POST", f"/predict?path={real}", b"", {}),
        ("POST", f"/predict?image={real}&file={real}", b"", {}),
        ("POST", "/predict", *form_field("path", real)),
        ("POST", "/predict", real.encode(), {"Content-Type": "text/plain"}),
        ("POST", "/predict", f'{{"path": "{real}"}}'.encode(), {"Content-Type": "application/json"}),
    ]:
        headers = headers if isinstance(headers, dict) else {"Content-Type": headers}
        status, answer = server.request(method, path, body, headers)
        assert status in (400, 415) and "predictions" not in answer, (path, answer)


def test_an_exported_model_serves_the_same_answers(reading_model, exported_model):
    data, ckpt = reading_model
    paths = shard_images(data)[:4]
    srv = Server(exported_model)
    try:
        assert srv.health()["format"] == "onnx"
        status, body = srv.predict([(p.name, p.read_bytes()) for p in paths])
    finally:
        code, err = srv.stop()
    assert status == 200 and body["model"] == f"{ckpt.parent.name}/best.pt"
    check(body["predictions"], expected_readings(ckpt, paths))
    assert code == 0 and "Traceback" not in err


def test_serve_startup_errors_are_one_line(reading_model, tmp_path, monkeypatch):
    _, ckpt = reading_model
    code, output = run_cli("serve", "--model", str(tmp_path / "missing.pt"))
    assert code == 1 and "does not exist" in output and len(output.strip().splitlines()) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output = run_cli("serve", "--model", str(ckpt), "--port", str(port))
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in output
    code, output = run_cli("serve", "--model", str(ckpt), "--host", "no such host.invalid")
    assert code == 2 and "--host" in output and "Traceback" not in output
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    code, output = run_cli("serve", "--model", str(ckpt))
    assert code == 1 and "needs the serve extra" in output and ".[serve]" in output


def test_serve_reads_under_the_length_it_is_given(reading_model):
    data, ckpt = reading_model
    paths = shard_images(data)[:8]
    srv = Server(ckpt, "--length", "2")
    try:
        assert srv.health()["lengths"] == [2, 2]
        status, body = srv.predict([(p.name, p.read_bytes()) for p in paths])
    finally:
        code, err = srv.stop()
    assert status == 200 and code == 0, (body, err)
    from trainer.inference.reader import Reader

    reader = Reader(ckpt)
    reader.read_lengths((2, 2))
    check(body["predictions"], [(p.text, p.confidence) for p in reader.read_paths(list(map(str, paths)))])
    assert all(len(p["text"]) == 2 for p in body["predictions"])


def test_serve_answer_adds_the_answer_of_each_reading(reading_model):
    from captchagen.arithmetic import answer

    data, ckpt = reading_model
    paths = shard_images(data)[:6]
    srv = Server(ckpt, "--answer")
    try:
        health = srv.health()
        status, body = srv.predict([(p.name, p.read_bytes()) for p in paths])
    finally:
        code, err = srv.stop()
    assert status == 200 and code == 0 and health["answer"] is True, (body, err)
    check(body["predictions"], expected_readings(ckpt, paths))  # the readings themselves are unchanged
    assert all(p["answer"] == answer(p["text"]) for p in body["predictions"])
