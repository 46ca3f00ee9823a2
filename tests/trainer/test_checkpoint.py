"""A checkpoint or export that no longer describes its weights is refused in one line, never read wrongly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli
from trainer import bundled, checkpoint


def _edited(reading_model, tmp_path, edit) -> str:
    data = checkpoint.load(reading_model[1])
    edit(data)
    path = tmp_path / "edited.pt"
    torch.save(data, path)
    return str(path)


def _rotate(d):
    d["alphabet"] = d["alphabet"][1:] + d["alphabet"][0]


def _permute(d):
    d["alphabet"] = d["alphabet"][::-1]


def _one_short(d):
    d["alphabet"] = d["alphabet"][:-1]


def _nan_weights(d):
    key = next(k for k, v in d["model"].items() if v.is_floating_point())
    d["model"][key] = torch.full_like(d["model"][key], float("nan"))


def _zero_std(d):
    d["preprocessing"]["std"] = 0.0


def _other_arch(d):
    d["model_config"]["arch"] = "resnet"


def _extra_key(d):
    d["model"]["stowaway.weight"] = torch.zeros(3)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_rotate, "no longer match its weights"),
        (_permute, "no longer match its weights"),
        (_one_short, "no longer match its weights"),
        (_nan_weights, "no longer match its weights"),
        (_zero_std, "std above 0"),
        (_other_arch, "no longer match its weights"),
        (_extra_key, "no longer match its weights"),
    ],
)
def test_an_edited_checkpoint_is_a_one_line_error_in_test_and_eval(reading_model, tmp_path, edit, message):
    data, _ = reading_model
    model = _edited(reading_model, tmp_path, edit)
    image = str(next(data.glob("shard-*/*.png")))
    for command in (["test", image, "--json"], ["eval", str(data), "--worst", "0"]):
        code, out = run_cli(*command, "--model", model)
        assert code == 1 and message in out and len(out.strip().splitlines()) == 1, out
        assert "NaN" not in out.replace("NaN or infinite", "")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_one_short, "output classes"),
        (_nan_weights, "NaN or infinite"),
        (_other_arch, "do not fit its model config"),
        (_extra_key, "do not fit its model config"),
    ],
)
def test_a_checkpoint_from_before_binding_is_still_checked_on_what_it_holds(reading_model, tmp_path, edit, message):
    """Checkpoints saved before `binding` existed (the bundled ones among them) are checked on their class
    count, the finiteness of their weights and the fit of weights to config."""

    def unbound(d):
        edit(d)
        del d["binding"]
        d["format_version"] = 1  # a file of the format before every checkpoint was bound

    code, out = run_cli("test", str(next(reading_model[0].glob("shard-*/*.png"))), "--model",
                        _edited(reading_model, tmp_path, unbound))  # fmt: skip
    assert code == 1 and message in out and len(out.strip().splitlines()) == 1, out


def test_a_checkpoint_of_the_current_format_without_its_binding_is_refused(reading_model, tmp_path):
    def unbound(d):
        _permute(d)
        del d["binding"]

    image = str(next(reading_model[0].glob("shard-*/*.png")))
    code, out = run_cli("test", image, "--model", _edited(reading_model, tmp_path, unbound))
    assert code == 1 and "carries no binding" in out and len(out.strip().splitlines()) == 1, out


def _rebound(edit):
    """An edit after which the binding is computed again: only the checks of what the file says catch it."""

    def both(d):
        edit(d)
        d["binding"] = checkpoint.binding(d)

    return both


def _taller(d):
    d["preprocessing"]["height"] = 48


def _colour(d):
    d["preprocessing"]["channels"] = 3


@pytest.mark.parametrize(
    ("edit", "message"),
    [(_taller, "48 pixels high"), (_colour, "in 3 channel(s)"), (_other_arch, "do not fit its model config")],
)
def test_a_description_that_contradicts_its_network_is_one_line_in_test_eval_and_train(
    reading_model, tmp_path, edit, message
):
    data, _ = reading_model
    model = _edited(reading_model, tmp_path, _rebound(edit))
    for command in (["test", str(next(data.glob("shard-*/*.png")))], ["eval", str(data), "--worst", "0"]):
        code, out = run_cli(*command, "--model", model)
        assert code == 1 and message in out and len(out.strip().splitlines()) == 1, out
    code, out = run_cli("train", str(data), "--init-from", model, "--epochs", "1", "--runs-dir", str(tmp_path / "r"))
    assert code == 2 and f"--init-from {model}" in out and message in out and "Traceback" not in out, out
    assert not (tmp_path / "r").exists()


def test_init_from_checks_the_binding_as_reading_does(reading_model, tmp_path):
    data, _ = reading_model
    for edit in (_permute, _nan_weights):
        model = _edited(reading_model, tmp_path, edit)
        code, out = run_cli("train", str(data), "--init-from", model, "--epochs", "1", "--runs-dir",
                            str(tmp_path / "r"))  # fmt: skip
        assert code == 2 and "no longer match its weights" in out and len(out.strip().splitlines()) == 1, out


def test_every_checkpoint_carries_a_binding_the_bundled_ones_too_and_an_edited_copy_is_refused(tmp_path):
    for name in bundled.MODELS:
        data = checkpoint.load(bundled.named(name))
        assert data["format_version"] == checkpoint.FORMAT_VERSION and data["binding"] == checkpoint.binding(data)
        model, alphabet, pre = checkpoint.load_model(checkpoint.read(bundled.named(name)), name)
        assert model.config.num_classes == alphabet.num_classes and pre.std > 0
    image = tmp_path / "000001_RGB.png"
    code, out = run_cli("make", "--n", "1", "--alphabet", "RGB", "--min-len", "3", "--max-len", "3", "--seed", "3",
                        "--out", str(tmp_path / "one"))  # fmt: skip
    assert code == 0, out
    next((tmp_path / "one").glob("shard-*/*.png")).rename(image)
    for edit in (_permute, _nan_weights):
        data = checkpoint.load(bundled.named("base-v3"))
        edit(data)
        copy = tmp_path / "copy.pt"
        torch.save(data, copy)
        for command in (["test", str(image), "--model", str(copy)], ["export", "--model", str(copy), "--out",
                        str(tmp_path / "x.onnx")]):  # fmt: skip
            code, out = run_cli(*command)
            assert code == 1 and "no longer match its weights" in out, out


def test_the_json_of_test_has_no_nan(reading_model):
    code, out = run_cli("test", str(next(reading_model[0].glob("shard-*/*.png"))), "--json", "--model",
                        str(reading_model[1]))  # fmt: skip
    assert code == 0
    row = json.loads(out.strip().splitlines()[0], parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert 0 <= row["confidence"] <= 1


def _edited_export(exported_model, tmp_path, edit) -> str:
    import onnx

    proto = onnx.load(str(exported_model))
    props = {p.key: p.value for p in proto.metadata_props}
    edit(props)
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    path = tmp_path / "edited.onnx"
    onnx.save_model(proto, str(path))
    return str(path)


def _reverse_alphabet(props):
    props["captchagen.alphabet"] = json.dumps(json.loads(props["captchagen.alphabet"])[::-1])


def _unbound_one_short(props):  # an export of the format before every export was bound
    props["captchagen.alphabet"] = json.dumps(json.loads(props["captchagen.alphabet"])[:-1])
    del props["captchagen.binding"]
    props["captchagen.format_version"] = "1"


def _unbound_other_size(props):
    pre = json.loads(props["captchagen.preprocessing"])
    props["captchagen.preprocessing"] = json.dumps({**pre, "width": pre["width"] + 4})
    del props["captchagen.binding"]
    props["captchagen.format_version"] = "1"


def _unbound_reversed(props):  # of the current format: its binding can only have been removed
    _reverse_alphabet(props)
    del props["captchagen.binding"]


def _wrong_type(props):
    props["captchagen.alphabet"] = "[1, 2, 3]"


def _other_lengths(props):  # what it reads under is bound too: a wider range read strings it was not made for
    props["captchagen.lengths"] = "[1, 9]"


def _lengths_removed(props):  # without them it would read any length
    del props["captchagen.lengths"]


def _bad_lengths(props):
    props["captchagen.lengths"] = "[3, 1]"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_reverse_alphabet, "no longer match its weights"),
        (_unbound_one_short, "output classes"),
        (_unbound_other_size, "but the model takes"),
        (_unbound_reversed, "carries no binding"),
        (_wrong_type, "damaged captchagen metadata"),
        (_other_lengths, "no longer match its weights"),
        (_lengths_removed, "no longer match its weights"),
        (_bad_lengths, "damaged captchagen metadata"),
    ],
)
def test_an_export_with_edited_metadata_is_a_one_line_error(reading_model, exported_model, tmp_path, edit, message):
    data, _ = reading_model
    model = _edited_export(exported_model, tmp_path, edit)
    for command in (["test", str(next(data.glob("shard-*/*.png")))], ["eval", str(data), "--worst", "0"]):
        code, out = run_cli(*command, "--model", model)
        assert code == 1 and message in out and len(out.strip().splitlines()) == 1, out
    code, out = run_cli("test", str(next(data.glob("shard-*/*.png"))), "--model", str(exported_model))
    assert code == 0, out  # the export as written reads


# ---- the file format: the keys every version has written, and files from before the newer keys ----

BEST = {"format", "format_version", "model", "alphabet", "preprocessing", "model_config", "train_config", "metrics",
        "epoch", "captchagen_version", "binding"}  # fmt: skip
RESUMABLE = {"optimizer", "rng", "position", "scheduler"}  # last.pt's, beside BEST's


def test_best_and_last_keep_the_keys_of_the_format_and_config_json_adds_only_the_request(data, tmp_path):
    from dataclasses import fields

    from tests.helpers import tiny_train_config
    from trainer.models.config import ModelConfig
    from trainer.training.loop import train
    from trainer.training.request import TrainRequest

    folder = Path(train(tiny_train_config(data, tmp_path, epochs=1)).run)
    best, last = checkpoint.load(folder / "best.pt"), checkpoint.load(folder / "last.pt")
    assert set(best) == BEST and set(last) == BEST | RESUMABLE
    record = {f.name for f in fields(TrainRequest)} | {"parent", "sources"}  # TrainRecord's, flat
    assert set(best["train_config"]) == record
    assert set(best["model_config"]) == {f.name for f in fields(ModelConfig)}
    assert last["position"].keys() == {"epoch", "batch"} and last["scheduler"].keys() == {"step", "elapsed"}
    config = json.loads((folder / "config.json").read_text())
    assert set(config) == record | {"model", "preprocessing", "request"}
    assert set(config["request"]) == {f.name for f in fields(TrainRequest)}


def test_a_last_pt_from_before_the_newer_keys_still_resumes(data, tmp_path):
    """A last.pt as the first versions wrote it: no binding, no version, no partial counts, a model config
    without arch or channels, a train config without the settings added since. It resumes as a crnn."""
    from tests.helpers import tiny_train_config
    from trainer.runs import read_metrics
    from trainer.training.loop import train
    from trainer.training.request import TrainRequest

    result = train(tiny_train_config(data, tmp_path, epochs=2))
    last = Path(result.run) / "last.pt"
    old = checkpoint.load(last)
    for key in ("binding", "captchagen_version", "partial", "format", "format_version"):
        old.pop(key, None)
    old["model_config"] = {k: v for k, v in old["model_config"].items() if k not in ("arch", "channels")}
    added = ("arch", "channels", "keep", "unlabeled", "unlabeled_share", "pseudo_threshold", "ema_decay", "mix")
    old["train_config"] = {k: v for k, v in old["train_config"].items() if k not in added}
    old["position"] = {"epoch": 1, "batch": 0}
    old["format_version"] = 1  # the format before every checkpoint carried a binding
    checkpoint.write(last, old)
    state = checkpoint.read_resumable(last)
    assert state.model.binding is None and state.partial is None and state.model.config().arch == "crnn"
    train(TrainRequest(), resume=last)
    assert [row["epoch"] for row in read_metrics(last.parent)] == [1, 2, 2]  # epoch 2 again, from the old file
    assert checkpoint.load(last)["model_config"]["arch"] == "crnn"


def test_the_typed_records_write_back_the_dicts_they_were_read_from(data, tmp_path):
    """Metrics, RngState, PartialCounts and TrainRecord read a checkpoint's nested dicts and write the same
    dicts back: the bundled models' (as made by earlier versions, which had fewer settings), and a last.pt
    stopped midway, whose partial counts older versions wrote as floats."""
    from tests.helpers import tiny_train_config
    from trainer.training.loop import train
    from trainer.training.request import TrainRecord

    for name in bundled.MODELS:
        saved = checkpoint.load(bundled.named(name))
        record = checkpoint.read(bundled.named(name))
        assert record.metrics.to_dict() == saved["metrics"] and record.metrics.epoch == saved["metrics"]["epoch"]
        written = TrainRecord.from_dict(saved["train_config"]).to_dict()  # settings added since: their defaults
        assert {k: written[k] for k in saved["train_config"]} == saved["train_config"]
    result = train(tiny_train_config(data, tmp_path, epochs=1))
    last = Path(result.run) / "last.pt"
    saved = checkpoint.load(last)
    saved["partial"] = {"loss_sum": 12.5, "seen": 40.0, "read": 8.0, "passed": 3.0}  # as older versions wrote it
    checkpoint.write(last, saved)
    state = checkpoint.read_resumable(last)
    assert (state.partial.seen, state.partial.passed) == (40, 3) and isinstance(state.partial.seen, int)
    again = state.payload()
    assert again["rng"].keys() == saved["rng"].keys() and torch.equal(again["rng"]["torch"], saved["rng"]["torch"])
    assert again["partial"] == saved["partial"] and again["metrics"] == saved["metrics"]
    assert again["train_config"] == saved["train_config"]


def test_a_damaged_training_state_is_one_line(data, tmp_path):
    from tests.helpers import tiny_train_config
    from trainer.training.loop import train

    last = Path(train(tiny_train_config(data, tmp_path, epochs=1)).run) / "last.pt"
    saved = checkpoint.load(last)
    saved["partial"] = {"loss_sum": 1.0}  # counts missing
    checkpoint.write(last, saved)
    code, out = run_cli("train", "--resume", str(last))
    assert code == 1 and "training state is damaged" in out and "Traceback" not in out, out
