"""`captchagen serve`: a model behind HTTP (importing this imports neither torch nor the web stack)."""

from __future__ import annotations

import contextlib

import click

from captchagen.cli.common import (
    beam_option,
    library_errors,
    listen,
    model_options,
    open_reader,
    reads_option,
    run_until_stopped,
)
from captchagen.cli.options import answer_option, case_option, positive_float, read_length_option
from captchagen.errors import missing_extra
from trainer.inference.lengths import LengthChoice


def open_files_for(connections: int, spare: int = 64) -> int:
    """Raise this process's open-file limit (up to its hard limit) to hold `connections` sockets and `spare`
    other files; return how many connections fit."""
    try:
        import resource
    except ImportError:  # Windows
        return connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + spare
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return connections if soft == resource.RLIM_INFINITY else max(1, min(connections, soft - spare))


@click.command()
@model_options("to serve")
@reads_option
@read_length_option
@case_option
@answer_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 makes it reachable from other machines.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5050,
    show_default=True,
    help="Port to listen on; 0 picks a free one (printed at start).",
)
@click.option(
    "--max-body-mb", type=positive_float(), default=8.0, show_default=True, help="Largest request body, in MiB."
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=4_000_000,
    show_default=True,
    help="Largest image (width x height) accepted, checked before decoding it.",
)
@click.option(
    "--max-images", type=click.IntRange(min=1), default=64, show_default=True, help="Most images in one request."
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Most images the model reads at once, across concurrent requests.",
)
@beam_option
@click.option(
    "--header-timeout",
    type=positive_float(),
    default=10.0,
    show_default=True,
    help="Seconds a connection may take to send a request's headers (from opening, or from its last "
    "answer) before it is closed; also the idle keep-alive time.",
)
@click.option(
    "--body-timeout",
    type=positive_float(),
    default=30.0,
    show_default=True,
    help="Seconds a request's body may take to arrive before it is answered 408.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Open connections beyond which new requests are answered 503.",
)
@click.option("--access-log", is_flag=True, help="Log every request.")
@library_errors
def serve(
    model_path: str | None,
    runs_dir: str,
    reads: str | None,
    length: LengthChoice,
    case: str,
    answer: bool,
    host: str,
    port: int,
    max_body_mb: float,
    max_pixels: int,
    max_images: int,
    max_batch: int,
    beam: int,
    header_timeout: float,
    body_timeout: float,
    max_connections: int,
    access_log: bool,
) -> None:
    """Serve a model over HTTP until Ctrl-C.

    \b
    POST /predict   images as multipart file fields, or one image as the raw body; all images of a
                    request are read as one batch. Answers {"model", "predictions": [{"name", "text",
                    "confidence"}]} ("answer" too, with --answer); a bad request gets a 4xx
                    {"error", "status"}.
    GET  /health    the model, its alphabet and input size, the limits, and counts served.
    GET  /          a page to upload or draw a captcha and see what the model reads.

    Nothing in a request is ever opened as a path. Needs the serve extra (pip install -e '.[serve]').

    Example: captchagen serve --model runs/LATEST-RUN/best.pt --port 5050
    """
    try:
        import uvicorn

        from trainer.serving.app import Limits, create_app
        from trainer.serving.protocol import with_header_deadline
    except ImportError as e:
        raise missing_extra("captchagen serve", "serve", str(e.name)) from None

    _, reader = open_reader(runs_dir, model_path, reads, length, case)
    limits = Limits(
        max_body_bytes=int(max_body_mb * 2**20), max_pixels=max_pixels, max_images=max_images, body_timeout=body_timeout
    )
    connections = open_files_for(max_connections)
    app = create_app(reader, limits, max_batch=max_batch, beam=beam, answer=answer)
    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"Serving {reader.name} ({reader.kind}) on http://{shown}:{bound_port}  (Ctrl-C stops)", color=False)
    if connections < max_connections:
        click.echo(f"note: at most {connections} connections (the open-file limit, ulimit -n, allows no more)")
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        # a float is what uvicorn's asyncio timers take; its annotation says int
        timeout_keep_alive=header_timeout,  # type: ignore[arg-type]
        http=with_header_deadline(header_timeout),
        limit_concurrency=connections,
        server_header=False,
    )
    run_until_stopped(config, sock)  # Ctrl-C or SIGTERM: the normal way a server stops, so it exits 0
    click.echo("Stopped.")
