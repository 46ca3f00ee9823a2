"""`captchagen make`, `preview` and `verify`: the dataset commands (importing this imports no torch)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from captchagen import arithmetic, style
from captchagen.alphabet import PRESETS, expand
from captchagen.cli.common import AverageRate, LineProgress, library_errors
from captchagen.cli.options import Decorator, ExistingPath, UsageFailure, font_pack_option, length_option, n_option
from captchagen.config import GenerationConfig
from captchagen.workers import cpu_count

DEFAULTS = GenerationConfig()


def look_options(fn: Any) -> Any:
    """What the images hold and how they are drawn, besides the style: shared by `make` and `preview --style`,
    so a preview shows what `make` with the same options will draw."""
    for option in reversed(_LOOK):
        fn = option(fn)
    return fn


_LOOK: list[Decorator] = [
    click.option(
        "--alphabet",
        default="upper",
        show_default=True,
        help=f"Characters to draw labels from: a preset ({', '.join(PRESETS)}) or the characters themselves "
        "(e.g. 'ABC123').",
    ),
    length_option(None, f"{DEFAULTS.min_len}-{DEFAULTS.max_len}"),
    # The names before --length: still taken, not shown (OLD_NAMES).
    click.option("--min-len", type=int, default=DEFAULTS.min_len, hidden=True, help="Shortest label length."),
    click.option("--max-len", type=int, default=DEFAULTS.max_len, hidden=True, help="Longest label length."),
    click.option("--width", type=int, default=DEFAULTS.width, show_default=True, help="Image width in pixels."),
    click.option("--height", type=int, default=DEFAULTS.height, show_default=True, help="Image height in pixels."),
    click.option(
        "--font",
        "fonts",
        multiple=True,
        metavar="PATH",
        help="A .ttf/.otf font to draw with, or a folder of them; repeat for several. Default: all bundled fonts.",
    ),
    font_pack_option(
        "Draw with every font of this pack that has the alphabet's glyphs (Debian font packages; "
        "`captchagen fonts` says what is installed and how to install the rest)."
    ),
    click.option(
        "--arithmetic",
        is_flag=True,
        help="Draw sums to answer (`7+12=?`) instead of random labels: the label is the expression, and "
        "`captchagen test --answer` answers it. Decides the alphabet and the length.",
    ),
    click.option(
        "--operators",
        metavar="OPS",
        default=arithmetic.DEFAULT,
        show_default=True,
        help=f"With --arithmetic: the operators to draw, some of {arithmetic.OPERATORS!r} in any order "
        "(`×`, `*` and `x` are a product, as sites draw it).",
    ),
]


def _look_settings(look: dict[str, Any]) -> dict[str, Any]:
    """GenerationConfig fields from the look options' values (--length sets both lengths)."""
    settings = {k: v for k, v in look.items() if k not in ("length", "operators")}
    if look.get("arithmetic"):
        decided = _given(["alphabet", "length", "min_len", "max_len"])
        if decided:
            raise UsageFailure(f"--arithmetic decides the alphabet and the length; leave out {', '.join(decided)}")
        wrong = arithmetic.problem(look["operators"])
        if wrong:
            raise UsageFailure(f"--operators {wrong}")
        settings["arithmetic"] = look["operators"]
    else:
        if _given(["operators"]):
            raise UsageFailure("--operators is for sums: give it with --arithmetic")
        settings["arithmetic"] = ""
    if look.get("length") is not None:
        both = _given(["min_len", "max_len"])
        if both:
            raise UsageFailure(f"--length and {', '.join(both)} both give the label length; give --length alone")
        settings["min_len"], settings["max_len"] = look["length"]
    return {**settings, "fonts": tuple(look["fonts"]), "alphabet": expand(look["alphabet"])}


def _given(names: Iterable[str]) -> list[str]:
    """The flags of the running command's options among `names` that were given (not left at their default)."""
    ctx = click.get_current_context()
    default = (None, click.core.ParameterSource.DEFAULT)
    return [
        p.opts[0] for p in ctx.command.params if p.name in names and ctx.get_parameter_source(p.name) not in default
    ]


