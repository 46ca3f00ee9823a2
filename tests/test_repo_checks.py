"""Checks on the repository itself: the code is ruff clean (lint and format), scripts run without
sys.path edits, and the README's test command is the one CI runs. (The styles of captchas are tested in
test_styles.py.)"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_ruff(args):
    # ruff is a dev dependency, installed beside this interpreter by the README's test command
    result = subprocess.run([sys.executable, "-m", "ruff", *args, "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_type_checker_passes():
    # mypy, a dev dependency; pyproject.toml names what it checks (captchagen/ and trainer/) and how
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_noqa_only_names_rules_that_are_enabled():
    import re

    import tomllib

    selected = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["select"]
    for path in [
        *REPO.glob("captchagen/**/*.py"),
        *REPO.glob("trainer/**/*.py"),
        *REPO.glob("tests/*.py"),
        *REPO.glob("bench/*.py"),
        *REPO.glob("experiments/*.py"),
    ]:
        for codes in re.findall(r"# noqa: ([A-Z0-9, ]+)", path.read_text()):
            for code in codes.replace(" ", "").split(","):
                assert any(code.startswith(rule) for rule in selected), f"{path.name}: noqa {code} is not enabled"


def test_bench_and_experiments_import_the_code_as_installed_not_by_path():
    # bench scripts run as `python bench/X.py`, experiments as `python -m experiments.X`: neither edits sys.path
    for path in [*REPO.glob("bench/*.py"), *REPO.glob("experiments/*.py")]:
        text = path.read_text()
        assert "sys.path" not in text and "from bench" not in text, path.name


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 2, "the README opens with two commands: the main job and the tests"
    assert commands[1].endswith("-m pytest") and "-c constraints.txt" in commands[1]
    # every extra the tests import, and the browser the page tests drive
    assert '".[dev,serve,onnx]"' in commands[1] and "bash tests/setup-browser.sh" in commands[1]
    assert "awk '/^Run the whole test suite/" in (REPO / ".ci/run").read_text()


def test_every_relative_link_in_the_readme_and_docs_leads_somewhere():
    import re

    pages = [REPO / "README.md", *REPO.glob("docs/**/*.md")]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []


def test_the_readme_stays_a_guide():
    assert len((REPO / "README.md").read_bytes()) < 20_000  # the reference lives in docs/
