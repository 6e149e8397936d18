"""Headless Chromium (Debian's `chromium` and `chromium-driver`, driven by selenium), offline, on a fresh profile."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
"""What Chromium needs to run headless as root without reaching the network on its own."""


def browser_missing() -> str | None:
    """Why headless Chromium cannot run here, or None when it can."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (`make test-slow` installs the `browser` extra)"
    for binary in ("chromium", "chromedriver"):
        if shutil.which(binary) is None:
            return f"no `{binary}` on PATH (apt-get install chromium chromium-driver; `make test-slow` does)"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 2000) -> Iterator[Any]:
    """A selenium WebDriver of headless Chromium with a window of `width` x `height`, quit after the block."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        # the driver's path is given, so selenium never looks for (or downloads) one
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "chromedriver"))
        try:
            yield driver
        finally:
            driver.quit()