@click.command()
@click.option("--n", "n", type=int, default=DEFAULTS.n, show_default=True, help="Number of images to make.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("data/captchas"),
    show_default=True,
    help="Folder to write the dataset into (created if missing).",
)
@look_options
@click.option(
    "--seed", type=int, default=DEFAULTS.seed, show_default=True, help="Seed: same settings and seed, same bytes."
)
@click.option("--shard-size", type=int, default=DEFAULTS.shard_size, show_default=True, help="Images per shard folder.")
@click.option(
    "--shards",
    metavar="START:STOP",
    help="Make only these shards (Python slice style, e.g. 3:7), to split one dataset across machines.",
)
@click.option(
    "--png-compression",
    type=int,
    default=DEFAULTS.png_compression,
    show_default=True,
    help="zlib level 0-9 for the PNG files (1 is fast and nearly as small as 9).",
)
@click.option(
    "--style",
    default="default",
    show_default=True,
    help="How the images look: a preset (see `captchagen styles`) or a .toml/.json style file.",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes.  [default: all cores]")
@click.option("--overwrite", is_flag=True, help="Replace a dataset in --out that was made with other settings.")
@library_errors
def make(out: Path, shards: str | None, workers: int | None, overwrite: bool, **settings: Any) -> None:
    """Render a sharded, reproducible captcha dataset.

    Running the same command again resumes an interrupted run.

    Example: captchagen make --n 100000 --alphabet alnum --out data/alnum
    """
    from rich.console import Console

    from captchagen import make as maker

    settings = {**settings, **_look_settings(settings)}
    settings.pop("length")
    settings.pop("operators")
    settings["style"] = style.load(settings["style"])[1]
    config = GenerationConfig(**settings)
    console = Console(stderr=True)
    workers = workers or cpu_count()
    bar = _progress(console)
    task = bar.add_task("rendering", total=None, rate=None)
    lines = LineProgress(lambda line: console.print(line, highlight=False), "rendering")
    average = AverageRate()  # since rendering began, as the summary gives it: not rich's recent speed

    def progress(done: int, total: int) -> None:
        if not console.is_terminal:  # a log or a pipe: plain lines, as a live bar draws nothing there
            lines.update(done, total)
            return
        if not bar.live.is_started:  # only once the settings are checked: a bad one prints just its error
            bar.start()
        bar.update(task, completed=done, total=total, rate=average.rate(done))

    try:
        result = maker.make_dataset(config, out, shards=shards, workers=workers, overwrite=overwrite, progress=progress)
    except KeyboardInterrupt:
        if bar.live.is_started:
            bar.stop()
        console.print(f"[yellow]Interrupted.[/] Run the same command again to finish the dataset in {out}.")
        sys.exit(130)
    finally:
        if bar.live.is_started:
            bar.stop()
    for note in result.notes:
        console.print(f"[yellow]note[/]: {note}", highlight=False)
    Console().print(_summary(result, workers))


def _progress(console: Any) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            rate = task.fields.get("rate")
            return Text(f"{rate:,.0f} img/s" if rate else "- img/s", style="cyan")

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _summary(result: Any, workers: int) -> Any:
    from rich.table import Table

    s = result.settings
    table = Table(title=f"Dataset {result.out}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rate = result.images_rendered / result.render_seconds if result.render_seconds else 0
    rows = [
        ("status", "[green]complete[/]" if result.complete else "[yellow]partial (some shards not made here)[/]"),
        ("images", f"{s['n']:,} in {-(-s['n'] // s['shard_size'])} shard(s) of up to {s['shard_size']:,}"),
        (
            "this run",
            f"{result.shards_made} shard(s) made, {result.shards_kept} already complete; "
            f"{result.images_rendered:,} images rendered in {result.render_seconds:.1f}s "
            f"({rate:,.0f} img/s, {workers} workers); {result.seconds:.1f}s in all, with the checks, "
            "manifest and preview",
        ),
        ("alphabet", f"{s['alphabet']} ({len(s['alphabet'])} characters)"),
        ("label length", f"{s['min_len']} to {s['max_len']}"),
        ("image size", f"{s['width']}x{s['height']}"),
        ("fonts", _fonts_row(s)),
        ("style", _style_name(s["style"])),
        ("seed", str(s["seed"])),
        ("manifest", str(result.out / "manifest.json")),
    ]
    if result.preview:
        rows.append(("preview", str(result.preview)))
    for row in rows:
        table.add_row(*row)
    return table


def _fonts_row(settings: dict) -> str:
    names = [f["file"] for f in settings["fonts"]]
    pack = f"pack {settings['font_pack']}: " if settings.get("font_pack") else ""
    if len(names) <= 6:
        return pack + ", ".join(names)
    return f"{pack}{len(names)} fonts ({', '.join(names[:3])}, ...; all in the manifest)"


def _style_name(resolved: dict) -> str:
    """The preset a manifest's style is, else "custom"."""
    return next((name for name, st in style.PRESETS.items() if st.to_dict() == resolved), "custom")


@click.command()
@click.argument("data", required=False, type=ExistingPath(file_okay=False, path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="PNG to write.  [default: DATA/preview.png]"
)
@n_option(24, "Images to show.", old=("--count",), type=click.IntRange(1, 400))
@click.option("--columns", type=click.IntRange(1, 20), default=4, show_default=True, help="Images per row.")
@click.option(
    "--style",
    "style_spec",
    metavar="STYLE",
    help="Instead of reading DATA, render fresh samples in this style (a preset or a .toml/.json file).",
)
@look_options
@library_errors
def preview(data: Path | None, out: Path | None, n: int, columns: int, style_spec: str | None, **look: Any) -> None:
    """Draw a grid of sample images with their labels under them.

    With --style, the images are drawn afresh, at the size, in the fonts and with the labels the other
    options give (as `make` with them would draw), so they can be set beside the captchas to resemble.

    \b
    Example: captchagen preview data/captchas --out sheet.png
    Example: captchagen preview --style my-style.toml --width 256 --height 64 --length 4
    """
    from captchagen.preview import write_preview, write_style_sheet

    given = _given(look)
    if style_spec is not None:
        if data is not None:
            raise click.UsageError("give DATA or --style, not both")
        name, chosen = style.load(style_spec)
        config = GenerationConfig(n=n, style=chosen, **_look_settings(look))
        path = write_style_sheet(
            [(name, chosen)], out or Path("preview.png"), samples=n, columns=columns, config=config
        )
    elif given:
        raise click.UsageError(f"{', '.join(given)}: only with --style (DATA's images are shown as they were made)")
    elif data is None:
        raise click.UsageError("give DATA (a dataset folder) or --style")
    else:
        path = write_preview(data, out or data / "preview.png", count=n, columns=columns)
    click.echo(f"wrote {path}")


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw a PNG with a row of samples of each style here.  [default: no picture]",
)
@n_option(4, "Images per style.", old=("--samples",), type=click.IntRange(1, 12))
@click.option("--also", multiple=True, metavar="FILE", help="A style file to show beside the presets; repeatable.")
@click.option("--fields", is_flag=True, help="List every setting a style file may hold, with its range and default.")
@library_errors
def styles(out: Path | None, n: int, also: tuple[str, ...], fields: bool) -> None:
    """List the style presets, and with --out draw samples of each.

    \b
    Example: captchagen styles --also my-style.toml --out styles.png
    Example: captchagen styles --fields
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from captchagen.preview import write_style_sheet

    console = Console()
    if fields:
        from rich.table import Column

        # A setting's name is what a style file must spell: never cut, whatever the width (the others wrap).
        setting = Column("setting", no_wrap=True, min_width=max(len(name) for name in style.FIELDS))
        table = Table(
            setting, "holds", "range", "default", "random draws", title="Style file settings", title_justify="left"
        )
        for row in style.field_table():
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        return
    chosen = [*style.PRESETS.items(), *(style.load(spec) for spec in also)]
    table = Table(title="Styles (captchagen make --style NAME, or a .toml/.json file)", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("look")
    table.add_column("differs from default in")
    for name, st in chosen:
        changed = [k for k in style.FIELDS if getattr(st, k) != getattr(style.DEFAULT, k)]
        table.add_row(name, style.DESCRIPTIONS.get(name, "your file"), ", ".join(changed) or "-")
    console.print(table)
    if out is None:
        console.print("Samples of each: captchagen styles --out styles.png; every setting: captchagen styles --fields")
    else:
        console.print(f"wrote {write_style_sheet(chosen, out, samples=n)}")


@click.command()
@font_pack_option("The pack to show.", default="wide", old=("--pack",))
@click.option(
    "--alphabet", default="alnum", show_default=True, help="Count the fonts that draw every character of this."
)
@library_errors
def fonts(font_pack: str, alphabet: str) -> None:
    """Show a font pack: its Debian packages by kind, which are installed, and how many of their fonts
    draw the alphabet; with the command that installs the rest.

    Example: captchagen fonts --font-pack wide --alphabet alnum
    """
    from rich.console import Console
    from rich.table import Table

    from captchagen import fontpacks
    from captchagen.fonts import REQUIRED_EXTRA, load_font

    pack = fontpacks.pack(font_pack)
    found, missing = fontpacks.installed(font_pack)
    chars = expand(alphabet) + REQUIRED_EXTRA
    table = Table("kind", "packages", "installed", "font files", "draw the alphabet", title=f"Font pack {pack.name}: "
                  f"{pack.summary}", title_justify="left")  # fmt: skip
    totals = [0, 0, 0, 0]
    for kind in dict.fromkeys(pack.packages.values()):
        packages = [p for p, k in pack.packages.items() if k == kind]
        files = sorted({f.resolve() for p in packages for f in found.get(p, [])})
        drawing = sum(not load_font(f).missing(chars) for f in files)
        row = [len(packages), sum(p in found for p in packages), len(files), drawing]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        table.add_row(kind, *map(str, row))
    table.add_row("[bold]all[/]", *(f"[bold]{v}[/]" for v in totals))
    console = Console()
    console.print(table)
    if missing:
        console.print(
            f"{len(missing)} package(s) missing; install them with:\n  {pack.install_command}",
            highlight=False,
            soft_wrap=True,  # one line, however narrow the terminal or pipe: it is to be copied and run
        )
    else:
        console.print(f"Every package is installed: captchagen make --font-pack {pack.name} ...", highlight=False)


@click.command()
@click.argument("data", type=ExistingPath(file_okay=False, path_type=Path))
@library_errors
def verify(data: Path) -> None:
    """Check a made dataset against its manifest: counts, content hashes, file names and labels.

    Example: captchagen verify data/captchas
    """
    from rich.console import Console

    from captchagen.manifest import verify as check

    report = check(data)
    console = Console()
    if report.ok:
        console.print(f"[green]OK[/]: {report.images:,} images in {report.shards} shards match the manifest.")
        return
    for problem in report.problems[:20]:
        console.print(f"[red]-[/] {problem}", highlight=False)
    if len(report.problems) > 20:
        console.print(f"... and {len(report.problems) - 20} more")
    raise click.ClickException(f"{data} does not match its manifest ({len(report.problems)} problems)")
