"""The station tablet in real headless Chromium against the real server.

One demo unit (PC-000001 of order SO-1001) is built through its whole routing, a
tablet bound to each station in turn by its binding link; scans are typed as a
keyboard-wedge scanner types them (a burst of keys, then Enter). Screenshots of the
main states go to test-artifacts/station/.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from server.db import get_engine
from server.models import (
    Part,
    PartIdentifier,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
)
from server.tools.simulation.operators import TINY_PNG
from tests.support.browser import PageLog
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT = 20_000
WRONG_PART = "9506000001111"  # CASE-SFF: the small case, not this unit's
CASE_MT = "9506000001104"
# Which badge builds which step: Alice (kitting, esd, final), Chen (test).
WORKERS = {"KIT-1": "OP1001", "BRD-1": "OP1001", "FIN-1": "OP1001", "TST-1": "OP1003"}


def wedge(page: Any, text: str) -> None:
    """Type like a keyboard-wedge scanner: a few ms per key, then Enter."""
    page.wait_for_selector("body[data-ready]", state="attached")
    clear_hint = "document.getElementById('capture-hint').textContent = ''"
    for _attempt in range(3):
        page.evaluate(clear_hint)  # a hint left from earlier must not read as this one's
        page.keyboard.type(text, delay=4)
        page.keyboard.press("Enter")
        # On a loaded machine the keys can reach the page too slowly to pass for a
        # scanner; the page then says "typed by hand" and, like a worker, we scan again.
        page.wait_for_timeout(100)
        if not (page.locator("#capture-hint").text_content() or "").strip():
            return
    raise AssertionError(f"the page never took {text!r} for a scanner burst")


def scans_for(db_url: str, serial: str, sequence: int) -> list[str]:
    """The labels an operator would scan for a step: GS1 with the lot or serial the
    orders service reserved for this unit, a bare GTIN for untracked parts."""
    with Session(get_engine(db_url)) as db:
        unit = db.exec(select(Unit).where(Unit.serial == serial)).one()
        uop = db.exec(
            select(UnitOperation).where(
                UnitOperation.unit_id == unit.id, UnitOperation.sequence == sequence
            )
        ).one()
        labels = []
        for pick in uop.picks:
            part = db.get(Part, int(pick["part_id"]))
            assert part is not None
            gtin = db.exec(
                select(PartIdentifier.value).where(
                    PartIdentifier.part_id == part.id, PartIdentifier.kind == "gtin"
                )
            ).one()
            lot_ids = [
                m.lot_id
                for m in db.exec(
                    select(StockMovement)
                    .where(
                        StockMovement.unit_id == unit.id,
                        StockMovement.part_id == part.id,
                        StockMovement.reserved_delta > 0,
                    )
                    .order_by(col(StockMovement.id))
                )
            ]
            lots = [db.get(StockLot, i) for i in lot_ids]
            for n in range(int(pick.get("qty", 1))):
                gs1 = f"(01){gtin.zfill(14)}"
                if part.tracking == "serial":
                    lot = lots[n]
                    assert lot is not None
                    labels.append(f"{gs1}(21){lot.serial}")
                elif part.tracking == "lot":
                    lot = lots[0]
                    assert lot is not None
                    labels.append(f"{gs1}(10){lot.lot_code}")
                else:
                    labels.append(gtin)
        return labels


def verdict(page: Any, action: Any) -> None:
    """Do ``action`` and wait for the next verdict in the banner."""
    before = page.get_by_test_id("banner").get_attribute("data-ref")
    action()
    page.wait_for_selector(f'#banner:not([data-ref="{before}"])', state="attached", timeout=TIMEOUT)


def answer_checks(page: Any, server: LiveServer, station: str) -> None:
    """The step's quality checks (docs/quality.md): the torque driver's and the scale's
    readings over MQTT as the bridge publishes them, the LED and the label photo on the
    tablet; each check's row turns done."""
    todo = page.locator('[data-testid="check"].todo')
    codes = [todo.nth(i).get_attribute("data-code") for i in range(todo.count())]
    for code in codes:
        row = page.locator(f'[data-testid="check"][data-code="{code}"]')
        if code == "TQ-MB":
            for _ in range(4):
                server.publish_device(station, "torque", "torque1", value=0.6, unit="Nm", ok=True)
        elif code and code.startswith("WGT-"):
            limits = row.locator("td").nth(1).inner_text()  # e.g. 8.8–10.4 kg
            low, high = (float(x) for x in limits.split()[0].split("–"))
            server.publish_device(station, "weight", "scale1", value=(low + high) / 2, unit="kg")
        elif code == "LABEL":
            row.locator('input[type="file"]').set_input_files(
                {"name": "label.png", "mimeType": "image/png", "buffer": TINY_PNG}
            )
            verdict(page, lambda row=row: row.locator("button").click())
        else:
            verdict(page, lambda row=row: row.locator('button[value="1"]').click())
        page.wait_for_selector(
            f'[data-testid="check"].done[data-code="{code}"]', state="attached", timeout=TIMEOUT
        )


