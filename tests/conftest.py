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


def tree_digest(folder: Path, pattern: str = "shard-*/*.png") -> dict[str, str]:
    """{relative path: sha256} of the images under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob(pattern)}


@pytest.fixture
def make_tiny(tmp_path: Path):
    """Make a tiny dataset with the CLI and return its folder; extra CLI args pass through."""

    def make(name: str = "d", *extra: str, n: int = 40, shard_size: int = 16, workers: int = 1) -> Path:
        out = tmp_path / name
        code, output = run_cli(
            "make", "--n", str(n), "--shard-size", str(shard_size), "--workers", str(workers),
            "--out", str(out), *TINY, *extra,
        )  # fmt: skip
        assert code == 0, output
        return out

    return make
