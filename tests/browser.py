"""Headless Chromium (Debian's chromium + chromium-driver) under Selenium, for the pages cnnlab
writes. `make test` installs both (scripts/install-browser.sh) and sets CNNLAB_BROWSER_TESTS=required,
so CI runs these tests; elsewhere they are skipped when no Chromium is installed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = (
    shutil.which("chromium") or "/usr/bin/chromium",
    shutil.which("chromedriver") or "/usr/bin/chromedriver",
)
ARTIFACTS = Path(os.environ.get("CNNLAB_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium under Selenium; `make test` installs both, so CI always runs these."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CNNLAB_BROWSER_TESTS") == "required":
            pytest.fail(
                f"the browser tests are required here but {CHROMIUM} or {CHROMEDRIVER} is missing "
                "(make test installs Debian's chromium and chromium-driver)"
            )
        pytest.skip("no Chromium/ChromeDriver here (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def severe_console_messages(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
