"""A real browser for the console's tests: Playwright driving the system's chromium (Debian's package,
which .ci/run installs), headless. Playwright's own browser downloads are never used. Each test's
screenshots go to artifacts/screenshots/ (git-ignored, kept by CI)."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


@pytest.fixture
def settings(db_url, redis_url, tmp_path):
    # The bot hands a customer who asks for a person to an available agent, live.
    return make_settings(db_url, redis_url, tmp_path, policies="bot,assignment,extraction", sse_heartbeat_seconds=0.5)


@pytest.fixture(scope="package")  # closed before the other packages' tests run
def browser() -> Iterator:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's with apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (uv sync installs the dev group)")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        yield launched
        launched.close()


@pytest.fixture
def context(browser) -> Iterator:
    opened = browser.new_context(viewport=DESKTOP)
    opened.set_default_timeout(15_000)
    yield opened
    opened.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def shoot():
    """shoot(page, name): a full-page screenshot at artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
