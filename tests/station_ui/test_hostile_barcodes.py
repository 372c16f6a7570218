"""A printed label can never act for a worker: hostile barcodes on the real tablet.

Markup scanned with the keyboard-wedge scanner (as a badge while nobody is signed in,
as a part during a step) or arriving from the serial scanner over MQTT (the SSE path)
shows in the refusal as the characters printed on the label. htmx never sees an
``hx-post`` in it: no request leaves the page, no andon is recorded, no image loads,
no script runs.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, func, select

from server.models import AndonCall
from tests.station_ui.test_station_e2e import TIMEOUT, sign_in, verdict, wedge
from tests.support.browser import PageLog
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
HX_POST = "<b hx-post=/station/KIT-1/andon hx-trigger=load>x</b>"
IMG = "<img src=x onerror=alert(1)>"


class Traffic:
    """Every request the page sends, and every dialog a script opens."""

    def __init__(self, page: Any) -> None:
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("request", lambda r: self.requests.append(f"{r.method} {r.url}"))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def clear(self) -> None:
        self.requests.clear()

    def unexpected(self) -> list[str]:
        """Requests other than the scan posts and the live stream's reconnects."""
        return [
            r
            for r in self.requests
            if not r.startswith("POST ") or not r.endswith("/station/KIT-1/scan")
            if not r.endswith("/station/KIT-1/events")
        ]


def andon_calls(server: LiveServer) -> int:
    with Session(server.engine) as db:
        return int(db.exec(select(func.count()).select_from(AndonCall)).one())


def assert_shown_as_text(page: Any, payload: str) -> None:
    banner = page.get_by_test_id("banner")
    assert payload in banner.inner_text()
    # Nothing inside the banner was parsed as markup: only its text span.
    assert banner.locator("b, img, [hx-post], [onerror]").count() == 0
    assert page.locator("[hx-trigger=load], img[src=x]").count() == 0


def settle(page: Any) -> None:
    """Give htmx (hx-trigger=load) and the image loader time to act, if they could."""
    page.wait_for_timeout(1500)


def test_markup_scanned_as_a_badge_is_text_and_sends_nothing(
    station_server: LiveServer, tablet: Any, page_log: PageLog
) -> None:
    page = tablet
    traffic = Traffic(page)
    page.goto(station_server.device_link("KIT-1"))
    page.wait_for_selector("body[data-live=open]", state="attached", timeout=TIMEOUT)
    before = andon_calls(station_server)
    for payload in (HX_POST, IMG):
        traffic.clear()
        verdict(page, lambda payload=payload: wedge(page, payload))
        assert page.locator(".banner.reject").count() == 1
        assert "is not known or not active" in page.get_by_test_id("banner").inner_text()
        assert_shown_as_text(page, payload)
        settle(page)
        assert traffic.unexpected() == [], traffic.requests
    assert traffic.dialogs == []
    assert andon_calls(station_server) == before
    assert page_log.exceptions + page_log.console_errors == []


def test_markup_scanned_as_a_part_or_over_mqtt_is_text_and_sends_nothing(
    station_server: LiveServer, tablet: Any, page_log: PageLog
) -> None:
    page = tablet
    traffic = Traffic(page)
    page.goto(station_server.device_link("KIT-1"))
    page.wait_for_selector("body[data-live=open]", state="attached", timeout=TIMEOUT)
    sign_in(page, "OP1001")
    page.get_by_test_id("start-next").click()
    page.wait_for_selector('[data-testid="unit-serial"]', timeout=TIMEOUT)
    before = andon_calls(station_server)
    for payload in (IMG, HX_POST):
        traffic.clear()
        verdict(page, lambda payload=payload: wedge(page, payload))
        assert "Unknown barcode" in page.get_by_test_id("banner").inner_text()
        assert_shown_as_text(page, payload)
        settle(page)
        assert traffic.unexpected() == [], traffic.requests
    # From the serial scanner: the verdict reaches the tablet over its live stream.
    page.wait_for_selector("#heartbeat:not(:empty)", state="attached", timeout=TIMEOUT)
    for payload in (HX_POST, IMG):
        traffic.clear()
        verdict(page, lambda payload=payload: station_server.publish_scan("KIT-1", payload))
        assert_shown_as_text(page, payload)
        settle(page)
        assert traffic.unexpected() == [], traffic.requests
    assert traffic.dialogs == []
    assert andon_calls(station_server) == before
    assert page_log.exceptions + page_log.console_errors == []
    page.get_by_test_id("sign-out").click()
    page.wait_for_selector('[data-testid="screen"][data-operator=""]', timeout=TIMEOUT)
