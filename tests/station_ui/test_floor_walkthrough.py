"""The station tablet on a real floor (issue 16), walked through in headless Chromium
against `taktline serve`: every screen size a plant has (800x1280 portrait, 1280x800,
1920x1080; 1024x768 for the layout check), in English and in French, a scan made
while the server is stopped, and an axe-core accessibility check of the tablet, the
board and the orders page.

What is asserted is what a worker sees: nothing wider than the screen, the whole
refusal readable, the rows it names highlighted, no English left on the French tablet
(product data without a translation aside), and a scan made during an outage refused
out loud, never lost in silence. Screenshots: test-artifacts/station/floor-*.png.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from sqlmodel import Session, func, select

from server.db import get_engine, write_session
from server.models import Consumption, Defect, DefectPhoto, Operator
from tests.station_ui.test_station_e2e import CASE_MT, TIMEOUT, WRONG_PART, sign_in, wedge

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = [(800, 1280), (1024, 768), (1280, 800), (1920, 1080)]
PO = Path(__file__).parents[2] / "server" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
# Chen (OP1003, kitting) works in French in this module; Alice (OP1001) in English.
FRENCH_WORKER = "OP1003"


def english_only_texts() -> list[re.Pattern[str]]:
    """Every English UI string whose French differs, as a pattern matching a whole
    text on the page (placeholders match anything)."""
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    patterns = []
    for message in catalog:
        if not message.id or isinstance(message.id, tuple) or message.string == message.id:
            continue
        parts = re.split(r"%\(\w+\)[sd]", str(message.id))
        if len("".join(parts).strip()) < 3:
            continue
        patterns.append(re.compile("^" + ".+".join(re.escape(p) for p in parts) + "$"))
    return patterns


# Each visible text node and accessible label of the page, trimmed.
VISIBLE_TEXTS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    const text = node.textContent.trim();
    if (!text || !el || el.closest("script, style, .hidden")) continue;
    if (!el.getClientRects().length) continue;
    out.push(text);
  }
  for (const el of document.querySelectorAll("[aria-label], [title], [placeholder]")) {
    for (const a of ["aria-label", "title", "placeholder"]) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a).trim());
    }
  }
  return out;
}"""

# What sticks out of the screen sideways: the page itself, or a part the worker needs.
OVERFLOW = """() => {
  const root = document.documentElement, width = root.clientWidth;
  const out = [];
  if (root.scrollWidth > width) out.push("page " + root.scrollWidth);
  const wanted = "#banner, #timer, .station-code, .andon-state, table.picks td, .actions button, "
    + ".dialog, .paused-screen button, .queue-item, .unit-head .serial";
  for (const el of document.querySelectorAll(wanted)) {
    const r = el.getBoundingClientRect();
    const out_of_screen = r.right > width + 1 || r.left < -1;
    if (r.width && out_of_screen) out.push(el.className + " " + Math.round(r.right));
  }
  return out;
}"""

# The refusal band shows its whole text: nothing cut off inside it, all of it on screen.
BANNER_CUT = """() => {
  const b = document.getElementById("banner");
  const r = b.getBoundingClientRect();
  return b.scrollHeight > b.clientHeight + 1 || b.scrollWidth > b.clientWidth + 1
    || r.bottom > window.innerHeight || r.top < 0;
}"""


@pytest.fixture(scope="module")
def live_server_settings() -> dict[str, object]:
    return {"STATION_NUMBER_SIGN_IN": True}


@pytest.fixture(scope="module")
def french_worker(station_server: Any) -> str:
    with write_session(station_server.engine) as db:
        chen = db.exec(select(Operator).where(Operator.badge == FRENCH_WORKER)).one()
        chen.locale = "fr"
        db.add(chen)
    return FRENCH_WORKER


@pytest.fixture(scope="module")
def floor_tablet(chromium: Any, station_server: Any) -> Iterator[Any]:
    """One touch tablet for the whole walk (its size changes, like a plant's screens)."""
    context = chromium.new_context(
        viewport={"width": 1280, "height": 800}, has_touch=True, device_scale_factor=1
    )
    page = context.new_page()
    page.goto(station_server.device_link("KIT-1"))
    page.wait_for_selector("body[data-live=open]", state="attached", timeout=TIMEOUT)
    yield page
    context.close()


def consumptions(db_url: str) -> int:
    with Session(get_engine(db_url)) as db:
        return int(db.exec(select(func.count()).select_from(Consumption)).one())


