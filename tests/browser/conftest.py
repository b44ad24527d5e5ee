"""The `browser_driver` fixture: headless Chromium over the served site (`sotazoo.site.browser`).

Where Chromium or node is missing the browser tests skip, except in CI, where `.ci/run` installs
both and a missing one is a failure."""

import os

import pytest

from sotazoo.site.browser import browser_available, chromium_path, run_check


@pytest.fixture
def browser_driver():
    if not browser_available():
        if os.environ.get("CI"):
            pytest.fail(f"CI must install Chromium ({chromium_path()}) and node; see .ci/run")
        pytest.skip(f"needs {chromium_path()} and node (apt-get install chromium nodejs)")
    return run_check
