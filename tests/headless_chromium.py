"""The browser the dashboard tests drive: Debian's headless chromium through its chromedriver (Selenium).

``require()`` skips the calling test module where chromium, chromedriver, FastAPI or Selenium are missing (CI
installs them: .ci/run); ``browser`` is the fixture, the page's console log kept for the tests to check.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def require() -> None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs Debian's chromium and chromium-driver packages (apt-get install chromium "
                    "chromium-driver)", allow_module_level=True)  # fmt: skip
    pytest.importorskip("fastapi", reason="needs the dashboard extra: pip install 'hkrt[dashboard]'")
    pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, checked at the end
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
