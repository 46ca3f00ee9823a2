"""`captchagen train`: options onto TrainRequest, and a rich view of the run (importing this imports no torch)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from captchagen.cli.common import LineProgress, data_options, in_flags, library_errors
from captchagen.cli.options import FiniteFloat, UsageFailure, case_option_for, positive_float, pseudo_option
from trainer.models import names as arch_names
from trainer.models.catalog import CATALOG
from trainer.shape import SHAPE
from trainer.training.events import (
    BatchDone,
    CacheProgress,
    EpochEnded,
    EpochStarted,
    Event,
    Notice,
    Started,
    TrainResult,
)
from trainer.training.request import (  # plain dataclasses: importing them imports no torch
    FINE_TUNE,
    SCRATCH,
    TrainRequest,
)

DEFAULTS = TrainRequest()


class RegisteredArch(click.Choice):
    """--arch's choices, read from the registry each time they are asked for (trainer.models.names), so an
    architecture registered after this module was imported (a plug-in's, a test's) is taken too."""

    def __init__(self) -> None:
        super().__init__(arch_names())

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        return arch_names()

    @choices.setter
    def choices(self, value: object) -> None:  # click.Choice sets it once; the registry stays the source
        pass


def _mix(value: str) -> tuple[str, float]:
    path, sep, fraction = value.rpartition(":")
    try:
        share = float(fraction)
    except ValueError:
        share = -1.0
    if not sep or not path or not 0 < share < 1:
        raise click.BadParameter(f"{value!r}: give DATA:FRACTION with a fraction between 0 and 1, e.g. data/synth:0.5")
    return path, share


@click.command()
@click.argument("data", required=False, default=DEFAULTS.data)
@click.option("--val-data", metavar="PATH", help="Validate on this dataset instead of a split of DATA.")
@click.option(
    "--val-fraction",
    type=FiniteFloat(min=0, max=1, min_open=True, max_open=True),
    default=DEFAULTS.val_fraction,
    show_default=True,
    help="Share of DATA held out for validation (chosen by a hash of each file name).",
)
@click.option("--alphabet", help="Alphabet (preset or characters). Default: the dataset's manifest, else its labels.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help=f"Passes over the training data (or of --steps-per-epoch steps).  [default: {SCRATCH['epochs']}; "
    f"{FINE_TUNE['epochs']} with --init-from]",
)
@click.option(
    "--steps-per-epoch",
    type=click.IntRange(min=1),
    help="Count an epoch in batches instead of passes over DATA (the images are cycled).  "
    f"[default: a pass; {FINE_TUNE['steps_per_epoch']} with --init-from]",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help=f"Images per step (per process under torchrun).  [default: {SCRATCH['batch_size']}; "
    f"{FINE_TUNE['batch_size']} with --init-from]",
)
@click.option(
    "--lr",
    type=positive_float(),
    help=f"Peak AdamW learning rate (warm-up, then cosine decay).  [default: {SCRATCH['lr']:g}; "
    f"{FINE_TUNE['lr']:g} with --init-from]",
)
@click.option(
    "--warmup",
    type=FiniteFloat(min=0, max=1),
    help=f"Share of the run spent warming the learning rate up.  [default: {SCRATCH['warmup']:g}; "
    f"{FINE_TUNE['warmup']:g} with --init-from]",
)
@click.option(
    "--init-from",
    metavar="MODEL",
    help="Start from this model's weights (a .pt, a run folder, or a bundled model: `base`, `base-v2`, "
    "`base-v3`) instead of random ones, to fine-tune it on DATA. Its architecture and input size are kept "
    "(unless --height or --width is given; the width is chosen from DATA where the model's is too narrow for "
    "its longest label); characters both alphabets share keep their outputs.",
)
@click.option(
    "--mix",
    multiple=True,
    metavar="DATA:FRACTION",
    callback=lambda ctx, param, value: tuple(_mix(v) for v in value),
    help="Draw this share of every batch from another dataset (repeatable), e.g. --mix data/synthetic:0.5, so "
    "a few hundred real images are not memorised. Validation stays on DATA.",
)
@click.option(
    "--unlabeled",
    metavar="PATH",
    help="Also learn from unlabelled images (a folder of any images, or a list file of their paths): a teacher, "
    "the moving average of the model, reads them, and the readings it is sure of are learnt (semi-supervised; "
    "validation stays on labelled images, and copies of labelled images are left out of the pool).",
)
@click.option(
    "--unlabeled-share",
    type=FiniteFloat(min=0, max=1, min_open=True, max_open=True),
    default=DEFAULTS.unlabeled_share,
    show_default=True,
    help="Share of every batch drawn from the --unlabeled images, added to the --batch-size labelled ones "
    "(0.5: as many again).",
)
@pseudo_option(DEFAULTS.pseudo)
@click.option(
    "--pseudo-threshold",
    type=FiniteFloat(min=0, max=1, min_open=True, max_open=True),
    default=DEFAULTS.pseudo_threshold,
    show_default=True,
    help="With --pseudo threshold: whole-string confidence a reading of an unlabelled image needs to be learnt.",
)
@click.option(
    "--pseudo-growth",
    type=FiniteFloat(min=0, max=1, min_open=True),
    default=DEFAULTS.pseudo_growth,
    show_default=True,
    help="With --pseudo ranked: the share of the pool each round adds (0.2: 20%, 40%, ... of it).",
)
@case_option_for(
    "With --unlabeled: `ignore` for a site that ignores case: the teacher reads the pool with a letter's "
    "two cases as one (their probabilities summed), and its readings are learnt whichever case the model "
    "reads them in. The labelled images are learnt with their case."
)
@click.option(
    "--ema-decay",
    type=FiniteFloat(min=0, max=1, min_open=True, max_open=True),
    default=DEFAULTS.ema_decay,
    show_default=True,
    help="How much of the teacher each step keeps (the moving average of the model's weights).",
)
@click.option(
    "--keep",
    type=click.Choice(["best", "last"]),
    default=DEFAULTS.keep,
    show_default=True,
    help="Which epoch best.pt holds: the best on validation, or the last. `last` when validation is not what "
    "counts: labelled synthetic images while the --unlabeled pool is the target (what `adapt` does).",
)
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True, help="Seed for weights and data order.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--precision",
    default="auto",
    show_default=True,
    help="auto, fp32, bf16 or fp16 (auto: mixed precision on CUDA, bf16 on CPUs with AMX, else fp32).",
)
@click.option(
    "--time-limit",
    type=positive_float(),
    metavar="MINUTES",
    help="Stop cleanly after this many minutes of training, keeping the best model. "
    "The learning-rate schedule is stretched to end at the limit.",
)
@click.option(
    "--height",
    type=click.IntRange(min=16),
    help=f"Model input height, a multiple of 16.  [default: {SHAPE.height}, or the --init-from model's]",
)
@click.option(
    "--width",
    type=click.IntRange(min=4),
    help="Model input width, a multiple of 4.  [default: chosen from the images' aspect ratio after cropping flat "
    "borders (printed); with --init-from, the model's]",
)
@click.option(
    "--arch",
    type=RegisteredArch(),
    help="The network's backbone (all end in a BiLSTM and CTC): "
    + "; ".join(f"{e.name}: {e.summary}" for e in CATALOG.values())
    + ".  [default: crnn, or the --init-from model's]",
)
@click.option(
    "--colour/--gray",
    "colour",
    default=None,
    help="Give the model RGB images instead of grayscale, for captchas whose colours tell characters apart "
    "(3x the cache). A grayscale --init-from model becomes a colour one.  [default: grayscale, or the "
    "--init-from model's]",
)
@data_options("Skip unreadable images and labels outside the alphabet, and count them.")
@click.option("--runs-dir", default="runs", show_default=True, help="Where run folders go.")
@click.option("--name", help="Run folder name.  [default: the start time]")
@click.option("--resume", metavar="RUN", help="Continue the run in this folder (or this last.pt).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for training.  [default: the cores not busy with other work when training starts; "
    "threads on a busy core slow all the others down]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes decoding images into the cache.  [default: all cores]",
)
@library_errors
def train(data: str, resume: str | None, workers: int | None, colour: bool | None, **options: Any) -> None:
    """Train a CRNN (CNN + BiLSTM + CTC) on a dataset; writes runs/<name>/.

    DATA is a `captchagen make` folder, any folder of <anything>_<label>.png images, or a list file of
    `<path> <label>` lines.

    Example: captchagen train data/captchas --time-limit 60
    """
    from captchagen.workers import cpu_count
    from trainer.training.loop import train as run_training

    channels = None if colour is None else 3 if colour else 1
    config = TrainRequest(data=data, workers=workers or cpu_count(), channels=channels, **options)
    resume_path = None
    if resume:
        resume_path = Path(resume) / "last.pt" if Path(resume).is_dir() else Path(resume)
        if not Path(resume).exists():  # a missing path is bad usage, in one line, as everywhere; a run
            # folder without last.pt yet may be a run in progress, which the run's lock then names
            raise UsageFailure(f"--resume {resume}: no such run folder or checkpoint")
        ignored = _ignored_by_resume()
        if ignored:
            click.echo(f"note: --resume goes on with the run's own settings; ignored: {', '.join(ignored)} "
                       "(only --time-limit may change)", err=True)  # fmt: skip
    view = TrainView()
    try:
        run_training(config, view.event, resume=resume_path)
    except KeyboardInterrupt as e:
        # Handled: a second Ctrl-C now would only break the message and the exit (a traceback from
        # interpreter shutdown, or death by the signal instead of exit code 130).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        view.close()
        click.echo(interrupted_message(e), err=True)
        sys.exit(130)
    finally:
        view.close()
    if view.result is not None:  # under torchrun only rank 0 reports (the others emit no events)
        view.final(view.result)


def _ignored_by_resume() -> list[str]:
    """The options given on the command line that a resume does not take (it keeps the run's saved config)."""
    ctx = click.get_current_context()
    taken = {"resume", "time_limit"}
    given = [p for p in ctx.command.params if p.name not in taken]
    source = click.core.ParameterSource.COMMANDLINE
    return [p.opts[0] if p.opts[0].startswith("-") else p.name.upper() for p in given
            if ctx.get_parameter_source(p.name) == source]  # fmt: skip


def interrupted_message(e: KeyboardInterrupt) -> str:
    """What Ctrl-C leaves, said as it is: only a run with a last.pt can be resumed."""
    from trainer.training.interrupt import Interrupted

    if isinstance(e, Interrupted) and e.run and e.resumable:
        at = f" at {e.where}" if e.where else ""
        return f"Interrupted{at}; {e.run}/last.pt is saved. Continue with: captchagen train --resume {e.run}"
    if isinstance(e, Interrupted) and e.run:
        return f"Interrupted before {e.run} saved anything; start again (it can be deleted)."
    return "Interrupted before training began; nothing was saved."


class TrainView:
    """Renders training events: a cache bar, a per-epoch bar, a table that grows by a row each epoch."""

    COLUMNS = ("epoch", "train loss", "val loss", "seq acc", "edit dist", "CER", "img/s", "elapsed")
    PSEUDO = "pseudo-labels"  # a column with --unlabeled: readings learnt of those made, and how many are right

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console()
        self.live: Any = None  # rich's Live while a bar or the table is shown
        self.table_mode = False
        self.rows: list[tuple[str, ...]] = []
        self.partial = False
        # Where output is not a terminal (`train ... > log`), a live view draws nothing until it ends: plain
        # lines instead, one per epoch, and a progress line now and then, as pip and tqdm-based tools do.
        self.plain = not self.console.is_terminal
        self.lines: LineProgress | None = None
        self.batches = 0
        self.val = 0  # validation images, shown beside the validation figures
        self.columns: tuple[str, ...] = self.COLUMNS
        self.ranked = False  # the pseudo-labels column shows ranked rounds
        self.result: TrainResult | None = None

    def _table(self) -> Any:
        from rich.table import Table

        # Markers, not words, in the epoch column: "3 (part) *" wrapped onto two rows in an 80-column terminal.
        table = Table(
            *self.columns,
            title="Training",
            title_justify="left",
            caption=self.legend(cut_short=self.partial),
            caption_justify="left",
        )
        for row in self.rows:
            table.add_row(*row)
        return table

    def legend(self, cut_short: bool = True) -> str:
        """What the epoch markers and the pseudo-labels column mean."""
        return (
            "* best so far (best.pt)"
            + ("   ~ cut short by the time limit" if cut_short else "")
            + (f"   validation: {self.val:,} images" if self.val else "")
            + (
                "\npseudo-labels: the round; readings of the pool chosen in it; their mean confidence (what share is "
                "right, were the teacher calibrated); the teacher's pool estimate (confidence x view agreement)"
                if self.PSEUDO in self.columns and self.ranked
                else "\npseudo-labels: readings of unlabelled images learnt / made; then, of the teacher's readings "
                "of the validation images that would pass, the share right and how many there were"
                if self.PSEUDO in self.columns
                else ""
            )
        )

    def _render(self) -> Any:
        from rich.console import Group

        return Group(self._table(), self.progress)

    def _start(self, table: bool) -> None:
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task("", total=None, info="")
        # Caching shows only a bar that vanishes when done; the table appears once training starts, so an
        # error found while loading the data prints nothing but itself.
        self.table_mode = table
        self.live = Live(
            self._render() if table else self.progress,
            console=self.console,
            refresh_per_second=4,
            transient=True,
        )
        self.live.start()

    def _say(self, line: str, style: str | None = None) -> None:
        self.console.print(line, style=style, highlight=False, soft_wrap=self.plain)

    def _plain_event(self, e: Event) -> None:
        if isinstance(e, Notice):
            self._say(in_flags(e.message), style="yellow")
        elif isinstance(e, CacheProgress):
            if self.lines is None or self.lines.what != f"caching {e.path}":
                # The first line after 10 s: caching a small set says nothing, so an error found in its
                # labels is all that is printed.
                self.lines = LineProgress(self._say, f"caching {e.path}", announce=False)
            self.lines.update(e.done, e.total)
        elif isinstance(e, Started):
            self._say(self._started_line(e))
            self._say(self.legend(), style="dim")  # a terminal shows it under the table
        elif isinstance(e, EpochStarted):
            self.batches = e.batches
            # A line every 30 s within an epoch; its row says when it ends.
            self.lines = LineProgress(
                self._say, f"epoch {e.epoch}", unit="batches", rate="batches/s", every_s=30, announce=False
            )
            self.lines.update(e.done, e.batches)
        elif isinstance(e, BatchDone) and self.lines is not None:
            self.lines.update(e.batch, self.batches)
        elif isinstance(e, EpochEnded):
            row = self._row(e)
            self.rows.append(row)
            self._say("  ".join(f"{name} {value}" for name, value in zip(self.columns, row, strict=True)))

    def _started_line(self, e: Started) -> str:
        self.val = e.val
        if e.unlabeled:
            self.columns = (*self.COLUMNS, self.PSEUDO)
            self.ranked = e.pseudo == "ranked"
        return (
            f"run [bold]{e.run}[/]: {e.train:,} training "
            + (f"(+{e.mixed:,} mixed in) " if e.mixed else "")
            + (f"(+{e.unlabeled:,} unlabelled) " if e.unlabeled else "")
            + f"and {e.val:,} validation images, "
            f"alphabet {e.alphabet!r}, {e.params:,} parameters, {e.device} ({e.precision}, "
            f"{e.threads} threads, {e.world} process(es))" + (f", {e.skipped} bad files skipped" if e.skipped else "")
        )

    def _row(self, e: EpochEnded) -> tuple[str, ...]:
        self.partial = self.partial or not e.complete
        return (
            f"{e.epoch}{'' if e.complete else '~'}{'*' if e.best else ''}",
            f"{e.train_loss:.4f}",
            f"{e.val_loss:.4f}",
            f"{100 * e.seq_accuracy:.2f}%",
            f"{e.mean_edit_distance:.4f}",
            f"{100 * e.cer:.2f}%",
            f"{e.images_per_s:,.0f}",
            _clock(e.elapsed_s),
            *([pseudo_cell(e.pseudo)] if e.pseudo is not None else []),
        )

    def event(self, e: Event) -> None:
        if isinstance(e, TrainResult):
            self.result = e
            return
        if self.plain:
            self._plain_event(e)
            return
        if isinstance(e, Started):
            self.close()  # the caching bar
            self._start(table=True)
        elif self.live is None:
            self._start(table=False)
        if isinstance(e, Notice):  # the library names settings by field; here they are flags
            self.console.print(in_flags(e.message), style="yellow", highlight=False)
        elif isinstance(e, CacheProgress):
            self.progress.update(self.task, description="caching images", completed=e.done, total=e.total)
        elif isinstance(e, Started):
            self.console.print(self._started_line(e), highlight=False)
        elif isinstance(e, EpochStarted):
            self.progress.update(self.task, description=f"epoch {e.epoch}", completed=e.done, total=e.batches, info="")
        elif isinstance(e, BatchDone):
            self.progress.update(self.task, completed=e.batch, info=f"loss {e.loss:.3f}")
        elif isinstance(e, EpochEnded):
            self.rows.append(self._row(e))
            self.live.update(self._render())

    def close(self) -> None:
        if self.live is not None:
            # The live view vanishes, bar and all; the table is then printed for good, ending its line, so
            # neither a half-drawn bar nor an error message runs into what comes next.
            from rich.text import Text

            # Shrink the live area to nothing first: a view taller than the terminal cannot be fully erased
            # when it stops, and the bar's last line was left to run into the tables printed next.
            self.live.update(Text(""), refresh=True)
            self.live.stop()
            if self.table_mode:
                self.console.print(self._table())
            self.live = None

    def final(self, result: TrainResult) -> None:
        from rich.table import Table

        from trainer.intervals import small_set_warning

        best = result.best
        n = best.samples
        # The headline on its own line: as the narrow table's title it wrapped at the table's width.
        which = "Best epoch" if result.keep == "best" else "Kept the last epoch (--keep last),"
        self.console.print(
            f"[bold]{which} {best.epoch}[/]: {100 * best.seq_accuracy:.2f}% sequence accuracy, "
            f"CER {100 * best.cer:.2f}% (validation, {n:,} images)",
            highlight=False,
        )
        warning = small_set_warning(round(best.seq_accuracy * n), n)
        if warning:
            self.console.print(f"warning: {warning}", style="yellow", highlight=False, soft_wrap=self.plain)
        table = Table("label length", "images", "seq accuracy")
        for length, v in best.by_length.items():
            table.add_row(length, f"{v['n']:,}", f"{100 * v['accuracy']:.2f}%")
        self.console.print(table)
        if result.stopped_by_time:
            kept = "the best model is kept" if result.keep == "best" else "best.pt holds the last epoch (--keep last)"
            self.console.print(f"Stopped at the time limit; {kept}.")
        if result.skipped_count:
            self.console.print(f"{result.skipped_count} bad files were skipped, e.g.:", highlight=False)
            for _path, reason in result.skipped[:5]:
                self.console.print(f"  {reason}", highlight=False)
        run = Path(result.run)
        self.console.print(f"best model: {run / 'best.pt'}\ncurves: {run / 'curves.png'}", highlight=False)


def pseudo_cell(p: dict[str, float | int]) -> str:
    """`812/1,600, 97% of 240 right`: readings learnt of those made, and of the teacher's confident readings of
    the validation images, the share that are right and how many there were (what the learnt ones are likely
    worth; 0% of 1 is not 0% of 240). A ranked round: `round 2: 1,000/5,000 chosen, est. 93% right, pool
    0.412`: readings chosen of the pool, their estimated precision, and the teacher's pool estimate."""
    if "estimated_precision" in p:
        return (f"round {p['round']}: {p['passed']:,}/{p['read']:,} chosen, est. {100 * p['estimated_precision']:.0f}% "
                "right, "
                f"pool {p['pool_estimate']:.3f}")  # fmt: skip
    sure = p["val_confident"]
    right = f"{100 * p['val_right'] / sure:.0f}% of {sure:,} right" if sure else "none sure on val"
    return f"{p['passed']:,}/{p['read']:,}, {right}"


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"
