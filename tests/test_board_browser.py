"""The line board in headless Chromium: charts drawn by the vendored Chart.js under the
strict CSP, and a station change arriving live over SSE without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from station.workflow import CallAndon
from tests.support.browser import PageLog
from tests.support.building import act, build, place_and_release
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server_settings() -> dict[str, object]:
    return {"BOARD_REFRESH_SECONDS": 1}


@pytest.fixture(scope="module")
def board_server(live_server: LiveServer) -> LiveServer:
    """The module's live server with one PC built through every station."""
    (serial,) = place_and_release(
        live_server.engine,
        number="SO-BB",
        product="PC",
        quantity=1,
        options=["i5", "mem16", "ssd512", "mt"],
    )
    build(live_server.engine, serial)
    return live_server


def test_board_draws_charts_and_updates_live(
    board_server: LiveServer, browser_page: Any, page_log: PageLog, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    base_url = board_server.url
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", "supervisor")
    page.fill("input[name=password]", "supervisor")
    page.click("button.primary")
    page.goto(f"{base_url}/board")
    expect(page.locator("[data-kpi=completed] .value")).to_have_text("1")
    page.wait_for_function(
        "() => window.Chart && Chart.getChart('chart-hourly') && Chart.getChart('chart-cycles')"
    )
    total = page.evaluate(
        "() => Chart.getChart('chart-hourly').data.datasets[0].data.reduce((a, b) => a + b, 0)"
    )
    assert total == 1
    stations = page.evaluate(
        "() => Chart.getChart('chart-cycles').data.datasets.map(d => d.label.split(' ')[0])"
    )
    assert set(stations) == {"KIT-1", "BRD-1", "FIN-1", "TST-1"}
    # An andon raised at a station shows up without a reload.
    assert act(board_server.engine, "FIN-1", CallAndon("need help")).accepted
    card = page.locator("[data-station=FIN-1]")
    expect(card).to_have_attribute("data-state", "andon", timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "line-board.png"), full_page=True)
    page.click("[data-station=FIN-1] button.ack")
    expect(card.locator(".acknowledged")).to_be_visible()
    # Script errors and failed requests (the browser's own favicon probe aside).
    assert page_log.exceptions + page_log.failed_responses == []