def look_at_every_size(page: Any, shots: Path, name: str) -> None:
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(50)
        assert page.evaluate(OVERFLOW) == [], (name, width, height)
        assert page.locator(".station-code").is_visible()
        if page.locator(".banner.reject").count():
            assert not page.evaluate(BANNER_CUT), (name, width, height)
        page.screenshot(path=str(shots / f"floor-{name}-{width}x{height}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})


def refuse_wrong_part(page: Any, needed: str) -> str:
    wedge(page, WRONG_PART)
    page.wait_for_selector(".banner.reject", timeout=TIMEOUT)
    text = page.get_by_test_id("banner").inner_text()
    assert needed in text, text
    # The row of the part to take instead stands out; nothing was picked.
    assert page.locator('tr.pick.wanted[data-sku="CASE-MT"]').count() == 1
    assert page.locator("tr.pick.done").count() == 0
    return text


def test_english_tablet_on_every_screen(
    station_server: Any, floor_tablet: Any, shots: Path, french_worker: str
) -> None:
    page = floor_tablet
    sign_in(page, "OP1001")  # Alice
    page.get_by_test_id("start-next").click()
    page.wait_for_selector('[data-testid="unit-serial"]', timeout=TIMEOUT)
    look_at_every_size(page, shots, "en-step")
    text = refuse_wrong_part(page, "Mid-tower case")
    assert text.startswith("Wrong part: this is")
    look_at_every_size(page, shots, "en-wrong-part")
    # Andon: a reason chosen, the call shown with its age, the station code still there.
    page.get_by_test_id("andon").click()
    page.get_by_test_id("andon-material").click()
    state = page.get_by_test_id("andon-state")
    state.wait_for(timeout=TIMEOUT)
    assert "Andon: Material" in state.inner_text() and "min ago" in state.inner_text()
    assert "waiting for a supervisor" in state.inner_text()
    look_at_every_size(page, shots, "en-andon")
    page.get_by_test_id("andon-cancel").click()
    page.wait_for_selector(".banner.ok:has-text('Andon call cancelled.')", timeout=TIMEOUT)
    assert page.get_by_test_id("andon-state").count() == 0
    # Pause: the whole work area says so; one way back.
    page.get_by_test_id("pause").click()
    page.wait_for_selector('[data-testid="paused"]', timeout=TIMEOUT)
    assert page.locator("tr.pick").count() == 0 and page.get_by_test_id("complete").count() == 0
    look_at_every_size(page, shots, "en-paused")
    page.get_by_test_id("resume").click()
    page.wait_for_selector("tr.pick", timeout=TIMEOUT)


def test_french_tablet_has_no_english_left(
    station_server: Any, floor_tablet: Any, shots: Path, french_worker: str
) -> None:
    page = floor_tablet
    sign_in(page, french_worker)  # a hand-over: Chen goes on with the same unit
    page.reload()
    page.wait_for_selector("body[data-live=open]", state="attached", timeout=TIMEOUT)
    assert page.locator("html").get_attribute("lang") == "fr"
    english = english_only_texts()
    text = refuse_wrong_part(page, "Boîtier moyen tour")  # the catalog's French
    assert text.startswith("Mauvaise pièce : c’est Boîtier petit format"), text

    def untranslated() -> list[str]:
        seen = page.evaluate(VISIBLE_TEXTS)
        return sorted({t for t in seen if any(p.match(t) for p in english)})

    assert untranslated() == []
    look_at_every_size(page, shots, "fr-wrong-part")
    for dialog in ("andon", "defect"):
        page.get_by_test_id(dialog).click()
        page.get_by_test_id(f"{dialog}-dialog").wait_for(timeout=TIMEOUT)
        assert untranslated() == [], dialog
        look_at_every_size(page, shots, f"fr-{dialog}-dialog")
        page.locator("[data-close-dialog]").first.click()
    page.get_by_test_id("pause").click()
    page.wait_for_selector('[data-testid="paused"]', timeout=TIMEOUT)
    assert untranslated() == []
    assert page.get_by_test_id("resume").inner_text() == "Reprendre"
    page.get_by_test_id("resume").click()
    page.wait_for_selector("tr.pick", timeout=TIMEOUT)


def test_a_scan_while_the_server_is_stopped_is_refused_out_loud(
    station_server: Any, floor_tablet: Any, shots: Path, french_worker: str
) -> None:
    """Server stopped, a scan typed, server started: the scan was refused on the spot
    (red band, reject tone, in the worker's language) and nothing was recorded; the
    same scan once connected is judged."""
    page = floor_tablet
    before = consumptions(station_server.db_url)
    os.kill(station_server.proc.pid, signal.SIGSTOP)
    try:
        page.wait_for_selector('[data-testid="link-state"]', state="visible", timeout=TIMEOUT)
        wedge(page, CASE_MT)
        page.wait_for_selector(".banner.reject:has-text('Non enregistré')", timeout=TIMEOUT)
        assert page.evaluate("document.body.dataset.lastSound").startswith("reject:")
        page.screenshot(path=str(shots / "floor-offline-scan-refused.png"))
    finally:
        os.kill(station_server.proc.pid, signal.SIGCONT)
    page.wait_for_selector('[data-testid="link-state"]', state="hidden", timeout=TIMEOUT)
    page.wait_for_timeout(500)  # anything in flight would have landed by now
    assert consumptions(station_server.db_url) == before
    assert page.locator('tr.pick.done[data-sku="CASE-MT"]').count() == 0
    wedge(page, CASE_MT)
    page.wait_for_selector('tr.pick.done[data-sku="CASE-MT"]', timeout=TIMEOUT)
    assert consumptions(station_server.db_url) == before + 1


def png(width: int, height: int) -> bytes:
    """A striped RGB PNG, like a camera picture too big to keep as taken."""
    row = bytes([0]) + bytes((x * 7 + y) % 256 for x in range(width) for y in (0, 1, 2))
    raw = b"".join(row for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def test_a_defect_with_a_photo_from_the_camera(
    station_server: Any, floor_tablet: Any, shots: Path, tmp_path: Path
) -> None:
    """Nothing preselected; the picture is shrunk on the tablet before it is sent."""
    page = floor_tablet
    page.get_by_test_id("defect").click()
    dialog = page.get_by_test_id("defect-dialog")
    dialog.wait_for(timeout=TIMEOUT)
    assert page.locator("[data-testid=defect-dialog] input:checked").count() == 0
    picture = tmp_path / "camera.png"
    picture.write_bytes(png(2400, 1600))
    page.get_by_test_id("defect-photo").set_input_files(str(picture))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=defect-photo]').files[0].type === 'image/jpeg'"
    )
    assert page.get_by_test_id("photo-state").inner_text() == "Photo prête"
    page.locator("[data-testid=reason-damaged] + span").click()
    page.locator("[data-testid=disposition-rework] + span").click()
    page.locator('[data-testid="part-CASE-MT"] + span').click()
    page.get_by_test_id("defect-note").fill("coin enfoncé")
    page.screenshot(path=str(shots / "floor-fr-defect-filled.png"))
    page.get_by_test_id("defect-submit").click()
    page.wait_for_selector(".banner.ok:has-text('Pièce abîmée')", timeout=TIMEOUT)
    with Session(get_engine(station_server.db_url)) as db:
        photo = db.exec(select(DefectPhoto)).one()
        defect = db.get(Defect, photo.defect_id)
        assert defect is not None and defect.note == "coin enfoncé"
    assert photo.content_type == "image/jpeg" and len(photo.data) < 600_000


# -- accessibility (axe-core, bundled with axe-playwright-python: served locally) ------

SERIOUS = ("serious", "critical")


def serious_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {len(v['nodes'])}x {v['nodes'][0]['target']}"
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]


