"""Dispatch: queue order, atomic claims by parallel stations, supervisor moves."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, col, select

from server import dispatch
from server.db import write_session
from server.dispatch.policy import in_queue_order, may_take
from server.models import AuditEntry, CustomerOrder, Station, Unit, UnitOperation
from server.models.orders import UnitOperation as UOp
from server.orders import service


def _engine(app: Flask) -> sa.Engine:
    engine: sa.Engine = app.extensions["taktline.engine"]
    return engine


def _station(session: Session, code: str) -> Station:
    return session.exec(select(Station).where(Station.code == code)).one()


def _release(app: Flask, *numbers: str) -> None:
    for number in numbers:
        with write_session(_engine(app)) as s:
            order = s.exec(select(CustomerOrder).where(CustomerOrder.number == number)).one()
            service.release(s, order=order, by="test")


def _finish_kitting(app: Flask) -> None:
    with write_session(_engine(app)) as s:
        kit = _station(s, "KIT-1")
        while (op := dispatch.claim_next(s, station=kit)) is not None:
            dispatch.complete_operation(s, unit_operation=op)


def test_policy_orders_by_priority_then_due_date_then_release_time() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    t2 = datetime(2026, 1, 2, tzinfo=UTC)
    ops = [
        UOp(
            id=1,
            unit_id=1,
            operation_id=1,
            sequence=1,
            station_kind="k",
            priority=0,
            due_date=date(2026, 3, 1),
            released_at=t,
        ),
        UOp(
            id=2,
            unit_id=1,
            operation_id=1,
            sequence=1,
            station_kind="k",
            priority=0,
            due_date=None,
            released_at=t,
        ),
        UOp(
            id=3,
            unit_id=1,
            operation_id=1,
            sequence=1,
            station_kind="k",
            priority=5,
            due_date=date(2026, 9, 1),
            released_at=t2,
        ),
        UOp(
            id=4,
            unit_id=1,
            operation_id=1,
            sequence=1,
            station_kind="k",
            priority=0,
            due_date=date(2026, 3, 1),
            released_at=t2,
        ),
        UOp(
            id=5,
            unit_id=1,
            operation_id=1,
            sequence=1,
            station_kind="k",
            priority=0,
            due_date=date(2026, 2, 1),
            released_at=t2,
        ),
    ]
    assert [o.id for o in in_queue_order(ops)] == [3, 5, 1, 4, 2]
    assert may_take(
        status="ready", station_kind="k", assigned_station_id=None, station_id=1, kind="k"
    )
    assert not may_take(
        status="ready", station_kind="k", assigned_station_id=2, station_id=1, kind="k"
    )
    assert not may_take(
        status="held", station_kind="k", assigned_station_id=None, station_id=1, kind="k"
    )


def test_released_units_appear_in_the_right_queues_in_dispatch_order(demo_app: Flask) -> None:
    _release(demo_app, "SO-1001", "SO-1002")  # SO-1002 has priority 1
    with Session(_engine(demo_app)) as s:
        kit = dispatch.queue_for(s, station=_station(s, "KIT-1"))
        serials = [s.get(Unit, op.unit_id).serial for op in kit]  # type: ignore[union-attr]
        assert serials == ["PC-000003", "PC-000001", "PC-000002"]
        assert dispatch.queue_for(s, station=_station(s, "BRD-1")) == []
    _finish_kitting(demo_app)
    with Session(_engine(demo_app)) as s:
        brd1 = dispatch.queue_for(s, station=_station(s, "BRD-1"))
        brd2 = dispatch.queue_for(s, station=_station(s, "BRD-2"))
        assert [o.id for o in brd1] == [o.id for o in brd2] and len(brd1) == 3
        order = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1002")).one()
        assert order.status == "in_progress" and order.first_started_at is not None


def test_parallel_stations_polling_at_once_never_get_the_same_unit(any_demo_app: Flask) -> None:
    _release(any_demo_app, "SO-1001", "SO-1003", "SO-1005")  # 11 units
    _finish_kitting(any_demo_app)
    claimed: dict[str, list[int]] = {"BRD-1": [], "BRD-2": []}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def poll(code: str) -> None:
        barrier.wait()
        try:
            while True:
                with write_session(_engine(any_demo_app)) as s:
                    op = dispatch.claim_next(s, station=_station(s, code))
                    if op is None:
                        return
                    claimed[code].append(op.id or 0)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(c,)) for c in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    both = claimed["BRD-1"] + claimed["BRD-2"]
    assert len(both) == 11 and len(set(both)) == 11
    with Session(_engine(any_demo_app)) as s:
        ops = s.exec(select(UnitOperation).where(UnitOperation.station_kind == "board")).all()
        codes = {st.id: st.code for st in s.exec(select(Station)).all()}
        assert {o.status for o in ops} == {"active"}
        for code, ids in claimed.items():
            assert {codes[o.station_id] for o in ops if o.id in ids} <= {code}


def test_completing_every_step_completes_unit_and_order(demo_app: Flask) -> None:
    _release(demo_app, "SO-1002")
    with write_session(_engine(demo_app)) as s:
        for code in ("KIT-1", "BRD-2", "FIN-1", "TST-1"):
            op = dispatch.claim_next(s, station=_station(s, code))
            assert op is not None, code
            dispatch.complete_operation(s, unit_operation=op)
        unit = s.exec(select(Unit)).one()
        order = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1002")).one()
        assert unit.status == "completed" and unit.completed_at is not None
        assert order.status == "completed" and order.completed_at is not None
        service.ship(s, order=order, by="test")
        assert order.status == "shipped" and order.shipped_at is not None


def test_hold_resume_move_and_reprioritise(demo_app: Flask) -> None:
    _release(demo_app, "SO-1001", "SO-1003")
    _finish_kitting(demo_app)
    with write_session(_engine(demo_app)) as s:
        brd1, brd2 = _station(s, "BRD-1"), _station(s, "BRD-2")
        first = dispatch.queue_for(s, station=brd1)[0]
        dispatch.hold(s, unit_operation=first, reason="missing screw", by="sup")
        assert first.id not in [o.id for o in dispatch.queue_for(s, station=brd1)]
        dispatch.move(s, unit_operation=first, station=brd2, by="sup")
        dispatch.resume(s, unit_operation=first, by="sup")
        assert first.status == "ready"
        assert first.id not in [o.id for o in dispatch.queue_for(s, station=brd1)]
        assert dispatch.queue_for(s, station=brd2)[0].id == first.id
        assert dispatch.claim(s, station=brd1, unit_operation_id=first.id or 0) is None
        late = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1003")).one()
        assert dispatch.reprioritise(s, order=late, priority=9, by="sup") == 9  # 3 units x 3 ops
        queue = dispatch.queue_for(s, station=brd1)
        assert [o.priority for o in queue][:3] == [9, 9, 9]
        try:
            dispatch.move(s, unit_operation=queue[0], station=_station(s, "FIN-1"), by="sup")
        except dispatch.DispatchError as exc:
            assert "does final work, not board" in str(exc)
        else:
            raise AssertionError("a board operation moved to a final station")
        actions = s.exec(
            select(AuditEntry.action).where(col(AuditEntry.action).startswith("dispatch."))
        ).all()
        assert sorted(actions) == [
            "dispatch.hold",
            "dispatch.move",
            "dispatch.reprioritise",
            "dispatch.resume",
        ]
