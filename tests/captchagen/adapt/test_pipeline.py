"""adapt's pipeline with a stand-in runner (no real step runs): when a stage is done, resumed, redone or
refused, and that nothing adapt did not make is replaced or deleted."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from captchagen.adapt import pipeline
from captchagen.adapt import readings as read_back
from captchagen.adapt.plan import EPOCH_STEPS, Options, Score, held_out, read_comparison
from captchagen.cli.adapt import training_width
from captchagen.errors import BadInput
from captchagen.fitting.pool_fit import FitRecord, PoolSummary
from captchagen.lock import FolderBusy, FolderLock
from captchagen.unlabeled import list_images, seeded_sample

FULL = ["fit-style", "make", "train", "compare", "self-train", "compare"]


def kind(model: str) -> str:
    """Which of adapt's candidates a `--model` names."""
    for name in ("adapted", "synthetic", "synthetic-reader"):
        if f"/{name}/" in model:
            return name
    return "base"


class FakeRunner:
    """Writes what each command would (fit.json and style.toml, a complete manifest, best.pt, a comparison
    giving each kind of candidate its `estimates`), records the commands; `fail_in` makes that command exit 1,
    `stop_in` leaves a training run as a killed one would."""

    def __init__(
        self,
        fail_in: str | None = None,
        stop_in: str | None = None,
        style: str = "a",
        estimates: dict[str, float] | None = None,
        labelled: dict[str, float] | None = None,
        noise: float = 0.0,
        label_noise: float = 0.0,
        readings: dict[str, str] | None = None,
    ) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail_in, self.stop_in, self.style = fail_in, stop_in, style
        self.estimates = estimates or {"base": 0.3, "synthetic": 0.4, "adapted": 0.5}
        self.labelled = labelled or {"base": 0.2, "synthetic": 0.3, "adapted": 0.6}  # with --labels
        self.noise = noise  # estimates closer than this are not clearly apart (compare's `clearly_above`)
        self.label_noise = label_noise  # nor labelled accuracies this close (reads_better)
        self.readings = readings or {}  # what each kind of candidate reads every compared image as ("AB")

    def __call__(self, argv: Sequence[str]) -> int:
        argv = tuple(argv)
        self.calls.append(argv)
        verb = "resume" if "--resume" in argv else "self-train" if "--unlabeled" in argv else argv[0]
        if verb == self.fail_in:
            return 1
        out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else None
        if verb == "fit-style":
            assert out is not None
            out.mkdir(parents=True, exist_ok=True)
            (out / "style.toml").write_text(f'base = "default"\n# {self.style}\n')
            record = FitRecord(PoolSummary("p", 6, 6, "d", 0), {}, (80, 32), (), 0.5, 0.1, {}, (0.5,), {})
            (out / "fit.json").write_text(json.dumps(record.to_dict()))
        elif verb == "compare":
            assert out is not None
            models = [argv[i + 1] for i, a in enumerate(argv) if a == "--model"]
            out.parent.mkdir(parents=True, exist_ok=True)
            est = {m: self.estimates[kind(m)] for m in models}
            acc = {m: self.labelled[kind(m)] for m in models} if "--labels" in argv else None

            def above(m: str, o: str) -> bool:  # as reads_better: labels, then the estimate, then the count
                if acc is not None and abs(acc[m] - acc[o]) > self.label_noise:
                    return acc[m] > acc[o]
                if abs(est[m] - est[o]) > self.noise:
                    return est[m] > est[o]
                return acc is not None and acc[m] > acc[o]

            rows = [{"model": m, "estimate": est[m], "labelled": None if acc is None else acc[m],
                     "clearly_above": [o for o in models if o != m and above(m, o)]} for m in models]  # fmt: skip
            sample, seed = (int(argv[argv.index(flag) + 1]) for flag in ("--sample", "--seed"))
            images = seeded_sample([str(p) for p in list_images(Path(argv[1])).paths], sample, seed)
            for r in rows:
                r["readings"] = [self.readings.get(kind(str(r["model"])), "AB")] * len(images)
            saved = {"models": rows, "best": max(rows, key=lambda r: r["estimate"])["model"], "images": images}
            out.write_text(json.dumps(saved | ({"clearly_above_by": "labels"} if acc is not None else {})))
        elif verb == "make":
            assert out is not None
            out.mkdir(parents=True, exist_ok=True)
            manifest = {"complete": True, "fingerprint": "f", "shards": [{"sha256": self.style}]}
            (out / "manifest.json").write_text(json.dumps(manifest))
        else:
            named = (
                Path(argv[argv.index("--runs-dir") + 1]) / argv[argv.index("--name") + 1] if verb != "resume" else None
            )
            run = named or Path(argv[2])
            run.mkdir(parents=True, exist_ok=True)
            if verb == self.stop_in:
                return 130  # killed before it saved anything
            (run / "best.pt").write_bytes(os.urandom(16))
        return 0


