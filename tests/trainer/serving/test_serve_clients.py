"""`captchagen serve` against clients that misbehave: slow heads, slow bodies, hundreds of idle connections,
and uploads cut off halfway."""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import time

import pytest

from tests.helpers import Server, shard_images

HALF_HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"  # no blank line: never finished


def closed_by_server(conn: socket.socket, within: float) -> bool:
    """True if the server closes `conn` (recv sees EOF) within `within` seconds."""
    conn.settimeout(within)
    try:
        return conn.recv(65536) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module")
def strict(reading_model):
    """A server with short client deadlines."""
    srv = Server(reading_model[1], "--header-timeout", "1", "--body-timeout", "1")
    yield srv
    code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err


def test_a_connection_that_never_finishes_its_head_is_closed(strict):
    with socket.create_connection((strict.host, strict.port)) as conn:
        conn.sendall(HALF_HEAD)
        for _ in range(3):  # trickling bytes does not keep it open
            time.sleep(0.2)
            with contextlib.suppress(OSError):
                conn.sendall(b"X-Slow: 1\r\n")
        assert closed_by_server(conn, within=30)
    with socket.create_connection((strict.host, strict.port)) as idle:  # nothing sent at all
        assert closed_by_server(idle, within=30)


def test_a_body_that_arrives_too_slowly_gets_408(strict, reading_model):
    with socket.create_connection((strict.host, strict.port), timeout=30) as conn:
        conn.sendall(HALF_HEAD + b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
        response = http.client.HTTPResponse(conn)
        response.begin()
        status, answer = response.status, json.loads(response.read())
    assert status == 408 and "--body-timeout" in answer["error"]
    good = shard_images(reading_model[0])[0]
    assert strict.predict([(good.name, good.read_bytes())])[0] == 200


def test_a_thousand_idle_connections_do_not_lock_out_good_requests(reading_model):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1300:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    data, ckpt = reading_model
    srv = Server(ckpt)
    idle = []
    try:
        for _ in range(1100):
            conn = socket.create_connection((srv.host, srv.port), timeout=30)
            conn.sendall(HALF_HEAD)
            idle.append(conn)
        good = shard_images(data)[0]
        status, body = srv.predict([(good.name, good.read_bytes())])
        assert status == 200, body
        assert srv.health()["served"]["requests"] == 1
    finally:
        for conn in idle:
            conn.close()
        code, err = srv.stop()
    assert code == 0 and "Traceback" not in err, err
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_client_that_leaves_mid_upload_is_one_log_line(reading_model):
    data, ckpt = reading_model
    srv = Server(ckpt)
    try:
        with socket.create_connection((srv.host, srv.port), timeout=30) as conn:
            conn.sendall(HALF_HEAD + b"Content-Length: 100000\r\n\r\n" + b"x" * 1000)
            time.sleep(0.3)  # let the server start reading the body
        good = shard_images(data)[0]
        assert srv.predict([(good.name, good.read_bytes())])[0] == 200  # and it keeps serving
        for _ in range(100):  # the disconnect is counted once the app has answered it
            if srv.health()["served"]["rejected"] == 1:
                break
            time.sleep(0.05)
    finally:
        code, err = srv.stop()
    assert code == 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "closed the connection before sending all" in lines[0], err
