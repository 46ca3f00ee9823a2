"""The bundled base model: which model a command uses (`--model base`, the fallback when no run exists),
that it reads captchas with no training, and that nothing is ever written into the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from captchagen.config import GenerationConfig
from captchagen.errors import CaptchagenError
from tests.helpers import run_cli, run_cli_streams, shard_images
from trainer import bundled, checkpoint
from trainer.runs import LATEST, resolve_model
from trainer.training.finetune import load_parent

BASE = bundled.base_model()


def test_the_base_model_is_in_the_package_and_says_what_it_was_trained_on():
    saved = checkpoint.load(BASE)
    assert BASE.parent == Path(bundled.__file__).resolve().parent
    assert set("09AZaz") <= set(saved["alphabet"])  # digits, upper and lower case
    assert "optimizer" not in saved  # the model alone: no state to resume, a few MB
    sources = saved["train_config"]["sources"]
    assert len(sources) >= 2 and all(len(digest) == 64 for digest in sources.values())


def test_with_no_run_the_base_model_is_used_and_the_reason_given(tmp_path):
    path, why = resolve_model(tmp_path / "runs")
    assert path == BASE and "no trained model in" in why and "bundled base model" in why


def test_a_trained_run_comes_before_the_base_model_and_base_names_it_anyway(tmp_path):
    runs = tmp_path / "runs"
    (runs / "r1").mkdir(parents=True)
    (runs / LATEST).write_text("r1\n")
    path, why = resolve_model(runs)
    assert path == runs / "r1" / "best.pt" and str(path) in why and "newest run" in why
    assert resolve_model(runs, "base") == (BASE, None)
    assert resolve_model(runs, "other.pt") == (Path("other.pt"), None)


def test_a_latest_that_names_a_missing_run_is_an_error_not_the_base_model(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / LATEST).write_text("gone\n")
    with pytest.raises(CaptchagenError, match="names gone, which does not exist"):
        resolve_model(runs)


def test_init_from_base_is_the_bundled_model():
    parent = load_parent("base")
    assert parent.path == BASE and parent.lineage["name"] == "bundled/base.pt"


@pytest.fixture(scope="module")
def fresh_default(tmp_path_factory) -> Path:
    """40 default-look captchas (upper case, 1-10 characters) with a seed no base-model set uses."""
    from captchagen.make import make_dataset

    out = tmp_path_factory.mktemp("fresh") / "data"
    make_dataset(GenerationConfig(n=40, seed=424242, shard_size=40), out, workers=1, preview=False)
    return out


def test_test_with_no_run_reads_fresh_captchas_with_the_base_model(fresh_default, tmp_path):
    images = shard_images(fresh_default)
    # Default captchas are upper case; the base model also knows digits and lower case, so it is told.
    code, out = run_cli("test", *map(str, images), "--runs-dir", str(tmp_path / "runs"), "--reads", "upper", "--json")
    assert code == 0, out
    lines = out.splitlines()
    assert "using the bundled base model" in lines[0]  # said once, before the readings
    rows = [json.loads(line) for line in lines[1:]]
    right = sum(r["text"] == Path(r["path"]).stem.split("_", 1)[1] for r in rows)
    assert len(rows) == 40 and right >= 36, f"the base model read {right} of 40 default captchas"
    assert all(set(r["text"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for r in rows)


def test_eval_names_the_base_model(fresh_default, tmp_path):
    code, out = run_cli("eval", str(fresh_default), "--model", "base", "--worst", "0", "--json",
                        "--cache-dir", str(tmp_path / "c"))  # fmt: skip
    assert code == 0, out
    numbers = json.loads(out.splitlines()[-1])
    assert numbers["model"] == str(BASE) and numbers["seq_accuracy"] >= 0.75


def test_eval_of_the_base_model_draws_its_worst_mistakes_only_where_asked(fresh_default, tmp_path, monkeypatch):
    """A bundled model has no run folder: its grid neither goes into the package nor silently replaces a file
    of the working folder."""
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in BASE.parent.iterdir())
    # Without --reads it makes mistakes on upper-case captchas (it also knows lower case): a grid to write.
    args = ("eval", str(fresh_default), "--model", "base", "--worst", "4", "--json", "--cache-dir", str(tmp_path / "c"))
    code, out, said = run_cli_streams(*args)
    assert code == 0, out
    numbers = json.loads(out)
    assert numbers["seq_accuracy"] < 1, "no mistake to draw: the test needs a set the model gets wrong"
    assert "worst_png" not in numbers and "--worst-out PATH" in said and list(tmp_path.glob("*.png")) == []
    code, out, _ = run_cli_streams(*args, "--worst-out", "grid.png")
    assert code == 0 and json.loads(out)["worst_png"] == "grid.png" and (tmp_path / "grid.png").is_file()
    assert sorted(p.name for p in BASE.parent.iterdir()) == before


def test_export_of_the_base_model_writes_beside_the_user_not_into_the_package(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in BASE.parent.iterdir())
    code, out = run_cli("export", "--model", "base", env={"COLUMNS": "200"})
    assert code == 0, out
    assert (tmp_path / "base.onnx").is_file()
    assert sorted(p.name for p in BASE.parent.iterdir()) == before


def test_every_bundled_model_is_found_by_its_name_and_base_v2_records_where_it_came_from(tmp_path):
    for name in bundled.MODELS:
        path = bundled.named(name)
        assert path is not None and path.is_file(), name
        assert resolve_model(tmp_path / "runs", name) == (path, None)
        assert load_parent(name).path == path
    assert bundled.named("base-v4") is None and bundled.named(None) is None
    v3 = checkpoint.load(bundled.named("base-v3"))  # the generalist: a resnet from random weights, four sets
    assert v3["model_config"]["arch"] == "resnet" and v3["train_config"]["init_from"] is None
    assert len(v3["train_config"]["sources"]) == 4 and "optimizer" not in v3
    v2 = checkpoint.load(bundled.named("base-v2"))
    assert "optimizer" not in v2
    # Fine-tuned from the base model (v1) on three made datasets, each named with its manifest's hash.
    # (the file as it was then: base.pt was saved again since, with its binding, its weights unchanged)
    assert v2["train_config"]["parent"]["name"] == "bundled/base.pt"
    assert len(v2["train_config"]["parent"]["sha256"]) == 64
    assert len(v2["train_config"]["sources"]) == 3 and all(v2["train_config"]["sources"].values())
    from captchagen.make import make_dataset

    made = make_dataset(GenerationConfig(n=1), tmp_path / "d", workers=1, preview=False)
    image = str(next(made.out.glob("shard-*/*.png")))
    code, out = run_cli("test", image, "--model", "base-v2", "--json")
    assert code == 0 and json.loads(out)["error"] is None, out


def test_a_newest_run_weaker_than_the_base_model_is_named_as_such_when_it_is_the_default(reading_model, tmp_path):
    """After a few-step run, `test` and `eval` without --model read with it: they say it scored below the base
    model on its own validation, and how to read with that one instead."""
    data, model = reading_model
    runs = tmp_path / "runs"
    (runs / "weak").mkdir(parents=True)
    (runs / "weak" / "best.pt").write_bytes(model.read_bytes())  # tiny: it reads little of its validation
    (runs / LATEST).write_text("weak\n")
    image = str(next(data.glob("shard-*/*.png")))
    for command in (["test", image], ["eval", str(data), "--worst", "0"]):
        code, out, err = run_cli_streams(*command, "--runs-dir", str(runs))
        assert code == 0 and "fewer than the base model reads of its own" in err and "--model base" in err, err
        assert "fewer than" not in out
        code, out, err = run_cli_streams(*command, "--runs-dir", str(runs), "--model", str(runs / "weak"))
        assert "fewer than" not in err  # chosen by the user: nothing to say
