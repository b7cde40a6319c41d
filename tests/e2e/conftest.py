"""Fixtures of the end-to-end tests: the HTTP API served over the running
worker's runtime, an app's key for it, and a headless Chromium."""

import shutil
from pathlib import Path

import pytest

from tests.servers import ApiServer
from workers.store import apikeys

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def api(mailroom):
    server = ApiServer(mailroom.rt)
    yield server
    server.stop()


@pytest.fixture
def key(mailroom):
    with mailroom.rt.engine.begin() as conn:
        return apikeys.create(conn, "notes", mailroom.rt.clock())[1]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (bash tests/run.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()
