"""Every page of the site in headless Chromium: loads, no console error, no request elsewhere."""

import json

import pytest


@pytest.mark.browser
def test_every_page_loads_cleanly(built_site, site_url, browser_driver):
    site, modules = built_site
    pages = json.loads((site / "site.json").read_text())["pages"]
    report = browser_driver(modules, site_url, "--pages", ",".join(pages), "--widths", "1280,390")
    assert set(report["pages"]) == set(pages)
    for path, seen in report["pages"].items():
        assert seen["status"] == 200, path
        assert seen["console_errors"] == [], (path, seen["console_errors"])
        assert seen["page_errors"] == [], (path, seen["page_errors"])
        assert seen["foreign_requests"] == [], (path, seen["foreign_requests"])
        assert seen["failed_requests"] == [], (path, seen["failed_requests"])
        assert seen["title"].endswith("· sotazoo"), path
        # a desktop window and a phone: nothing wider than the window (no sideways scrolling)
        for width, over in seen["overflow"].items():
            assert over["scroll"] == 0, (path, width, over["wide"])
