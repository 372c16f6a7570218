"""The line board in headless Chromium: charts drawn by the vendored Chart.js under the
strict CSP, and a station change arriving live over SSE without a reload."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from station.workflow import CallAndon
from tests.support.building import act, build, place_and_release

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
pytestmark = pytest.mark.browser


@pytest.fixture
def base_url(demo_app: Flask) -> Iterator[str]:
    demo_app.config["BOARD_REFRESH_SECONDS"] = 1
    engine = demo_app.extensions["taktline.engine"]
    (serial,) = place_and_release(engine, number="SO-BB", product="PC", quantity=1,
                                  options=["i5", "mem16", "ssd512", "mt"])
    build(engine, serial)
    server = make_server("127.0.0.1", 0, demo_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_board_draws_charts_and_updates_live(base_url: str, demo_app: Flask,
                                             artifacts_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            # Script errors and failed requests (the browser's own favicon probe aside).
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            page.goto(f"{base_url}/login")
            page.fill("input[name=username]", "supervisor")
            page.fill("input[name=password]", "supervisor")
            page.click("button.primary")
            page.goto(f"{base_url}/board")
            expect(page.locator("[data-kpi=completed] .value")).to_have_text("1")
            page.wait_for_function("() => window.Chart && Chart.getChart('chart-hourly')"
                                   " && Chart.getChart('chart-cycles')")
            total = page.evaluate("() => Chart.getChart('chart-hourly').data.datasets[0]"
                                  ".data.reduce((a, b) => a + b, 0)")
            assert total == 1
            stations = page.evaluate("() => Chart.getChart('chart-cycles').data.datasets"
                                     ".map(d => d.label.split(' ')[0])")
            assert set(stations) == {"KIT-1", "BRD-1", "FIN-1", "TST-1"}
            # An andon raised at a station shows up without a reload.
            assert act(demo_app.extensions["taktline.engine"], "FIN-1",
                       CallAndon("need help")).accepted
            card = page.locator("[data-station=FIN-1]")
            expect(card).to_have_attribute("data-state", "andon", timeout=10_000)
            page.screenshot(path=str(artifacts_dir / "line-board.png"), full_page=True)
            page.click("[data-station=FIN-1] button.ack")
            expect(card.locator(".acknowledged")).to_be_visible()
            assert errors == []
        finally:
            browser.close()