def verbs(calls: list[tuple[str, ...]]) -> list[str]:
    return ["resume" if "--resume" in c else "self-train" if "--unlabeled" in c else c[0] for c in calls]


@pytest.fixture
def options(tmp_path) -> Options:
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in range(5):
        (pool / f"p{i}.png").write_bytes(b"x" * i)
    (tmp_path / "base.pt").write_bytes(b"the base model")
    return Options(pool, tmp_path / "out", "AB", 4, 4, 100, "base", "sha-base", 1.0, 1.0, 0, (), None, 2, 1,
                   pool_digest=list_images(pool).digest(), font_digest="fonts",
                   base_file=str(tmp_path / "base.pt"), fit="statistics")  # fmt: skip


def run(o: Options, runner: FakeRunner) -> list[str]:
    said: list[str] = []
    pipeline.run(o, said.append, runner)
    return said


def done(said: list[str]) -> list[str]:
    return [line.split(":")[0] for line in said if ": done (" in line]


def test_a_finished_adapt_is_done_whatever_the_pools_path_or_workers(options):
    runner = FakeRunner()
    run(options, runner)
    assert verbs(runner.calls) == FULL
    absolute = list_images(options.pool.resolve()).digest()
    again = replace(options, pool=options.pool.resolve(), workers=2, pool_digest=absolute)
    said = run(again, runner)
    assert len(runner.calls) == 6  # nothing ran again
    assert done(said) == ["fit", "make", "train", "compare start", "self-train", "compare result"]


def test_adapt_ends_saying_where_its_minutes_went_by_kind_of_step_and_what_was_done_before(options):
    ticks = iter(range(0, 10_000, 30))  # a clock that moves 30 s at each look
    said: list[str] = []
    pipeline.run(options, said.append, FakeRunner(), clock=lambda: float(next(ticks)))
    # each step runs between two looks (30 s), the two comparisons add up, and the whole run spans all 14 looks
    assert said[-1] == "minutes: fit 0.5, make 0.5, train 0.5, compare 1.0, self-train 0.5; 6.5 in all"
    said = []
    pipeline.run(options, said.append, FakeRunner(), clock=lambda: float(next(ticks)))
    assert said[-1] == (
        "minutes: no step ran; 0.5 in all (done before this run: fit, make, train, compare, self-train)"
    )


def test_a_changed_pool_redoes_the_fit_and_the_self_training_and_keeps_what_did_not_change(options):
    runner = FakeRunner()
    run(options, runner)
    (options.pool / "p4.png").write_bytes(b"other bytes")  # any image, in the fit's sample or not
    changed = replace(options, pool_digest=list_images(options.pool).digest())
    said = run(changed, runner)
    # The fit came out the same (the runner draws the same style): make and train are still done.
    assert verbs(runner.calls[6:]) == ["fit-style", "compare", "self-train", "compare"]
    assert any("the pool changed since fit last ran" in line for line in said)
    assert any(line.startswith("note: removed") and "runs/adapted" in line for line in said)


def test_a_changed_fit_redoes_every_stage_after_it(options):
    run(options, FakeRunner())
    runner = FakeRunner(style="b")
    said = run(replace(options, rounds=3), runner)
    assert verbs(runner.calls) == FULL
    assert any("`rounds` changed" in line for line in said)
    assert any("the fitted style changed" in line for line in said)


def test_an_interrupted_training_is_resumed_and_one_killed_before_saving_restarts_with_a_true_note(options):
    with pytest.raises(pipeline.StageFailed):
        run(options, FakeRunner(stop_in="train"))
    said = run(options, runner := FakeRunner())
    assert verbs(runner.calls) == FULL[2:]  # fit and make done; the run had no last.pt
    assert any("stopped before it saved anything" in line for line in said)
    assert not any("other options" in line for line in said)

    (options.out / "runs" / "adapted" / "best.pt").unlink()
    state = json.loads((options.out / "adapt.json").read_text())
    state["stages"]["self-train"]["done"] = False  # as if stopped midway, with a last.pt saved
    (options.out / "adapt.json").write_text(json.dumps(state))
    (options.out / "runs" / "adapted" / "last.pt").write_bytes(b"saved")
    run(options, runner := FakeRunner())
    assert runner.calls[0] == ("train", "--resume", str(options.out / "runs" / "adapted"))
    assert verbs(runner.calls[1:]) == ["compare"]  # the resumed model is compared again


@pytest.mark.parametrize("theirs", ["data", "fit", "fit-reader", "data-reader", "runs", "estimates", "model.pt",
                                    "readings.png"])  # fmt: skip
