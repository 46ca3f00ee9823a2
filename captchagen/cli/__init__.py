"""The `captchagen` command line: a click group over one module per command group. Importing this never
imports torch; each command imports what it needs when it runs."""

from __future__ import annotations

from typing import Any

import click

from captchagen import __version__
from captchagen.cli.adapt import adapt, fit_style
from captchagen.cli.dataset import fonts, make, preview, styles, verify
from captchagen.cli.evaluate import compare, evaluate
from captchagen.cli.export import export
from captchagen.cli.label import label
from captchagen.cli.read import test
from captchagen.cli.serve import serve
from captchagen.cli.train import train
from captchagen.cli.tune import tune_style


class Group(click.Group):
    """A Ctrl-C that no command handles itself ends with exit code 130 and one line (click would say
    "Aborted!" and exit 1), whenever it lands: while loading, checking settings or writing."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="captchagen")
def cli() -> None:
    """Make synthetic captcha datasets, and train and use models that read them."""
    import warnings

    from PIL import Image

    # Images over the reader's own pixel limit (20M, under Pillow's 89M warning) are refused with an error
    # that names them; Pillow's warning would only print that error a second time, as a stray traceback line.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


for command in (
    make,
    preview,
    verify,
    styles,
    fonts,
    fit_style,
    tune_style,
    train,
    test,
    evaluate,
    compare,
    serve,
    label,
    adapt,
    export,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="captchagen")
