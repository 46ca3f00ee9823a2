"""`captchagen test`: read captchas with a trained model (importing this imports no torch)."""

from __future__ import annotations

import json
import sys

import click

from captchagen import arithmetic
from captchagen.cli.common import beam_option, expand_inputs, library_errors, model_options, open_reader, reads_option
from captchagen.cli.options import answer_option, case_option, read_length_option
from trainer.inference.lengths import LengthChoice


@click.command()
@click.argument("images", nargs=-1, required=True)
@model_options("to read with")
@reads_option
@read_length_option
@case_option
@beam_option
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Images per batch.")
@answer_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image instead of a table.")
@library_errors
def test(
    images: tuple[str, ...],
    model_path: str | None,
    runs_dir: str,
    reads: str | None,
    length: LengthChoice,
    case: str,
    beam: int,
    batch_size: int,
    answer: bool,
    as_json: bool,
) -> None:
    """Read the text of captcha images (files, folders or globs).

    Confidence is the probability the model gives the predicted text (summed over all CTC alignments).
    The exit code is 1 if any image could not be read.

    Example: captchagen test data/captchas/shard-00000/000001_RG.png --length 4
    """

    path, reader = open_reader(runs_dir, model_path, reads, length, case)
    results = reader.read_paths(expand_inputs(images), beam=beam, batch_size=batch_size)
    solved = [None if r.error else arithmetic.answer(r.text) for r in results] if answer else []
    if as_json:
        for i, r in enumerate(results):
            fields = {"path": r.path, "text": r.text, "confidence": r.confidence, "error": r.error}
            click.echo(json.dumps({**fields, "answer": solved[i]} if answer else fields))
    else:
        from rich.console import Console
        from rich.table import Table

        # An image that could not be read gets its reason in a column of its own, never where a reading goes,
        # so that without colours (a log, a pipe) it cannot pass for one.
        failed = any(r.error for r in results)
        table = Table("image", "text", "confidence", title=f"model {path}", title_justify="left")
        if answer:
            table.add_column("answer")
        if failed:
            table.add_column("error", style="red")
        for i, r in enumerate(results):
            row = [r.path, "-" if r.error else r.text, "" if r.error else f"{r.confidence:.3f}"]
            if answer:
                row.append("-" if solved[i] is None else str(solved[i]))
            table.add_row(*row, *([r.error or ""] if failed else []))
        Console().print(table, highlight=False)
    if any(r.error for r in results):
        sys.exit(1)