def test_anything_adapt_did_not_make_is_refused_before_anything_is_written(options, theirs):
    mine = options.out / theirs / "mine.txt" if "." not in theirs else options.out / theirs
    mine.parent.mkdir(parents=True)
    mine.write_text("keep")
    (options.out / "notes.txt").write_text("mine too")
    runner = FakeRunner()
    with pytest.raises(BadInput, match=f"{theirs} is in `out` but not made by this adapt"):
        run(options, runner)
    assert runner.calls == [] and mine.read_text() == "keep" and (options.out / "notes.txt").exists()
    assert not (options.out / "adapt.json").exists()


def test_a_stale_run_another_process_holds_is_not_deleted(options):
    run(options, FakeRunner())
    held = options.out / "runs" / "synthetic"
    with FolderLock(held, "train"):  # an orphaned `train` still writing there
        with pytest.raises(FolderBusy, match="in use by another captchagen train"):
            run(replace(options, time_limit=2.0), FakeRunner())
    assert (held / "best.pt").exists()


def test_one_adapt_per_out(options):
    options.out.mkdir()
    with FolderLock(options.out, "adapt"), pytest.raises(FolderBusy, match="another captchagen adapt"):
        run(options, FakeRunner())


@pytest.mark.parametrize("damage", ["garbage{", '{"done": ["fit"], "started": 5, "made": "x"}', "[]",
                                    '{"version": 2, "made": ["fit"], "stages": {"fit": 3}}'])  # fmt: skip
def test_a_damaged_state_file_is_a_notice_and_nothing_in_out_is_taken_as_adapts(options, damage):
    run(options, FakeRunner())
    (options.out / "adapt.json").write_text(damage)
    said: list[str] = []
    with pytest.raises(BadInput, match="not made by this adapt"):
        pipeline.run(options, said.append, FakeRunner())
    assert said and "adapt.json" in said[0] and (options.out / "runs" / "adapted" / "best.pt").exists()


def test_a_state_file_of_the_first_adapt_redoes_its_stages_in_the_folders_it_made(options):
    run(options, FakeRunner())
    shutil.rmtree(options.out / "estimates")  # the first adapt compared nothing and kept no model.pt
    (options.out / "model.pt").unlink()
    old = {"done": {"fit": [], "make": [], "train": [], "self-train": []}, "started": {}, "made": ["train"]}
    (options.out / "adapt.json").write_text(json.dumps(old))
    said = run(options, runner := FakeRunner())
    assert verbs(runner.calls) == FULL
    assert "earlier captchagen" in said[0]


def test_out_inside_the_pool_or_a_file_is_refused(options, tmp_path):
    with pytest.raises(BadInput, match="inside the pool"):
        pipeline.check(replace(options, out=options.pool / "adapted"))
    (tmp_path / "afile").write_text("")
    with pytest.raises(BadInput, match="is a file"):
        pipeline.check(replace(options, out=tmp_path / "afile"))
    with pytest.raises(BadInput, match="cannot write"):
        pipeline.run(replace(options, out=tmp_path / "afile" / "sub"), print, FakeRunner())


# ---- choosing by the pool: where self-training starts, and what adapt returns ----


def _init_from(runner: FakeRunner) -> str:
    self_train = next(c for c in runner.calls if "--unlabeled" in c)
    return kind(self_train[self_train.index("--init-from") + 1])


@pytest.mark.parametrize(
    ("estimates", "start", "returned"),
    [
        ({"base": 0.3, "synthetic": 0.4, "adapted": 0.5}, "synthetic", "adapted"),
        ({"base": 0.5, "synthetic": 0.2, "adapted": 0.6}, "base", "adapted"),  # the fine-tuning lost: skipped
        ({"base": 0.5, "synthetic": 0.2, "adapted": 0.4}, "base", "base"),  # self-training lost too
        ({"base": 0.3, "synthetic": 0.4, "adapted": 0.35}, "synthetic", "synthetic"),
        ({"base": 0.4, "synthetic": 0.4, "adapted": 0.4}, "base", "base"),  # ties: the earlier model
        # estimates apart by less than the sample's chance (as 0.0022 against 0.0012 on a pool no model reads,
        # where the fine-tuned start read less than the base): the earlier model stays, the start and the end
        ({"base": 0.0012, "synthetic": 0.0022, "adapted": 0.003, "noise": 0.01}, "base", "base"),
        ({"base": 0.30, "synthetic": 0.35, "adapted": 0.36, "noise": 0.02}, "synthetic", "synthetic"),
    ],
)
def test_self_training_starts_from_what_reads_the_pool_best_and_adapt_never_returns_less(options, estimates, start,
                                                                                        returned):  # fmt: skip
    said: list[str] = []
    estimates = dict(estimates)
    runner = FakeRunner(estimates=estimates, noise=estimates.pop("noise", 0.0))
    model = pipeline.run(options, said.append, runner)
    files = {"base": options.base_file, "synthetic": options.out / "runs" / "synthetic" / "best.pt",
             "adapted": options.out / "runs" / "adapted" / "best.pt"}  # fmt: skip
    assert model == options.out / "model.pt" and model.read_bytes() == Path(files[returned]).read_bytes()
    assert any(line.endswith(f"model.pt is the {returned} model ({'base' if returned == 'base' else files[returned]})")
               for line in said)  # fmt: skip
    assert _init_from(runner) == start
    assert estimates[returned] >= max(estimates["base"], estimates[start])  # never below where it started
    assert any(f"self-training starts from {start}" in line for line in said)
    assert any("adapt returns the start" in line for line in said) == (returned != "adapted")
    # a self-trained model kept on the estimate alone comes with the way to measure it instead
    advice = [line for line in said if "label-free estimate alone" in line]
    assert bool(advice) == (returned == "adapted")
    # labelled in the page's order: the model's least sure first would judge it on its worst images
    assert all(f"captchagen label {options.pool} --out LABELLED, then" in line for line in advice)
    state = json.loads((options.out / "adapt.json").read_text())
    assert state["estimates"] == {"start": {k: estimates[k] for k in ("base", "synthetic")}, "result": estimates}


