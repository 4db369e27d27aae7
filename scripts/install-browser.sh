#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the browser test of `cnnlab explain --html`
# (tests/analysis/test_page.py). `make test` runs this; nothing is done when both are present.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "install-browser: Chromium and ChromeDriver are missing and this user cannot install them;" >&2
    echo "  run 'sudo apt-get install chromium chromium-driver', or 'make test BROWSER_TESTS=optional' to skip the browser test" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-browser: apt-get install chromium chromium-driver"
"${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null \
    || { "${SUDO[@]}" apt-get update -q >/dev/null && "${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; }
command -v chromium >/dev/null && command -v chromedriver >/dev/null
