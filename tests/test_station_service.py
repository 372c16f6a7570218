"""The station service on the demo plant: verdicts, and the rows each one leaves."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, col, func, select

from server.db import write_session
from server.models import (
    AndonCall,
    AuditEntry,
    Consumption,
    Defect,
    Event,
    Station,
    StepRecord,
    StockLot,
    StockMovement,
    UnitOperation,
)
from station import service
from station.workflow import (
    CallAndon,
    CompleteStep,
    Pause,
    ReportDefect,
    Resume,
    Scan,
    SignIn,
    SignOut,
    StartNext,
    StartUnit,
    StationEvent,
)
from tests.support.units import release

KIT_OPTIONS = ["i7", "mem32", "ssd1t", "mt"]
# KIT picks of that unit: CASE-MT, PSU-450 (serial), SCR-M3, FAN-120 x2 (lot FN-2605).
CASE_MT = "9506000001104"
FAN = "(01)09506000001210(10)FN-2605"
SCREWS = "SCRM3"


def psu(n: int) -> str:
    return f"(01)09506000001128(21)P45X{n:05d}"


def act(
    app: Flask, station: str, event: StationEvent, msg_id: str | None = None
) -> service.Outcome:
    with write_session(app.extensions["taktline.engine"]) as session:
        return service.handle(
            session,
            station_code=station,
            event=event,
            msg_id=msg_id,
            channel="mqtt",
            source="scanner1",
        )


def count(app: Flask, model: Any, *where: Any) -> int:
    with Session(app.extensions["taktline.engine"]) as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def kit(app: Flask, serial_no: int) -> None:
    for data in (CASE_MT, psu(serial_no), SCREWS, FAN, FAN):
        outcome = act(app, "KIT-1", Scan(data))
        assert outcome.accepted, outcome.message
    assert act(app, "KIT-1", CompleteStep()).accepted


def test_a_kitting_step_end_to_end(any_demo_app: Flask) -> None:
    release(any_demo_app.extensions["taktline.engine"], options=KIT_OPTIONS, serial="PC-T1")
    assert act(any_demo_app, "KIT-1", StartNext()).code == "sign_in_first"
    signed = act(any_demo_app, "KIT-1", SignIn("OP1001"))
    assert signed.accepted and signed.message == "Welcome, Alice Martin."
    started = act(any_demo_app, "KIT-1", StartNext())
    assert started.message == "Unit PC-T1: Kit the case started."
    assert started.state is not None and [p.sku for p in started.state.picks] == [
        "CASE-MT",
        "PSU-450",
        "SCR-M3",
        "FAN-120",
    ]

    case = act(any_demo_app, "KIT-1", Scan(CASE_MT), msg_id="m-case")
    assert case.accepted and case.message == "CASE-MT picked (1 of 1)."
    again = act(any_demo_app, "KIT-1", Scan(CASE_MT), msg_id="m-case")
    assert again.result == "duplicate" and again.original == "accepted"
    assert act(any_demo_app, "KIT-1", Scan(CASE_MT)).code == "already_picked"
    assert act(any_demo_app, "KIT-1", Scan("9506000001128")).code == "serial_needed"
    wrong = act(any_demo_app, "KIT-1", Scan("9506000001036"))
    assert wrong.message.startswith("Wrong part: this is 16 GB memory (2x8 GB DDR5), step needs ")
    assert act(any_demo_app, "KIT-1", Scan("9506000001105")).code == "bad_check_digit"
    assert act(any_demo_app, "KIT-1", Scan("NOT-A-PART")).code == "unknown_barcode"
    assert (
        act(any_demo_app, "KIT-1", CompleteStep()).message
        == "Not finished: still to pick 1 x PSU-450, 1 x SCR-M3, 2 x FAN-120."
    )

    assert act(any_demo_app, "KIT-1", Pause()).accepted
    assert act(any_demo_app, "KIT-1", Scan(SCREWS)).code == "paused_now"
    assert act(any_demo_app, "KIT-1", Resume()).accepted
    for data in (psu(1), SCREWS, FAN, FAN):
        outcome = act(any_demo_app, "KIT-1", Scan(data))
        assert outcome.accepted, outcome.message
    done = act(any_demo_app, "KIT-1", CompleteStep())
    assert done.message == "Unit PC-T1: Kit the case complete."
    assert done.state is not None and done.state.unit is None

    # What was recorded: one consumption and one ledger line per accepted pick,
    # reservations given back, the step closed with its pause, the next step ready.
    assert count(any_demo_app, Consumption) == 5
    assert count(any_demo_app, StockMovement, StockMovement.kind == "consumption") == 5
    with Session(any_demo_app.extensions["taktline.engine"]) as session:
        held = session.exec(
            select(func.sum(StockMovement.reserved_delta)).where(
                StockMovement.unit_id.is_not(None),  # type: ignore[union-attr]
                col(StockMovement.part_id).in_(select(Consumption.part_id)),
            )
        ).one()
        assert held == 0
        step = session.exec(select(StepRecord)).one()
        assert step.ended_at is not None and step.paused_seconds >= 0
        statuses = [
            u.status
            for u in session.exec(select(UnitOperation).order_by(col(UnitOperation.sequence)))
        ]
        assert statuses == ["done", "ready", "pending", "pending"]
        fan_lot = session.exec(select(StockLot).where(StockLot.lot_code == "FN-2605")).one()
        assert (fan_lot.on_hand, fan_lot.reserved) == (78, 0)
        results = dict(
            session.exec(select(Event.result, func.count()).group_by(Event.result)).all()
        )
    assert results == {"accepted": 10, "rejected": 8}  # the duplicate left no row


def test_a_serial_goes_into_one_unit_only(any_demo_app: Flask) -> None:
    engine = any_demo_app.extensions["taktline.engine"]
    release(engine, options=KIT_OPTIONS, serial="PC-T1")
    release(engine, options=KIT_OPTIONS, serial="PC-T2")
    act(any_demo_app, "KIT-1", SignIn("OP1001"))
    act(any_demo_app, "KIT-1", StartNext())
    kit(any_demo_app, 3)
    assert act(any_demo_app, "KIT-1", StartNext()).message == "Unit PC-T2: Kit the case started."
    reused = act(any_demo_app, "KIT-1", Scan(psu(3)))
    assert reused.message == "Serial P45X00003 is already in unit PC-T1."
    assert act(any_demo_app, "KIT-1", Scan("P45X00004")).code == "picked"  # a bare serial label
    assert count(any_demo_app, Consumption, Consumption.serial == "P45X00003") == 1


def test_skills_pins_and_start_by_serial(demo_app: Flask) -> None:
    release(demo_app.extensions["taktline.engine"], options=KIT_OPTIONS, serial="PC-T1")
    assert act(demo_app, "KIT-1", SignIn("OP1002", "0000")).code == "wrong_pin"
    assert act(demo_app, "KIT-1", SignIn("OP1002", "4321")).accepted
    refused = act(demo_app, "KIT-1", StartUnit("PC-T1"))
    assert refused.message == 'Kit the case needs the skill "kitting"; ask a supervisor.'
    assert count(demo_app, UnitOperation, UnitOperation.status == "active") == 0
    assert act(demo_app, "KIT-1", SignIn("OP1003")).accepted  # Chen takes over
    with Session(demo_app.extensions["taktline.engine"]) as session:
        hand_over = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "station.sign_in")
            .order_by(col(AuditEntry.id).desc())
        ).first()
        assert hand_over is not None and hand_over.actor == "Chen Wei (OP1003) at KIT-1"
    assert act(demo_app, "KIT-1", StartUnit("PC-NOPE")).code == "unit_not_here"
    assert act(demo_app, "KIT-1", StartUnit("PC-T1")).accepted
    with Session(demo_app.extensions["taktline.engine"]) as session:
        station = session.exec(select(Station).where(Station.code == "KIT-1")).one()
        assert station.operator_id is not None
    signed_out = act(demo_app, "KIT-1", SignOut())
    assert signed_out.accepted and signed_out.state is not None
    assert signed_out.state.operator is None and signed_out.state.paused


def test_unreserved_lot_part_needs_its_lot_on_the_label(demo_app: Flask) -> None:
    release(
        demo_app.extensions["taktline.engine"], options=KIT_OPTIONS, serial="PC-T1", reserve=False
    )
    act(demo_app, "KIT-1", SignIn("OP1001"))
    act(demo_app, "KIT-1", StartNext())
    assert act(demo_app, "KIT-1", Scan("9506000001210")).code == "lot_needed"
    assert act(demo_app, "KIT-1", Scan("(01)09506000001210(10)FN-9999")).code == "lot_unknown"
    assert act(demo_app, "KIT-1", Scan(FAN)).code == "picked"


def test_defects_andon_and_unknown_station(demo_app: Flask) -> None:
    release(demo_app.extensions["taktline.engine"], options=KIT_OPTIONS, serial="PC-T1")
    assert act(demo_app, "KIT-1", CallAndon("no screws")).accepted
    act(demo_app, "KIT-1", SignIn("OP1001"))
    act(demo_app, "KIT-1", StartNext())
    assert act(demo_app, "KIT-1", ReportDefect("cosmetic", "left panel")).accepted
    held = act(demo_app, "KIT-1", ReportDefect("no_fit", disposition="hold"))
    assert held.message == "Defect no_fit recorded; unit PC-T1 is on hold."
    assert count(demo_app, Defect) == 2 and count(demo_app, AndonCall) == 1
    assert count(demo_app, UnitOperation, UnitOperation.status == "held") == 1
    unknown = act(demo_app, "NOPE-9", Scan(CASE_MT), msg_id="m-unknown")
    assert unknown.result == "rejected" and unknown.message == "Unknown station NOPE-9."
    assert count(demo_app, Event, Event.msg_id == "m-unknown", Event.result == "rejected") == 1


def test_snapshot_is_the_retained_state_payload(demo_app: Flask) -> None:
    release(demo_app.extensions["taktline.engine"], options=KIT_OPTIONS, serial="PC-T1")
    act(demo_app, "KIT-1", SignIn("OP1001"))
    act(demo_app, "KIT-1", StartNext())
    act(demo_app, "KIT-1", Scan(FAN))
    with Session(demo_app.extensions["taktline.engine"]) as session:
        state = service.load_state(session, station_code="KIT-1")
    snap = json.loads(json.dumps(service.snapshot(state)))
    assert snap["operator"]["badge"] == "OP1001" and snap["unit"]["serial"] == "PC-T1"
    assert snap["step"]["code"] == "KIT" and snap["step"]["complete"] is False
    fans = next(p for p in snap["picks"] if p["sku"] == "FAN-120")
    assert (fans["qty"], fans["done"], fans["recorded"]) == (2, 1, ["FN-2605"])
    with Session(demo_app.extensions["taktline.engine"]) as session:
        assert session.execute(sa.text("select count(*) from event")).scalar() == 3


@pytest.mark.parametrize("batch", [False, True], ids=["shared-cache", "ingest-batch"])
def test_one_transaction_with_a_shared_cache_decides_like_one_per_event(
    any_demo_app: Flask, batch: bool
) -> None:
    """The ingest's batches: many events in one transaction sharing a ``Cache``
    (on SQLite it carries station state, lots and reservations between events; on
    PostgreSQL the ingest's batch, ``locking``, carries them under row locks and keeps
    the picks' rows back). The verdicts, states and rows are those of one transaction
    per event."""
    from station.cache import Cache

    engine = any_demo_app.extensions["taktline.engine"]
    release(engine, options=KIT_OPTIONS, serial="PC-T1")
    release(engine, options=KIT_OPTIONS, serial="PC-T2")
    events: list[StationEvent] = [
        SignIn("OP1001"),
        StartNext(),
        Scan(CASE_MT),
        Scan(FAN),
        Scan(psu(1)),
        Scan(psu(1)),
        Scan(FAN),
        Scan(FAN),
        Scan(SCREWS),
        CompleteStep(),
        StartNext(),
        Scan(psu(1)),
        Scan(FAN),
        Scan("P45X00002"),
    ]
    with write_session(engine) as session:
        cache = Cache(locking=batch)
        if batch:
            service.expect(session, cache, [f"b{i}" for i in range(len(events))])
        outcomes = [
            service.handle(
                session,
                station_code="KIT-1",
                event=e,
                msg_id=f"b{i}",
                channel="mqtt",
                cache=cache,
                savepoint=False,
                defer=batch,
            )
            for i, e in enumerate(events)
        ]
        service.flush(session, cache)
    assert [o.code for o in outcomes] == [
        "signed_in",
        "step_started",
        "picked",
        "picked",
        "picked",
        "already_picked",
        "picked",
        "already_picked",
        "picked",
        "step_complete",
        "step_started",
        "serial_used",
        "picked",
        "picked",
    ]
    last = outcomes[-1].state
    assert last is not None and last.unit is not None and last.unit.serial == "PC-T2"
    with Session(engine) as session:
        fresh = service.load_state(session, station_code="KIT-1")
        fan_lot = session.exec(select(StockLot).where(StockLot.lot_code == "FN-2605")).one()
        assert (fan_lot.on_hand, fan_lot.reserved) == (77, 1)  # PC-T2 still holds one
    assert fresh.picks == last.picks  # the carried state is what a reload reads
    assert [p.recorded for p in fresh.picks if p.done] == [("P45X00002",), ("FN-2605",)]
    assert count(any_demo_app, Consumption) == 7
    assert count(any_demo_app, StockMovement, StockMovement.kind == "consumption") == 7