def sign_in(page: Any, badge: str) -> None:
    wedge(page, badge)
    page.wait_for_selector(f'[data-testid="screen"][data-operator="{badge}"]', timeout=TIMEOUT)


def test_build_a_unit_through_every_station(
    station_server: LiveServer, tablet: Any, page_log: PageLog, shots: Path
) -> None:
    page = tablet
    routing = [("KIT-1", 10), ("BRD-1", 20), ("FIN-1", 30), ("TST-1", 40)]
    for n, (station, sequence) in enumerate(routing):
        page.goto(station_server.device_link(station))
        assert page.url == f"{station_server.url}/station/{station}"
        page.wait_for_selector("body[data-live=open]", state="attached", timeout=TIMEOUT)
        if n == 0:
            page.screenshot(path=str(shots / "01-signed-out.png"))
        sign_in(page, WORKERS[station])
        page.get_by_test_id("start-next").click()
        page.wait_for_selector('[data-testid="unit-serial"]', timeout=TIMEOUT)
        assert page.get_by_test_id("unit-serial").inner_text() == "PC-000001"
        assert page.locator(".progress li.current").count() == 1
        if n == 0:
            page.screenshot(path=str(shots / "02-step-started.png"))
            # A wrong part: full-width red reason, reject tone, nothing recorded.
            wedge(page, WRONG_PART)
            page.wait_for_selector(".banner.reject", timeout=TIMEOUT)
            assert "Wrong part" in page.get_by_test_id("banner").inner_text()
            assert page.evaluate("document.body.dataset.lastSound").startswith("reject:")
            assert page.locator("tr.pick.done").count() == 0
            box = page.get_by_test_id("banner").bounding_box()
            assert box["width"] >= 1270 and box["height"] >= 64
            page.screenshot(path=str(shots / "03-wrong-part-rejected.png"))
            # The same characters typed slowly are a person, not the scanner: refused.
            page.keyboard.type("SCRM3", delay=150)
            page.keyboard.press("Enter")
            page.wait_for_selector("#capture-hint:has-text('Typed by hand')")
            assert page.locator("tr.pick.done").count() == 0
        labels = scans_for(station_server.db_url, "PC-000001", sequence)
        complete = page.get_by_test_id("complete")
        for label in labels:
            assert complete.is_disabled()
            verdict(page, lambda label=label: wedge(page, label))
            assert page.locator(".banner.ok").count() == 1, (
                label,
                page.get_by_test_id("banner").inner_text(),
            )
        assert page.locator("tr.pick.todo").count() == 0
        if page.locator("tr.check.todo").count():  # picks done, checks open: not yet
            assert page.get_by_test_id("complete").is_disabled()
        answer_checks(page, station_server, station)
        if n == 0:
            assert "P45X" in page.locator('tr[data-sku="PSU-450"] .records').inner_text()
            page.screenshot(path=str(shots / "04-picks-done.png"))
        complete = page.get_by_test_id("complete")
        assert complete.is_enabled()
        complete.click()
        page.wait_for_selector(".banner.ok:has-text('complete')", timeout=TIMEOUT)
        page.wait_for_selector("text=No unit in progress.")
        page.get_by_test_id("sign-out").click()
        page.wait_for_selector('[data-testid="screen"][data-operator=""]', timeout=TIMEOUT)
    with Session(get_engine(station_server.db_url)) as db:
        unit = db.exec(select(Unit).where(Unit.serial == "PC-000001")).one()
        assert unit.status == "completed" and unit.completed_at is not None
    assert page_log.exceptions + page_log.console_errors == []