def test_a_changed_start_redoes_the_self_training(options):
    run(options, FakeRunner(estimates={"base": 0.3, "synthetic": 0.4, "adapted": 0.5}))
    said = run(replace(options, seed=options.seed), runner := FakeRunner(estimates={"base": 0.5, "synthetic": 0.4,
                                                                                      "adapted": 0.6}))  # fmt: skip
    # The comparison is done (its inputs did not change), so its saved estimates stand: same start.
    assert verbs(runner.calls) == [] and done(said)[-1] == "compare result"


def test_a_base_model_that_lacks_characters_is_not_compared_and_the_fine_tuned_one_starts(options):
    said: list[str] = []
    runner = FakeRunner(estimates={"base": 0.9, "synthetic": 0.2, "adapted": 0.3})
    model = pipeline.run(replace(options, base_reads_alphabet=False), said.append, runner)
    compared = [c for c in runner.calls if c[0] == "compare"]
    assert all("base" not in [c[i + 1] for i, a in enumerate(c) if a == "--model"] for c in compared)
    assert _init_from(runner) == "synthetic"
    assert model.read_bytes() == (options.out / "runs" / "adapted" / "best.pt").read_bytes()


def _arg(call: tuple[str, ...], flag: str) -> str | None:
    return call[call.index(flag) + 1] if flag in call else None


@pytest.fixture
def labelled(tmp_path) -> Path:
    folder = tmp_path / "labelled"
    folder.mkdir()
    for i in range(7):
        (folder / f"img{i}_AB{i % 3}A.png").write_bytes(f"image {i}".encode())
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_labels_choose_the_start_check_the_result_on_held_back_images_and_train_on_the_rest(options, labelled):
    before = {p.name: p.read_bytes() for p in labelled.iterdir()}
    runner = FakeRunner()
    said = run(replace(options, labels=labelled, labels_digest="l1"), runner)
    compares = [c for c in runner.calls if c[0] == "compare"]
    train_part, check_part = options.out / "labels" / "train", options.out / "labels" / "check"
    # choosing the start: all the labels (neither model trained on them); judging the result: the held-back part
    assert _arg(compares[0], "--labels") == str(labelled) and _arg(compares[1], "--labels") == str(check_part)
    self_train = next(c for c in runner.calls if "--unlabeled" in c)
    assert _arg(self_train, "--mix") == f"{train_part}:0.25" and _arg(self_train, "--pseudo") == "ranked"
    trained = sorted(p.name.split("-", 1)[1] for p in train_part.iterdir())
    checked = sorted(p.name.split("-", 1)[1] for p in check_part.iterdir())
    assert len(checked) == 3 and not set(trained) & set(checked)
    assert sorted(trained + checked) == sorted(n for n in before if n.endswith(".png"))
    assert {p.name: p.read_bytes() for p in labelled.iterdir()} == before  # the user's folder is only read
    assert any("are trained on, 3 held back" in line for line in said)
    assert not any("label-free estimate alone" in line for line in said)  # labels measured it
    state = json.loads((options.out / "adapt.json").read_text())
    assert state["labelled"]["result"] == {"base": 0.2, "synthetic": 0.3, "adapted": 0.6}
    assert "labels" in state["made"]


