"""adapt's plan as data: stages, each a `captchagen` command a user could also run alone, with the inputs
that decide its output.

For each look (FITS: a style fitted by the image statistics alone, and one fitted also by what the base
model sees of the pool; the user's `style` instead, with no fit): fit-style -> make (a labelled set in that
style) -> train (fine-tune the base model on it, each look an equal share of the time limit). Then compare
(which of the base model and the fine-tuned ones reads the pool better, by an estimate that needs no
label) -> train --unlabeled (self-train from that one on the pool less the images the comparisons read,
in ranked rounds of pseudo-labels, beside its look's synthetic set) -> compare (the self-trained model
against its start, on images it never learnt: adapt returns the start when the estimate says it lost).
With `--labels` (captchagen.adapt.labels) the comparisons rank by accuracy on labelled images no compared
model trained on, and self-training learns from the rest of them.

A stage's inputs are digests of what it really reads: the whole pool's file list, the bytes of the style and
fonts the fit chose, the dataset's shard hashes, the starting model's bytes; and the options that change its
output (`--workers` does not, and the pool's path, relative or absolute, does not either). A stage whose
inputs match those it finished with is done; one whose inputs changed is redone, and the stages after it see
new inputs in turn.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from captchagen.adapt.labels import MIX_SHARE
from captchagen.fitting.pool_fit import RECORD, STYLE_FILE, FitRecord

STATE = "adapt.json"
FIT, DATA, RUNS, CACHE, ESTIMATES, LABELS = "fit", "data", "runs", "cache", "estimates", "labels"
FIT_READER, DATA_READER = "fit-reader", "data-reader"  # the second look's fit and set
SYNTHETIC, ADAPTED = "synthetic", "adapted"
START, RESULT = "start", "result"  # the two comparisons: which model self-training starts from, which is returned
COMPARED = "estimates.json"
MODEL = "model.pt"  # a copy of the model adapt returns, in the one place a user reads with
READINGS = "readings.png"  # held-out pool images with the start's and the self-trained model's readings
OUTPUTS = (
    FIT,
    DATA,
    FIT_READER,
    DATA_READER,
    RUNS,
    ESTIMATES,
    LABELS,
    MODEL,
    READINGS,
)  # what adapt makes in OUT (and may replace); nothing else is touched
ESTIMATE_SAMPLE = 256  # pool images each compared model reads
HOLD_OUT_FROM = 64  # a smaller pool is compared on images self-training learnt: it has none to spare
LEARNT = "self-train-pool.txt"  # in OUT/estimates: the pool images self-training learns (a list file)
# Both training steps count an epoch in this many batches (`train --steps-per-epoch`; train's own is 50 when
# fine-tuning). Each epoch ends in a validation: at 50 batches, reading the 1,016 held-out images of a
# 20,000-image set took a fifth of a fine-tuning epoch and a seventh of a self-training one (wheezy.captcha,
# 2 cores): minutes of a time-limited step, spent on a figure self-training does not even keep by (`--keep last`).
EPOCH_STEPS = 150


def held_out(images: int) -> int:
    """How many of a pool of `images` the comparisons read and self-training never learns: ESTIMATE_SAMPLE, a
    quarter of a pool under 1,024, none of one under HOLD_OUT_FROM. A model self-trained on an image has
    learnt its own reading of it: there its confidence and its agreement across views say little (on
    claptcha, an estimate of 0.531 on learnt images and 0.472 on 1,000 unseen ones, for 59.5% accuracy on them)."""
    return min(ESTIMATE_SAMPLE, images // 4) if images >= HOLD_OUT_FROM else 0


@dataclass(frozen=True)
class Options:
    """What `captchagen adapt` was asked, checked (the command's options, parsed)."""

    pool: Path
    out: Path
    alphabet: str
    min_len: int
    max_len: int
    n: int
    base: str  # as given: a bundled name, a .pt or a run folder
    base_sha256: str  # of the checkpoint file it names: a changed base model redoes training
    time_limit: float  # minutes of training on the synthetic set
    self_time_limit: float  # minutes of self-training on the pool
    seed: int
    fonts: tuple[str, ...]
    font_pack: str | None
    rounds: int
    workers: int | None  # never an input: it changes how fast, not what comes out
    pool_digest: str = ""  # unlabeled.PoolFiles.digest of the pool when adapt started
    font_digest: str = ""  # of the candidate fonts' files
    base_reads_alphabet: bool = True  # the base model knows every character: it can be compared on the pool
    base_file: str = ""  # the checkpoint file `base` names (a bundled name is resolved by the command line)
    pseudo: str = "ranked"  # how self-training chooses the readings it learns (`train --pseudo`)
    labels: Path | None = None  # a folder of labelled pool images (captchagen.adapt.labels)
    labels_digest: str = ""  # of their names and bytes
    style: str | None = None  # a preset or style file drawn instead of a fitted style (no fit-style stage)
    size: tuple[int, int] = (0, 0)  # the pool's commonest image size (what the synthetic set is drawn at)
    pool_images: int = 0  # how many images the pool holds (unlabeled.list_images)
    # The base model's input width, which both training steps read at (0: each chooses one from the images, as
    # where the base's time steps are too few for the longest label: the command line decides).
    base_width: int = 0
    fit: str = "both"  # which looks are fitted (FITS); one only where `style` is given
    case: str = "sensitive"  # "ignore": the site ignores case; the comparisons and self-training read without it

    @property
    def length(self) -> str:
        return f"{self.min_len}-{self.max_len}"

    @property
    def held_out(self) -> int:
        return held_out(self.pool_images)

    @property
    def compared(self) -> int:
        """Pool images each comparison reads: the held-out ones, or a sample of a pool too small to hold any."""
        return self.held_out or ESTIMATE_SAMPLE


@dataclass(frozen=True)
class Stage:
    name: str  # fit, make, train (each with its look's suffix), compare start|result, self-train
    output: Path  # the folder it writes (adapt removes it only when adapt made it and it is stale)
    args: tuple[str, ...]  # after `captchagen`
    inputs: dict[str, str] = field(default_factory=dict)
    trains: bool = False  # a training run: resumed with `train --resume` when interrupted

    @property
    def kind(self) -> str:
        """What it does, whichever look or comparison it is for: fit, make, train, compare, self-train."""
        return self.name.split()[0]

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.inputs, sort_keys=True).encode()).hexdigest()

    def resume_args(self) -> tuple[str, ...]:
        return ("train", "--resume", str(self.output))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _workers(o: Options) -> list[str]:
    return ["--workers", str(o.workers)] if o.workers else []


