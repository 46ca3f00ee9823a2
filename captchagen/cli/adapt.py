"""`captchagen fit-style` and `captchagen adapt`: read a site's captchas with no labels (importing this
imports no torch)."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path
from shlex import quote
from typing import Any

import click

from captchagen.alphabet import PRESETS, Alphabet, expand
from captchagen.cli.common import LineProgress, library_errors
from captchagen.cli.options import (
    Decorator,
    UsageFailure,
    case_option_for,
    default_font_pack,
    font_pack_option,
    init_from_option,
    length_option,
    pseudo_option,
    time_limit_option,
)
from captchagen.fitting.pool_fit import SAMPLE
from captchagen.workers import cpu_count


def _fit_options(fn: Any) -> Any:
    options: list[Decorator] = [
        click.option("--alphabet", default="alnum", show_default=True,
                     help=f"Characters the captchas use: a preset ({', '.join(PRESETS)}) or the characters."),
        length_option("4-6", "4-6"),
        click.option("--font", "fonts", multiple=True, metavar="PATH",
                     help="Fonts the fit may choose from (files or folders; repeatable).  [default: the `wide` "
                     "pack if installed, else the bundled fonts]"),
        font_pack_option("Also choose from this font pack."),
        click.option("--rounds", type=click.IntRange(1, 200), default=24, show_default=True,
                     help="Rounds of the search (each renders 24 candidate styles)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed of the search: the same pool and options give the same style."),
        click.option("--workers", type=click.IntRange(min=1), help="Processes rendering candidates.  [default: all "
                     "cores]"),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command("fit-style")
@click.argument("pool", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for style.toml (what `make --style` reads), fit.json and sheet.png.")  # fmt: skip
@click.option("--sample", type=click.IntRange(min=4), default=SAMPLE, show_default=True,
              help="Pool images the fit compares with (a seeded sample).")  # fmt: skip
@click.option("--model", "model_path", metavar="PATH",
              help="Also match what this model sees of the images (its convolutional features and LSTM outputs, "
              "half the distance): a bundled name such as base-v3, a checkpoint or a run folder. What a model "
              "sees ranks styles closer to how fine-tuning it on them reads the pool than the statistics do.  "
              "[default: image statistics alone]")  # fmt: skip
@_fit_options
@library_errors
def fit_style(pool: Path, out: Path, sample: int, model_path: str | None, alphabet: str, length: tuple[int, int],
              fonts: tuple[str, ...], font_pack: str | None, rounds: int, seed: int,
              workers: int | None) -> None:  # fmt: skip
    """Fit a style to a folder of unlabelled captchas (analysis by synthesis).

    Searches the style space (size, rotation, warp, colours, noise, lines, blur, JPEG, layout, bends) and
    the fonts for captchas whose image statistics (and, with --model, what that model sees of them) match
    the pool's, and writes OUT/style.toml, the fonts chosen (OUT/fit.json, with how close the fit is) and
    OUT/sheet.png (pool images above fitted ones). A pool taller than 80 rows is fitted at its shape scaled
    to 80 (a model reads 32), and the style drawn at that size.

    Example: captchagen fit-style collected/ --out fitted/ --alphabet upper-digits --length 4-6
    """
    from captchagen.fitting.pool_fit import candidate_fonts, fit_pool
    from captchagen.fitting.search import Settings

    lo, hi = length
    chars = expand(alphabet)
    Alphabet(chars)  # a bad alphabet is a one-line error before any work
    candidates = candidate_fonts(fonts, default_font_pack(fonts, font_pack), chars)
    settings = Settings(alphabet=chars, min_len=lo, max_len=hi, width=0, height=0, rounds=rounds, seed=seed)
    lines: dict[str, LineProgress] = {}
    nearest = [0.0]  # the best distance so far, as the latest progress call gave it

    def progress(phase: str, done: int, total: int, best: float) -> None:
        nearest[0] = best
        what = {"style": "searching styles (rounds)", "fonts": "scoring fonts"}[phase]
        lines.setdefault(phase, LineProgress(lambda s: click.echo(f"{s}, nearest {nearest[0]:.3f}", err=True), what,
                                             unit="", rate="/s", every_s=5.0)).update(done, total)  # fmt: skip

    reader = None
    if model_path is not None:
        from trainer.inference.features import SeenBy
        from trainer.runs import resolve_model

        reader = (model_path, SeenBy(resolve_model(Path("runs"), model_path)[0]))
    by = f", matching what {reader[0]} sees" if reader else ""
    click.echo(f"Fitting a style to {pool} ({len(candidates)} candidate fonts{by})", err=True)
    result, sampled = fit_pool(pool, out, settings, candidates, sample, workers or cpu_count(), progress, reader)
    _report(result, sampled, out)
    hint = tune_hint(result.distance, result.floor, pool, out)
    if hint:
        click.echo(hint, err=True)


FAR = 3.0  # a fit further than this many times the pool's own floor is worth a look (issue 40's goal)


def tune_hint(distance: float, floor: float, pool: Path, out: Path) -> str | None:
    """What to do about a fit far from the pool (None for a near one): look, and tune it on the page."""
    if distance <= FAR * floor:
        return None
    times = f"{distance / floor:.0f}x" if floor > 0 else "far from"
    command = f"captchagen tune-style {quote(str(pool))} --start {quote(str(out))} --out TUNED"
    return (f"The fit is {times} the pool's distance to itself: look at the sheet. Where its glyphs, their size "
            f"or the clutter are not the pool's, tune the style by eye (minutes): {command}, then draw it with "
            "`make` or `adapt --style TUNED/style.toml --font TUNED/fonts`.")  # fmt: skip


def _report(result: Any, pool: Any, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    if pool.unreadable:
        click.echo(f"{len(pool.unreadable)} sampled pool files could not be read and were left out, e.g. "
                   f"{pool.unreadable[0]}", err=True)  # fmt: skip
    table = Table(title=f"Style fitted to {pool.total:,} images ({len(pool.paths)} sampled)", title_justify="left")
    table.add_column("aspect")
    table.add_column("distance", justify="right")
    for group, d in sorted(result.groups.items(), key=lambda kv: -kv[1]):
        table.add_row(group, f"{d:.3f}")
    table.add_row("[bold]all[/]", f"[bold]{result.distance:.3f}[/]")
    table.add_row("pool vs pool", f"{result.floor:.3f}")
    console = Console()
    console.print(table)
    scaled = f" (the pool's {pool.commonest[0]}x{pool.commonest[1]} scaled to {pool.size[1]} rows: a reader sees 32)"
    size = f"size {pool.size[0]}x{pool.size[1]}" + (scaled if pool.size != pool.commonest else "")
    console.print(f"{size}; fonts: {', '.join(Path(f).name for f in result.fonts)}", highlight=False)
    console.print(f"style: {out / 'style.toml'}\nsheet: {out / 'sheet.png'} (pool above, fitted below)",
                  highlight=False)  # fmt: skip


@click.command()
@click.argument("pool", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for every step's output: fit/, data/, runs/synthetic (and fit-reader/, data-reader/, "
              "runs/synthetic-reader), runs/adapted, model.pt, readings.png, and adapt.json (what it made and "
              "finished). adapt replaces nothing there that it did not make.")  # fmt: skip
@click.option("--n", type=click.IntRange(min=100), default=20000, show_default=True,
              help="Synthetic images to make in the fitted styles (each look an equal share).")  # fmt: skip
@init_from_option("base-v3", "Model to fine-tune (a bundled name, .pt or run folder).")
@time_limit_option(10, "Minutes of training on the synthetic sets (each look an equal share).")
@time_limit_option(10, "Minutes of self-training on the pool (train --unlabeled).", self_training=True)
@pseudo_option("ranked")
@click.option("--labels", type=click.Path(file_okay=False, path_type=Path),
              help="A folder of the site's captchas you labelled (<id>_<label>.png, as `captchagen label` writes; "
              "20 already help): both comparisons rank by accuracy on labelled images the models compared never "
              "trained on (the estimate where too few tell two models apart), and self-training learns from the "
              "rest (up to 50 are held back to check with).")  # fmt: skip
@click.option("--style", metavar="STYLE",
              help="Draw the synthetic set in this style (a preset such as varied, or a style file) at the pool's "
              "size (a pool over 80 rows high scaled to 80) instead of fitting one: fit-style is skipped.")  # fmt: skip
@click.option("--fit", "fit", type=click.Choice(["both", "statistics", "reader"]),
              help="Which fitted looks to fine-tune on: by the image statistics alone, by them and what the "
              "--init-from model sees (fit-style --model), or both, each its own set and fine-tune, the pool's "
              "estimate choosing (neither fit wins on every site: docs/studies/fit-style.md).  [default: both; "
              "none with --style]")  # fmt: skip
@case_option_for("`ignore` for a site that ignores case checks: the comparisons read, and self-training learns "
                 "the pool, with a letter's two cases as one (compare --case ignore, train --case ignore); read "
                 "the model it returns with --case ignore too.")  # fmt: skip
@_fit_options
@library_errors
def adapt(pool: Path, out: Path, n: int, init_from: str, time_limit: float, self_time_limit: float, pseudo: str,
          labels: Path | None, style: str | None, fit: str | None, case: str, alphabet: str, length: tuple[int, int],
          fonts: tuple[str, ...], font_pack: str | None, rounds: int, seed: int,
          workers: int | None) -> None:  # fmt: skip
    """Learn to read a site's captchas from an unlabelled pool of them: fit, make, train, self-train.

    Runs these commands, printing each (every one can be run alone): `fit-style` fits a style to POOL,
    twice (by image statistics, and by them and what MODEL sees: --fit); `make` draws N labelled captchas
    in each; `train --init-from MODEL` fine-tunes on each; `compare` reads the pool with MODEL and the
    fine-tuned models and estimates, with no label, which reads it better; `train --unlabeled` self-trains
    from that one on the pool less the images compared (the teacher's most certain readings, of the --length
    given, are learnt in rounds of a growing share); `compare` again, on images it never learnt: the
    self-trained model is returned only if its estimate is clearly above its start's (beyond the chance of
    the sample; so is a fine-tuned start chosen over MODEL), so adapt does not end below where it started by
    its own estimate. With --labels, measured accuracy on labelled captchas decides instead, where it tells
    two models apart beyond chance. An estimate can be fooled (a self-training that learnt a consistent
    wrong alphabet grows sure of it): OUT/readings.png shows held-out pool images with what the returned
    model and the other read, for a glance to judge, and adapt says when the readings keep to one case of
    letters the alphabet has in both (then --case ignore; of the start's, before self-training). Run the same
    command again to resume after an interruption; finished steps are skipped, and a step whose inputs changed
    (the pool, an option) is redone with what follows it.

    Example: captchagen adapt collected/ --out adapted/ --alphabet upper-digits --length 4-6
    """
    from captchagen.adapt import pipeline
    from captchagen.adapt.labels import read_labelled
    from captchagen.adapt.plan import Options
    from captchagen.adapt.runner import Stopped
    from captchagen.fitting.pool_fit import candidate_fonts
    from captchagen.unlabeled import list_images
    from trainer.training.finetune import load_parent

    if style is not None and fit is not None:
        raise UsageFailure("--fit chooses among fitted looks and --style draws the synthetic set with no fit: give "
                           "one of them")  # fmt: skip
    lo, hi = length
    chars = expand(alphabet)
    Alphabet(chars)
    pack = default_font_pack(fonts, font_pack)
    o = Options(pool, out, chars, lo, hi, n, init_from, "", time_limit, self_time_limit, seed, fonts, pack, rounds,
                workers, pseudo=pseudo, labels=labels, style=style, fit=fit or "both", case=case)  # fmt: skip
    if style is not None:
        from captchagen.style import load

        load(style)  # a bad style: now, in one line
    sampled = pipeline.check(o)  # the pool and OUT, before anything is read at length or written
    candidates = candidate_fonts(fonts, pack, chars)  # an alphabet no font draws: now, not in the fit step
    parent = load_parent(init_from)  # a bad or edited model: now, not after the fit and make
    listed = list_images(pool)
    o = replace(o, base_sha256=parent.sha256, pool_digest=listed.digest(), pool_images=len(listed.paths),
                labels_digest=read_labelled(labels).digest if labels is not None else "",
                font_digest=_files_digest(candidates),
                base_reads_alphabet=set(chars) <= set(parent.model.alphabet), base_file=str(parent.path),
                size=sampled.size, base_width=training_width(parent.config.width, hi))  # fmt: skip
    try:
        model = pipeline.run(o, lambda line: click.echo(line, err=True))
    except Stopped as e:
        click.echo(f"Interrupted ({e}); the step stopped with it. Run the same command again to go on.", err=True)
        sys.exit(e.exit_code)
    case_flag = " --case ignore" if case == "ignore" else ""
    click.echo(f"Adapted model: {model}\nRead with: captchagen test --model {quote(str(model))} --length {lo}-{hi}"
               f"{case_flag} IMAGES")  # fmt: skip


def training_width(base_width: int, max_len: int) -> int:
    """The input width adapt's training steps read at: the base model's, where its time steps are enough for
    the longest label; else 0, and train chooses one from the images."""
    from trainer.shape import reads_labels_of

    return base_width if reads_labels_of(base_width, max_len) else 0


def _files_digest(paths: list[str]) -> str:
    """Each file's path, size and modification time: changes when a candidate font is added, removed or edited."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
