"""The reconciliation finds what it says it finds (real demo database, real workflow)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from server.db import write_session
from server.models import CustomerOrder, Event
from server.orders import service as orders
from server.trace.reconcile import reconcile
from station import service
from station import workflow as wf


def _start_a_step(engine: sa.Engine) -> None:
    with write_session(engine) as session:
        order = session.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(session, order=order, by="test")
    for event in (wf.SignIn("OP1001"), wf.StartNext()):
        with write_session(engine) as session:
            outcome = service.handle(session, station_code="KIT-1", event=event)
        assert outcome.accepted, outcome.message


def test_a_fresh_plant_reconciles_clean(demo_app: Flask) -> None:
    report = reconcile(demo_app.extensions["taktline.engine"])
    assert report.clean, report.lines()
    assert any("[ok] on-hand equals the ledger" in line for line in report.lines())


def test_lost_and_reasonless_events_and_open_steps_are_mismatches(demo_app: Flask) -> None:
    engine = demo_app.extensions["taktline.engine"]
    _start_a_step(engine)
    with write_session(engine) as session:
        service.record_event(
            session,
            service.event_row(
                msg_id="m-no-reason",
                station_id=None,
                channel="mqtt",
                kind="scan",
                data="x",
                result="rejected",
                code="",
            ),
        )
    report = reconcile(engine, published={"m-never-seen", "m-no-reason"})
    assert not report.clean
    scans = report.checks["every scan applied once or rejected with a reason"]
    assert "m-never-seen: published but never recorded (lost)" in scans
    assert "m-no-reason: rejected without a reason" in scans
    assert len(report.checks["every step record has a start and an end"]) == 1
    assert any("FAIL" in line for line in report.lines())
    relaxed = reconcile(engine, allow_open_steps=True)
    assert relaxed.checks["every scan applied once or rejected with a reason"] == [
        "m-no-reason: rejected without a reason"
    ]
    with Session(engine) as session:
        assert session.exec(select(Event).where(Event.msg_id == "m-no-reason")).one()
