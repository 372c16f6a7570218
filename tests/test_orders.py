"""Order service on the demo plant: intake, release, reservations, cancel, races."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, col, select

from server.db import write_session
from server.models import (
    AuditEntry,
    CustomerOrder,
    Part,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
    WorkOrder,
)
from server.orders import service
from server.orders.intake import InvalidOrder, from_mapping

GPU_ORDER = ["i7", "mem16", "ssd1t", "mt", "gpu4080"]


def _engine(app: Flask) -> sa.Engine:
    engine: sa.Engine = app.extensions["taktline.engine"]
    return engine


def _order(session: Session, number: str) -> CustomerOrder:
    return session.exec(select(CustomerOrder).where(CustomerOrder.number == number)).one()


def _new_order(app: Flask, number: str, options: list[str], qty: int = 1) -> None:
    with write_session(_engine(app)) as s:
        service.create_order(
            s,
            order=from_mapping(
                {
                    "number": number,
                    "customer": "Test",
                    "due_date": "2030-01-01",
                    "lines": [{"product": "PC", "quantity": qty, "options": options}],
                }
            ),
            by="test",
        )


def _release(app: Flask, number: str, override: str | None = None) -> list[WorkOrder]:
    with write_session(_engine(app)) as s:
        return service.release(s, order=_order(s, number), by="test", override_reason=override)


def _ledger_consistent(session: Session) -> None:
    for lot in session.exec(select(StockLot)).all():
        moves = session.exec(select(StockMovement).where(StockMovement.lot_id == lot.id)).all()
        assert lot.on_hand == sum(m.quantity for m in moves) >= 0
        assert 0 <= lot.reserved == sum(m.reserved_delta for m in moves) <= lot.on_hand


def test_release_creates_work_orders_units_operations_and_reservations(any_demo_app: Flask) -> None:
    wos = _release(any_demo_app, "SO-1001")
    with Session(_engine(any_demo_app)) as s:
        order = _order(s, "SO-1001")
        assert order.status == "released" and order.released_at is not None
        assert [w.number for w in wos] == [f"WO-{order.id:06d}-1"]
        units = s.exec(select(Unit).order_by(col(Unit.id))).all()
        assert [u.serial for u in units] == ["PC-000001", "PC-000002"]
        assert {u.status for u in units} == {"queued"}
        ops = s.exec(
            select(UnitOperation)
            .where(UnitOperation.unit_id == units[0].id)
            .order_by(col(UnitOperation.sequence))
        ).all()
        assert [(o.station_kind, o.status) for o in ops] == [
            ("kitting", "ready"),
            ("board", "pending"),
            ("final", "pending"),
            ("test", "pending"),
        ]
        assert all(o.priority == order.priority and o.due_date == order.due_date for o in ops)
        assert {p["sku"] for p in ops[1].picks} == {
            "MB-B760",
            "CPU-I5",
            "TP-1",
            "COOL-STD",
            "MEM-16",
        }
        # One reservation per unit and BOM part, FEFO: MEM-16 from the lot expiring first.
        mem = s.exec(select(Part).where(Part.sku == "MEM-16")).one()
        held = service.reserved_lots(s, unit_id=units[1].id or 0, part_id=mem.id)
        assert [(lot.lot_code, n) for lot, n in held] == [("M16-2609A", 1)]
        res = s.exec(select(StockMovement).where(StockMovement.kind == "reservation")).all()
        assert all(m.unit_id in {u.id for u in units} and m.work_order_id == wos[0].id for m in res)
        fan = s.exec(select(Part).where(Part.sku == "FAN-120")).one()
        assert sum(m.reserved_delta for m in res if m.part_id == fan.id) == 4  # 2 per unit
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "order.release")).one()
        _ledger_consistent(s)


def test_substitute_is_reserved_when_the_primary_is_short(demo_app: Flask) -> None:
    _release(demo_app, "SO-1003")  # 3 x MEM-32 of the 4 in stock
    _release(demo_app, "SO-1004")  # 2 more MEM-32: one from stock, one substitute
    with Session(_engine(demo_app)) as s:
        mem32b = s.exec(select(Part).where(Part.sku == "MEM-32B")).one()
        subs = [
            p
            for o in s.exec(select(UnitOperation)).all()
            for p in o.picks
            if p.get("reserved_part_id")
        ]
        assert subs == [
            {
                "part_id": subs[0]["part_id"],
                "sku": "MEM-32",
                "qty": 1,
                "reserved_part_id": mem32b.id,
                "reserved_sku": "MEM-32B",
            }
        ]
        lot = s.exec(select(StockLot).where(StockLot.part_id == mem32b.id)).one()
        assert lot.reserved == 1


def test_shortage_refuses_release_and_writes_nothing(demo_app: Flask) -> None:
    _new_order(demo_app, "SO-BIG", GPU_ORDER, qty=4)  # 3 RTX 4080 in stock
    with Session(_engine(demo_app)) as s:
        lines = {line.sku: line for line in service.order_atp(s, order=_order(s, "SO-BIG"))}
        assert (
            lines["GPU-4080"].required,
            lines["GPU-4080"].available,
            lines["GPU-4080"].short,
        ) == (4, 3, 1)
    with pytest.raises(service.Shortage, match="GPU-4080 short 1"):
        _release(demo_app, "SO-BIG")
    with Session(_engine(demo_app)) as s:
        assert _order(s, "SO-BIG").status == "received"
        assert s.exec(select(Unit)).all() == []
        assert s.exec(select(StockMovement).where(StockMovement.kind == "reservation")).all() == []


def test_supervisor_override_releases_short_and_records_the_reason(demo_app: Flask) -> None:
    _new_order(demo_app, "SO-BIG", GPU_ORDER, qty=4)
    wos = _release(demo_app, "SO-BIG", override="customer accepts late GPU")
    with Session(_engine(demo_app)) as s:
        assert wos[0].override_reason == "customer accepts late GPU"
        entry = s.exec(select(AuditEntry).where(AuditEntry.action == "order.release")).one()
        assert entry.detail["override_reason"] == "customer accepts late GPU"
        assert entry.detail["short"] == {"GPU-4080": 1}
        assert len(s.exec(select(Unit)).all()) == 4
        _ledger_consistent(s)


def test_cancel_gives_back_every_reservation(any_demo_app: Flask) -> None:
    _release(any_demo_app, "SO-1002")
    with write_session(_engine(any_demo_app)) as s:
        released = service.cancel(s, order=_order(s, "SO-1002"), by="test", reason="dup")
    assert released > 10
    with Session(_engine(any_demo_app)) as s:
        assert _order(s, "SO-1002").status == "cancelled"
        assert all(lot.reserved == 0 for lot in s.exec(select(StockLot)).all())
        assert {o.status for o in s.exec(select(UnitOperation)).all()} == {"cancelled"}
        assert {u.status for u in s.exec(select(Unit)).all()} == {"cancelled"}
        _ledger_consistent(s)


def test_cancel_refused_once_a_unit_started(demo_app: Flask) -> None:
    _release(demo_app, "SO-1001")
    with write_session(_engine(demo_app)) as s:
        op = s.exec(select(UnitOperation).where(UnitOperation.status == "ready")).first()
        assert op is not None
        op.status = "active"
        s.add(op)
    with (
        write_session(_engine(demo_app)) as s,
        pytest.raises(service.OrderStateError, match="has started"),
    ):
        service.cancel(s, order=_order(s, "SO-1001"), by="test")
    with pytest.raises(service.OrderStateError, match="only a received order"):
        _release(demo_app, "SO-1001")


def test_invalid_order_is_refused_whole(demo_app: Flask) -> None:
    with write_session(_engine(demo_app)) as s, pytest.raises(InvalidOrder) as info:
        service.create_order(
            s,
            order=from_mapping(
                {
                    "number": "SO-1001",
                    "customer": "X",
                    "due_date": "2030-01-01",
                    "lines": [
                        {"product": "PC", "quantity": 1, "options": ["i5", "mem16", "mt"]},
                        {
                            "product": "PC",
                            "quantity": 1,
                            "options": ["i5", "mem16", "ssd512", "sff", "gpu4080"],
                        },
                        {"product": "NOPE", "quantity": 1},
                    ],
                }
            ),
            by="test",
        )
    assert info.value.problems == [
        "number: order SO-1001 already exists.",
        "line 1 (PC): Choose a Storage (storage).",
        "line 2 (PC): The RTX 4080 does not fit the small case.",
        "line 3: unknown product 'NOPE'.",
    ]
    with pytest.raises(InvalidOrder, match="due_date: 'soon' is not a date"):
        from_mapping(
            {
                "number": "X",
                "customer": "Y",
                "due_date": "soon",
                "lines": [{"product": "PC", "quantity": 1}],
            }
        )


def test_reservation_helpers_move_and_release(demo_app: Flask) -> None:
    _release(demo_app, "SO-1001")
    with write_session(_engine(demo_app)) as s:
        unit = s.exec(select(Unit).order_by(col(Unit.id))).first()
        assert unit is not None
        mem = s.exec(select(Part).where(Part.sku == "MEM-16")).one()
        [(lot, qty)] = service.reserved_lots(s, unit_id=unit.id or 0, part_id=mem.id)
        other = s.exec(select(StockLot).where(StockLot.lot_code == "M16-2611C")).one()
        service.move_reservation(
            s, unit_id=unit.id or 0, from_lot=lot, to_lot=other, qty=1, by="test"
        )
        assert [
            (x.lot_code, n)
            for x, n in service.reserved_lots(s, unit_id=unit.id or 0, part_id=mem.id)
        ] == [("M16-2611C", 1)]
        assert (
            service.release_reservation(
                s, unit_id=unit.id or 0, part_id=mem.id or 0, qty=5, by="test"
            )
            == 1
        )
        assert service.reserved_lots(s, unit_id=unit.id or 0, part_id=mem.id) == []
        allocation = service.reserve_for_unit(s, unit=unit, part_id=mem.id or 0, qty=1, by="test")
        assert allocation.short == 0 and allocation.reserved_part_id == mem.id
        _ledger_consistent(s)


def test_two_releases_race_for_the_last_units(any_demo_app: Flask) -> None:
    """Stock covers one of the two orders (3 RTX 4080): exactly one release wins."""
    _new_order(any_demo_app, "SO-A", GPU_ORDER, qty=3)
    _new_order(any_demo_app, "SO-B", GPU_ORDER, qty=3)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(number: str) -> None:
        barrier.wait()
        try:
            results[number] = _release(any_demo_app, number)
        except service.Shortage as exc:
            results[number] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in ("SO-A", "SO-B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    shortages = [r for r in results.values() if isinstance(r, service.Shortage)]
    assert len(results) == 2 and len(shortages) == 1
    assert "GPU-4080 short 3" in str(shortages[0])
    with Session(_engine(any_demo_app)) as s:
        statuses = sorted(_order(s, n).status for n in ("SO-A", "SO-B"))
        assert statuses == ["received", "released"]
        assert len(s.exec(select(Unit)).all()) == 3
        gpu = s.exec(select(Part).where(Part.sku == "GPU-4080")).one()
        assert all(
            lot.reserved == 1
            for lot in s.exec(select(StockLot).where(StockLot.part_id == gpu.id)).all()
        )
        _ledger_consistent(s)


def test_concurrent_releases_of_one_product_never_share_a_serial(any_demo_app: Flask) -> None:
    numbers = ["SO-1001", "SO-1003", "SO-1005"]
    barrier = threading.Barrier(len(numbers))
    errors: list[BaseException] = []

    def run(number: str) -> None:
        barrier.wait()
        try:
            _release(any_demo_app, number)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with Session(_engine(any_demo_app)) as s:
        serials = sorted(u.serial for u in s.exec(select(Unit)).all())
    assert serials == [f"PC-{n:06d}" for n in range(1, 12)]