def test_measured_accuracy_on_held_back_labels_overrules_the_estimate(options, labelled):
    said: list[str] = []
    runner = FakeRunner(estimates={"base": 0.3, "synthetic": 0.4, "adapted": 0.9},
                        labelled={"base": 0.5, "synthetic": 0.3, "adapted": 0.4})  # fmt: skip
    model = pipeline.run(replace(options, labels=labelled, labels_digest="l1"), said.append, runner)
    assert _init_from(runner) == "base"  # the labels chose it, where the estimate prefers the fine-tuned model
    assert model.read_bytes() == Path(options.base_file).read_bytes()  # adapted: 40% < base's 50% on held-back
    assert any("the label-free estimate would have chosen synthetic" in line for line in said)
    assert any("accuracy on the held-back labels is not above its start's (40.0% against 50.0%)" in line
               for line in said)  # fmt: skip


def test_changed_labels_are_split_again_and_redo_what_they_feed(options, labelled):
    with_labels = replace(options, labels=labelled, labels_digest="l1")
    run(with_labels, FakeRunner())
    (labelled / "img9_BBBA.png").write_bytes(b"one more")
    runner = FakeRunner()
    said = run(replace(with_labels, labels_digest="l2"), runner)
    assert verbs(runner.calls) == ["compare", "self-train", "compare"]
    assert any("the labelled images changed" in line for line in said)
    assert len(list((options.out / "labels").rglob("*.png"))) == 8


def test_the_way_pseudo_labels_are_chosen_is_an_input_of_the_self_training(options):
    run(options, FakeRunner())
    runner = FakeRunner()
    said = run(replace(options, pseudo="threshold"), runner)
    assert verbs(runner.calls) == ["self-train", "compare"]
    assert _arg(runner.calls[0], "--pseudo") == "threshold"
    assert any("`pseudo` changed" in line for line in said)


def test_labels_inside_out_or_out_inside_labels_are_refused(options, labelled):
    inside = options.out / "labels"
    shutil.copytree(labelled, inside)
    with pytest.raises(BadInput, match="is inside `out`"):
        pipeline.check(replace(options, labels=inside))
    with pytest.raises(BadInput, match="is inside `labels`"):
        pipeline.check(replace(options, labels=labelled, out=labelled / "adapted"))
    assert sorted(p.name for p in inside.iterdir()) == sorted(p.name for p in labelled.iterdir())


