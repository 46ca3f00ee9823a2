#!/usr/bin/env bash
# Installs Debian's chromium for the page tests (tests/trainer/serving/test_page.py) if it is missing. Playwright drives this
# browser; it never downloads one of its own. Where installing is impossible (no root, no apt-get) it says so
# and the page tests skip; CI sets CAPTCHAGEN_REQUIRE_BROWSER=1, which turns that skip into a failure.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: no apt-get here; install chromium yourself, or the page tests will skip" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    echo "setup-browser: installing chromium needs root (sudo apt-get install chromium); the page tests will skip" >&2
    exit 0
  fi
fi
echo "setup-browser: installing chromium from the Debian packages" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
