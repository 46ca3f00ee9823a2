"""Shared fixtures: tiny datasets that render in well under a second, and a tiny trained model (the helpers
they use are in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TINY, run_cli, tiny_dataset, tiny_train_config


@pytest.fixture
def make_tiny(tmp_path: Path):
    """Make a tiny dataset with the CLI and return its folder; extra CLI args pass through."""

    def make(name: str = "d", *extra: str, n: int = 40, shard_size: int = 16, workers: int = 1) -> Path:
        out = tmp_path / name
        code, output = run_cli(
            "make",
            "--n",
            str(n),
            "--shard-size",
            str(shard_size),
            "--workers",
            str(workers),
            "--out",
            str(out),
            *TINY,
            *extra,
        )
        assert code == 0, output
        return out

    return make


@pytest.fixture(scope="session")
def reading_model(tmp_path_factory):
    """A tiny digits model, trained just long enough that different images read differently (it is not meant
    to read them right); shared by the export, serve and page tests. (data folder, checkpoint path)"""
    from trainer.training.loop import train

    root = tmp_path_factory.mktemp("reading-model")
    data = tiny_dataset(root / "digits")
    result = train(tiny_train_config(data, root, epochs=20))
    return data, Path(result.run) / "best.pt"


@pytest.fixture(scope="session")
def exported_model(reading_model, tmp_path_factory) -> Path:
    """reading_model exported to ONNX with `captchagen export`."""
    out = tmp_path_factory.mktemp("exported") / "model.onnx"
    code, output = run_cli("export", "--model", str(reading_model[1]), "--out", str(out))
    assert code == 0, output
    return out
