"""Promise dates through the database, the pages and the API (the demo plant: its line
calendar and scheduled receipts): the issue's three specifications end to end,
receipts received against the ledger, the import format, the order form's number and
booked promise, the release confirmation, on-time delivery."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.catalog import importer
from server.db import write_session
from server.models import (
    CustomerOrder,
    LineClosure,
    LineShift,
    OrderPromise,
    ScheduledReceipt,
    StockLot,
    StockMovement,
)
from server.orders import service as orders
from tests.support.apps import login

TODAY = datetime.now(UTC).date()


class Recorder:
    """Stands in for the MQTT publisher: what would have been published."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, payload: dict[str, Any], **_: Any) -> None:
        self.messages.append((topic, payload))


@pytest.fixture
def sup(demo_app: Flask) -> FlaskClient:
    client = demo_app.test_client()
    login(client, "supervisor")
    return client


@pytest.fixture
def any_sup(any_demo_app: Flask) -> FlaskClient:
    """A supervisor on the demo plant, on SQLite and on PostgreSQL when configured."""
    client = any_demo_app.test_client()
    login(client, "supervisor")
    return client


@pytest.fixture
def mqtt(demo_app: Flask) -> Recorder:
    recorder = Recorder()
    demo_app.extensions["taktline.mqtt"] = recorder
    return recorder


def _order(sup: FlaskClient, number: str, options: list[str], qty: int = 1, **kw: Any) -> None:
    body = {
        "number": number,
        "customer": "Test",
        "due_date": kw.pop("due", "2030-01-01"),
        "lines": [{"product": "PC", "quantity": qty, "options": options}],
        **kw,
    }
    assert sup.post("/api/v1/orders", json=body).status_code == 201


def _receipt(app: Flask, ref: str) -> ScheduledReceipt:
    with Session(app.extensions["taktline.engine"]) as s:
        return s.exec(select(ScheduledReceipt).where(ScheduledReceipt.supplier_ref == ref)).one()


GPU_PC = ["i7", "mem32", "ssd1t", "mt", "gpu4080"]


def test_an_order_needing_a_part_that_arrives_in_three_days(
    sup: FlaskClient, demo_app: Flask
) -> None:
    # GPU-4080: 3 on hand, SO-1002 needs one; PO-7701 brings 5 in three days.
    arrival = _receipt(demo_app, "PO-7701").expected_on
    assert arrival == TODAY + timedelta(days=3)
    answer = sup.post(
        "/api/v1/promise", json={"lines": [{"product": "PC", "quantity": 3, "options": GPU_PC}]}
    )
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["reason"]["text"] == f"GPU-4080: 3 arrive on {arrival.isoformat()}"
    assert body["material_on"] == arrival.isoformat()
    completion = datetime.fromisoformat(body["completion"].replace("Z", "+00:00"))
    # No earlier than the day it arrives plus the assembly (4 steps, 25 min per unit).
    assert completion >= datetime(arrival.year, arrival.month, arrival.day, tzinfo=UTC) + timedelta(
        minutes=25
    )
    assert date.fromisoformat(body["ship_on"]) == completion.date() + timedelta(days=1)
    # Two of them are on hand: no wait.
    two = sup.post(
        "/api/v1/promise", json={"lines": [{"product": "PC", "quantity": 2, "options": GPU_PC}]}
    ).json
    assert two["material_on"] == TODAY.isoformat() and two["reason"]["kind"] != "part"


def test_parts_on_hand_but_the_station_kind_booked(sup: FlaskClient) -> None:
    # A rush order (priority 9) books the line for hours; everything it needs is on hand.
    _order(sup, "SO-RUSH", ["i5", "mem16", "ssd512", "mt"], qty=14, priority=9)
    plan = {o["order"]: o for o in sup.get("/api/v1/promise/orders").json["orders"]}
    rush_done = plan["SO-RUSH"]["completion"]
    answer = sup.post(
        "/api/v1/promise",
        json={
            "lines": [{"product": "PC", "quantity": 1, "options": ["i7", "mem16", "ssd1t", "sff"]}]
        },
    ).json
    assert answer["material_on"] == TODAY.isoformat()  # parts on hand
    assert answer["completion"] > rush_done  # after the booked work
    assert answer["reason"]["kind"] == "capacity"
    assert " is full until " in answer["reason"]["text"]


