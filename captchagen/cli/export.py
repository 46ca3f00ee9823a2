"""`captchagen export`: a checkpoint to a portable ONNX file (importing this imports no torch)."""

from __future__ import annotations

from pathlib import Path

import click

from captchagen.cli.common import chosen_model, expand_inputs, library_errors, model_options
from captchagen.cli.options import UsageFailure, positive_float, read_length_option
from trainer.inference.lengths import LengthChoice


@click.command()
@model_options("to export", onnx=False)
@click.option(
    "--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True, help="Model file format."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write it.  [default: the checkpoint's path with .onnx]",
)
@click.option(
    "--check",
    "check",
    multiple=True,
    metavar="IMAGES",
    help="Images (files, folders or globs) for the parity check.  [default: 64 captchas rendered with "
    "the model's alphabet]",
)
@click.option(
    "--atol",
    type=positive_float(),
    default=1e-3,
    show_default=True,
    help="Largest difference in any logit allowed between the export and the checkpoint.",
)
@click.option(
    "--name", help="Model name stored in the file and reported by serve.  [default: RUN/FILE of the checkpoint]"
)
@read_length_option
@click.option("--overwrite", is_flag=True, help="Replace an existing file at --out.")
@library_errors
def export(
    model_path: str | None,
    runs_dir: str,
    fmt: str,
    out: Path | None,
    check: tuple[str, ...],
    atol: float,
    name: str | None,
    length: LengthChoice,
    overwrite: bool,
) -> None:
    """Export a checkpoint for other runtimes, then check the export against it.

    The ONNX file takes uint8 images [batch, height, width] (grayscale on white, resized, autocontrasted) with
    any batch size and returns logits [batch, time, classes]; its metadata holds the alphabet, the
    preprocessing, the model name and the label lengths it reads under (--length; test, eval and serve read
    under them by default, as they do the checkpoint's). Before the file is put in place, the export and the
    checkpoint read the same images: every string must agree and every logit lie within --atol, or nothing is
    written and the exit code is 1. `captchagen test`, `eval` and `serve` read the .onnx file like a checkpoint
    (needs the onnx extra).

    Example: captchagen export --out model.onnx
    """
    from captchagen.errors import EXTRA_MODULES, require_modules
    from trainer.bundled import beside

    require_modules("captchagen export", "onnx", EXTRA_MODULES["onnx"])  # before torch is imported
    path = chosen_model(runs_dir, model_path)
    out = out or beside(path, path.with_suffix(".onnx").name)
    if out.suffix.lower() != ".onnx":
        raise UsageFailure(f"--out must end in .onnx (that is how test, eval and serve know the format): {out}")
    if out.resolve() == path.resolve():
        raise UsageFailure(f"--out {out} is the checkpoint itself")
    if out.exists() and not overwrite:
        raise UsageFailure(f"{out} already exists; add --overwrite to replace it")
    if not out.parent.is_dir():
        raise UsageFailure(f"--out folder {out.parent} does not exist")
    _check_writable(out.parent)
    check_paths = [p for p in expand_inputs(check) if not Path(p).is_dir()] if check else None  # not empty folders
    if check and not check_paths:
        raise UsageFailure(f"--check {' '.join(check)} names no images")

    from rich.console import Console
    from rich.table import Table

    from trainer.inference.export import export_onnx

    console = Console()
    doing = f"exporting {path} to ONNX and checking parity..."
    if not console.is_terminal:  # a log or a pipe, where the spinner below draws nothing: a line first
        click.echo(doing, err=True)
    with console.status(doing):
        report = export_onnx(path, out, check_paths=check_paths, atol=atol, name=name, lengths=length)
    table = Table(show_header=False, title=f"[green]exported[/] {report.path}", title_justify="left")
    table.add_row("model name", report.name)
    table.add_row("format", f"ONNX, opset {report.opset}, dynamic batch")
    table.add_row("reads lengths", "any" if report.lengths is None else "{}-{}".format(*report.lengths))
    table.add_row("size", f"{report.size_bytes / 1e6:.2f} MB")
    table.add_row("parity images", report.source)
    table.add_row("same strings", f"{report.same_strings}/{report.images}")
    table.add_row("max |logit diff|", f"{report.max_abs_diff:.2e} (tolerance {report.atol:g})")
    console.print(table, highlight=False)


def _check_writable(folder: Path) -> None:
    """Create and remove a file in `folder`, so a folder that cannot be written is refused before the
    export's work, not after it (permission bits alone do not say: root ignores them, mounts may not)."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".captchagen-probe-"):
            pass
    except OSError as e:
        raise UsageFailure(f"cannot write in --out folder {folder}: {e.strerror or e}") from None
