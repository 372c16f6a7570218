"""Desk pages as a supervisor or admin reads them: the home page's links for each role,
times in the plant's time zone (the API and exports stay UTC), the audit detail as
labelled lines, and a tablet's binding link as a QR code."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import segno
from flask import Flask
from sqlmodel import select

from server.db import write_session
from server.models import AuditEntry, Operator
from server.security import auth
from tests.support.apps import login, make_app

AT = datetime(2026, 3, 2, 13, 5, 7, tzinfo=UTC)  # 14:05:07 in Paris (CET)
LATE = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


class Links(HTMLParser):
    """The links inside the home page's cards: {card title: [(href, text), ...]}."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.cards: dict[str, list[tuple[str, str]]] = {}
        self._card: str | None = None
        self._in_title = False
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "article" and "home-card" in (a.get("class") or ""):
            self._card = ""
        elif tag == "h2" and self._card == "":
            self._in_title = True
        elif tag == "a" and self._card is not None:
            self._href = a.get("href")

    def handle_data(self, data: str) -> None:
        if self._href is None or self._card is None or not data.strip():
            return
        if self._in_title:
            self._card = data.strip()
            self.cards[self._card] = [(self._href, self._card)]
        else:
            self.cards[self._card].append((self._href, data.strip()))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None
        elif tag == "h2":
            self._in_title = False
        elif tag == "article":
            self._card = None


def test_home_offers_the_links_each_role_may_use(demo_app: Flask) -> None:
    with write_session(demo_app.extensions["taktline.engine"]) as db:
        op = db.exec(select(Operator).where(Operator.badge == "OP1001")).one()
        op.username, op.password_hash = "op1001", auth.hash_secret("op1001-pw")
        db.add(op)
    anonymous = demo_app.test_client()
    home = anonymous.get("/").get_data(as_text=True)
    assert Links(home).cards == {} and 'href="/login"' in home
    operator = demo_app.test_client()
    login(operator, "op1001", "op1001-pw")
    home = operator.get("/").get_data(as_text=True)
    assert Links(home).cards == {} and "sign in there with your badge" in home

    supervisor = demo_app.test_client()
    login(supervisor, "supervisor")
    cards = Links(supervisor.get("/").get_data(as_text=True)).cards
    assert list(cards) == [
        "Orders", "Dispatch", "Supply", "Stock", "Trace", "Quality", "Line board", "Audit trail"
    ]  # fmt: skip
    assert ("/board?tv=1", "TV mode") in cards["Line board"]
    assert ("/orders/new", "New order") in cards["Orders"]
    assert ("/ingest/dead-letters", "Dead letters") in cards["Audit trail"]
    for links in cards.values():
        for href, text in links:
            assert supervisor.get(href).status_code == 200, (href, text)

    admin = demo_app.test_client()
    login(admin, "admin")
    cards = Links(admin.get("/").get_data(as_text=True)).cards
    assert list(cards)[-1] == "Admin"
    assert ("/admin/devices", "Station tablets") in cards["Admin"]


@pytest.fixture
def paris(any_demo_db_url: str, tmp_path: Path) -> Flask:
    return make_app(any_demo_db_url, tmp_path, PLANT_TIMEZONE="Europe/Paris")


def test_audit_page_reads_in_plant_time_and_words_while_the_export_stays_utc(
    paris: Flask,
) -> None:
    with write_session(paris.extensions["taktline.engine"]) as db:
        entries: list[tuple[str, dict[str, Any]]] = [
            ("stock.adjust", {"sku": "GPU-4080", "on_hand": [3, 1], "reason": "cycle count"}),
            ("user.create", {"name": "Pat", "password": True, "pin": False, "skills": []}),
            ("station.andon", {"code": "andon_raised", "reason": "no SATA cables", "msg_id": "m1"}),
        ]
        for action, detail in entries:
            db.add(AuditEntry(at=AT, actor="sutherland", action=action, entity="x", detail=detail))
        # 00:30 on 2 March in Paris, still 1 March in UTC.
        db.add(AuditEntry(at=LATE, actor="night", action="order.cancel", entity="order"))
    client = paris.test_client()
    login(client, "supervisor")
    page = client.get("/audit/?since=2026-03-02&actor=sutherland").get_data(as_text=True)
    rows = re.findall(r"<tr><td><time.*?</tr>", page, re.S)
    assert len(rows) == 3
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    assert all(t.startswith("2026-03-02 14:05:07 sutherland") for t in text)
    assert "Europe/Paris" in page and "(UTC)" not in page
    assert 'datetime="2026-03-02T13:05:07Z"' in page  # machine-readable time stays UTC
    assert "Andon raised (no SATA cables): a supervisor is called." in text[0]
    assert "Name Pat Password set yes PIN set no Skills —" in text[1]
    assert "Part GPU-4080 On hand 3 → 1 Reason cycle count" in text[2]
    assert "{" not in "".join(text)  # no JSON left
    exported = client.get("/audit/export.json?since=2026-03-02&until=2026-03-02").json
    assert [e["at"] for e in exported] == [  # type: ignore[union-attr]
        "2026-03-01T23:30:00Z",
        *["2026-03-02T13:05:07Z"] * 3,
    ]
    assert exported[3]["detail"]["on_hand"] == [3, 1]  # type: ignore[index]
    # Dates filter plant days: the night entry is on 2 March in Paris, not on 1 March.
    assert client.get("/audit/export.json?since=2026-03-01&until=2026-03-01").json == []


def test_a_tablet_is_bound_by_scanning_a_qr_code(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    page = client.post("/admin/devices", data={"station": "TST-1", "label": "tab 4"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    url = re.search(r'<code data-testid="bind-url">([^<]+)</code>', html)
    assert url is not None and "/station/bind?token=tld_" in url.group(1)
    svg = re.search(r'<div class="qr-box" data-testid="bind-qr">(<svg.*?</svg>)</div>', html, re.S)
    assert svg is not None and "<title>Binding link for TST-1</title>" in svg.group(1)
    # The drawn modules are those of the link itself (segno is deterministic).
    drawn = re.search(r'<path stroke="#000" d="([^"]+)"', svg.group(1))
    expected = segno.make(url.group(1).replace("&amp;", "&"), error="m", micro=False)
    assert drawn is not None and f'd="{drawn.group(1)}"' in expected.svg_inline(
        scale=1, border=4, dark="#000", light="#fff", omitsize=True, lineclass=None
    )
    # The link works: opened on the tablet, it binds it to TST-1.
    tablet = demo_app.test_client()
    bound = tablet.get(url.group(1).replace("&amp;", "&").split("://", 1)[1].split("/", 1)[1])
    assert bound.status_code in (302, 303)
    assert tablet.get_cookie(auth.DEVICE_COOKIE) is not None
