"""The browser tests' fixtures: the real app on a free port (tests/launch.py) and Debian's chromium through Playwright."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.launch import CHROMIUM, launch_chromium, start_app, stop_app


@pytest.fixture(scope="session")
def app_url(lab_cache):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    process, url = start_app(log=f"e2e-app-{worker}.log")  # the log holds the traceback behind a page's error id
    yield url
    stop_app(process)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: tests/run.sh installs it with apt-get")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()
