"""Architectures chosen by name (`train --arch`): the registry, a toy architecture added as one module and
one line, and every architecture through training, reading, scoring, serving, export, fine-tuning, resuming
and torchrun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.helpers import (
    Server,
    expected_readings,
    run_cli,
    shard_images,
    tiny_train_args,
    tiny_train_config,
    torchrun_train,
)
from trainer import bundled, checkpoint, models
from trainer.inference.reader import Reader
from trainer.models.arch import Arch, SequenceHead
from trainer.models.catalog import CATALOG
from trainer.models.config import ModelConfig
from trainer.runs import latest_run
from trainer.training.events import EpochEnded
from trainer.training.loop import train
from trainer.training.request import TrainRequest


@pytest.fixture(scope="module", params=sorted(CATALOG))
def trained(request, data, tmp_path_factory):
    """(arch, run folder) of a tiny model of each architecture, trained a few epochs."""
    root = tmp_path_factory.mktemp(f"arch-{request.param}")
    result = train(tiny_train_config(data, root, epochs=3, arch=request.param))
    return request.param, Path(result.run)


def test_the_registry_builds_every_architecture_help_names(data):
    assert models.names() == list(CATALOG)
    for name in CATALOG:
        assert models.get(name).name == name
        net = models.build(ModelConfig(num_classes=11, arch=name, height=32, width=96))
        assert net(torch.zeros(2, 1, 32, 96)).shape == (24, 2, 11)  # [T = W/4, N, classes]
    with pytest.raises(ValueError, match="unknown architecture 'nope': choose one of crnn, resnet"):
        models.build(ModelConfig(num_classes=11, arch="nope"))
    code, out = run_cli("train", str(data), "--arch", "nope")
    assert code == 2 and "'nope' is not one of 'crnn', 'resnet'" in out


class Toy(SequenceHead):
    """The smallest backbone: one convolution, pooled to H/16 and W/4, under the shared head."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)  # checks the input size and time steps
        self.features = nn.Sequential(nn.Conv2d(config.channels, 8, 3, padding=1), nn.AvgPool2d((16, 4)))
        self.add_head(config, 8 * (config.height // 16))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.read_columns(self.features(images))  # features [N, 8, H/16, W/4] to [T, N, classes]


def test_a_new_architecture_is_one_module_and_one_registry_line(data, tmp_path, request):
    from captchagen.cli.train import train as train_command

    models.register(Arch(name="toy", build=Toy, first_conv="features.0.weight"))
    request.addfinalizer(lambda: models.unregister("toy"))
    # `train --arch` takes it: the choices come from the registry, not a list made at import
    assert train_command.make_context("train", [str(data), "--arch", "toy"]).params["arch"] == "toy"
    result = train(tiny_train_config(data, tmp_path, epochs=2, arch="toy"))
    payload = checkpoint.load(Path(result.run) / "best.pt")
    assert payload["model_config"]["arch"] == "toy"
    reader = Reader(Path(result.run) / "best.pt")
    assert isinstance(reader.net.model, Toy)
    [reading] = reader.read_paths([str(next(data.glob("shard-*/*.png")))])
    assert reading.error is None and isinstance(reading.text, str)


def test_every_architecture_learns_reads_scores_and_exports(trained, data, tmp_path):
    arch, run = trained
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert checkpoint.load(run / "best.pt")["model_config"]["arch"] == arch
    image = str(next(data.glob("shard-*/*.png")))
    code, out = run_cli("test", image, "--model", str(run), "--json")
    assert code == 0 and json.loads(out)["error"] is None, out
    code, out = run_cli("eval", str(data), "--model", str(run), "--json", "--worst", "0",
                        "--cache-dir", str(tmp_path / "c"))  # fmt: skip
    assert code == 0 and json.loads(out)["samples"] == 640, out
    onnx = tmp_path / f"{arch}.onnx"
    code, out = run_cli("export", "--model", str(run), "--out", str(onnx))
    assert code == 0 and onnx.exists(), out  # the parity check passed
    code, out = run_cli("test", image, "--model", str(onnx), "--json")
    assert code == 0 and json.loads(out)["error"] is None, out


def test_every_architecture_serves_what_the_library_reads(trained, data):
    arch, run = trained
    paths = shard_images(data)[:3]
    srv = Server(run / "best.pt")
    try:
        assert srv.health()["format"] == "checkpoint"
        status, body = srv.predict([(p.name, p.read_bytes()) for p in paths])
    finally:
        code, err = srv.stop()
    assert status == 200 and code == 0 and "Traceback" not in err, err
    expected = expected_readings(run / "best.pt", paths)
    assert [p["text"] for p in body["predictions"]] == [t for t, _ in expected]
    assert [p["confidence"] for p in body["predictions"]] == pytest.approx([c for _, c in expected], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("arch", sorted(set(CATALOG) - {"crnn"}))  # crnn: test_train's torchrun test
def test_every_architecture_trains_under_torchrun(arch, data, tmp_path):
    """Two CPU processes on gloo; batch norm's running statistics go from rank 0 with every step (DDP's
    broadcast_buffers), so the checkpoint rank 0 writes is one model, and it reads."""
    run = torchrun_train(data, tmp_path, epochs=2, batch_size=16, arch=arch)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert checkpoint.load(run / "best.pt")["model_config"]["arch"] == arch
    [reading] = Reader(run / "best.pt").read_paths([str(shard_images(data)[0])])
    assert reading.error is None


def test_fine_tuning_keeps_the_architecture_and_another_is_one_line(trained, data, tmp_path):
    arch, run = trained
    child = train(tiny_train_config(data, tmp_path / "child", epochs=1, init_from=str(run), height=None))
    assert checkpoint.load(Path(child.run) / "best.pt")["model_config"]["arch"] == arch
    other = next(a for a in CATALOG if a != arch)
    code, out = run_cli("train", str(data), *tiny_train_args(tmp_path), "--init-from", str(run), "--arch", other)
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and f"has arch {arch}" in errors[0] and "--arch" in errors[0], out


def test_every_architecture_resumes(trained, data, tmp_path):
    arch, _ = trained

    def stop_after_first_epoch(e):
        if isinstance(e, EpochEnded) and e.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_train_config(data, tmp_path, epochs=2, arch=arch), stop_after_first_epoch)
    run = latest_run(tmp_path / "runs")
    train(TrainRequest(), resume=run / "last.pt")
    last = checkpoint.load(run / "last.pt")
    assert last["position"] == {"epoch": 2, "batch": 0} and last["model_config"]["arch"] == arch
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_a_checkpoint_from_before_architectures_reads_as_crnn(tmp_path):
    from trainer.models.crnn import CRNN

    payload = checkpoint.load(bundled.base_model())
    assert "arch" not in payload["model_config"]  # made before there was a choice
    model, _, _ = checkpoint.load_model(checkpoint.ModelRecord.from_payload(payload))
    assert isinstance(model, CRNN)
    payload["model_config"] = {**payload["model_config"], "arch": "from-the-future"}
    payload["binding"] = checkpoint.binding(payload)  # as a newer captchagen would have written it
    with pytest.raises(Exception, match="unknown architecture 'from-the-future'"):
        checkpoint.load_model(checkpoint.ModelRecord.from_payload(payload))
