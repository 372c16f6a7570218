"""Every station event has three ways in (tablet, MQTT, JSON API), decided by one workflow.

Here the JSON API (``POST /api/v1/stations/<code>/scans`` and ``/events``) against a
real database, and what a verdict looks like later: stored as code and parameters,
rendered in the reader's language, pushed to an open tablet's SSE stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from sqlmodel import Session, col, func, select

from server.db import migrate, write_session
from server.models import (
    AndonCall,
    CustomerOrder,
    Defect,
    Event,
    Station,
    StepRecord,
    UnitOperation,
)
from server.orders import service as orders
from server.security import auth
from station import screen, texts
from tests.support.apps import login, make_app

# KIT picks of SO-1001's first unit: CASE-MT, PSU-450 (serial), SCR-M3, FAN-120 x2.
KIT_SCANS = [
    "9506000001104",
    "(01)09506000001128(21)P45X00001",
    "SCRM3",
    "(01)09506000001210(10)FN-2605",
    "(01)09506000001210(10)FN-2605",
]
# 600 characters: a GS1 string whose lot is too long, so biip names all of it.
LONG_SCAN = "(01)09506000134352(10)" + "A" * 578


@pytest.fixture
def app(demo_db_url: str, tmp_path: Path) -> Flask:
    app = make_app(demo_db_url, tmp_path, STATION_HEARTBEAT_SECONDS=0.2)
    with write_session(app.extensions["taktline.engine"]) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="test")
    return app


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    client = app.test_client()
    login(client, "supervisor")
    return client


class Poster:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.n = 0

    def __call__(self, path: str, **body: Any) -> tuple[int, dict[str, Any]]:
        self.n += 1
        body.setdefault("msg_id", f"api-{self.n}")
        response = self.client.post(f"/api/v1/stations/KIT-1/{path}", json=body)
        return response.status_code, response.json or {}


@pytest.fixture
def post(api: FlaskClient) -> Poster:
    return Poster(api)


def rows(app: Flask, *where: Any, model: Any = Event) -> int:
    with Session(app.extensions["taktline.engine"]) as db:
        return int(db.exec(select(func.count()).select_from(model).where(*where)).one())


def operator_at(body: dict[str, Any]) -> str | None:
    operator = body["state"]["operator"]
    return operator["badge"] if operator else None


def test_a_badge_posted_to_the_scan_api_signs_in_and_hands_over(post: Poster) -> None:
    status, body = post("scans", data="OP1001", source="erp")
    assert (status, body["code"], body["reason"]) == (200, "signed_in", "Welcome, Alice Martin.")
    assert operator_at(body) == "OP1001"
    # Another badge mid-shift: the station is handed over, on this path as on the tablet.
    status, body = post("scans", data="OP1003")
    assert (status, body["code"], operator_at(body)) == (200, "signed_in", "OP1003")
    # A badge with a PIN cannot sign in from a scanner alone: it says so, nothing changes.
    status, body = post("scans", data="OP1002")
    assert (status, body["code"], body["params"]["badge"]) == (422, "pin_needed", "OP1002")
    assert operator_at(body) == "OP1003"
    status, body = post("events", action="sign_in", badge="OP1002", pin="4321")
    assert (status, body["code"], operator_at(body)) == (200, "signed_in", "OP1002")
    status, body = post("events", action="sign_out")
    assert (status, operator_at(body)) == (200, None)
    status, body = post("scans", data="OP9999")
    assert (status, body["code"]) == (422, "unknown_badge")
    assert body["reason"] == "Badge OP9999 is not known or not active."


def test_a_whole_unit_over_the_events_api(app: Flask, post: Poster) -> None:
    assert post("events", action="start")[1]["code"] == "sign_in_first"
    assert post("events", action="sign_in", badge="OP1001")[0] == 200
    status, body = post("events", action="start")
    assert (status, body["code"]) == (200, "step_started")
    serial = body["state"]["unit"]["serial"]
    assert post("events", action="complete")[1]["code"] == "picks_missing"
    assert post("events", action="pause")[1]["code"] == "paused"
    assert post("scans", data=KIT_SCANS[0])[1]["code"] == "paused_now"
    assert post("events", action="resume")[1]["code"] == "resumed"
    for data in KIT_SCANS:
        status, body = post("scans", data=data)
        assert status == 200, body
    status, body = post("events", action="andon", reason="screws low")
    assert (status, body["code"], body["params"]) == (200, "andon_raised", {"reason": "screws low"})
    status, body = post("events", action="defect", reason="<script>", note="x")
    assert (status, body["code"]) == (422, "bad_reason")
    status, body = post("events", action="defect", reason="cosmetic", part="CASE-SFF")
    assert (status, body["code"]) == (422, "defect_part_unknown")  # not in this step
    assert (
        post("events", action="defect", reason="cosmetic", note="scuff", part="CASE-MT")[0] == 200
    )
    assert post("events", action="andon_cancel")[1]["code"] == "andon_cancelled"
    assert post("events", action="andon_cancel")[1]["code"] == "no_andon"
    status, body = post("events", action="complete", msg_id="done-1")
    assert (status, body["code"]) == (200, "step_complete")
    assert body["reason"] == f"Unit {serial}: Kit the case complete."
    assert body["state"]["unit"] is None
    again = post("events", action="complete", msg_id="done-1")
    assert again == (
        200,
        {
            "ref": "done-1",
            "result": "duplicate",
            "code": "duplicate",
            "reason": "Already received; nothing changed.",
            "source": "",
            "original": "accepted",
            "params": {},
        },
    )
    assert rows(app, col(StepRecord.ended_at).is_not(None), model=StepRecord) == 1
    assert rows(app, UnitOperation.status == "done", model=UnitOperation) == 1
    assert rows(app, model=AndonCall) == 1 and rows(app, model=Defect) == 1
    assert rows(app, Event.channel == "http", Event.kind == "complete") == 2


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"action": "dance"},
            "action must be one of sign_in, sign_out, start, complete, pause, "
            "resume, andon, defect, andon_cancel",
        ),
        ({"action": "sign_in"}, "badge is missing"),
        ({"action": "sign_in", "badge": "x" * 65}, "badge must be a string of 1 to 64 characters"),
        ({"action": "andon", "reason": ["help"]}, "reason must be a string of 1 to 200 characters"),
        ({"action": "pause", "evil": 1}, "unknown field 'evil' for an action"),
        ({"type": "teleport", "action": "pause"}, "type must be one of action, scan, device"),
    ],
)
def test_a_malformed_event_is_refused_and_changes_nothing(
    app: Flask, post: Poster, body: dict[str, Any], detail: str
) -> None:
    status, answer = post("events", **body)
    assert status == 400 and answer["code"] == "bad_payload"
    assert answer["reason"] == f"Message refused: {detail}."
    assert rows(app) == 0


def test_the_events_api_needs_stations_write(app: Flask) -> None:
    client = app.test_client()
    response = client.post("/api/v1/stations/KIT-1/events", json={"msg_id": "x", "action": "pause"})
    assert response.status_code == 401
    with write_session(app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="reader", scopes=["stations:read"], by=None)
    response = client.post(
        "/api/v1/stations/KIT-1/events",
        json={"msg_id": "x", "action": "pause"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403 and rows(app) == 0


def _sse_events(stream: Iterator[bytes]) -> Iterator[tuple[str, str]]:
    buffer = b""
    for chunk in stream:
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            lines = block.decode().splitlines()
            name = next((ln[7:] for ln in lines if ln.startswith("event: ")), "")
            data = "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))
            if name:
                yield name, data


def bind(app: Flask, client: FlaskClient) -> None:
    with write_session(app.extensions["taktline.engine"]) as db:
        row = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        token = auth.issue_device_token(db, station=row, by=None, label="test tablet")
    assert client.get(f"/station/bind?token={token}").status_code == 303


def test_a_rejection_over_the_api_reaches_the_open_tablet(app: Flask, post: Poster) -> None:
    tablet = app.test_client()
    bind(app, tablet)
    post("events", action="sign_in", badge="OP1001")
    post("events", action="start")
    response = tablet.get("/station/KIT-1/events", buffered=False)
    events = _sse_events(response.response)  # type: ignore[arg-type]
    try:
        name, first = next(events)
        assert name == "snapshot" and "Wrong part" not in first
        status, _ = post("scans", data="(01)09506000001111")  # CASE-SFF: not this unit's
        assert status == 422
        name, html = next(e for e in events if e[0] == "snapshot")
        assert 'class="banner reject"' in html
        assert "Wrong part: this is" in html
    finally:
        response.close()


def test_a_long_rejection_is_stored_as_data_and_renders_in_any_language(
    app: Flask, post: Poster
) -> None:
    post("events", action="sign_in", badge="OP1001")
    post("events", action="start")
    status, body = post("scans", data=LONG_SCAN, msg_id="long-1")
    assert (status, body["code"]) == (422, "bad_check_digit")
    detail = body["params"]["detail"]
    assert len(detail) > 600 and "A" * 578 in detail
    engine = app.extensions["taktline.engine"]
    with Session(engine) as db:
        event = db.exec(select(Event).where(Event.msg_id == "long-1")).one()
        assert (event.code, event.params) == ("bad_check_digit", {"detail": detail})
        station_id = db.exec(select(Station.id).where(Station.code == "KIT-1")).one()
        verdict = screen.last_verdict(db, station_id, now=event.received_at)
    assert verdict is not None
    with app.test_request_context(), force_locale("en"):
        english = texts.translated(verdict.code, verdict.params)
    with app.test_request_context(), force_locale("fr"):
        french = texts.translated(verdict.code, verdict.params)
    assert english == (f"Barcode damaged or misprinted ({detail}): scan again or type the code.")
    assert detail in french and french != english and "?" not in french.replace(detail, "")
    # The tablet re-rendered later shows it whole, with its parameters.
    tablet = app.test_client()
    bind(app, tablet)
    page = tablet.get("/station/KIT-1").text
    banner = re.search(r'<span class="banner-text">(.*?)</span>', page, re.S)
    assert banner is not None and "A" * 578 in banner.group(1)
    assert "Barcode damaged or misprinted" in banner.group(1)


def test_migration_0004_splits_old_verdicts_into_code_and_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0003")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for msg_id, reason in (
            ("old-1", "wrong_part: Wrong part: this is A, step needs B."),
            ("old-2", ""),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO event (msg_id, channel, kind, source, received_at, data, payload,"
                    " result, reason) VALUES (:m, 'mqtt', 'scan', '', '2026-03-02 08:00:00', 'x',"
                    " '{}', 'rejected', :r)"
                ),
                {"m": msg_id, "r": reason},
            )
    migrate.upgrade(url)
    with engine.connect() as conn:
        got = conn.execute(
            sa.text("SELECT msg_id, code, params, reason FROM event ORDER BY msg_id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in got] == [
        ("old-1", "wrong_part", "{}", "Wrong part: this is A, step needs B."),
        ("old-2", "", "{}", ""),
    ]


def test_a_64_bit_seq_is_stored_on_every_database(any_demo_app: Flask) -> None:
    client = any_demo_app.test_client()
    login(client, "supervisor")
    body = {"msg_id": "big-seq", "seq": 2**63 - 1, "data": "OP1001"}
    response = client.post("/api/v1/stations/KIT-1/scans", json=body)
    assert response.status_code == 200 and response.json["code"] == "signed_in"
    with Session(any_demo_app.extensions["taktline.engine"]) as db:
        event = db.exec(select(Event).where(Event.msg_id == "big-seq")).one()
    assert event.seq == 2**63 - 1


def test_pin_guessing_is_limited_per_badge_on_every_path(post: Poster) -> None:
    """The tablet has its own limiter; the workflow's badge limit also holds over the
    API and MQTT, counted from the stored verdicts (any process)."""
    for pin in ("0000", "1111", "2222", "3333", "4444"):
        status, body = post("events", action="sign_in", badge="OP1002", pin=pin)
        assert (status, body["code"]) == (422, "wrong_pin")
    status, body = post("events", action="sign_in", badge="OP1002", pin="4321")
    assert (status, body["code"]) == (422, "pin_locked")
    assert body["reason"] == (
        "Too many wrong PINs for badge OP1002: wait a few minutes or ask a supervisor."
    )
    assert operator_at(body) is None
    # Another badge is not held back by it.
    assert post("events", action="sign_in", badge="OP1001")[1]["code"] == "signed_in"
