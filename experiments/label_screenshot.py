"""The screenshot of `captchagen label` in docs/images/label-page.png: the page on a small pool of a third-party
generator's captchas (bench-only, experiments/foreign.py), read by the base model, after a few labels.

    python -m experiments.label_screenshot --generator wheezy --out docs/images/label-page.png
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from experiments import foreign
from tests.conftest import CHROMIUM, CHROMIUM_ARGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="wheezy", choices=sorted(foreign.GENERATORS))
    parser.add_argument("--model", default="base")
    parser.add_argument("--out", type=Path, default=Path("docs/images/label-page.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        made = foreign.make(args.generator, 40, 7, Path(tmp) / "made")
        pool = Path(tmp) / "collected"
        pool.mkdir()
        for i, p in enumerate(sorted(made.glob("*.png"))):  # collected captchas have no label in their names
            shutil.copy(p, pool / f"captcha-{i:03d}.png")
        command = [sys.executable, "-m", "captchagen.cli", "label", "collected", "--out", "labelled"]
        command += ["--model", args.model, "--reads", foreign.ALPHANUMERIC, "--port", "0"]
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONPATH": str(root)}  # run from the pool's folder, so the page shows short paths
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp, env=env)
        try:
            url = re.search(r"http://[\d.]+:\d+", server.stdout.readline()).group(0)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 820, "height": 560})
                page.goto(url)
                page.wait_for_function("document.getElementById('progress').textContent.includes('remaining')")
                for _ in range(3):  # a few answers, so the page shows progress and the time per label
                    page.wait_for_timeout(700)
                    page.keyboard.press("Enter")
                    page.wait_for_function("document.getElementById('saved').textContent.startsWith('saved')")
                page.wait_for_timeout(300)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait()
    print(args.out)


if __name__ == "__main__":
    main()
