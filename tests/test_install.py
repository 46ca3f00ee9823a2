"""The bundled fonts, the base model (and the serve page) are found after a plain (non-editable) install and
after an editable one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A bare interpreter (no site-packages) that sees only the install under test: fonts.py and trainer.bundled
# need no dependency. The last line printed is the base model's path.
PROBE = (
    "import site, sys\n"
    "site.addsitedir(sys.argv[1])\n"
    "from captchagen.fonts import bundled_fonts\n"
    "from trainer.bundled import base_model\n"
    "for p in bundled_fonts(): print(p)\n"
    "print(base_model())\n"
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of the source tree, so that building leaves the checkout untouched."""
    dest = tmp_path / "src"
    anywhere = shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__")

    def ignore(folder: str, names: list[str]) -> set[str]:
        at_root = {"data", "runs", "bench-out"} if Path(folder) == REPO else set()  # trainer/data is source
        return set(anywhere(folder, names)) | (at_root & set(names))

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def pip_install(*args: str) -> None:
    # --ignore-installed: never uninstall the captchagen this test suite runs from
    flags = ["-q", "--no-deps", "--no-build-isolation", "--ignore-installed"]
    subprocess.run([sys.executable, "-m", "pip", "install", *flags, *args], check=True, capture_output=True)


def seen_from(site_dir: Path) -> tuple[list[Path], Path]:
    """The fonts and the base model that an interpreter seeing only `site_dir` finds."""
    out = subprocess.run(
        [sys._base_executable, "-I", "-S", "-c", PROBE, str(site_dir)], check=True, capture_output=True, text=True
    )
    *fonts, base = [Path(line) for line in out.stdout.splitlines()]
    return fonts, base


def expected_names() -> list[str]:
    return sorted(p.name for p in (REPO / "fonts").iterdir() if p.suffix == ".ttf")


def test_plain_install_ships_the_fonts_and_the_base_model_as_package_data(source, tmp_path):
    target = tmp_path / "site"
    pip_install("--target", str(target), str(source))
    shutil.rmtree(source)  # nothing may still point into the source tree
    fonts, base = seen_from(target)
    assert [p.name for p in fonts] == expected_names()
    for p in fonts:
        assert p.is_file() and p.is_relative_to(target)
        assert p.with_name(p.stem + ".LICENSE.txt").is_file()
    assert base.is_relative_to(target.resolve())
    assert base.read_bytes() == (REPO / "trainer" / "bundled" / "base.pt").read_bytes()
    assert (target / "trainer" / "serving" / "web" / "index.html").is_file()  # the page `captchagen serve` shows at /
    assert (target / "trainer" / "labeling" / "web" / "label.html").is_file()  # the page `captchagen label` shows
    # Every package of the source is installed (setup.cfg lists them by hand; trainer.models was once missed).
    packages = {
        p.parent.relative_to(REPO) for top in ("captchagen", "trainer") for p in (REPO / top).rglob("__init__.py")
    }
    assert packages and all((target / package / "__init__.py").is_file() for package in packages), sorted(
        str(p) for p in packages if not (target / p / "__init__.py").is_file()
    )


def test_editable_install_finds_the_fonts_and_the_base_model_in_the_source_tree(source, tmp_path):
    prefix = tmp_path / "prefix"
    pip_install("--prefix", str(prefix), "-e", str(source))
    site_dir = next(prefix.glob("lib/python*/site-packages"))
    fonts, base = seen_from(site_dir)
    assert [p.name for p in fonts] == expected_names()
    assert all(p.resolve().parent == (source / "fonts").resolve() for p in fonts)
    assert base == (source / "trainer" / "bundled" / "base.pt").resolve() and base.is_file()
