"""Helpers every test module may use: running the CLI in-process, tiny datasets and training configs, and a
real `captchagen serve` process with a small stdlib HTTP client."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from click.testing import CliRunner

from captchagen.cli import cli
from captchagen.config import GenerationConfig
from captchagen.make import make_dataset

REPO = Path(__file__).resolve().parents[1]  # the repository's root

# Small images keep rendering fast; the mechanics are the same at any size.
TINY = ["--width", "80", "--height", "32", "--max-len", "4"]


# rich draws its live views (the training table, progress bars) only on a terminal; these make it think
# the output is one, without colour codes or animation, so a test sees what a person at a terminal sees.
AS_IN_A_TERMINAL = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "0", "NO_COLOR": "1"}


def without_escapes(text: str) -> str:
    """`text` less the terminal's control sequences (bold, cursor) that a terminal-like console writes."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Invoke the CLI in-process; return (exit code, everything it printed)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.output


def run_cli_streams(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Invoke the CLI in-process; return (exit code, what it printed on stdout, what it printed on stderr)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.stdout, result.stderr


def site_pool(root: Path, *style: str, n: int = 12) -> Path:
    """root/pool: `n` captchas of 4 characters of ABCD1234 (made with `style`'s options) renamed as a site's
    unlabelled ones are, site-000.png...: what adapt and fit-style are pointed at."""
    code, out = run_cli("make", "--n", str(n), *style, *TINY, "--min-len", "4", "--alphabet", "ABCD1234", "--seed", "5",
                        "--out", str(root / "made"))  # fmt: skip
    assert code == 0, out
    folder = root / "pool"
    folder.mkdir()
    for i, p in enumerate(shard_images(root / "made")):
        shutil.copyfile(p, folder / f"site-{i:03d}.png")
    return folder


def shard_images(data: Path) -> list[Path]:
    """The images of a made dataset, sorted by path (shard, then index)."""
    return sorted(data.glob("shard-*/*.png"))


def tree_digest(folder: Path, pattern: str = "shard-*/*.png") -> dict[str, str]:
    """{relative path: sha256} of the images under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob(pattern)}


@contextlib.contextmanager
def sigint_as_in_a_terminal():
    """Start children with SIGINT at its default, as a terminal's foreground job has it.

    A child inherits an ignored SIGINT (SIG_IGN survives exec; a handler does not). pytest started as a
    background job of a non-interactive shell (`pytest &`, as CI runners may) has SIGINT ignored, and make
    then rightly ignores the Ctrl-C too: that, not a late signal, made this test fail now and then."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


# ---- tiny datasets and training configs: a few epochs take seconds ----

TINY_GEN = GenerationConfig(n=640, alphabet="0123456789", min_len=1, max_len=3, width=64, height=32, shard_size=320)


def tiny_dataset(folder: Path, **changes) -> Path:
    config = GenerationConfig(**{**TINY_GEN.__dict__, **changes})
    make_dataset(config, folder, workers=1, preview=False)
    return folder


def tiny_train_config(data: Path, tmp: Path, **changes):
    from trainer.training.request import TrainRequest

    base = dict(
        data=str(data),
        epochs=2,
        batch_size=32,
        lr=3e-3,
        height=16,
        width=48,
        conv=(8, 16, 16, 24),
        hidden=32,
        val_fraction=0.1,
        runs_dir=str(tmp / "runs"),
        cache_dir=str(tmp / "cache"),
        device="cpu",
        precision="fp32",
        threads=1,  # fixed, not chosen from the machine's load: runs compared bit for bit must match
    )
    base.update(changes)
    return TrainRequest(**base)


def schedule(**changes):
    """A plan's Schedule: SCRATCH's, with `changes`."""
    from trainer.training.plan import Schedule
    from trainer.training.request import SCRATCH, TrainRequest

    asked = TrainRequest()
    settled = {name: getattr(asked, name) for name in Schedule.__dataclass_fields__ if name not in SCRATCH}
    return Schedule(**{**settled, **SCRATCH, **changes})


def tiny_train_args(tmp: Path) -> list[str]:
    """`captchagen train` options for a tiny model on the CPU, writing under `tmp` (what tiny_train_config
    sets, as flags)."""
    return [
        "--height",
        "16",
        "--width",
        "48",
        "--batch-size",
        "32",
        "--runs-dir",
        str(tmp / "r"),
        "--cache-dir",
        str(tmp / "c"),
        "--device",
        "cpu",
    ]


# ---- torchrun: several CPU processes on gloo ----

TRAIN_IN_TORCHRUN = (
    "import sys\n"
    "from pathlib import Path\n"
    "from tests.helpers import tiny_train_config\n"
    "from trainer.training.loop import train\n"
    "import json\n"
    "changes = json.loads(sys.argv[3])\n"
    "changes.update({k: tuple(map(tuple, v)) for k, v in changes.items() if k == 'mix'})\n"
    "train(tiny_train_config(Path(sys.argv[1]), Path(sys.argv[2]), **changes))\n"
)


def torchrun_train(data: Path, tmp: Path, processes: int = 2, **changes) -> Path:
    """tiny_train_config(data, tmp, **changes) trained by torchrun in `processes` CPU processes; the run
    folder. `--standalone` rendezvouses on a port it picks itself, so parallel runs never share one."""
    script = tmp / "ddp.py"
    script.write_text(TRAIN_IN_TORCHRUN)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               str(script), str(data), str(tmp), json.dumps(changes)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = [p for p in (tmp / "runs").iterdir() if p.is_dir()]  # only rank 0 writes
    return run


# ---- a real server on a loopback port ----

START_TIMEOUT_S = 60


class Server:
    """`captchagen serve --port 0 ...` (or another serving command: `verb`) in its own process; `url` is
    where it listens."""

    def __init__(self, model: Path | None, *args: str, verb: str = "serve") -> None:
        command = [
            sys.executable,
            "-c",
            "from captchagen.cli import main; main()",
            verb,
            *(["--model", str(model)] if model is not None else []),
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

    def stop(self, again_after: float | None = None) -> tuple[int, str]:
        """Ctrl-C the server (and once more `again_after` seconds later, when given); (exit code, stderr).
        What it printed after its first line is left in `output`."""
        self.process.send_signal(signal.SIGINT)
        if again_after is not None:
            time.sleep(again_after)
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
        try:
            self.output, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, err = self.process.communicate()
        return self.process.returncode, err

    def request(
        self,
        method: str,
        path: str,
        body=None,
        headers: dict | None = None,  # bytes or chunks
        chunked: bool = False,
    ) -> tuple[int, dict | str | bytes]:
        """(status, JSON body, text, or an image's bytes) of one request on a fresh connection."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            response = conn.getresponse()
            raw = response.read()
            kind = response.getheader("content-type", "")
            if kind.startswith("application/json"):
                return response.status, json.loads(raw)
            return response.status, raw if kind.startswith("image/") else raw.decode()
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