def test_a_slipped_receipt_flags_exactly_the_orders_it_breaks(
    any_sup: FlaskClient, any_demo_app: Flask
) -> None:
    sup, demo_app = any_sup, any_demo_app
    mqtt = Recorder()
    demo_app.extensions["taktline.mqtt"] = mqtt
    _order(sup, "SO-A", GPU_PC, qty=2, due="2030-01-01")  # the two GPUs on hand
    _order(sup, "SO-B", GPU_PC, qty=2, due="2030-01-02")  # waits for PO-7701
    _order(sup, "SO-C", ["i5", "mem16", "ssd512", "mt"], due="2030-01-03")  # no GPU
    for number in ("SO-A", "SO-B", "SO-C"):
        booked = sup.post(f"/api/v1/orders/{number}/promise", json={})
        assert booked.status_code == 200, booked.json
    po = _receipt(demo_app, "PO-7701")
    later = po.expected_on + timedelta(days=7)
    answer = sup.post(
        f"/api/v1/receipts/{po.id}/reschedule", json={"expected_on": later.isoformat()}
    )
    assert answer.status_code == 200, answer.json
    flags = answer.json["flags"]
    assert [f["order"] for f in flags] == ["SO-B"] and flags[0]["flagged"] is True
    assert flags[0]["reason"]["text"] == f"GPU-4080: 2 arrive on {later.isoformat()}"
    assert "PO-7701" in flags[0]["trigger"] and "slipped" in flags[0]["trigger"]
    # The API, the order list and the board say the same; MQTT had it once.
    flagged = sup.get("/api/v1/promise/orders?flagged=1").json["orders"]
    assert [o["order"] for o in flagged] == ["SO-B"]
    html = sup.get("/orders/").get_data(as_text=True)
    assert 'data-order="SO-B" data-flagged="1"' in html
    assert 'data-flagged="1"' not in html.split('data-order="SO-A"')[1].split("</tr>")[0]
    board = sup.get("/promise/board").get_data(as_text=True)
    assert 'data-order="SO-B"' in board and 'data-order="SO-A"' not in board
    assert [(t, p["order"], p["flagged"]) for t, p in mqtt.messages] == [
        ("taktline/PLT1/promise/flag", "SO-B", True)
    ]
    # Back on its date: the flag is cleared, and that is published too.
    sup.post(
        f"/api/v1/receipts/{po.id}/reschedule", json={"expected_on": po.expected_on.isoformat()}
    )
    assert sup.get("/api/v1/promise/orders?flagged=1").json["orders"] == []
    assert mqtt.messages[-1][1]["order"] == "SO-B" and mqtt.messages[-1][1]["flagged"] is False


def test_a_scrapped_unit_and_a_station_down_re_promise(
    sup: FlaskClient, demo_app: Flask, mqtt: Recorder
) -> None:
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1005")).one()
        orders.release(db, order=order, by="test")
    # Take the only test station down for a week: every order waits for it.
    down = sup.post("/calendar/stations/TST-1/down", data={"reason": "broken", "hours": "168"})
    assert down.status_code == 303
    flagged = {o["order"] for o in sup.get("/api/v1/promise/orders?flagged=1").json["orders"]}
    assert flagged == {"SO-1001", "SO-1002", "SO-1003", "SO-1004", "SO-1005"}
    assert all(p["flagged"] for _, p in mqtt.messages) and len(mqtt.messages) == 5
    assert "station TST-1 down" in mqtt.messages[0][1]["trigger"]
    sup.post("/calendar/stations/TST-1/up")
    assert sup.get("/api/v1/promise/orders?flagged=1").json["orders"] == []