@dataclass(frozen=True)
class Look:
    """A style adapt draws a synthetic set in and fine-tunes the base model on: its folders in OUT, its stages'
    names and its fine-tuned model's name. Fitted by the image statistics alone, or by them and what the base
    model sees of the images (`fit-style --model`). Neither wins everywhere: fine-tuning on the second read
    claptcha's held-out captchas at 60.8% against 37.4%, and flask-simple-captcha's at 35.1% against 53.5%,
    while the pool's label-free estimate put the better of the two first on four generators of four
    (docs/studies/fit-style.md). So adapt makes both, and the comparison chooses."""

    name: str  # of the fine-tuned model in comparisons and in OUT/runs
    fit: str
    data: str
    by_model: bool  # fit-style --model BASE
    suffix: str = ""  # of its stage names

    def stage(self, name: str) -> str:
        return name + self.suffix


STATISTICS = Look(SYNTHETIC, FIT, DATA, by_model=False)
READER = Look("synthetic-reader", FIT_READER, DATA_READER, by_model=True, suffix=" reader")
FITS = {"both": (STATISTICS, READER), "statistics": (STATISTICS,), "reader": (READER,)}


def looks(o: Options) -> tuple[Look, ...]:
    """The looks adapt fine-tunes on: the user's style alone where one is given (in STATISTICS' folders)."""
    return (STATISTICS,) if o.style is not None else FITS[o.fit]


def fit_stage(o: Options, look: Look = STATISTICS) -> Stage:
    fonts = [a for f in o.fonts for a in ("--font", f)] + (["--font-pack", o.font_pack] if o.font_pack else [])
    reader = ("--model", o.base) if look.by_model else ()
    args = ("fit-style", str(o.pool), "--out", str(o.out / look.fit), "--alphabet", o.alphabet, "--length",
            o.length, "--rounds", str(o.rounds), "--seed", str(o.seed), *reader, *fonts, *_workers(o))  # fmt: skip
    inputs = {"pool": o.pool_digest, "alphabet": o.alphabet, "length": o.length, "rounds": str(o.rounds),
              "seed": str(o.seed), "fonts": o.font_digest}  # fmt: skip
    if look.by_model:
        inputs["reader"] = o.base_sha256
    return Stage(look.stage("fit"), o.out / look.fit, args, inputs)


