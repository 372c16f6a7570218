"""The line board in headless Chromium: charts drawn by the vendored Chart.js under the
strict CSP, and a station change arriving live over SSE without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from server.models.types import utcnow
from station.workflow import CallAndon
from tests.support.board_scene import floor_scene, zone_where_it_is
from tests.support.browser import PageLog
from tests.support.building import act, build, place_and_release
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server_settings() -> dict[str, object]:
    # A plant where it is 14:xx now: the plan's hours stay inside the plant day.
    return {"BOARD_REFRESH_SECONDS": 1, "PLANT_TIMEZONE": zone_where_it_is(14)}


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
    stations = page.evaluate("() => Chart.getChart('chart-cycles').data.labels")
    assert set(stations) == {"KIT-1", "BRD-1", "FIN-1", "TST-1"}
    # An andon raised at a station shows up without a reload.
    assert act(board_server.engine, "FIN-1", CallAndon("need help")).accepted
    card = page.locator("article[data-station=FIN-1]")
    expect(card).to_have_attribute("data-state", "andon", timeout=10_000)
    page.screenshot(path=str(artifacts_dir / "line-board.png"), full_page=True)
    page.click("article[data-station=FIN-1] button.ack")
    expect(card.locator(".acknowledged")).to_be_visible()
    # Script errors and failed requests (the browser's own favicon probe aside).
    assert page_log.exceptions + page_log.failed_responses == []


# -- the wall screen and the desk board at real screen sizes ---------------------------


@pytest.fixture(scope="module")
def tv_server(board_server: LiveServer) -> LiveServer:
    """The module's server after the first test, with the floor scene added (the line
    started two hours ago, an andon for material raised twelve minutes ago)."""
    from server.db import write_session
    from server.models import AndonCall

    with write_session(board_server.engine) as db:  # the first test's andon is over
        for call in db.exec(select(AndonCall)).all():
            call.resolved_at = utcnow()
            db.add(call)
    floor_scene(board_server.engine)
    return board_server


def _signed_in(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", "supervisor")
    page.fill("input[name=password]", "supervisor")
    page.click("button.primary")


def _serious_accessibility_violations(page: Any) -> list[str]:
    """axe-core (bundled with axe-playwright-python, injected locally): serious or critical."""
    from axe_playwright_python.sync_playwright import Axe

    return [
        f"{v['id']} ({v['impact']}): {len(v['nodes'])}x {v['nodes'][0]['target']}"
        for v in Axe().run(page).response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def _overflow(page: Any) -> dict[str, int]:
    return page.evaluate(  # type: ignore[no-any-return]
        """() => ({x: document.documentElement.scrollWidth - window.innerWidth,
                  y: document.documentElement.scrollHeight - window.innerHeight})"""
    )


def test_tv_board_fits_one_screen_and_a_portrait_tablet(
    tv_server: LiveServer, browser_page: Any, page_log: PageLog, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    _signed_in(page, tv_server.url)
    page.goto(f"{tv_server.url}/board?tv=1")
    page.wait_for_function("() => Chart.getChart('chart-hourly') && Chart.getChart('chart-cycles')")
    andon = page.locator("article[data-station=FIN-1]")
    expect(andon).to_have_attribute("data-state", "andon")
    expect(andon.locator(".andon-age")).to_contain_text("raised 12 min ago")
    assert andon.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(185, 28, 28)"
    page.screenshot(path=str(artifacts_dir / "board-tv-1920x1080.png"))
    assert _overflow(page) == {"x": 0, "y": 0}
    assert _serious_accessibility_violations(page) == []
    # Box plots: one row per station that worked today, quartiles drawn as floating bars.
    labels = page.evaluate("() => Chart.getChart('chart-cycles').data.labels")
    assert set(labels) == {"KIT-1", "BRD-1", "FIN-1", "TST-1"}
    for selector in (".board-figures", ".charts"):
        box = page.locator(selector).bounding_box()
        assert box["y"] + box["height"] <= 1080 and box["x"] + box["width"] <= 1920, selector
    for width, height in ((1280, 800), (800, 1280)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts_dir / f"board-tv-{width}x{height}.png"))
        assert _overflow(page)["x"] <= 0, (width, height)
    assert page_log.exceptions + page_log.failed_responses == []


def test_desk_board_shows_its_charts_above_the_fold(
    tv_server: LiveServer, browser_page: Any, page_log: PageLog, artifacts_dir: Path
) -> None:
    page = browser_page
    page.set_viewport_size({"width": 1920, "height": 1080})
    _signed_in(page, tv_server.url)
    page.goto(f"{tv_server.url}/board")
    page.wait_for_function("() => Chart.getChart('chart-hourly') && Chart.getChart('chart-cycles')")
    page.screenshot(path=str(artifacts_dir / "board-desk-1920x1080.png"))
    for canvas in ("#chart-hourly", "#chart-cycles"):
        box = page.locator(canvas).bounding_box()
        assert box["y"] + box["height"] <= 1080, canvas
    assert _serious_accessibility_violations(page) == []
    assert _overflow(page)["x"] <= 0
    for width, height in ((1280, 800), (1024, 768), (800, 1280)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)
        shot = artifacts_dir / f"board-desk-{width}x{height}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert _overflow(page)["x"] <= 0, (width, height)
    assert page_log.exceptions + page_log.failed_responses == []