def test_receive_against_a_receipt_partially_then_the_rest(
    sup: FlaskClient, demo_app: Flask
) -> None:
    po = _receipt(demo_app, "PO-7702")  # MEM-32 x 20, lot-tracked
    first = sup.post(
        f"/api/v1/receipts/{po.id}/receive",
        json={"quantity": 8, "location": "WH", "lot": "M32-2612", "expires_on": "2029-12-31"},
    )
    assert first.status_code == 200, first.json
    assert (
        first.json["received"] == 8 and first.json["open"] == 12 and first.json["status"] == "open"
    )
    too_many = sup.post(
        f"/api/v1/receipts/{po.id}/receive", json={"quantity": 13, "location": "WH"}
    )
    assert too_many.status_code == 422 and "only 12" in too_many.json["problems"][0]
    rest = sup.post(
        f"/api/v1/receipts/{po.id}/receive",
        json={"quantity": 12, "location": "WH", "lot": "M32-2612"},
    )
    assert rest.json["status"] == "closed"
    with Session(demo_app.extensions["taktline.engine"]) as s:
        lot = s.exec(select(StockLot).where(StockLot.lot_code == "M32-2612")).one()
        assert lot.on_hand == 20 and lot.expires_on == date(2029, 12, 31)
        moves = s.exec(select(StockMovement).where(StockMovement.lot_id == lot.id)).all()
        assert [(m.kind, m.quantity, m.reason) for m in moves] == [
            ("receipt", 8, "receipt PO-7702"),
            ("receipt", 12, "receipt PO-7702"),
        ]
    # A serial part needs one serial per piece.
    gpu = _receipt(demo_app, "PO-7701")
    refused = sup.post(f"/api/v1/receipts/{gpu.id}/receive", json={"quantity": 2, "location": "WH"})
    assert refused.status_code == 422 and "serial-tracked" in refused.json["problems"][0]
    ok = sup.post(
        f"/api/v1/receipts/{gpu.id}/receive",
        json={"quantity": 2, "location": "WH", "serials": ["G48N0001", "G48N0002"]},
    )
    assert ok.json["received"] == 2
    closed = sup.post(f"/api/v1/receipts/{gpu.id}/close", json={"reason": "supplier short-shipped"})
    assert closed.json["status"] == "closed" and closed.json["open"] == 0
    assert sup.get("/api/v1/receipts?status=closed").json["receipts"][0]["part"] in (
        "MEM-32",
        "GPU-4080",
    )


def test_the_receipts_page_schedules_and_reschedules(sup: FlaskClient, demo_app: Flask) -> None:
    page = sup.get("/receipts/").get_data(as_text=True)
    assert 'data-sku="GPU-4080"' in page and ">late<" in page  # ASN-5521 was due yesterday
    added = sup.post(
        "/receipts/",
        data={
            "part": "FAN-120",
            "quantity": "40",
            "expected_on": "2030-02-01",
            "supplier_ref": "PO-9",
        },
    )
    assert added.status_code == 303
    row = _receipt(demo_app, "PO-9")
    assert row.quantity == 40 and row.expected_on == date(2030, 2, 1)
    sup.post(f"/receipts/{row.id}/reschedule", data={"expected_on": "2030-02-09"})
    assert _receipt(demo_app, "PO-9").expected_on == date(2030, 2, 9)
    assert "first expected 2030-02-01" in sup.get("/receipts/").get_data(as_text=True)


