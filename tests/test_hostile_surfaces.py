"""The new surfaces (promise dates and receipts, line calendars, quality, the tablet's
checks, andon and defect dialog, the board) under hostile input over HTTP on the demo
plant: every bad request gets a clear 4xx or a refusal, changes nothing, and hostile
text is escaped wherever it is shown."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from server.db import dispose_engine, get_engine, write_session
from server.ingest.payload import InvalidPayload, decode, envelope
from server.inventory import receipts
from server.models import (
    Check,
    CheckResult,
    Consumption,
    Event,
    NonConformance,
    OrderPromise,
    Part,
    ScheduledReceipt,
    StationDowntime,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
)
from server.quality import ncr, rework
from server.security import auth
from tests.support.apps import CliRunner, login
from tests.support.building import build_step, place_and_release
from tests.test_station_views import bind

HX = {"HX-Request": "true"}
EVIL = '<script>alert(1)</script><b hx-post="/admin" hx-trigger="load">x</b>'
TINY_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _acts(html: str) -> bool:
    """The hostile text came through as markup (it would run or post on the page)."""
    return "<script>alert(1)" in html or 'hx-post="/admin"' in html


@pytest.fixture
def api(demo_app: Flask) -> FlaskClient:
    with write_session(demo_app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="hostile", scopes=["*"], by=None)
    client = demo_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


@pytest.fixture
def desk(demo_app: Flask) -> FlaskClient:
    client = demo_app.test_client()
    login(client, "supervisor")
    return client


@pytest.mark.parametrize(
    "query",
    [
        "to=0001-01-10",
        "from=0001-01-01&to=0001-01-02",
        "to=9999-12-31",
        "from=9999-12-01&to=9999-12-31",
    ],
)
def test_on_time_with_a_day_at_the_end_of_the_calendar_is_a_400(
    api: FlaskClient, query: str
) -> None:
    response = api.get(f"/api/v1/promise/on-time?{query}")
    assert response.status_code == 400
    assert "dates" in response.json["error"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_the_board_of_a_day_at_the_end_of_the_calendar_is_a_400(
    desk: FlaskClient, day: str
) -> None:
    for path in (f"/board?day={day}", f"/board?tv=1&day={day}", f"/board/data.json?day={day}"):
        response = desk.get(path)
        assert response.status_code == 400, path
        assert "YYYY-MM-DD" in response.get_data(as_text=True)


def test_station_down_for_an_impossible_number_of_hours_is_refused(
    demo_app: Flask, desk: FlaskClient
) -> None:
    for hours in ("inf", "1e300", "9e15", "nan", "-1", "0"):
        response = desk.post("/calendar/stations/KIT-1/down", data={"hours": hours})
        assert response.status_code == 303, hours
        page = desk.get("/calendar/").get_data(as_text=True)
        assert "Hours must be a number." in page, hours
    with Session(demo_app.extensions["taktline.engine"]) as db:
        assert db.exec(select(StationDowntime)).all() == []


def test_a_check_photo_that_is_no_image_is_refused_and_no_file_is_kept(demo_app: Flask) -> None:
    tablet = demo_app.test_client()
    bind(demo_app, tablet, "KIT-1")
    photos = Path(demo_app.instance_path) / "quality-photos"
    for content, name, kind in (
        (b"<html><script>alert(1)</script></html>", "label.png", "image/png"),
        (b"MZ\x90\x00 a program", "label.jpg", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "label.webp", "image/webp"),
    ):
        html = tablet.post(
            "/station/KIT-1/check",
            data={"check": "LABEL", "photo": (io.BytesIO(content), name, kind)},
            headers=HX,
        ).get_data(as_text=True)
        assert 'class="banner reject"' in html and "JPEG, PNG or WebP" in html
    # A real picture for a check this step does not have: refused, and not kept either.
    html = tablet.post(
        "/station/KIT-1/check",
        data={"check": "LABEL", "photo": (io.BytesIO(TINY_PNG), "label.png", "image/png")},
        headers=HX,
    ).get_data(as_text=True)
    assert 'class="banner reject"' in html
    assert not [p for p in photos.rglob("*") if p.is_file()]


def test_hostile_text_from_the_tablet_is_shown_as_text(demo_app: Flask, desk: FlaskClient) -> None:
    tablet = demo_app.test_client()
    bind(demo_app, tablet, "KIT-1")
    answers = [
        tablet.post("/station/KIT-1/scan", data={"data": EVIL}, headers=HX),
        tablet.post("/station/KIT-1/sign-in", data={"badge": "OP1001"}, headers=HX),
        tablet.post("/station/KIT-1/scan", data={"data": EVIL}, headers=HX),
        tablet.post("/station/KIT-1/check", data={"check": EVIL, "value": EVIL}, headers=HX),
        tablet.post("/station/KIT-1/defect", data={"reason": "damaged", "disposition": EVIL}),
        tablet.post("/station/KIT-1/andon", data={"reason": EVIL}, headers=HX),
    ]
    for response in answers:
        assert response.status_code == 200
        assert not _acts(response.get_data(as_text=True))
    for page in ("/board", "/board?tv=1", "/audit/", "/station/KIT-1"):
        client = tablet if page.startswith("/station") else desk
        html = client.get(page).get_data(as_text=True)
        assert not _acts(html), page
    assert "&lt;script&gt;alert(1)" in desk.get("/board?tv=1").get_data(as_text=True)


# -- the same request twice at once (a double click, a retried call): counted once ---------


def _race(engine: Any, act: Callable[[Session], object]) -> list[str]:
    """``act`` in two write transactions at once: the first holds its transaction open
    while the second starts. What each answered: ``ok`` or the refusal."""
    answers: list[str] = []
    started = threading.Event()

    def attempt(hold: bool) -> None:
        try:
            with write_session(engine) as db:
                act(db)
                if hold:
                    started.set()
                    time.sleep(0.5)
            answers.append("ok")
        except ValueError as exc:  # ReceiptError, QualityError
            answers.append(str(exc))
        finally:
            started.set()

    first = threading.Thread(target=attempt, args=(True,))
    first.start()
    started.wait(10)
    attempt(False)
    first.join()
    return answers


def test_a_delivery_a_decision_or_a_release_sent_twice_at_once_counts_once(
    any_demo_db_url: str,
) -> None:
    engine = get_engine(any_demo_db_url)
    with Session(engine) as db:
        receipt = db.exec(
            select(ScheduledReceipt)
            .join(Part, col(Part.id) == ScheduledReceipt.part_id)
            .where(Part.tracking != "serial", ScheduledReceipt.status == "open")
        ).first()
        assert receipt is not None
        receipt_id, open_qty = receipt.id, receipt.open_quantity
        on_hand = db.exec(select(sa.func.sum(StockLot.on_hand))).one()

    def deliver(db: Session) -> None:
        row = db.get(ScheduledReceipt, receipt_id)
        assert row is not None
        delivery = receipts.Delivery(open_qty, "WH", "LOT-RACE")
        receipts.receive(db, receipt=row, delivery=delivery, by="Sam")

    answers = _race(engine, deliver)
    assert sorted(answers)[1] == "ok" and "closed" in sorted(answers)[0], answers
    with Session(engine) as db:
        assert db.exec(select(sa.func.sum(StockLot.on_hand))).one() == on_hand + open_qty
        assert db.get(ScheduledReceipt, receipt_id).received == open_qty  # type: ignore[union-attr]

    # An NCR decided twice, a quarantined memory module released twice.
    [serial] = place_and_release(engine, number="SO-RACE", product="PC", quantity=1,
                                 options=["i5", "mem16", "ssd512", "mt"])  # fmt: skip
    build_step(engine, "KIT-1", serial, badge="OP1001")
    build_step(engine, "BRD-1", serial, badge="OP1001")
    with write_session(engine) as db:
        opened = ncr.open_ncr(db, unit_serial=serial, cause="MEM-ERR", note="", by="Sam")
        ncr_id = opened.id
    decisions = _race(
        engine,
        lambda db: ncr.decide(
            db, ncr=db.get(NonConformance, ncr_id), disposition="rework", reason="", by="Sam"
        ),
    )
    assert sorted(decisions)[1] == "ok" and "decided already" in sorted(decisions)[0]
    with Session(engine) as db:
        lot = db.exec(
            select(StockLot.lot_code)
            .join(Consumption, Consumption.lot_id == StockLot.id)
            .join(Part, col(Part.id) == Consumption.part_id)
            .where(Part.sku == "MEM-16")
        ).one()
    with write_session(engine) as db:
        item = db.get(NonConformance, ncr_id)
        station = rework.rework_station(db, "RWK-1")
        rework.remove(db, ncr=item, data=f"(01)09506000001036(10){lot}", station=station, by="Ray")
    with Session(engine) as db:
        [waiting] = rework.quarantined(db)
        change_id = waiting.change.id
        before = db.exec(select(sa.func.count()).select_from(StockMovement)).one()
    releases = _race(engine, lambda db: rework.release(db, change_id=change_id, by="Sam"))
    assert sorted(releases)[1] == "ok" and "Already released" in sorted(releases)[0]
    with Session(engine) as db:
        moved = db.exec(select(sa.func.count()).select_from(StockMovement)).one() - before
        assert moved == 2  # out of quarantine, back to its lot: once
    dispose_engine(any_demo_db_url)


@pytest.mark.parametrize("day", ["0001-01-01", "2020-01-01", "9999-12-31"])
def test_a_promise_booked_by_hand_in_the_past_or_year_9999_is_refused(
    demo_app: Flask, api: FlaskClient, desk: FlaskClient, day: str
) -> None:
    response = api.post("/api/v1/orders/SO-1001/promise", json={"day": day})
    assert response.status_code == 422
    assert "from today" in response.json["problems"][0]
    desk.post("/orders/SO-1002/promise", data={"day": day})
    assert "from today to ten years ahead" in desk.get("/orders/SO-1002").get_data(as_text=True)
    with Session(demo_app.extensions["taktline.engine"]) as db:
        assert (
            db.exec(
                select(OrderPromise).where(col(OrderPromise.promised_on) < date(2026, 1, 1))
            ).all()
            == []
        )
        assert db.exec(select(OrderPromise).where(OrderPromise.promised_on == date.max)).all() == []


# -- a NUL character: PostgreSQL's text refuses it; refused before any view ----------------

NUL = "SO\x00-1"


def test_a_nul_character_anywhere_in_a_request_is_a_400_and_changes_nothing(
    any_demo_app: Flask,
) -> None:
    app = any_demo_app
    with write_session(app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="nul", scopes=["*"], by=None)
        events = db.exec(select(sa.func.count()).select_from(Event)).one()
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    line = {"product": "PC", "quantity": 1, "options": ["i5", NUL]}
    refused = [
        api.post("/api/v1/promise", json={"lines": [line]}),
        api.post(
            "/api/v1/receipts",
            json={"part": "MEM-32", "quantity": 1, "expected_on": "2027-01-01", "note": NUL},
        ),  # fmt: skip
        api.post("/api/v1/receipts/1/close", json={"reason": NUL}),
        api.post("/api/v1/stations/KIT-1/scans", json={"msg_id": "nul-1", "data": NUL}),
        api.post(
            "/api/v1/stations/KIT-1/events",
            json={"msg_id": "nul-2", "type": "action", "action": "andon", "reason": NUL},
        ),  # fmt: skip
        api.get("/api/v1/quality/ncrs?cause=a%00"),
    ]
    desk = app.test_client()
    login(desk, "supervisor")
    refused += [
        desk.get("/quality/?cause=a%00"),
        desk.post("/quality/ncr", data={"unit": "PC-000001", "cause": NUL}),
        desk.post("/calendar/stations/KIT-1/down", data={"hours": "1", "reason": NUL}),
        desk.get("/orders/SO%00-1"),
    ]
    tablet = app.test_client()
    bind(app, tablet, "KIT-1")
    refused += [
        tablet.post("/station/KIT-1/sign-in", data={"badge": NUL}, headers=HX),
        tablet.post("/station/KIT-1/andon", data={"reason": NUL}, headers=HX),
    ]
    for response in refused:
        assert response.status_code == 400, response.request.path
        assert "NUL character" in response.get_data(as_text=True)
    with Session(app.extensions["taktline.engine"]) as db:
        assert db.exec(select(NonConformance)).all() == []
        assert db.exec(select(StationDowntime)).all() == []
        closed = select(ScheduledReceipt).where(ScheduledReceipt.status == "closed")
        assert db.exec(closed).all() == []
        assert db.exec(select(sa.func.count()).select_from(Event)).one() == events


def test_an_mqtt_payload_with_a_nul_character_is_refused_at_validation() -> None:
    raw = json.dumps({"msg_id": "nul-3", "data": "PC\x00"}).encode()
    with pytest.raises(InvalidPayload, match="NUL") as refused:
        decode(raw)
    assert refused.value.msg_id == "nul-3"


def test_a_calendar_line_id_beyond_32_bits_or_not_ascii_is_no_such_line(
    any_demo_app: Flask,
) -> None:
    desk = any_demo_app.test_client()
    login(desk, "supervisor")
    for line_id in ("99999999999", "2147483648", "²", "-1"):
        shift = {"line_id": line_id, "start": "06:00", "end": "14:00"}
        assert desk.post("/calendar/shifts", data=shift).status_code == 303
        closed = {"line_id": line_id, "day": "2027-01-02"}
        assert desk.post("/calendar/closures", data=closed).status_code == 303
        assert desk.get("/calendar/").get_data(as_text=True).count("No such line.") == 2


@pytest.mark.parametrize(
    ("calendar", "said"),
    [
        ("{shifts: 7}", "shifts: expected a list"),
        ("{closed: 5}", "closed: expected a list"),
        ('{shifts: [{days: mon, start: "06:00", end: "14:00", breaks: 5}]}', "expected a list"),
    ],
)
def test_an_imported_calendar_of_the_wrong_shape_is_a_problem_not_a_crash(
    demo_app: Flask, tmp_path: Path, calendar: str, said: str
) -> None:
    plant = tmp_path / "calendar.yaml"
    plant.write_text(
        "plant:\n  site: PLT1\n  name: Lyon assembly plant\n  lines:\n"
        f"    - {{code: PC1, name: Desktop line 1, calendar: {calendar}}}\n"
    )
    result = CliRunner(demo_app).invoke(["import", str(plant)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "nothing imported" in result.output and said in result.output


def test_a_receipt_closed_with_a_reason_that_is_no_text_stays_open(api: FlaskClient) -> None:
    for reason in ({"a": 1}, ["x"], 5, "x" * 501):
        response = api.post("/api/v1/receipts/1/close", json={"reason": reason})
        assert response.status_code == 422
        assert response.json["problems"] == ["reason: text of at most 500 characters."]
    assert api.get("/api/v1/receipts?status=closed").json["receipts"] == []


@pytest.mark.parametrize("ok", ["false", "NOK", 0, None, [False]])
def test_a_torque_reading_whose_ok_is_not_true_or_false_is_refused(ok: object) -> None:
    raw = {"msg_id": "tq-1", "kind": "torque", "value": 0.6, "unit": "Nm", "ok": ok}
    with pytest.raises(InvalidPayload, match="ok must be true or false"):
        envelope(raw, kind="device")
    assert envelope({**raw, "ok": False}, kind="device").event.fields["ok"] is False


def test_a_check_unit_that_is_hostile_text_stays_data_on_the_control_chart(
    demo_app: Flask, desk: FlaskClient
) -> None:
    engine = demo_app.extensions["taktline.engine"]
    [serial] = place_and_release(engine, number="SO-CHART", product="PC", quantity=1,
                                 options=["i5", "mem16", "ssd512", "mt"])  # fmt: skip
    unit_text = '\\";</script>'
    with write_session(engine) as db:
        check = db.exec(select(Check).where(Check.code == "TQ-MB")).one()
        check.unit = unit_text
        unit = db.exec(select(Unit).where(Unit.serial == serial)).one()
        uop = db.exec(select(UnitOperation).where(UnitOperation.unit_id == unit.id)).first()
        assert uop is not None
        for value in (0.58, 0.62, 0.61):
            db.add(CheckResult(unit_id=unit.id, unit_operation_id=uop.id, check_id=check.id,
                               passed=True, value=value))  # fmt: skip
        check_id = check.id
    html = desk.get(f"/quality/charts/{check_id}").get_data(as_text=True)
    script = html[html.index('id="chart-data"') :]
    # Not pasted into the chart's code, where its backslash ended a string literal early.
    assert unit_text not in script and "\\&#34;" not in script
    assert '"unit": "\\\\\\"' in script or '"unit":"\\\\\\"' in script  # the JSON string


@pytest.mark.parametrize("day", ["0001-01-01", "0026-12-03", "9999-12-31"])
def test_a_receipt_expected_more_than_ten_years_away_is_refused(
    api: FlaskClient, desk: FlaskClient, day: str
) -> None:
    before = api.get("/api/v1/receipts?status=all").json["receipts"]
    created = api.post("/api/v1/receipts", json={"part": "MEM-32", "quantity": 5,
                                                 "expected_on": day})  # fmt: skip
    assert created.status_code == 422
    assert created.json["problems"] == [f"expected_on: {day} is not within ten years of today."]
    moved = api.post(f"/api/v1/receipts/{before[0]['id']}/reschedule", json={"expected_on": day})
    assert moved.status_code == 422
    desk.post(f"/receipts/{before[0]['id']}/reschedule", data={"expected_on": day})
    assert "within ten years of today" in desk.get("/receipts/").get_data(as_text=True)
    assert api.get("/api/v1/receipts?status=all").json["receipts"] == before


@pytest.mark.parametrize(
    "path",
    [
        "/receipts/",
        "/receipts/1/close",
        "/calendar/shifts",
        "/calendar/stations/KIT-1/down",
        "/quality/ncr",
        "/quality/ncr/1/decide",
        "/quality/quarantine/1/release",
        "/orders/SO-1001/promise",
        "/board/andon/1/ack",
    ],
)
def test_a_desk_form_without_its_csrf_token_is_refused(desk: FlaskClient, path: str) -> None:
    response = desk.post(path, data={"reason": "x", "hours": "1", "unit": "PC-000001"}, csrf=False)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_tablet_actions_without_a_csrf_token_are_refused(demo_app: Flask) -> None:
    tablet = demo_app.test_client()
    bind(demo_app, tablet, "KIT-1")
    for action in ("andon", "andon/cancel", "check", "number", "defect"):
        response = tablet.post(f"/station/KIT-1/{action}", headers=HX, csrf=False)
        assert response.status_code == 400, action
    assert tablet.get("/station/KIT-1").status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/quality/ncrs?status=bogus", 400),
        ("/api/v1/receipts?status=bogus", 400),
        ("/api/v1/quality/checks/99999999999/chart", 404),
        ("/api/v1/quality/checks/-1/chart", 404),
        ("/api/v1/promise/on-time?from=2026-02-30", 400),
    ],
)
def test_unknown_values_in_the_api_are_4xx(api: FlaskClient, path: str, status: int) -> None:
    response = api.get(path)
    assert response.status_code == status and response.json["error"]
