"""One small lake for all report tests (built once per session, ~5 s), and the browser."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import make_project, missing_prerequisite
from tests.reports.small_lake import build_small_lake

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def small_lake(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("report_lake"))
    old = os.environ.get("MBOLAKE_HOME")
    os.environ["MBOLAKE_HOME"] = str(root)
    try:
        build_small_lake(root)
        yield root
    finally:
        if old is None:
            os.environ.pop("MBOLAKE_HOME", None)
        else:
            os.environ["MBOLAKE_HOME"] = old


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser build)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        missing_prerequisite(f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium; .ci/run does it)")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield instance
        instance.close()


def open_page(browser, path, screenshot=None):
    """Open a local HTML file; return (plotly divs, drawn plotly svgs, console errors, outside requests)."""
    page = browser.new_page(viewport={"width": 1200, "height": 1400})
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
    page.goto(path.resolve().as_uri())
    page.wait_for_function("document.querySelectorAll('div.plotly-graph-div').length === "
                           "document.querySelectorAll('div.plotly-graph-div svg.main-svg').length / 3 || "
                           "document.querySelectorAll('div.plotly-graph-div').length === 0", timeout=20_000)
    divs = page.locator("div.plotly-graph-div").count()
    drawn = page.locator("div.plotly-graph-div:has(svg.main-svg)").count()
    if screenshot:
        page.screenshot(path=str(screenshot))
    page.close()
    return divs, drawn, errors, requests


def machine_paths(page: str, root) -> list[str]:
    """The forms of the project root found in a page: as given, resolved, as a file URI, and its
    parent folder (a table cell cuts a long path short: ``/tmp/pytest-of-u/pytest-7/ml_pro...``)."""
    root = Path(root)
    forms = {str(root), str(root.resolve()), root.as_uri(), root.resolve().as_uri(), str(root.parent),
             str(root.resolve().parent)}
    return sorted(form for form in forms if form in page)