def test_calendars_and_receipts_in_the_import_format(demo_app: Flask) -> None:
    engine = demo_app.extensions["taktline.engine"]
    doc = {
        "plant": {
            "site": "PLT1",
            "lines": [
                {
                    "code": "PC1",
                    "takt_seconds": 480,
                    "calendar": {
                        "shifts": [
                            {
                                "name": "Day",
                                "days": "mon-thu",
                                "start": "07:00",
                                "end": "15:30",
                                "breaks": ["12:00-12:30"],
                            },
                            {"name": "Night", "days": ["fri"], "start": "22:00", "end": "06:00"},
                        ],
                        "closed": [{"day": "2030-05-01", "reason": "Labour day"}],
                    },
                }
            ],
        },
        "receipts": [{"part": "CASE-MT", "qty": 10, "expected": "2030-03-01", "ref": "PO-CASE"}],
    }
    with write_session(engine) as db:
        report = importer.import_document(db, doc, source="test", by="test")
    assert report.counts["calendars"] == 1 and report.counts["receipts"] == 1
    with Session(engine) as s:
        shifts = s.exec(select(LineShift).order_by(LineShift.start)).all()
        assert [(x.name, x.weekdays, x.start, x.end, x.breaks) for x in shifts] == [
            ("Day", [0, 1, 2, 3], "07:00", "15:30", [["12:00", "12:30"]]),
            ("Night", [4], "22:00", "06:00", []),
        ]
        assert s.exec(select(LineClosure).where(LineClosure.day == date(2030, 5, 1))).one()
    bad = {
        "plant": {
            "site": "PLT1",
            "lines": [
                {
                    "code": "PC1",
                    "calendar": {"shifts": [{"days": "moon", "start": "25:00", "end": "x"}]},
                }
            ],
        },
        "receipts": [{"part": "NOPE", "qty": 0, "expected": "soon"}],
    }
    with pytest.raises(importer.ImportError_) as err, write_session(engine) as db:
        importer.import_document(db, bad, source="bad.yaml", by="test")
    text = str(err.value)
    assert "not a day" in text and "quantity" in text and "expected_on" in text
    csv = importer.parse_csv(
        "part,qty,expected,supplier,ref\nSCR-M3,500,2030-04-01,Vis SA,PO-S\n", source="r.csv"
    )
    assert list(csv) == ["receipts"]
    with write_session(engine) as db:
        importer.import_document(db, csv, source="r.csv", by="test")
    with Session(engine) as s:
        assert (
            s.exec(select(ScheduledReceipt).where(ScheduledReceipt.supplier_ref == "PO-S"))
            .one()
            .quantity
            == 500
        )