def make_stage(o: Options, record: FitRecord | None, look: Look = STATISTICS) -> Stage:
    """Once the fit's record (fit.json) says the image size and the fonts chosen; with `style` (no fit),
    that style at the pool's size (pool_fit.drawn_size) in the fonts given (or make's own)."""
    if record is not None:
        width, height = record.size
        fonts = [a for f in record.fonts for a in ("--font", f.path)]
        style, style_digest = str(o.out / look.fit / STYLE_FILE), file_sha256(o.out / look.fit / STYLE_FILE)
        font_digest = ",".join(f.sha256 for f in record.fonts)
    else:
        assert o.style is not None
        width, height = o.size
        fonts = [a for f in o.fonts for a in ("--font", f)] + (["--font-pack", o.font_pack] if o.font_pack else [])
        style = o.style
        style_digest = file_sha256(Path(o.style)) if Path(o.style).is_file() else f"preset:{o.style}"
        font_digest = o.font_digest
    n = look_images(o)
    args = ("make", "--n", str(n), "--style", style, *fonts, "--width", str(width), "--height", str(height),
            "--alphabet", o.alphabet, "--min-len", str(o.min_len), "--max-len", str(o.max_len), "--seed",
            str(o.seed), *_workers(o), "--out", str(o.out / look.data))  # fmt: skip
    inputs = {"style": style_digest, "size": f"{width}x{height}", "alphabet": o.alphabet, "length": o.length,
              "fonts": font_digest, "n": str(n), "seed": str(o.seed)}  # fmt: skip
    return Stage(look.stage("make"), o.out / look.data, args, inputs)


def dataset_digest(data: Path) -> str:
    """What a made dataset holds, from its manifest: the settings' fingerprint and every shard's hash."""
    manifest = json.loads((data / "manifest.json").read_text("utf-8"))
    shards = ",".join(s["sha256"] for s in manifest["shards"])
    return hashlib.sha256(f"{manifest.get('fingerprint')}|{shards}".encode()).hexdigest()


def _common(o: Options) -> tuple[str, ...]:
    return ("--runs-dir", str(o.out / RUNS), "--seed", str(o.seed), "--cache-dir", str(o.out / CACHE),
            "--steps-per-epoch", str(EPOCH_STEPS))  # fmt: skip


def _input(o: Options) -> tuple[str, ...]:
    """`--width` of the base model's input, for both training steps: the pool looks to the model being trained
    as it looked to the base that read it. Chosen from the images instead, a 200x80 pool is read at 80 pixels
    wide where base-v3 read it at 160: fine-tuning must first relearn every glyph at half its width, and on
    claptcha self-training ended at 57.0% held-out against 64.4% at the base's width (base-v3 alone 57.7%;
    docs/studies/adapt.md)."""
    return ("--width", str(o.base_width)) if o.base_width else ()


def train_minutes(o: Options) -> float:
    """Each look's share of the minutes of training on synthetic sets."""
    return round(o.time_limit / len(looks(o)), 4)


def look_images(o: Options) -> int:
    """Each look's share of the `n` synthetic images."""
    return o.n // len(looks(o))


def train_stage(o: Options, look: Look = STATISTICS) -> Stage:
    run = o.out / RUNS / look.name
    minutes = f"{train_minutes(o):g}"
    args = ("train", str(o.out / look.data), "--init-from", o.base, *_input(o), "--time-limit", minutes,
            "--epochs", "1000", "--name", look.name, *_common(o))  # fmt: skip
    inputs = {"data": dataset_digest(o.out / look.data), "base": o.base_sha256, "time limit": minutes,
              "seed": str(o.seed), "input width": str(o.base_width or "from the images"),
              "steps per epoch": str(EPOCH_STEPS)}  # fmt: skip
    return Stage(look.stage("train"), run, args, inputs, trains=True)


@dataclass(frozen=True)
class Candidate:
    """A model a comparison reads the pool with: as `--model` names it, and its file's SHA-256."""

    name: str  # "base" (the model adapt started from) or the stage that made it
    model: str
    sha256: str
    file: Path  # the checkpoint


def base_candidate(o: Options) -> Candidate:
    return Candidate("base", o.base, o.base_sha256, Path(o.base_file))


def synthetic_candidate(o: Options, look: Look = STATISTICS) -> Candidate:
    path = o.out / RUNS / look.name / "best.pt"
    return Candidate(look.name, str(path), file_sha256(path), path)


def adapted_candidate(o: Options) -> Candidate:
    path = o.out / RUNS / ADAPTED / "best.pt"
    return Candidate(ADAPTED, str(path), file_sha256(path), path)


def compare_stage(o: Options, which: str, candidates: list[Candidate], labels: Path | None = None) -> Stage:
    """`captchagen compare` of the candidates on the pool, under the alphabet and length the user gave; with
    `labels`, a folder of labelled images none of them trained on, which ranks them."""
    out = o.out / ESTIMATES / which
    models = [a for c in candidates for a in ("--model", c.model)]
    args = ("compare", str(o.pool), *models, "--reads", o.alphabet, "--length", o.length, "--sample",
            str(o.compared), "--seed", str(o.seed), "--out", str(out / COMPARED),
            *(("--labels", str(labels)) if labels is not None else ()), *_case(o))  # fmt: skip
    inputs = {"pool": o.pool_digest, "models": ",".join(f"{c.name}:{c.sha256}" for c in candidates),
              "alphabet": o.alphabet, "length": o.length, "seed": str(o.seed), "sample": str(o.compared)}  # fmt: skip
    if labels is not None:
        inputs["labels"] = o.labels_digest
    return Stage(f"compare {which}", out, args, _with_case(o, inputs))


