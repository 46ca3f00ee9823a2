"""Load on `captchagen serve` from a second process on loopback: requests/s, images/s and p50/p99 latency of
POST /predict, for single images and for batches, at several concurrencies.

Baselines from the same run: the same images read in-process with no HTTP (Reader.read_arrays after
decoding the PNG bytes), and the server with cross-request batching off (--max-batch 1).

    python bench/serve_load.py data/test-seed1 --seconds 10
    python bench/serve_load.py data/test-seed1 --model model.onnx
    python bench/serve_load.py data/test-seed1 --slow 1100 --only-slow   # good requests beside slow clients
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


# ---- the client: runs in its own process -------------------------------------------------------------------


def multipart(files: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{i}.png"\r\n\r\n'.encode()
            + data
            + b"\r\n"
            for i, data in enumerate(files)
        )
        + f"--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def worker(
    host: str, port: int, bodies: list[tuple[bytes, str]], stop_at: float, latencies: list, errors: list
) -> None:
    """One keep-alive connection sending requests back to back until stop_at (reconnecting if the server
    closes it, as it does after a 503)."""
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    while time.perf_counter() < stop_at:
        body, content_type = bodies[i % len(bodies)]
        i += 1
        head = (
            f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        start = time.perf_counter()
        try:
            writer.write(head + body)
            status_line = await reader.readline()
            length, close = 0, status_line == b""
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                close |= line.lower().startswith(b"connection: close")
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError) as e:
            status_line, close = f"connection error {type(e).__name__}".encode(), True
        latencies.append((time.perf_counter() - start, b" 200 " in status_line))
        if b" 200 " not in status_line:
            errors.append(status_line.decode().strip())
        if close:
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
    writer.close()


SLOW_HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"  # never finished


async def slow_client(host: str, port: int, stop_at: float, reopened: list) -> None:
    """A slowloris connection: half a request head, then a header line a second, reconnecting when closed."""
    while time.perf_counter() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(SLOW_HEAD)
            while time.perf_counter() < stop_at:
                try:
                    if await asyncio.wait_for(reader.read(1024), 1.0) == b"":
                        reopened.append(1)  # the server closed it
                        break
                except asyncio.TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")
            writer.close()
        except OSError:
            reopened.append(1)
            await asyncio.sleep(0.1)


def client(url: str, images: list[str], batch: int, concurrency: int, seconds: float, slow: int = 0) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, slow + 1024)), hard))
    host, port = re.match(r"http://([\d.]+):(\d+)", url).groups()
    data = [Path(p).read_bytes() for p in images]
    bodies = [multipart(data[i : i + batch]) for i in range(0, len(data) - batch + 1, batch)]

    async def run(duration: float, settle: float = 0.0) -> tuple[list, list, int]:
        latencies: list[float] = []
        errors: list[str] = []
        reopened: list[int] = []
        stop_at = time.perf_counter() + settle + duration
        slowloris = [asyncio.create_task(slow_client(host, int(port), stop_at, reopened)) for _ in range(slow)]
        await asyncio.sleep(settle)  # the slow connections are open before the measured requests start
        await asyncio.gather(
            *(
                worker(host, int(port), bodies[k::concurrency] or bodies, stop_at, latencies, errors)
                for k in range(concurrency)
            )
        )
        await asyncio.gather(*slowloris)
        return latencies, errors, len(reopened)

    asyncio.run(run(min(2.0, seconds / 4)))  # warm up
    start = time.perf_counter()
    latencies, errors, reopened = asyncio.run(run(seconds, settle=2.0 if slow else 0.0))
    elapsed = time.perf_counter() - start - (2.0 if slow else 0.0)
    ok = [t for t, good in latencies if good] or [float("nan")]
    p50, p99 = (float(np.percentile(ok, q)) for q in (50, 99))
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "elapsed": elapsed,
                "errors": len(errors),
                "p50": p50,
                "p99": p99,
                "slow_reconnects": reopened,
            }
        )
    )


# ---- the driver ----------------------------------------------------------------------------------------------


def start_server(model: str, *extra: str) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable,
        "-c",
        "from captchagen.cli import main; main()",
        "serve",
        "--model",
        model,
        "--port",
        "0",
        *extra,
    ]
    # stderr dropped: under the slow-client rows the old settings log a line per refused request
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ""
    match = re.search(r"http://[\d.]+:\d+", line)
    if not match:
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    return proc, match.group(0)


def load(url: str, images: list[str], batch: int, concurrency: int, seconds: float, slow: int = 0) -> dict:
    """The client in a second process; its JSON summary."""
    listing = Path(f"/tmp/captchagen-bench-images-{uuid.uuid4().hex}.txt")
    listing.write_text("\n".join(images))
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--client",
                url,
                "--images",
                str(listing),
                "--batch",
                str(batch),
                "--concurrency",
                str(concurrency),
                "--seconds",
                str(seconds),
                "--slow",
                str(slow),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        listing.unlink()
    return json.loads(out.stdout)


def in_process(model: str, images: list[str], batch: int, seconds: float) -> float:
    """Images/s reading the same PNG bytes in this process: decode, preprocess, model, CTC decode."""
    import torch

    from trainer.data.preprocess import open_image, to_array
    from trainer.device import Dist, set_threads
    from trainer.inference.reader import Reader

    set_threads(torch.device("cpu"), Dist())
    reader = Reader(model)
    data = [Path(p).read_bytes() for p in images]
    done, start, i = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        chunk = [data[(i + k) % len(data)] for k in range(batch)]
        reader.read_arrays(np.stack([to_array(open_image(io.BytesIO(b)), reader.pre) for b in chunk]))
        done += batch
        i += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="data/test-seed1")
    parser.add_argument("--model", help="checkpoint or .onnx  [default: best.pt of runs/LATEST]")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    parser.add_argument("--n", type=int, default=640, help="distinct images sent")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument(
        "--slow",
        type=int,
        default=0,
        help="also hold this many slowloris connections open "
        "(half a request head, a header line a second, reconnecting when closed)",
    )
    parser.add_argument("--only-slow", action="store_true", help="measure only the slow-client rows")
    args = parser.parse_args()
    if args.client:
        client(
            args.client,
            Path(args.images).read_text().splitlines(),
            args.batch,
            args.concurrency,
            args.seconds,
            args.slow,
        )
        return

    from trainer.runs import default_model

    model = str(default_model(REPO / "runs", args.model))
    images = [str(p) for p in sorted(Path(args.data).glob("shard-*/*.png"))[: args.n]]
    scenarios = [(1, 1), (1, 16), (1, 64), (16, 1), (16, 8), (64, 2)]  # (images per request, concurrency)
    servers = [((), "batched", scenarios), (("--max-batch", "1"), "--max-batch 1", [(1, 64)])]
    if args.slow:
        # Good requests while slow clients hold connections: with the header deadline (the default), and
        # with the settings before it (uvicorn's own: no head deadline, 503 beyond 1024 connections).
        slow_rows = [(1, 1), (1, 16)]
        servers = [] if args.only_slow else servers
        servers += [
            ((), "batched", [(b, c, 0) for b, c in slow_rows]),
            ((), f"slow {args.slow}", [(b, c, args.slow) for b, c in slow_rows]),
            (
                ("--header-timeout", "1e9", "--max-connections", "1024"),
                f"slow {args.slow}, old",
                [(b, c, args.slow) for b, c in slow_rows],
            ),
        ]
    base = {b: in_process(model, images, b, args.seconds) for _, _, rows_ in servers for b, *_ in rows_}
    rows = []
    for extra, label, server_rows in servers:
        proc, url = start_server(model, *extra)
        try:
            for batch, concurrency, *slow in server_rows:
                r = load(url, images, batch, concurrency, args.seconds, *slow)
                rows.append((label, batch, concurrency, r))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)

    print(
        f"model {model}; {len(images)} images from {args.data}; {args.seconds:g} s per row; client in a "
        "second process on loopback"
    )
    print("in-process baseline (no HTTP): " + ", ".join(f"batch {b}: {v:.0f} img/s" for b, v in base.items()))
    print("req/s, img/s and latencies count answered (200) requests only; errors counts the others")
    print(
        f"{'server':<20}{'img/req':>8}{'conc':>6}{'req/s':>9}{'img/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'vs in-proc':>12}{'errors':>8}{'slow reconnects':>17}"
    )
    for label, batch, concurrency, r in rows:
        rps = (r["requests"] - r["errors"]) / r["elapsed"]
        print(
            f"{label:<20}{batch:>8}{concurrency:>6}{rps:>9.1f}{rps * batch:>9.0f}{r['p50'] * 1000:>9.1f}"
            f"{r['p99'] * 1000:>9.1f}{rps * batch / base[batch]:>11.2f}x{r['errors']:>8}"
            f"{r['slow_reconnects']:>17}"
        )


if __name__ == "__main__":
    main()
