"""Shared fixtures: tiny datasets that render in well under a second."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from captchagen.cli import cli

# Small images keep rendering fast; the mechanics are the same at any size.
TINY = ["--width", "80", "--height", "32", "--max-len", "4"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Invoke the CLI in-process; return (exit code, everything it printed)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)
    return result.exit_code, result.output


def shard_images(data: Path) -> list[Path]:
    """The images of a made dataset, sorted by path (shard, then index)."""
    return sorted(data.glob("shard-*/*.png"))


def tree_digest(folder: Path, pattern: str = "shard-*/*.png") -> dict[str, str]:
    """{relative path: sha256} of the images under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob(pattern)}


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
    from tests.trainer_helpers import tiny_dataset, tiny_train_config
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
