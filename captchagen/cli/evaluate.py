"""`captchagen eval`: score a model on a dataset and show where it fails; `captchagen compare`: rank models on
a pool with no labels (importing this imports no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from captchagen.cli.common import beam_option, data_options, library_errors, model_options, open_reader, reads_option
from captchagen.cli.options import ExistingPath, UsageFailure, answer_option, case_option, read_length_option
from trainer.inference.lengths import LengthChoice


@click.command(name="eval")
@click.argument("data", type=ExistingPath(path_type=Path))
@model_options("to score")
@reads_option
@read_length_option
@case_option
@answer_option
@beam_option
@click.option(
    "--worst",
    type=click.IntRange(min=0),
    default=24,
    show_default=True,
    help="How many of the most confident mistakes to draw.",
)
@click.option(
    "--worst-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG grid of the worst mistakes, never inside DATA.  [default: worst-<DATA name>.png beside the "
    "model; none for a bundled model]",
)
@data_options("Skip unreadable images and labels outside the alphabet.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as one JSON object.")
@library_errors
def evaluate(
    data: Path,
    model_path: str | None,
    runs_dir: str,
    reads: str | None,
    length: LengthChoice,
    case: str,
    answer: bool,
    beam: int,
    worst: int,
    worst_out: Path | None,
    skip_bad: bool,
    cache_dir: str | None,
    as_json: bool,
) -> None:
    """Score a model on any dataset the trainer reads: accuracy, edit distance and CER (overall and by length),
    character confusions, confidence of right and wrong answers, a reject curve, and a grid of the worst
    mistakes.

    Example: captchagen eval data/test-seed1
    """
    from captchagen.preview import write_grid
    from trainer.data.cache import default_cache_dir
    from trainer.inference.scoring import answer_accuracy, report, score_dataset
    from trainer.inference.scoring import worst as worst_of

    path, reader = open_reader(runs_dir, model_path, reads, length, case)
    grid, not_drawn = _worst_out(path, data, worst_out) if worst else (None, None)
    scored, skipped = score_dataset(
        reader,
        data,
        Path(cache_dir) if cache_dir else default_cache_dir(),
        beam=beam,
        skip_bad=skip_bad,
        notice=lambda m: click.echo(m, err=True),
    )
    numbers = {
        "model": str(path),
        "data": str(data),
        "reads": reader.reads,
        "lengths": reader.lengths,
        "case": reader.case,
        "beam": beam,
        "skipped": skipped,
        **report(scored),
    }
    if answer:
        numbers["answer_accuracy"] = answer_accuracy(scored)
    mistakes = worst_of(scored, worst)
    if mistakes and grid is not None:
        cells = [
            (Path(s.path), [(f"true {s.truth}", "black"), (f"read {s.text} ({s.confidence:.2f})", "red")])
            for s in mistakes
        ]
        numbers["worst_png"] = str(write_grid(cells, grid))
    elif mistakes and not_drawn:
        click.echo(not_drawn, err=True)
    if as_json:
        click.echo(json.dumps(numbers))
    else:
        _show(numbers)


def _worst_out(model: Path, data: Path, given: Path | None) -> tuple[Path | None, str | None]:
    """Where the grid of worst mistakes goes: --worst-out, else worst-<DATA's name>.png in the model's run
    folder. A bundled model has none (nothing is written into the package, and a file dropped in the working
    folder would replace the last one there): its grid is drawn only where --worst-out says. Never inside
    DATA, where the next `eval` or `test` would take it for a captcha: a given path there is refused, a
    default one is skipped with a line saying so."""
    from trainer.bundled import is_bundled

    resolved = data.resolve()
    name = resolved.name if resolved.is_dir() else resolved.stem
    if given is None and is_bundled(model):
        return (
            None,
            f"worst mistakes not drawn: {model.name} is a bundled model with no run folder; pass --worst-out PATH",
        )
    out = given or model.parent / f"worst-{name or 'data'}.png"
    if resolved.is_dir() and out.resolve().is_relative_to(resolved):
        if given:
            raise UsageFailure(f"--worst-out {given} is inside DATA ({data}): eval never writes into the data it reads")
        return None, f"worst mistakes not drawn: {out} would be inside DATA ({data}); pass --worst-out PATH"
    return out, None


def _show(n: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    overall = Table(
        "images",
        "seq accuracy",
        "mean edit distance",
        "CER",
        title=f"{n['data']} read by {n['model']}",
        title_justify="left",
    )
    overall.add_row(
        f"{n['samples']:,}",
        f"{100 * n['seq_accuracy']:.2f}%",
        f"{n['mean_edit_distance']:.4f}",
        f"{100 * n['cer']:.2f}%",
    )
    console.print(overall)
    if "answer_accuracy" in n:
        console.print(f"answers right: {100 * n['answer_accuracy']:.2f}% (the reading's sum against the label's)")
    from trainer.intervals import small_set_warning

    warning = small_set_warning(round(n["seq_accuracy"] * n["samples"]), n["samples"], what="test")
    if warning:
        console.print(f"warning: {warning}", style="yellow", highlight=False)
    lengths = Table("label length", "images", "seq accuracy", title="By label length", title_justify="left")
    for k, v in n["by_length"].items():
        lengths.add_row(k, f"{v['n']:,}", f"{100 * v['accuracy']:.2f}%")
    console.print(lengths)
    if n["confusions"]:
        conf = Table("true", "read as", "count", title="Commonest confusions", title_justify="left")
        for c in n["confusions"]:
            conf.add_row(c["truth"] or "(none)", c["read"] or "(none)", str(c["count"]))
        console.print(conf)
    reject = Table(
        "reject least confident", "threshold", "images kept", "accuracy", title="Reject curve", title_justify="left"
    )
    for r in n["reject_curve"]:
        threshold = "-" if r["threshold"] is None else f"{r['threshold']:.3f}"
        reject.add_row(f"{100 * r['rejected_share']:.0f}%", threshold, f"{r['kept']:,}", f"{100 * r['accuracy']:.2f}%")
    console.print(reject)
    right, wrong = n["mean_confidence_correct"], n["mean_confidence_wrong"]
    console.print(
        "mean confidence: right answers "
        + ("-" if right is None else f"{right:.3f}")
        + ", wrong answers "
        + ("-" if wrong is None else f"{wrong:.3f}"),
        highlight=False,
    )
    if n.get("worst_png"):
        console.print(f"worst mistakes: {n['worst_png']}", highlight=False)
    if n["skipped"]:
        console.print(f"{n['skipped']} bad files skipped", highlight=False)


@click.command()
@click.argument("pool", type=ExistingPath(file_okay=False, path_type=Path))
@click.option("--model", "models", multiple=True, required=True, metavar="PATH",
              help="A model to compare (repeat: two or more). A checkpoint, a run folder, an .onnx, or a bundled "
              "name (base, base-v2, base-v3).")  # fmt: skip
@reads_option
@read_length_option
@case_option
@click.option("--sample", type=click.IntRange(min=8), default=256, show_default=True,
              help="Pool images every model reads (a seeded sample, the same for each).")  # fmt: skip
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the sample.")
@click.option("--labels", type=ExistingPath(file_okay=False, path_type=Path),
              help="A folder of the site's captchas you labelled (<id>_<label>.png, as `captchagen label` writes): "
              "each model's accuracy on them is measured, and ranks the models instead of the estimate.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON here (written whole or not at all), with the images read and "
              "each model's readings of them.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object (as --out writes them).")
@library_errors
def compare(pool: Path, models: tuple[str, ...], reads: str | None, length: LengthChoice, case: str, sample: int,
            seed: int, labels: Path | None, out: Path | None, as_json: bool) -> None:  # fmt: skip
    """Rank models on a folder of a site's captchas, with no label: which reads it better?

    Every model reads the same sample of POOL under the same rule (--reads, --length, --case). The estimate
    is the mean probability a model gives its readings, times the share of images it reads the same when
    they are shifted by a pixel or two. Beside it: confidence and views alone, how often a reading at any
    length has the --length given (fits), and how often it reads exactly as the other models do (peers).
    An estimate, not a measurement: a model self-trained on a pool grows sure of its own readings, right or
    wrong, most on the images it learnt but on the others too (see docs/studies/pool-estimate.md for where
    it tracks accuracy and where it does not); a few labelled images and `eval` measure. A model is marked
    best over one listed before it only where its estimate is clearly higher (in 97.5% of resamples of the
    images): list the model you have first. With --labels, where it reads clearly more of them right by
    the same rule; where the labelled images cannot tell the two apart, the estimate decides where it can,
    and where neither can, how many labelled images each read right.

    Example: captchagen compare collected/ --model base-v3 --model adapted/model.pt --length 4
    """
    from captchagen import atomic
    from captchagen.unlabeled import list_images, seeded_sample
    from trainer.inference.estimate import LABELS_THEN_ESTIMATE, reads_better
    from trainer.inference.estimate import best as best_of
    from trainer.inference.estimate import compare as compare_models

    if len(models) < 2:
        raise UsageFailure("--model: give two or more models to compare")
    files = [str(p) for p in list_images(pool).paths]
    if not files:
        raise UsageFailure(f"{pool} holds no images to compare on")
    labelled = _labelled(labels) if labels is not None else None
    chosen = seeded_sample(files, sample, seed)
    readers = {}
    for name in dict.fromkeys(models):
        readers[name] = open_reader("runs", name, reads, length, case)[1]
    found = compare_models(
        readers, chosen, lambda name: click.echo(f"reading the pool with {name}", err=True), labelled
    )
    best = best_of(found)
    first = next(iter(readers.values()))
    numbers = {
        "pool": str(pool),
        "sample": len(chosen),
        "seed": seed,
        "reads": first.reads,
        "lengths": first.lengths,
        "case": case,
        "labelled": None if labelled is None else len(labelled),
        # which models each reads better: by the labels where they tell two apart beyond chance, else by the
        # estimate where it does, else by the labels' count; with no label, by the estimate alone (adapt decides by it)
        "models": [
            {
                **e.row(),
                "clearly_above": [o.model for o in found if o is not e and reads_better(e, o)],
                "readings": list(e.readings),
            }
            for e in found
        ],
        "best": best.model,
        "images": list(found[0].paths),  # the images read, in the order of each model's readings
    }
    if labelled is not None:
        numbers["clearly_above_by"] = LABELS_THEN_ESTIMATE
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(out, numbers)
    if as_json:
        click.echo(json.dumps(numbers))
        return
    from rich.console import Console
    from rich.table import Table

    title = f"{len(chosen)} images of {pool}, no labels" + (
        f"; {len(labelled)} labelled in {labels}" if labelled else ""
    )
    columns = ["model", "estimate", "confidence", "views", "fits", "peers"] + ["labelled"] * bool(labelled)
    table = Table(*columns, title=title, title_justify="left")
    for e in found:
        shares = (e.confidence, e.views, e.fits, e.peers) + ((e.labelled,) if labelled else ())
        cells = ["-" if v is None else f"{100 * v:.1f}%" for v in shares]
        mark = " *" if e is best else ""
        table.add_row(f"{e.model}{mark}", f"{e.estimate:.3f}", *cells)
    Console().print(table, highlight=False)
    by = "accuracy on the labelled images" if labelled else "the estimate"
    click.echo(f"* reads this pool best by {by}: {best.model}")


def _labelled(folder: Path) -> list[tuple[str, str]]:
    """(path, label) of every image in `folder` whose name holds a label, read as `train` reads a folder;
    UsageFailure if none does."""
    from captchagen.errors import BadInput
    from trainer.data.sources import open_source

    try:
        source = open_source(folder)
    except BadInput:
        raise UsageFailure(
            f"--labels {folder} holds no labelled images (<id>_<label>.png, as `captchagen label` writes)"
        ) from None
    return [(str(p), label) for g in source.groups for p, label in zip(g.paths, g.labels, strict=True)]
