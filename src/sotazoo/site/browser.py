"""Drive the system's headless Chromium over a served site with playwright-core (`check.mjs`).

Used by the browser tests and by `sotazoo site bench`. Chromium comes from Debian's `chromium`
package (no browser download), playwright-core from the site's npm packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from sotazoo.errors import SotazooError

CHECK_SCRIPT = Path(__file__).with_name("check.mjs")


def chromium_path() -> str:
    return os.environ.get("SOTAZOO_CHROMIUM", "/usr/bin/chromium")


def browser_available() -> bool:
    return Path(chromium_path()).is_file() and shutil.which("node") is not None


def run_check(modules: Path, url: str, *args: str, timeout: int = 300) -> dict:
    """Run `check.mjs` against the site at `url`; returns its JSON report."""
    if not browser_available():
        raise SotazooError(
            f"headless checks need Chromium at {chromium_path()} and node "
            "(Debian: apt-get install chromium nodejs; or set SOTAZOO_CHROMIUM)"
        )
    done = subprocess.run(
        ["node", str(CHECK_SCRIPT), str(modules), url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SotazooError(f"the headless browser check failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)
