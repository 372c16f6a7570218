"""The outbox rows each path writes, in the transaction of what they report: the
station (consumption, hold, scrap, start, completion with its genealogy), release and
shipping; the per-order sequence; the CloudEvent envelope; a rolled-back transaction
leaves no event; and the webhook API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, col, select

from server import dispatch
from server.db import write_session
from server.integration import deliver, outbox
from server.models import CustomerOrder, OutboxEvent, Station, Unit
from server.orders import service as orders
from station import service
from station.workflow import CompleteStep, ReportDefect, Scan, SignIn, StartNext, StationEvent
from tests.support.units import release

KIT_OPTIONS = ["i7", "mem32", "ssd1t", "mt"]
CASE_MT = "9506000001104"
FAN = "(01)09506000001210(10)FN-2605"
SCREWS = "SCRM3"
PSU = "(01)09506000001128(21)P45X00001"


def _act(app: Flask, event: StationEvent) -> service.Outcome:
    with write_session(app.extensions["taktline.engine"]) as session:
        outcome = service.handle(session, station_code="KIT-1", event=event, channel="mqtt")
    assert outcome.accepted, outcome.message
    return outcome


def _events(app: Flask) -> list[OutboxEvent]:
    with Session(app.extensions["taktline.engine"]) as s:
        return list(s.exec(select(OutboxEvent).order_by(col(OutboxEvent.id))).all())


def test_a_kitting_step_reports_start_each_consumption_and_a_hold(any_demo_app: Flask) -> None:
    app = any_demo_app
    release(app.extensions["taktline.engine"], options=KIT_OPTIONS, serial="PC-T1")
    _act(app, SignIn("OP1001"))
    _act(app, StartNext())
    for data in (CASE_MT, PSU, SCREWS, FAN, FAN):
        _act(app, Scan(data))
    _act(app, ReportDefect("no_fit", disposition="scrap"))
    events = _events(app)
    kinds = [e.type.removeprefix(outbox.TYPE_PREFIX) for e in events]
    assert kinds == ["unit.started"] + ["component.consumed"] * 5 + ["unit.scrapped"]
    assert [e.order_seq for e in events] == list(range(1, 8))
    assert len({e.order_id for e in events}) == 1
    consumed = [json.loads(e.data) for e in events[1:6]]
    assert consumed[0] == {
        "lot": None,
        "operation": "KIT",
        "part": "CASE-MT",
        "quantity": 1,
        "serial": None,
        "station": "KIT-1",
        "unit": "PC-T1",
    }
    assert consumed[1]["part"] == "PSU-450" and consumed[1]["serial"] == "P45X00001"
    assert consumed[1]["lot"] is None
    assert consumed[3]["part"] == "FAN-120" and consumed[3]["lot"] == "FN-2605"
    scrap = json.loads(events[-1].data)
    assert scrap["unit"] == "PC-T1" and scrap["reason"] == "no_fit"
    assert scrap["disposition"] == "scrap"


def test_a_completed_unit_carries_its_genealogy_and_the_order_completes(
    any_demo_app: Flask,
) -> None:
    app = any_demo_app
    engine = app.extensions["taktline.engine"]
    release(engine, options=KIT_OPTIONS, serial="PC-T1")
    _act(app, SignIn("OP1001"))
    _act(app, StartNext())
    for data in (CASE_MT, PSU, SCREWS, FAN, FAN):
        _act(app, Scan(data))
    _act(app, CompleteStep())
    with write_session(engine) as s:
        for code in ("BRD-2", "FIN-1", "TST-1"):
            station = s.exec(select(Station).where(Station.code == code)).one()
            op = dispatch.claim_next(s, station=station)
            assert op is not None, code
            dispatch.complete_operation(s, unit_operation=op)
        unit = s.exec(select(Unit).where(Unit.serial == "PC-T1")).one()
        order = dispatch.order_of(s, unit=unit)
        assert order.status == "completed"
        orders.ship(s, order=order, by="test")
    events = _events(app)
    kinds = [e.type.removeprefix(outbox.TYPE_PREFIX) for e in events]
    assert kinds == ["unit.started"] + ["component.consumed"] * 5 + [
        "unit.completed",
        "order.completed",
        "order.shipped",
    ]
    assert [e.order_seq for e in events] == list(range(1, 10))
    assert {e.subject for e in events} == {order.number}
    completed = json.loads(events[6].data)
    assert completed["unit"] == "PC-T1" and completed["options"] == KIT_OPTIONS
    assert completed["completed_at"].endswith("Z")
    assert completed["genealogy"] == [
        {"part": "CASE-MT", "lot": None, "serial": None, "quantity": 1},
        {"part": "PSU-450", "lot": None, "serial": "P45X00001", "quantity": 1},
        {"part": "SCR-M3", "lot": None, "serial": None, "quantity": 1},
        {"part": "FAN-120", "lot": "FN-2605", "serial": None, "quantity": 1},
        {"part": "FAN-120", "lot": "FN-2605", "serial": None, "quantity": 1},
    ]
    assert json.loads(events[7].data)["units"] == 1


def test_the_envelope_is_a_stable_cloudevent(demo_app: Flask) -> None:
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as s:
        order = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(s, order=order, by="test")
    [event] = _events(demo_app)
    first = outbox.to_json(outbox.envelope(event, source="/taktline/PLT1"))
    again = outbox.to_json(outbox.envelope(_events(demo_app)[0], source="/taktline/PLT1"))
    assert first == again, "the same bytes on every delivery"
    body = json.loads(first)
    assert body["specversion"] == "1.0" and body["id"] == event.event_id
    assert body["type"] == "com.taktline.order.released" and body["subject"] == "SO-1001"
    assert body["sequence"] == "1" and body["source"] == "/taktline/PLT1"
    assert body["time"].endswith("Z") and body["data"]["order"] == "SO-1001"


def test_a_rolled_back_transaction_leaves_no_event(demo_app: Flask) -> None:
    engine = demo_app.extensions["taktline.engine"]
    with pytest.raises(RuntimeError), write_session(engine) as s:
        order = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(s, order=order, by="test")
        raise RuntimeError("the release fails after the event was written")
    assert _events(demo_app) == []


def test_signatures_and_backoff() -> None:
    body = b'{"id":"x"}'
    import time

    header = deliver.sign("s3cret", int(time.time()), body)
    assert deliver.verify("s3cret", header, body)
    assert not deliver.verify("s3cret", header, body + b" ")
    old = deliver.sign("s3cret", int(time.time()) - 3600, body)
    assert not deliver.verify("s3cret", old, body), "an old signature is refused (replay)"
    options = deliver.Options(retry_base=5, retry_max=60)
    assert deliver.backoff(1, options, rng=lambda: 0.0) == 2.5
    assert deliver.backoff(1, options, rng=lambda: 1.0) == 5
    assert deliver.backoff(3, options, rng=lambda: 1.0) == 20
    assert deliver.backoff(10, options, rng=lambda: 1.0) == 60


def test_the_webhook_api(app: Flask) -> None:
    from server.security import auth

    with write_session(app.extensions["taktline.engine"]) as s:
        token = auth.issue_api_token(s, name="erp", scopes=["webhooks:write"], by=None)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/api/v1/webhooks",
        json={"name": "erp", "url": "https://erp.example.com/hook", "event_types": []},
        headers=headers,
    )
    assert created.status_code == 201, created.data
    body: dict[str, Any] = created.get_json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == []
    refused = client.post(
        "/api/v1/webhooks",
        json={"name": "x", "url": "ftp://nope", "event_types": ["unit.exploded"]},
        headers=headers,
    )
    assert refused.status_code == 422 and len(refused.get_json()["problems"]) == 2
    listed = client.get("/api/v1/webhooks", headers=headers).get_json()
    assert [w["name"] for w in listed["webhooks"]] == ["erp"]
    assert "secret" not in listed["webhooks"][0]
    assert client.post(f"/api/v1/webhooks/{body['id']}/replay", headers=headers).get_json() == {
        "replayed": 0
    }
    assert client.delete(f"/api/v1/webhooks/{body['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/webhooks/{body['id']}", headers=headers).status_code == 404
    reader = client.get("/api/v1/webhooks")
    assert reader.status_code == 401


def test_taktline_deliver_is_a_command(runner: Any) -> None:
    result = runner.invoke(["deliver", "--help"])
    assert result.exit_code == 0 and "Deliver outbound events" in result.output