def test_a_labels_folder_without_labelled_images_is_refused_before_any_work(options, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(BadInput, match="holds no labelled images"):
        pipeline.check(replace(options, labels=empty))
    assert not options.out.exists()


def test_a_style_given_skips_the_fit_and_draws_the_synthetic_set_at_the_pools_size(options):
    runner = FakeRunner()
    said = run(replace(options, style="varied", size=(90, 30)), runner)
    assert verbs(runner.calls) == FULL[1:]  # no fit-style
    make = runner.calls[0]
    assert _arg(make, "--style") == "varied" and (_arg(make, "--width"), _arg(make, "--height")) == ("90", "30")
    assert any("fit-style: skipped" in line for line in said) and not (options.out / "fit").exists()
    runner = FakeRunner(style="b")  # another style: other images, so every later stage runs again
    said = run(replace(options, style="clean", size=(90, 30)), runner)
    assert verbs(runner.calls) == FULL[1:] and any("the fitted style changed" in line for line in said)


def test_a_comparison_saved_before_clearly_above_ranks_by_the_estimate_alone():
    """An adapt resumed over an estimates.json written before compare kept `clearly_above`: the old rule."""
    old, new = Score(0.31, above=None), Score(0.30, above=None)
    assert old.beats(new, "new") and not new.beats(old, "old")
    assert not Score(0.31, above=()).beats(new, "new")  # kept and empty: not clearly above
    assert Score(0.2, 0.6, None).beats(Score(0.9, 0.5, None), "x")  # measured accuracy first, where there is some


def test_a_labelled_comparison_saved_before_labels_decided_only_where_they_tell_ranks_by_accuracy(tmp_path):
    """Its `clearly_above` was by the estimate alone: read as it was meant, accuracy first."""
    rows = [{"model": "a", "estimate": 0.9, "labelled": 0.4, "clearly_above": ["b"]},
            {"model": "b", "estimate": 0.2, "labelled": 0.6, "clearly_above": []}]  # fmt: skip
    (tmp_path / "estimates.json").write_text(json.dumps({"models": rows}))
    old = read_comparison(tmp_path)
    assert old is not None and old["b"].beats(old["a"], "a") and not old["a"].beats(old["b"], "b")
    (tmp_path / "estimates.json").write_text(json.dumps({"models": rows, "clearly_above_by": "labels"}))
    new = read_comparison(tmp_path)
    assert new is not None and new["a"].beats(new["b"], "b") and not new["b"].beats(new["a"], "a")


def test_labels_too_few_to_tell_the_starts_apart_leave_the_choice_to_the_estimate(options, labelled):
    """kaptcha at 20 labels: base-v3 read 1 of 20, the fine-tunes 0; the estimate put a fine-tune clearly first."""
    runner = FakeRunner(estimates={"base": 0.003, "synthetic": 0.015, "adapted": 0.1},
                        labelled={"base": 0.05, "synthetic": 0.0, "adapted": 0.1}, label_noise=0.2)  # fmt: skip
    said = run(replace(options, labels=labelled, labels_digest="l1"), runner)
    assert _init_from(runner) == "synthetic"
    assert any("self-training starts from synthetic" in line and "best by the estimate" in line for line in said)
    assert any("the labelled images cannot tell the models apart (base 5%, synthetic 0%); by the estimate, "
               "synthetic reads the pool best" in line for line in said)  # fmt: skip


def test_labels_that_every_model_reads_none_of_do_not_claim_the_choice(options, labelled):
    """easycaptcha at 20 labels: base-v3 and both fine-tunes read none right; adapt once said the fine-tune the
    estimate chose 'reads the labelled images best'."""
    runner = FakeRunner(estimates={"base": 0.003, "synthetic": 0.009, "adapted": 0.1},
                        labelled={"base": 0.0, "synthetic": 0.0, "adapted": 0.1})  # fmt: skip
    said = run(replace(options, labels=labelled, labels_digest="l1"), runner)
    assert _init_from(runner) == "synthetic"
    assert any("the labelled images cannot tell the models apart (base 0%, synthetic 0%); by the estimate, "
               "synthetic reads the pool best" in line for line in said)  # fmt: skip
    assert not any("synthetic reads the labelled images best" in line for line in said)


# ---- the comparisons read pool images self-training never learnt ----


@pytest.mark.parametrize(("images", "held"), [(5, 0), (63, 0), (64, 16), (1023, 255), (1024, 256), (50_000, 256)])
def test_a_quarter_of_a_small_pool_or_256_images_are_held_out_and_none_of_a_tiny_one(images, held):
    assert held_out(images) == held


def test_self_training_learns_the_pool_less_the_images_the_comparisons_read(options, tmp_path):
    for i in range(5, 80):
        (options.pool / f"p{i}.png").write_bytes(b"y" * i)
    o = replace(options, pool_digest=list_images(options.pool).digest(), pool_images=80)
    said = run(o, runner := FakeRunner())
    compares = [c for c in runner.calls if c[0] == "compare"]
    assert [(_arg(c, "--sample"), _arg(c, "--seed")) for c in compares] == [("20", "0")] * 2
    listed = Path(_arg(next(c for c in runner.calls if "--unlabeled" in c), "--unlabeled") or "")
    learnt = {(listed.parent / line).resolve() for line in listed.read_text().splitlines()}
    read = {p.resolve() for p in seeded_sample(list_images(o.pool).paths, 20, o.seed)}
    assert len(learnt) == 60 and len(read) == 20 and learnt.isdisjoint(read)
    assert learnt | read == {p.resolve() for p in o.pool.iterdir()}
    assert any("learns 60 of the pool's 80 images" in line for line in said)
    before = listed.stat().st_mtime_ns
    said = run(o, runner := FakeRunner())  # done: nothing runs, and the list a resume would check is untouched
    assert runner.calls == [] and listed.stat().st_mtime_ns == before
    # Another seed draws other images to compare: the comparisons and the self-training are redone
    said = run(replace(o, seed=1), runner := FakeRunner())
    assert {c[0] for c in runner.calls} >= {"compare", "train"}
    assert {(listed.parent / line).resolve() for line in listed.read_text().splitlines()} != learnt


def test_a_pool_too_small_to_hold_any_out_is_learnt_whole_and_said_so(options):
    said = run(options, runner := FakeRunner())
    assert _arg(next(c for c in runner.calls if "--unlabeled" in c), "--unlabeled") == str(options.pool)
    assert any("too few to keep any out" in line for line in said)


def test_each_step_is_printed_as_a_shell_takes_it_a_path_with_a_space_included(options, tmp_path):
    pool = options.pool.rename(tmp_path / "my pool")
    said = run(replace(options, pool=pool), runner := FakeRunner())
    printed = [shlex.split(line.removeprefix("+ captchagen ")) for line in said if line.startswith("+ captchagen ")]
    assert printed == [list(c) for c in runner.calls] and any(str(pool) in c for c in printed)


def test_both_training_steps_read_at_the_base_models_input_width_and_a_changed_one_retrains(options):
    runner = FakeRunner()
    run(replace(options, base_width=160), runner)
    trains = [c for c in runner.calls if c[0] == "train"]
    assert [_arg(c, "--width") for c in trains] == ["160", "160"]  # the fine-tune and the self-training
    # both in epochs of EPOCH_STEPS batches: validating every 50 cost a fifth of a time-limited fine-tune
    assert [_arg(c, "--steps-per-epoch") for c in trains] == [str(EPOCH_STEPS)] * 2
    runner = FakeRunner()
    said = run(replace(options, base_width=128), runner)
    assert verbs(runner.calls) == ["train", "compare", "self-train", "compare"]
    assert any("`input width` changed" in line for line in said)


@pytest.mark.parametrize(("base_width", "max_len", "width"), [(160, 20, 160), (160, 21, 0), (48, 6, 48), (48, 7, 0)])
def test_a_base_too_narrow_for_the_longest_label_leaves_the_width_to_train(options, base_width, max_len, width):
    assert training_width(base_width, max_len) == width  # 4 pixels a time step, 2 x length - 1 steps
    runner = FakeRunner()
    run(replace(options, base_width=width), runner)
    trains = [c for c in runner.calls if c[0] == "train"]
    assert [_arg(c, "--width") for c in trains] == [str(width) if width else None] * 2


def test_two_looks_are_each_fitted_made_and_fine_tuned_and_the_pool_chooses_the_start(options):
    both = replace(options, fit="both")
    runner = FakeRunner(estimates={"base": 0.3, "synthetic": 0.35, "synthetic-reader": 0.45, "adapted": 0.6})
    said = run(both, runner)
    assert verbs(runner.calls) == ["fit-style", "make", "train"] * 2 + ["compare", "self-train", "compare"]
    fits = [c for c in runner.calls if c[0] == "fit-style"]
    assert "--model" not in fits[0] and fits[1][fits[1].index("--model") + 1] == "base"  # the base model's view
    assert [Path(c[c.index("--out") + 1]).name for c in fits] == ["fit", "fit-reader"]
    trains = [c for c in runner.calls if c[0] == "train" and "--unlabeled" not in c]
    assert [c[c.index("--time-limit") + 1] for c in trains] == ["0.5", "0.5"]  # the minutes shared
    assert [Path(c[1]).name for c in trains] == ["data", "data-reader"]
    compared = [c[i + 1] for c in runner.calls[6:7] for i, a in enumerate(c) if a == "--model"]
    assert [kind(m) for m in compared] == ["base", "synthetic", "synthetic-reader"]
    self_train = runner.calls[7]
    # it starts from the fine-tune the pool's estimate put first, beside that fine-tune's own synthetic set
    assert kind(self_train[self_train.index("--init-from") + 1]) == "synthetic-reader"
    assert Path(self_train[1]) == both.out / "data-reader"
    assert any("beside the pool it learns" in line for line in said)
    state = json.loads((both.out / "adapt.json").read_text())
    assert set(state["estimates"]["start"]) == {"base", "synthetic", "synthetic-reader"}
    again = FakeRunner(estimates=runner.estimates)
    run(both, again)
    assert again.calls == []  # every stage of both looks is done


def test_with_the_base_model_as_start_self_training_learns_beside_the_set_whose_fine_tune_reads_best(options):
    both = replace(options, fit="both")
    # the fine-tunes are not clearly above the base model: it stays the start
    runner = FakeRunner(estimates={"base": 0.5, "synthetic": 0.3, "synthetic-reader": 0.4, "adapted": 0.6}, noise=0.2)
    run(both, runner)
    self_train = next(c for c in runner.calls if "--unlabeled" in c)
    assert kind(self_train[self_train.index("--init-from") + 1]) == "base"
    assert Path(self_train[1]) == both.out / "data-reader"


def test_a_statistics_only_adapt_asked_for_both_looks_keeps_its_fit_and_shares_the_images_and_minutes(options):
    run(options, FakeRunner())
    runner = FakeRunner(estimates={"base": 0.3, "synthetic": 0.4, "synthetic-reader": 0.2, "adapted": 0.5})
    said = run(replace(options, fit="both"), runner)
    # the statistics' fit stands; its set and its fine-tune get half the images and minutes now: made again
    assert verbs(runner.calls) == ["make", "train", "fit-style", "make", "train", "compare", "self-train", "compare"]
    assert "fit: done" in " ".join(said) and any("`n` changed since make last ran" in s for s in said)
    makes = [c for c in runner.calls if c[0] == "make"]
    assert [c[c.index("--n") + 1] for c in makes] == [str(options.n // 2)] * 2
    for extra in ("fit-reader", "data-reader", "runs"):
        assert (options.out / extra).exists()


def png_pool(options: Options, n: int) -> Options:
    """`options` on a pool of `n` real images (the readings sheet opens them)."""
    pool = options.pool.parent / "pngs"
    pool.mkdir()
    for i in range(n):
        Image.new("RGB", (60, 20), (10 * i, 90, 200)).save(pool / f"p{i:02d}.png")
    return replace(options, pool=pool, pool_digest=list_images(pool).digest())


def test_the_readings_sheet_shows_what_the_returned_model_and_its_start_read(options, monkeypatch):
    o = png_pool(options, 6)
    drawn: list[list[list[tuple[str, str]]]] = []
    real = read_back.write_grid

    def recording(cells, out, columns=4):
        drawn.append([caption for _, caption in cells])
        return real(cells, out, columns)

    monkeypatch.setattr(read_back, "write_grid", recording)
    said = run(o, FakeRunner(readings={"synthetic": "AB", "adapted": "BA"}))
    sheet = o.out / "readings.png"
    assert any(line.startswith(f"readings: {sheet} (pool images, each with what adapted (returned) and synthetic")
               for line in said), said  # fmt: skip
    assert drawn == [[[("adapted: BA", "darkblue"), ("synthetic: AB", "dimgray")]] * 6]
    with Image.open(sheet) as im:
        assert im.format == "PNG" and im.width > 4 * 60
    # the self-trained model below its start: the start is returned, and named first
    drawn.clear()
    said = run(replace(o, seed=1), FakeRunner(estimates={"base": 0.3, "synthetic": 0.6, "adapted": 0.5},
                                              readings={"synthetic": "AB", "adapted": "BA"}))  # fmt: skip
    assert drawn and drawn[0][0] == [("synthetic: AB", "darkblue"), ("adapted: BA", "dimgray")]
    assert not any(line.startswith("note: ") and "letters" in line for line in said)  # "AB": no two cases


def test_readings_in_one_case_of_a_two_case_alphabet_suggest_case_ignore(options):
    o = replace(png_pool(options, 30), alphabet="ABab")
    said = run(o, FakeRunner(readings={"adapted": "ABAB"}))
    notes = [line for line in said if "letters adapted read in the pool are capitals" in line]
    assert len(notes) == 1 and notes[0].startswith("note: 100% of the 120 letters") and "--case ignore" in notes[0]
    # read in both cases: nothing to say; with --case ignore already given: nothing to say either
    for other, runner in ((replace(o, seed=2), FakeRunner(readings={"adapted": "AbaB"})),
                          (replace(o, seed=3, case="ignore"), FakeRunner(readings={"adapted": "ABAB"}))):  # fmt: skip
        assert not any("letters adapted read" in line for line in run(other, runner))


def test_a_start_reading_one_case_is_noted_before_self_training_and_once(options):
    o = replace(png_pool(options, 30), alphabet="ABab")
    runner = FakeRunner(readings={"synthetic": "ABAB", "adapted": "ABAB"})
    said = run(o, runner)
    notes = [i for i, line in enumerate(said) if "are capitals, where the alphabet holds both cases" in line]
    assert len(notes) == 1, said  # the returned model reads so too: said once, where stopping costs least
    early = said[notes[0]]
    assert said[notes[0] - 1].startswith("self-training starts from synthetic")
    assert early.startswith("note: 100% of the 120 letters synthetic read in the pool are capitals")
    assert "stop now (Ctrl-C) and run this command again with --case ignore" in early
    # run again with --case ignore: the fits, sets and fine-tunes are kept; the comparisons and self-training
    # redone as the site checks, and nothing more to say of case
    runner = FakeRunner(readings={"synthetic": "ABAB", "adapted": "ABAB"})
    said = run(replace(o, case="ignore"), runner)
    assert verbs(runner.calls) == ["compare", "self-train", "compare"]
    assert not any("are capitals" in line for line in said)


def test_a_comparison_saved_before_compare_kept_readings_draws_no_sheet(options):
    o = png_pool(options, 6)
    run(o, FakeRunner())
    compared = o.out / "estimates" / "result" / "estimates.json"
    old = json.loads(compared.read_text())
    del old["images"]
    compared.write_text(json.dumps(old))
    said = run(o, FakeRunner())  # the sheet drawn from the comparison before it would mislead: it goes
    assert (
        f"note: {o.out / 'estimates' / 'result'} was made before compare kept each model's readings: no "
        "readings.png (remove that folder and run adapt again to draw it)" in said
    )
    assert not (o.out / "readings.png").exists()


def test_the_sheet_names_the_base_model_as_it_was_given(options, monkeypatch):
    drawn: list[list[tuple[str, str]]] = []
    monkeypatch.setattr(read_back, "write_sheet", lambda readings, rows, out: drawn.append(rows))
    below = {"base": 0.6, "synthetic": 0.3, "adapted": 0.4}  # the self-trained model below base: base returned
    run(replace(options, base="base-v3"), FakeRunner(estimates=below))
    run(replace(options, base="runs/mine/best.pt", seed=1), FakeRunner(estimates=below))
    assert [rows[0][0] for rows in drawn] == ["base-v3", "base"] and all(r[1][0] == "adapted" for r in drawn)
