"""Shared fixtures: tiny datasets that render in well under a second, a tiny trained model (the helpers
they use are in tests/helpers.py), and headless Chromium for the page tests."""

from __future__ import annotations

import inspect
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import TINY, run_cli, shard_images, tiny_dataset, tiny_train_config

# ---- the `slow` marker: every test that trains a model, or uses a fixture that does ----

# A call that trains: the library's train(), torchrun, the CLI's `train` with the tiny model's options, or
# `adapt` (whose arguments are often a list built first). Wider than need be (an `adapt` refused at once is
# marked too), never narrower.
TRAINS = re.compile(r"(?<![\w.])train\(|torchrun_train\(|tiny_train_args\(|run_cli\(\s*\"train\"|\"adapt\",")


def _trains(function) -> bool:
    try:
        return bool(TRAINS.search(inspect.getsource(function)))
    except (OSError, TypeError):  # a built-in fixture (tmp_path, monkeypatch...): never trains
        return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `slow` each test whose own code or any fixture it uses (directly or through others) trains, so
    that `pytest -m "not slow"` runs the rest in a minute. Found from the code, not kept by hand: a new
    training test is marked the day it is written."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        fixtures = [d.func for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs]
        if _trains(item.function) or any(_trains(f) for f in fixtures):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A tiny digits dataset (tests.helpers.tiny_dataset), made once per test module."""
    return tiny_dataset(tmp_path_factory.mktemp("data") / "digits")


@pytest.fixture(scope="module")
def semi_sets(tmp_path_factory) -> tuple[Path, Path]:
    """(labelled digits, an unlabelled pool: a folder of the images of another seed under names that are not
    labels), for semi-supervised training."""
    root = tmp_path_factory.mktemp("semi")
    labelled = tiny_dataset(root / "labelled", n=320, shard_size=320, seed=5)
    made = tiny_dataset(root / "made-pool", n=120, shard_size=120, seed=6)
    pool = root / "pool"
    pool.mkdir()
    for i, p in enumerate(shard_images(made)):
        shutil.copy(p, pool / f"collected-{i:04d}.png")
    return labelled, pool


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


# ---- the page tests: Debian's chromium through Playwright; no browser is downloaded ----

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a sandboxed machine with no network: no GPU, no background calls home, a fresh profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CAPTCHAGEN_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed, and CAPTCHAGEN_REQUIRE_BROWSER=1 requires the browser tests")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def open_page(browser):
    """open_page(url): a new page at `url`; on teardown, the test fails if the page raised a JavaScript error."""
    opened: list[tuple] = []

    def open_at(url: str):
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        opened.append((page, errors))
        return page

    yield open_at
    for page, errors in opened:
        page.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"
