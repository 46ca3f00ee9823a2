"""`captchagen label`: a page to label a pool of captchas, least sure first (importing this imports no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from captchagen import atomic, codec
from captchagen.cli.common import LineProgress, library_errors, open_reader, reads_option, serve_local_page
from captchagen.errors import missing_extra
from captchagen.lock import FolderLock


@click.command()
@click.argument("pool", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder the labelled images go to, as <id>_<label>.<ext> (what `train` reads); an image labelled "
    "there already is not offered again.",
)
@click.option(
    "--model",
    "model_path",
    metavar="PATH",
    help="Read every image first with this model (a .pt, a run folder, .onnx, or a bundled model: `base`, "
    "`base-v2`, `base-v3`): the page offers the images it is least sure of first (active learning) with its "
    "reading filled in.  [default: no model; images by name, blank]",
)
@reads_option
@click.option("--alphabet", help="Refuse answers with characters outside this (a preset or the characters).")
@click.option("--move", is_flag=True, help="Move each labelled image out of POOL instead of copying it.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=5051, show_default=True, help="Port; 0 picks a free one."
)
@library_errors
def label(
    pool: Path,
    out: Path,
    model_path: str | None,
    reads: str | None,
    alphabet: str | None,
    move: bool,
    host: str,
    port: int,
) -> None:
    """Label the captchas in POOL on a local page, keyboard only, until Ctrl-C.

    Each image is shown with the model's reading filled in: Enter saves it (typing first corrects it), Esc
    skips, Ctrl+Z undoes the last. Every answer is written at once, atomically, so stopping loses nothing.
    Then train on the labels and learn from the rest of the pool:

    \b
      captchagen train OUT --init-from base-v2 --unlabeled POOL

    Example: captchagen label collected/ --out labelled/ --model base-v2 --reads upper-digits
    """
    try:
        import uvicorn  # noqa: F401 (the extra is there: _serve imports what it needs)

        import trainer.labeling.app  # noqa: F401 (fastapi and python-multipart)
    except ImportError as e:
        raise missing_extra("captchagen label", "serve", str(e.name)) from None

    if reads is not None and model_path is None:
        raise click.UsageError("--reads narrows what the --model reads; give --model too")
    from trainer.labeling.queue import check_folders

    check_folders(pool, out)  # before OUT is made and locked: a bad one leaves nothing behind
    # One labelling session per OUT: two would both accept an answer for the same image.
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out, "label")
        lock.acquire()
        # What a session killed mid-write left (kill -9): the lock says no other session is writing here.
        atomic.remove_temp_files(out, codec.IMAGE_SUFFIXES)  # label writes only images
    except OSError as e:
        raise click.ClickException(f"cannot write to --out {out}: {e.strerror or e}") from None
    try:
        queue = _serve(pool, out, model_path, reads, alphabet, move, host, port)
    finally:
        lock.release()
    done = queue.stats()
    click.echo(f"Stopped: {done['this_session']:,} labelled this session, {done['labelled']:,} in {out}.")


def _serve(
    pool: Path, out: Path, model_path: str | None, reads: str | None, alphabet: str | None, move: bool, host: str,
    port: int,
) -> Any:  # fmt: skip
    """Read the pool (with the model, if any), serve the page until Ctrl-C; the queue, for the summary."""
    from trainer.labeling.app import create_app
    from trainer.labeling.queue import LabelQueue

    reader = open_reader("runs", model_path, reads)[1] if model_path else None
    lines = LineProgress(lambda line: click.echo(line, err=True), "reading the pool")
    queue = LabelQueue(pool, out, reader=reader, alphabet=alphabet, move=move, progress=lines.update)
    stats = queue.stats()
    if queue.unreadable:
        click.echo(f"note: {queue.unreadable:,} images in {pool} cannot be read; they are not offered", err=True)
    serve_local_page(
        host,
        port,
        lambda loopback_port: create_app(queue, loopback_port=loopback_port),
        lambda url: (
            f"Labelling {stats['remaining']:,} images of {pool} ({stats['labelled']:,} done, "
            f"{stats['order']}) on {url}  (Ctrl-C stops)"
        ),
    )
    return queue
