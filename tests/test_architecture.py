"""Imports go one way: the command line uses the libraries, trainer uses the dataset library, never back.

captchagen/cli/  ->  trainer/  ->  captchagen/ (the torch-free dataset library)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "captchagen" / "cli"
SHARED_BY_COMMANDS = {"common"}  # what every command may use
# Where the commands are gathered into the group, and reference.py, which writes docs/cli.md from that group.
ENTRY = {"__init__", "__main__", "reference"}


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function: `from a.b import c` gives a.b and a.b.c."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offending(paths: list[Path], forbidden: list[str]) -> list[str]:
    return [
        f"{p.relative_to(REPO)} imports {name}"
        for p in paths
        for name in sorted(imported(p))
        if any(under(name, f) for f in forbidden)
    ]


def test_the_dataset_library_imports_neither_torch_nor_trainer_nor_the_cli():
    library = [p for p in modules(REPO / "captchagen") if CLI not in p.parents and p.name != "__main__.py"]
    assert len(library) > 10
    assert offending(library, ["torch", "trainer", "captchagen.cli"]) == []


def test_trainer_never_imports_the_command_line():
    assert offending(modules(REPO / "trainer"), ["captchagen.cli"]) == []


@pytest.mark.parametrize("part", ["data", "training", "inference"])
def test_the_model_side_does_not_import_serving(part):
    assert offending(modules(REPO / "trainer" / part), ["trainer.serving"]) == []


def test_the_data_side_does_not_import_the_network():
    # trainer.model imports trainer.data (the normalisation inside ImageReader); the other way would be a cycle
    assert offending(modules(REPO / "trainer" / "data"), ["trainer.model", "trainer.models"]) == []


def test_inference_does_not_import_training():
    assert offending(modules(REPO / "trainer" / "inference"), ["trainer.training"]) == []


def test_no_command_imports_another_command():
    commands = [p for p in modules(CLI) if p.stem not in SHARED_BY_COMMANDS | ENTRY]
    assert {p.stem for p in commands} >= {"dataset", "train", "read", "evaluate", "export", "serve"}
    allowed = [f"captchagen.cli.{name}" for name in SHARED_BY_COMMANDS]
    for path in [*commands, *(CLI / f"{name}.py" for name in SHARED_BY_COMMANDS)]:
        cli_imports = [n for n in imported(path) if under(n, "captchagen.cli")]
        assert all(any(under(n, a) for a in allowed) for n in cli_imports), (path.name, cli_imports)


def test_no_module_outside_tests_is_named_like_a_test():
    assert [p for p in REPO.glob("[!t]*/**/test_*.py") if ".venv" not in p.parts] == []


def test_tests_share_helpers_through_one_module_not_conftest():
    tests = modules(REPO / "tests")
    assert offending(tests, ["tests.conftest", "conftest"]) == []
    shared = {name for p in tests for name in imported(p) if under(name, "tests")}
    assert {n.split(".")[1] for n in shared if n.count(".") >= 1} <= {"helpers"}
