"""Browser tests' fixtures (registered by ``tests/conftest.py``): a live server and
headless Debian Chromium driven by Playwright.

``live_server``  a real `taktline serve` on a free port, with a private Mosquitto and a
                 fresh copy of the demo plant; one per test module (a story told across
                 a module's tests keeps its state). A module sets server settings by
                 overriding ``live_server_settings``.
``chromium``     headless /usr/bin/chromium, one per test module; skips when absent.
``browser_page`` a fresh page (its own cookies) in ``chromium``; a screenshot in
                 test-artifacts/browser/ when the test fails. ``page_log`` holds its
                 script errors, console errors and failed responses.

``open_page`` makes other kinds of page (the station's touch tablet) the same way.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.live_server import LiveServer, serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@dataclass
class PageLog:
    """What went wrong in a page while the test ran."""

    exceptions: list[str] = field(default_factory=list)  # uncaught script errors
    console_errors: list[str] = field(default_factory=list)
    # "404 http://..." for every response >= 400 (the browser's own favicon probe aside)
    failed_responses: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.exceptions.append(str(exc)))
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on(
            "response",
            lambda r: (
                self.failed_responses.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )


@pytest.fixture(scope="module")
def live_server_settings() -> dict[str, object]:
    """Server settings (``server.settings`` names) for this module's ``live_server``."""
    return {}


@pytest.fixture(scope="module")
def live_server(
    _sqlite_templates: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    live_server_settings: dict[str, object],
) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("live-server")
    database = workdir / "taktline.db"
    shutil.copy(_sqlite_templates["demo"], database)
    with serve(workdir, database, live_server_settings) as server:
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def open_page(
    browser: Any,
    request: pytest.FixtureRequest,
    log: PageLog,
    *,
    shots: Path,
    **context_options: Any,
) -> Iterator[Any]:
    """A page in a new context of ``browser`` (``context_options`` as Playwright's
    ``new_context``), watched by ``log``; ``shots/FAILED-<test>.png`` if the test fails."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    log.watch(page)
    try:
        yield page
        if request.node.stash.get(_FAILED, False):
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"FAILED-{request.node.name}.png"))
    finally:
        context.close()


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def browser_page(
    chromium: Any, page_log: PageLog, request: pytest.FixtureRequest, artifacts_dir: Path
) -> Iterator[Any]:
    with open_page(chromium, request, page_log, shots=artifacts_dir / "browser") as page:
        yield page


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report