def test_a_scan_over_mqtt_appears_without_reload(
    station_server: LiveServer, tablet: Any, shots: Path
) -> None:
    page = tablet
    page.goto(station_server.device_link("KIT-1"))
    page.wait_for_selector("body[data-live=open]", state="attached", timeout=TIMEOUT)
    sign_in(page, "OP1003")  # Chen: kitting
    page.get_by_test_id("start-next").click()
    page.wait_for_selector('[data-testid="unit-serial"]', timeout=TIMEOUT)
    serial = page.get_by_test_id("unit-serial").inner_text()
    page.evaluate("window.__notReloaded = true")
    # Wait for the live stream to be open, then scan on the serial scanner.
    page.wait_for_selector("#heartbeat:not(:empty)", state="attached", timeout=TIMEOUT)
    labels = scans_for(station_server.db_url, serial, 10)
    psu = next(label for label in labels if "(21)" in label)
    station_server.publish_scan("KIT-1", psu)
    row = page.locator('tr[data-sku^="PSU-"]')
    page.wait_for_selector('tr.pick.done[data-sku^="PSU-"]', timeout=TIMEOUT)
    assert psu.split("(21)")[1] in row.inner_text()
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(shots / "05-mqtt-scan-live.png"))
    # A wrong part from the serial scanner: the red reason shows up too.
    station_server.publish_scan("KIT-1", WRONG_PART)
    page.wait_for_selector(".banner.reject:has-text('Wrong part')", timeout=TIMEOUT)
    assert page.evaluate("window.__notReloaded") is True
    page.get_by_test_id("sign-out").click()
    page.wait_for_selector('[data-testid="screen"][data-operator=""]', timeout=TIMEOUT)


def test_the_french_ui_follows_the_operator(
    station_server: LiveServer, tablet: Any, shots: Path
) -> None:
    # Runs after the MQTT test, which left PC-000002's kitting step paused at KIT-1.
    page = tablet
    page.goto(station_server.device_link("KIT-1"))
    page.wait_for_selector("text=Scan your badge to sign in")
    wedge(page, "OP1002")  # Bruno: French, PIN 4321
    page.wait_for_selector('input[name="pin"]', timeout=TIMEOUT)
    page.screenshot(path=str(shots / "06-pin-pad.png"))
    for digit in "4321":
        page.locator(f'.key[data-key="{digit}"]').click()
    page.get_by_test_id("pin-ok").click()
    page.wait_for_selector('[data-testid="screen"][data-operator="OP1002"]', timeout=TIMEOUT)
    assert "Bienvenue, Bruno Lefèvre." in page.get_by_test_id("banner").inner_text()
    assert page.get_by_test_id("sign-out").inner_text() == "Se déconnecter"
    assert page.locator("html").get_attribute("lang") == "en"  # the page as first loaded
    page.reload()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_test_id("resume").inner_text() == "Reprendre"
    assert "En pause" in page.get_by_test_id("timer").inner_text()
    page.screenshot(path=str(shots / "07-french-paused.png"))
    page.get_by_test_id("resume").click()
    page.wait_for_selector(".banner.ok:has-text('Étape reprise.')", timeout=TIMEOUT)
    page.get_by_test_id("andon").click()
    page.get_by_test_id("andon-help").click()  # the reason, from the French dialog
    page.wait_for_selector('[data-testid="andon-state"]', timeout=TIMEOUT)
    assert "attente" in page.get_by_test_id("andon-state").inner_text()
    assert "Andon : Aide" in page.get_by_test_id("andon-state").inner_text()
    page.screenshot(path=str(shots / "08-french-andon.png"))
    page.get_by_test_id("sign-out").click()
    page.wait_for_selector("text=Scan your badge to sign in", timeout=TIMEOUT)


def test_reconnecting_state_and_nothing_lost(
    station_server: LiveServer, tablet: Any, shots: Path
) -> None:
    """The server freezes (SIGSTOP): heartbeats stop, the tablet says "reconnecting";
    a scan made meanwhile on the serial scanner shows once the server is back."""
    page = tablet
    page.goto(station_server.device_link("KIT-1"))
    page.wait_for_selector("body[data-live=open]", state="attached", timeout=TIMEOUT)
    sign_in(page, "OP1003")  # Chen, at PC-000002's kitting step (paused by the last test)
    verdict(page, lambda: page.get_by_test_id("resume").click())
    assert not page.get_by_test_id("link-state").is_visible()
    done_before = page.locator("tr.pick.done").count()
    os.kill(station_server.proc.pid, signal.SIGSTOP)
    try:
        page.wait_for_selector('[data-testid="link-state"]', state="visible", timeout=TIMEOUT)
        page.screenshot(path=str(shots / "09-reconnecting.png"))
        station_server.publish_scan("KIT-1", CASE_MT)  # the broker keeps it for the ingest
    finally:
        os.kill(station_server.proc.pid, signal.SIGCONT)
    page.wait_for_selector('[data-testid="link-state"]', state="hidden", timeout=20_000)
    page.wait_for_selector('tr.pick.done[data-sku="CASE-MT"]', timeout=TIMEOUT)
    assert page.locator("tr.pick.done").count() == done_before + 1