def test_the_order_form_numbers_books_and_uses_iso_dates(sup: FlaskClient, demo_app: Flask) -> None:
    page = sup.get("/orders/new").get_data(as_text=True)
    year = TODAY.year
    assert f'placeholder="SO-{year}-00006"' in page  # five demo orders
    assert 'type="date"' not in page and "YYYY-MM-DD" in page
    assert 'hx-post="/orders/new/promise"' in page
    form = {
        "number": "",
        "customer": "Pattern Ltd",
        "due_date": "2030-02-01",
        "quantity": "1",
        "product": "PC",
        "options.cpu": "i5",
        "options.mem": "mem16",
        "options.storage": "ssd512",
        "options.case": "mt",
        "book": "1",
    }
    created = sup.post("/orders/new", data=form)
    assert created.status_code == 303 and created.headers["Location"].endswith(
        f"/orders/SO-{year}-00006"
    )
    with Session(demo_app.extensions["taktline.engine"]) as s:
        order = s.exec(
            select(CustomerOrder).where(CustomerOrder.number == f"SO-{year}-00006")
        ).one()
        row = s.exec(select(OrderPromise).where(OrderPromise.order_id == order.id)).one()
        assert row.promised_on is not None and "supervisor" in row.booked_by
    show = sup.get(f"/orders/SO-{year}-00006").get_data(as_text=True)
    assert f'data-promised="{row.promised_on.isoformat()}"' in show
    # A bad due date is refused with its format named.
    bad = sup.post("/orders/new", data={**form, "due_date": "01/02/2030"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.get_data(as_text=True)


def test_the_promise_partial_follows_the_options(sup: FlaskClient) -> None:
    base = {"product": "PC", "quantity": "1", "priority": "0", "due_date": "2030-01-01"}
    incomplete = sup.post("/orders/new/promise", data={**base, "options.case": "mt"})
    assert "Choose the options to see the promise date." in incomplete.get_data(as_text=True)
    on_hand = sup.post(
        "/orders/new/promise",
        data={**base, "options": ["i7", "mem32", "ssd1t", "mt"]},
    ).get_data(as_text=True)
    assert "Ships on" in on_hand and 'data-reason="part"' not in on_hand
    waits = sup.post(
        "/orders/new/promise", data={**base, "quantity": "4", "options": GPU_PC}
    ).get_data(as_text=True)
    arrival = (TODAY + timedelta(days=3)).isoformat()
    assert 'data-reason="part"' in waits and f"GPU-4080: 4 arrive on {arrival}" in waits


def test_release_asks_for_confirmation_and_shows_what_it_reserves(
    sup: FlaskClient, demo_app: Flask
) -> None:
    page = sup.get("/orders/SO-1001/release").get_data(as_text=True)
    assert "Release order SO-1001?" in page and 'data-testid="confirm-release"' in page
    rows = page.split('data-testid="reserves"')[1].split("</table>")[0]
    assert 'data-sku="CASE-MT"' in rows and "LS-PC1" in rows
    assert "I5X00001" in rows  # a serial planned for the first unit
    with Session(demo_app.extensions["taktline.engine"]) as s:
        assert (
            s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one().status
            == "received"
        )
    sup.post("/orders/SO-1001/release")
    with Session(demo_app.extensions["taktline.engine"]) as s:
        assert (
            s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one().status
            == "released"
        )


def test_on_time_delivery_against_promise_and_due_date(sup: FlaskClient, demo_app: Flask) -> None:
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:
        rows = db.exec(
            select(CustomerOrder, OrderPromise).join(
                OrderPromise, OrderPromise.order_id == CustomerOrder.id
            )
        ).all()
        now = datetime.now(UTC)
        for order, _promise in rows[:3]:
            order.status, order.shipped_at = "shipped", now
            db.add(order)
        # One shipped after its promise, still before its due date.
        rows[0][1].promised_on = TODAY - timedelta(days=1)
        rows[0][0].due_date = TODAY + timedelta(days=5)
        db.add(rows[0][1])
        db.add(rows[0][0])
    body = sup.get("/api/v1/promise/on-time").json
    assert body["shipped"] == 3 and body["with_promise"] == 3
    assert body["on_time_to_promise"] == 2 and body["promise_rate"] == pytest.approx(2 / 3)
    assert [x["order"] for x in body["late"]] == [rows[0][0].number]
    board = sup.get("/promise/board").get_data(as_text=True)
    assert "(2/3)" in board
    assert 'hx-get="/promise/board"' in sup.get("/board").get_data(as_text=True)


def test_measured_step_times_replace_the_standard_once_there_are_enough(
    any_demo_app: Flask,
) -> None:
    from server.models import Operation, Station, StepRecord, Unit, UnitOperation
    from server.promise import load

    engine = any_demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="test")
        unit = db.exec(select(Unit)).first()
        assert unit is not None
        op = db.exec(select(UnitOperation).where(UnitOperation.unit_id == unit.id)).first()
        assert op is not None
        station = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        start = datetime.now(UTC) - timedelta(hours=5)
        for n in range(20):
            began = start + timedelta(minutes=10 * n)
            db.add(
                StepRecord(
                    unit_id=unit.id or 0,
                    unit_operation_id=op.id or 0,
                    operation_id=op.operation_id,
                    station_id=station.id or 0,
                    started_at=began,
                    ended_at=began + timedelta(seconds=130 + n),
                    paused_seconds=20.0,
                )
            )
    with Session(engine) as db:
        now = datetime.now(UTC)
        assert load.step_seconds(db, now=now, min_history=21) == {}
        measured = load.step_seconds(db, now=now, min_history=20)
        assert measured == {op.operation_id: pytest.approx(119.5, abs=0.01)}
        kit = db.get(Operation, op.operation_id)
        assert kit is not None and kit.standard_seconds == 240


def test_the_promise_commands(demo_app: Flask) -> None:
    from tests.support.apps import CliRunner

    runner = CliRunner(demo_app)
    shown = runner.invoke(["promise", "show"])
    assert shown.exit_code == 0, shown.output
    assert [line.split("\t")[0] for line in shown.output.splitlines()][:2] == ["SO-1002", "SO-1001"]
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:  # a booked date the plan cannot keep
        row = db.exec(select(OrderPromise)).first()
        assert row is not None
        row.promised_on = TODAY - timedelta(days=1)
        db.add(row)
    refreshed = runner.invoke(["promise", "refresh"])
    assert refreshed.exit_code == 0, refreshed.output
    assert "(flagged)" in refreshed.output and "1 flag(s) changed" in refreshed.output
