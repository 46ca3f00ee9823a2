"""A real `captchagen serve` process on a loopback port, and a small stdlib HTTP client for talking to it."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import uuid
from pathlib import Path

START_TIMEOUT_S = 60


class Server:
    """`captchagen serve --port 0 ...` in its own process; `url` is where it listens."""

    def __init__(self, model: Path, *args: str) -> None:
        command = [
            sys.executable,
            "-c",
            "from captchagen.cli import main; main()",
            "serve",
            "--model",
            str(model),
            "--port",
            "0",
            *args,
        ]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_S)
        line = self.process.stdout.readline() if ready else ""
        match = re.search(r"http://([\d.]+):(\d+)", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.process.stderr.read()}")
        self.url = match.group(0)
        self.host, self.port = match.group(1), int(match.group(2))

    def stop(self) -> tuple[int, str]:
        """Ctrl-C the server; (exit code, stderr)."""
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return self.process.returncode, err

    def request(
        self,
        method: str,
        path: str,
        body=None,
        headers: dict | None = None,  # bytes or chunks
        chunked: bool = False,
    ) -> tuple[int, dict | str]:
        """(status, JSON body or text) of one request on a fresh connection."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            response = conn.getresponse()
            data = response.read().decode()
            if response.getheader("content-type", "").startswith("application/json"):
                return response.status, json.loads(data)
            return response.status, data
        finally:
            conn.close()

    def predict(self, files: list[tuple[str, bytes]]) -> tuple[int, dict]:
        body, content_type = multipart(files)
        return self.request("POST", "/predict", body, {"Content-Type": content_type})

    def health(self) -> dict:
        status, body = self.request("GET", "/health")
        assert status == 200, body
        return body


def multipart(files: list[tuple[str, bytes]], field: str = "image") -> tuple[bytes, str]:
    """A multipart/form-data body with one file part per (file name, bytes), and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def form_field(name: str, value: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n--{boundary}--\r\n'
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


def expected_readings(checkpoint: Path, paths: list[Path]) -> list[tuple[str, float]]:
    """What the library itself reads in these images."""
    from trainer.inference.reader import Reader

    return [(p.text, p.confidence) for p in Reader(checkpoint).read_paths([str(p) for p in paths])]
