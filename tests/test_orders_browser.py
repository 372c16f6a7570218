"""The planner's order form in headless Chromium: options update live (htmx), then the
order is saved and released from the UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser


def test_order_form_updates_live_and_order_releases(
    live_server: LiveServer, browser_page: Any, artifacts_dir: Path
) -> None:
    from playwright.sync_api import expect

    base_url = live_server.url
    page = browser_page
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", "supervisor")
    page.fill("input[name=password]", "supervisor")
    page.click("button.primary")
    page.goto(f"{base_url}/orders/new")
    page.fill("input[name=number]", "SO-9001")
    page.fill("input[name=customer]", "Browser GmbH")
    page.fill("input[name=due_date]", "2030-06-01")

    def choose(code: str) -> None:
        # Wait for each swap, as a person would see the form change before the
        # next click.
        with page.expect_response("**/orders/new/configure"):
            page.check(f"[data-option={code}] input")
        page.wait_for_load_state("networkidle")

    choose("sff")
    gpu = page.locator("[data-option=gpu4080] input")
    expect(gpu).to_be_disabled()
    expect(page.locator("[data-option=gpu4080]")).to_contain_text("does not fit the small case")
    for code in ("i7", "mem32", "ssd1t"):
        choose(code)
    expect(page.locator("table.bom")).to_contain_text("MB-ITX")
    # The promise follows the options: a date, and what binds it.
    expect(page.locator("[data-testid=promise]")).to_contain_text("Ships on")
    page.screenshot(path=str(artifacts_dir / "orders-new-live-bom.png"), full_page=True)
    page.click("text=Save order")
    expect(page.locator("h1")).to_contain_text("SO-9001")
    # Release asks first, showing the lots and serials it reserves.
    page.click("a.release")
    expect(page.locator("[data-testid=reserves]")).to_contain_text("MB-ITX")
    page.click("[data-testid=confirm-release]")
    expect(page.locator("h1")).to_contain_text("released")
    expect(page.locator("table.units")).to_contain_text("PC-000001")
