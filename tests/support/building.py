"""Build units through the real paths: order intake rows, ``orders.service.release``,
then ``station.service.handle`` (sign in, start the unit, scan every pick, complete)
at each station of the routing. Used by the traceability and line-board tests.

Scans are what a scanner would read: GS1 ``(01)GTIN(21)SERIAL`` for serial parts,
``(01)GTIN(10)LOT`` for lot parts, the GTIN for the rest, or the bare serial label of
a sub-assembly. The lot or serial scanned is the one release reserved for the unit
(so a substitute reserved by release is what gets scanned and built in).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server.db import write_session
from server.models import (
    CustomerOrder,
    OrderLine,
    Part,
    PartIdentifier,
    Product,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
)
from server.orders import service as orders
from station import service
from station.checks import CheckStatus
from station.workflow import (
    CheckInput,
    CompleteStep,
    DeviceEvent,
    Scan,
    SignIn,
    StartUnit,
    StationEvent,
)

# Who builds at which kind of station (skills of the demo operators).
BUILDERS = {"kitting": "OP1001", "board": "OP1001", "final": "OP1003", "test": "OP1003"}
STATIONS = {"kitting": "KIT-1", "board": "BRD-1", "final": "FIN-1", "test": "TST-1"}


def act(engine: Engine, station: str, event: StationEvent) -> service.Outcome:
    with write_session(engine) as session:
        return service.handle(
            session, station_code=station, event=event, channel="ui", source="test"
        )


def place_and_release(
    engine: Engine,
    *,
    number: str,
    product: str,
    quantity: int,
    options: list[str],
    due_in_days: int = 3,
) -> list[str]:
    """A received customer order, released through the orders service: its unit serials."""
    with write_session(engine) as session:
        prod = session.exec(select(Product).where(Product.code == product)).one()
        order = CustomerOrder(
            number=number,
            customer=f"Customer of {number}",
            due_date=(datetime.now(UTC) + timedelta(days=due_in_days)).date(),
            created_by="test",
        )
        session.add(order)
        session.flush()
        session.add(
            OrderLine(
                order_id=order.id, line_no=1, product_id=prod.id, quantity=quantity, options=options
            )
        )
        session.flush()
        orders.release(session, order=order, by="test")
        return [u.serial for u in orders.order_units(session, order=order)]


def build(engine: Engine, serial: str) -> None:
    """Every operation of unit ``serial``, at the demo stations, through handle()."""
    with Session(engine) as session:
        kinds = session.exec(
            select(UnitOperation.station_kind)
            .join(Unit, col(Unit.id) == UnitOperation.unit_id)
            .where(Unit.serial == serial)
            .order_by(col(UnitOperation.sequence))
        ).all()
    for kind in kinds:
        build_step(engine, STATIONS[kind], serial, badge=BUILDERS[kind])


def build_step(engine: Engine, station: str, serial: str, *, badge: str) -> None:
    assert act(engine, station, SignIn(badge)).accepted
    started = act(engine, station, StartUnit(serial))
    assert started.accepted, started.message
    assert started.state is not None and started.state.unit is not None
    unit_id = started.state.unit.id
    for pick in started.state.picks:
        for data in scans_for(
            engine,
            unit_id=unit_id,
            part_id=pick.part_id,
            substitutes=pick.substitutes,
            qty=pick.remaining,
        ):
            outcome = act(engine, station, Scan(data))
            assert outcome.accepted, (pick.sku, data, outcome.message)
    for check in started.state.checks:
        for event in check_inputs(check):
            outcome = act(engine, station, event)
            assert outcome.accepted, (check.spec.code, outcome.message)
    done = act(engine, station, CompleteStep())
    assert done.accepted, done.message


def at_test_and_pack(engine: Engine, *, number: str, badge: str, pin: str = "") -> str:
    """A PC built through KIT-1, BRD-1 and FIN-1, then started at TST-1 by ``badge``
    with its picks scanned: its checks are what is left. The unit's serial."""
    [serial] = place_and_release(engine, number=number, product="PC", quantity=1,
                                 options=["i5", "mem16", "ssd512", "mt"])  # fmt: skip
    for station in ("KIT-1", "BRD-1", "FIN-1"):
        kind = next(k for k, code in STATIONS.items() if code == station)
        build_step(engine, station, serial, badge=BUILDERS[kind])
    assert act(engine, "TST-1", SignIn(badge, pin)).accepted
    state = act(engine, "TST-1", StartUnit(serial)).state
    assert state is not None and state.unit is not None
    for pick in state.picks:
        for data in scans_for(engine, unit_id=state.unit.id, part_id=pick.part_id,
                              substitutes=pick.substitutes, qty=pick.remaining):  # fmt: skip
            assert act(engine, "TST-1", Scan(data)).accepted
    return serial


def check_inputs(check: CheckStatus) -> list[StationEvent]:
    """What passes ``check``: its nominal value from the device or typed, a confirmation
    or a photo (docs/quality.md)."""
    spec = check.spec
    left = spec.needed - check.passed
    if spec.kind in ("measure", "count"):
        value = spec.nominal if spec.nominal is not None else spec.lower or spec.upper or 0.0
        if spec.source == "typed":
            return [CheckInput(spec.id, value=value)] * left
        fields = {"value": value, "unit": spec.unit, "ok": True}
        return [DeviceEvent(kind=spec.source, fields=fields, source=spec.tool)] * left
    if spec.kind == "photo":
        return [CheckInput(spec.id, photo="quality/test-label.jpg")] * left
    return [CheckInput(spec.id, passed=True)] * left


def scans_for(
    engine: Engine, *, unit_id: int, part_id: int, substitutes: tuple[int, ...], qty: int
) -> list[str]:
    """What to scan for ``qty`` of ``part_id``: the lots / serials reserved for the unit."""
    with Session(engine) as session:
        reserved = session.execute(
            sa.select(StockMovement.lot_id, sa.func.sum(StockMovement.reserved_delta))
            .join(StockLot, StockLot.id == StockMovement.lot_id)
            .where(
                StockMovement.unit_id == unit_id, col(StockLot.part_id).in_((part_id, *substitutes))
            )
            .group_by(StockMovement.lot_id)
        ).all()
        out: list[str] = []
        for lot_id, n in reserved:
            lot = session.get(StockLot, lot_id)
            assert lot is not None
            out += [_label(session, lot)] * int(n or 0)
        if not out:  # nothing reserved (untracked parts): the GTIN from the bin
            lot = session.exec(
                select(StockLot).where(StockLot.part_id == part_id, StockLot.on_hand > 0)
            ).first()
            assert lot is not None, f"no stock of part {part_id}"
            out = [_label(session, lot)]
        return (out * qty)[:qty] if len(out) < qty else out[:qty]


def _label(session: Session, lot: StockLot) -> str:
    part = session.get(Part, lot.part_id)
    assert part is not None
    gtin = session.exec(
        select(PartIdentifier.value).where(
            PartIdentifier.part_id == part.id, PartIdentifier.kind == "gtin"
        )
    ).first()
    if gtin is None:  # a sub-assembly: its own serial label
        return lot.serial
    if lot.serial:
        return f"(01){gtin}(21){lot.serial}"
    if lot.lot_code:
        return f"(01){gtin}(10){lot.lot_code}"
    return gtin
