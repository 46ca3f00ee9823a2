"""`captchagen tune-style`: a local page to tune a style by eye against a pool (importing this imports no
torch)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from captchagen import atomic
from captchagen.alphabet import PRESETS, Alphabet, expand
from captchagen.cli.common import library_errors, serve_local_page
from captchagen.cli.options import default_font_pack, font_pack_option, length_option
from captchagen.errors import BadInput, missing_extra
from captchagen.fitting.pool_fit import SAMPLE
from captchagen.lock import FolderLock

if TYPE_CHECKING:
    from captchagen.fitting.tuning import Tuner


@click.command("tune-style")
@click.argument("pool", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder the page saves to: style.toml, fonts/, sheet.png (pool above, tuned below) and "
              "tune.json; what `make --style` and `adapt --style` take.")  # fmt: skip
@click.option("--start", metavar="FIT|STYLE",
              help="Start from a `fit-style` output folder (its style, fonts, alphabet and length), a style "
              "file or a preset.  [default: the default style]")  # fmt: skip
@click.option("--alphabet", help=f"Characters the captchas use: a preset ({', '.join(PRESETS)}) or the characters.  "
              "[default: the fit's, else alnum]")  # fmt: skip
@length_option(None, "the fit's, else 4-6")
@click.option("--font", "fonts", multiple=True, metavar="PATH",
              help="Fonts the page offers (files or folders; repeatable).  [default: the `wide` pack if "
              "installed, else the bundled fonts]")  # fmt: skip
@font_pack_option("Also offer this font pack's fonts.")
@click.option("--sample", type=click.IntRange(min=4), default=SAMPLE, show_default=True,
              help="Pool images the distance compares with (a seeded sample).")  # fmt: skip
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the pool sample and of the start's fonts.")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=5052, show_default=True,
              help="Port; 0 picks a free one.")  # fmt: skip
@library_errors
def tune_style(pool: Path, out: Path, start: str | None, alphabet: str | None, length: tuple[int, int] | None,
               fonts: tuple[str, ...], font_pack: str | None, sample: int, seed: int, host: str,
               port: int) -> None:  # fmt: skip
    """Tune a style by eye on a local page: POOL's captchas beside live renders, until Ctrl-C.

    Every style setting is a control, fonts are searched by name with a preview, and the distance to the
    pool (as fit-style measures it, beside the pool's distance to itself) follows each change. Ctrl+S
    saves the style and its fonts in OUT; then draw a set in it, or adapt with it:

    \b
      captchagen make --style OUT/style.toml --font OUT/fonts --width W --height H --out data/
      captchagen adapt POOL --out adapted/ --style OUT/style.toml --font OUT/fonts

    Example: captchagen tune-style collected/ --start fitted/ --out tuned/
    """
    try:
        import uvicorn  # noqa: F401 (the extra is there: _serve imports what it needs)

        import captchagen.fitting.page  # noqa: F401 (fastapi)
    except ImportError as e:
        raise missing_extra("captchagen tune-style", "serve", str(e.name)) from None
    from captchagen.fitting.pool_fit import candidate_fonts, open_pool, read_record
    from captchagen.fitting.search import Settings
    from captchagen.fitting.tuning import Tuner, check_out, open_start

    record = read_record(Path(start)) if start is not None and Path(start).is_dir() else None
    chars = expand(alphabet or (record.settings["alphabet"] if record else "alnum"))
    Alphabet(chars)  # a bad alphabet is a one-line error before any work
    lo, hi = length or ((record.settings["min_len"], record.settings["max_len"]) if record else (4, 6))
    sampled = open_pool(pool, sample, seed, exclude=out)
    pack = default_font_pack(fonts, font_pack)
    candidates = candidate_fonts(fonts, pack, chars)
    begin = open_start(start, candidates, seed)
    from captchagen.fonts import load_font

    for f in begin.fonts:  # a fit's fonts, made for another alphabet
        if lacking := load_font(f).missing(chars):
            raise BadInput(f"--start's font {f} cannot draw {''.join(lacking)!r} of the alphabet", param="start")
    settings = Settings(alphabet=chars, min_len=lo, max_len=hi, width=sampled.size[0], height=sampled.size[1],
                        seed=seed)  # fmt: skip
    if out.is_dir():
        check_out(out)  # someone else's files in OUT: now, before the lock is made there or any work
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out, "tune-style")
        lock.acquire()
    except OSError as e:
        raise click.ClickException(f"cannot write to --out {out}: {e.strerror or e}") from None
    try:
        for folder in (out, out / "fonts"):  # what a page killed mid-save left (the lock says none is saving)
            if folder.is_dir():
                atomic.remove_temp_files(folder)
        click.echo(f"Reading {len(sampled.paths)} pool images and {len(candidates):,} candidate fonts", err=True)
        from captchagen.fontpacks import kinds

        tuner = Tuner(sampled, settings, candidates, begin, kinds(pack) if pack else None)
        _serve(tuner, out, host, port)
    finally:
        lock.release()
    saved = (out / "tune.json").is_file()
    click.echo(f"Stopped. {'Saved style: ' + str(out / 'style.toml') if saved else 'Nothing saved.'}")


def _serve(tuner: Tuner, out: Path, host: str, port: int) -> None:
    from captchagen.fitting.page import create_app

    serve_local_page(
        host,
        port,
        lambda loopback_port: create_app(tuner, out, loopback_port=loopback_port),
        lambda url: (
            f"Tuning a style against {tuner.pool.total:,} images, starting from {tuner.start.source}, "
            f"on {url}  (Ctrl-C stops)"
        ),
    )