def test_tablet_has_no_serious_accessibility_violation(floor_tablet: Any) -> None:
    page = floor_tablet
    page.wait_for_selector("tr.pick", timeout=TIMEOUT)
    assert serious_violations(page) == []
    page.get_by_test_id("defect").click()
    page.get_by_test_id("defect-dialog").wait_for(timeout=TIMEOUT)
    assert serious_violations(page) == []
    page.locator("[data-close-dialog]").first.click()


@pytest.fixture(scope="module")
def desk(chromium: Any, station_server: Any) -> Iterator[Any]:
    """A supervisor's desktop browser, signed in."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{station_server.url}/login")
    page.fill("input[name=username]", "supervisor")
    page.fill("input[name=password]", "supervisor")
    page.click("button.primary")
    page.wait_for_load_state()
    yield page
    context.close()


@pytest.mark.parametrize("path", ["/board", "/orders"])
def test_desk_pages_have_no_serious_accessibility_violation(
    station_server: Any, desk: Any, path: str
) -> None:
    desk.goto(station_server.url + path)
    desk.wait_for_load_state()
    assert serious_violations(desk) == []


def test_sign_in_by_number_on_the_touch_keypad(floor_tablet: Any, shots: Path) -> None:
    """Bruno left his badge at home: operator number, Next, PIN, all by touch."""
    page = floor_tablet
    page.get_by_test_id("sign-out").click()
    page.get_by_test_id("number-sign-in").click()
    page.get_by_test_id("number-dialog").wait_for(timeout=TIMEOUT)
    for key in "1002":
        page.locator(f'.key[data-key="{key}"]').click()
    page.get_by_test_id("number-next").click()
    for key in "4321":
        page.locator(f'.key[data-key="{key}"]').click()
    assert page.get_by_test_id("number").input_value() == "1002"
    page.screenshot(path=str(shots / "floor-number-keypad.png"))
    page.get_by_test_id("number-ok").click()
    page.wait_for_selector('[data-testid="screen"][data-operator="OP1002"]', timeout=TIMEOUT)
    assert "Bienvenue, Bruno Lefèvre." in page.get_by_test_id("banner").inner_text()