def _case(o: Options) -> tuple[str, ...]:
    """`--case ignore` where the site ignores case (compare reads, and self-training learns, without it)."""
    return ("--case", "ignore") if o.case == "ignore" else ()


def _with_case(o: Options, inputs: dict[str, str]) -> dict[str, str]:
    """A stage's inputs, with the case where it is ignored (a stage done before `--case` existed still
    matches when it is not)."""
    return inputs | {"case": o.case} if o.case != "sensitive" else inputs


def self_train_stage(o: Options, start: Candidate, labels: Path | None = None, look: Look = STATISTICS) -> Stage:
    """`train --unlabeled` from `start`: on the pool less the images the comparisons read (OUT/estimates/
    LEARNT lists the rest), or on the whole of a pool too small to hold any out, beside `look`'s synthetic
    set; with `labels` (the part of the user's labels adapt trains on), those drawn into every batch too."""
    # Its validation images are synthetic: the epoch that reads them best is not the one that has learnt the
    # pool longest (on wheezy.captcha, epoch 1 of 56 read 76.9% of held-out captchas, the last 90.9%).
    mix = ("--mix", f"{labels}:{MIX_SHARE:g}") if labels is not None else ()
    pool = o.out / ESTIMATES / LEARNT if o.held_out else o.pool
    args = ("train", str(o.out / look.data), "--init-from", start.model, *_input(o), "--unlabeled", str(pool),
            "--pseudo", o.pseudo, *mix, "--keep", "last", "--time-limit", f"{o.self_time_limit:g}", "--epochs",
            "1000", "--name", ADAPTED, *_case(o), *_common(o))  # fmt: skip
    inputs = {"data": dataset_digest(o.out / look.data), "start": start.sha256, "pool": o.pool_digest,
              "time limit": f"{o.self_time_limit:g}", "seed": str(o.seed), "pseudo": o.pseudo,
              "held out": str(o.held_out), "input width": str(o.base_width or "from the images"),
              "steps per epoch": str(EPOCH_STEPS)}  # fmt: skip
    if labels is not None:
        inputs["labels"] = o.labels_digest
    return Stage("self-train", o.out / RUNS / ADAPTED, args, _with_case(o, inputs), trains=True)


def finished(stage: Stage) -> bool:
    """The stage's output is whole: what a finished stage leaves (checked before it is taken as done)."""
    if stage.kind == "fit":
        return (stage.output / RECORD).is_file() and (stage.output / STYLE_FILE).is_file()
    if stage.kind == "make":
        try:
            return bool(json.loads((stage.output / "manifest.json").read_text("utf-8")).get("complete"))
        except (OSError, ValueError):
            return False
    if stage.kind == "compare":
        return read_comparison(stage.output) is not None
    return (stage.output / "best.pt").is_file()


@dataclass(frozen=True)
class Score:
    """A compared model's estimate on the pool, its accuracy on labelled images (None: none given), and the
    models whose estimates its own is clearly above (None: a comparison made before adapt kept that)."""

    estimate: float
    labelled: float | None = None
    above: tuple[str, ...] | None = ()

    @property
    def rank(self) -> tuple[float, float]:
        """What models are ranked by: measured accuracy first where there is one, then the estimate."""
        return (self.labelled if self.labelled is not None else 0.0, self.estimate)

    def beats(self, other: Score, other_model: str) -> bool:
        """Whether this model reads the pool better than `other` (the model `other_model`): where compare
        says it is above it (`clearly_above`: by the labelled images where they tell the two apart, else by
        the estimate where it does, else by the labels' count; with no label, estimates apart by less than
        the chance of the sample leave the earlier model). A comparison saved before compare said so: by rank."""
        if self.above is None:
            return self.rank > other.rank
        return other_model in self.above


def read_comparison(folder: Path) -> dict[str, Score] | None:
    """Each compared model's score (by `--model` as given) from a finished comparison; None if there is none
    or it is damaged. A comparison with labels from before compare let them decide only where they tell two
    models apart (no `clearly_above_by`) listed what each was above by the estimate alone: it ranks by rank."""
    try:
        data = json.loads((folder / COMPARED).read_text("utf-8"))
        labelled = any(m.get("labelled") is not None for m in data["models"])
        by_estimate_alone = labelled and "clearly_above_by" not in data
        return {
            str(m["model"]): Score(
                float(m["estimate"]),
                None if m.get("labelled") is None else float(m["labelled"]),
                None
                if m.get("clearly_above") is None or by_estimate_alone
                else tuple(str(x) for x in m["clearly_above"]),
            )
            for m in data["models"]
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None
