"""Station queues and the atomic claim, and the status moves of a unit's operations.

A claim is one conditional UPDATE (``status = 'ready'`` and not assigned to another
station) whose row count tells whether this station won it: on PostgreSQL a second
station's UPDATE of the same row waits for the first to commit, re-reads the row and
matches nothing; on SQLite the write transaction (BEGIN IMMEDIATE, see
``server.db.write_session``) already runs one writer at a time. Either way two
stations never get the same unit operation.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.dispatch.policy import in_queue_order
from server.integration import outbox
from server.inventory import ledger
from server.models import (
    Consumption,
    CustomerOrder,
    Location,
    OrderLine,
    OrderStatus,
    Part,
    Product,
    Station,
    StockLot,
    Tracking,
    Unit,
    UnitOperation,
    UnitOperationStatus,
    UnitStatus,
    WorkOrder,
    WorkOrderStatus,
    join_unit_to_order,
    join_work_order_to_order,
)
from server.models.types import pk, utcnow

log = logging.getLogger(__name__)
FINISHED = (UnitStatus.COMPLETED, UnitStatus.CANCELLED)  # a unit no longer to be built


def queue_for(session: Session, *, station: Station) -> list[UnitOperation]:
    """Ready operations of ``station.kind`` not assigned to another station, in
    dispatch order (priority desc, due date asc, release time asc). Held operations are
    not ready, so they are skipped."""
    ops = session.exec(
        select(UnitOperation)
        .where(
            UnitOperation.station_kind == station.kind,
            UnitOperation.status == UnitOperationStatus.READY,
            col(UnitOperation.station_id).is_(None) | (col(UnitOperation.station_id) == station.id),
        )
        .execution_options(populate_existing=True)
    ).all()
    return in_queue_order(ops)


def claim(session: Session, *, station: Station, unit_operation_id: int) -> UnitOperation | None:
    """Claim one operation for ``station``: it becomes ``active`` there. ``None`` when
    it is no longer ready for this station (another station took it, it was held...)."""
    result = session.execute(
        sa.update(UnitOperation)
        .where(
            col(UnitOperation.id) == unit_operation_id,
            col(UnitOperation.status) == UnitOperationStatus.READY,
            col(UnitOperation.station_kind) == station.kind,
            col(UnitOperation.station_id).is_(None) | (col(UnitOperation.station_id) == station.id),
        )
        .values(status=UnitOperationStatus.ACTIVE, station_id=station.id, claimed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(UnitOperation, unit_operation_id, populate_existing=True)


def claim_next(session: Session, *, station: Station) -> UnitOperation | None:
    """Claim the first operation of the station's queue that nobody else took."""
    for op in queue_for(session, station=station):
        claimed = claim(session, station=station, unit_operation_id=op.id or 0)
        if claimed is not None:
            return claimed
        log.debug("%s lost unit operation %s to another station", station.code, op.id)
    return None


def order_of(session: Session, *, unit: Unit) -> CustomerOrder:
    return session.exec(
        join_work_order_to_order(select(CustomerOrder).select_from(WorkOrder)).where(
            WorkOrder.id == unit.work_order_id
        )
    ).one()


def mark_started(session: Session, *, unit: Unit) -> None:
    """A step of ``unit`` started: the unit is in progress, its work order and order too
    (the order's ``first_started_at`` is stamped once)."""
    now = utcnow()
    first_start = unit.status == UnitStatus.QUEUED
    if unit.status in (UnitStatus.QUEUED, UnitStatus.HELD):
        unit.status = UnitStatus.IN_PROGRESS
        session.add(unit)
    wo = session.get(WorkOrder, unit.work_order_id)
    if wo is not None and wo.status == WorkOrderStatus.RELEASED:
        wo.status = WorkOrderStatus.IN_PROGRESS
        session.add(wo)
    order = order_of(session, unit=unit)
    if order.first_started_at is None:
        order.first_started_at = now
    if order.status == OrderStatus.RELEASED:
        order.status = OrderStatus.IN_PROGRESS
    session.add(order)
    session.flush()
    if first_start:
        outbox.emit(
            session,
            type=outbox.UNIT_STARTED,
            order_id=order.id or 0,
            at=now,
            data={
                "order": order.number,
                "unit": unit.serial,
                "work_order": wo.number if wo is not None else None,
            },
        )


def complete_operation(session: Session, *, unit_operation: UnitOperation) -> None:
    """The step is done: the next operation of the unit becomes ready; after the last
    one the unit is completed, and the order once all its units are."""
    op = unit_operation
    if op.status == UnitOperationStatus.DONE:
        return
    unit = session.get(Unit, op.unit_id)
    assert unit is not None  # foreign key
    if unit.status == UnitStatus.QUEUED:
        mark_started(session, unit=unit)
    op.status = UnitOperationStatus.DONE
    session.add(op)
    following = session.exec(
        select(UnitOperation)
        .where(UnitOperation.unit_id == op.unit_id, UnitOperation.sequence > op.sequence)
        .order_by(col(UnitOperation.sequence))
    ).first()
    if following is not None:
        if following.status == UnitOperationStatus.PENDING:
            following.status = UnitOperationStatus.READY
            session.add(following)
        session.flush()
        return
    now = utcnow()
    unit.status, unit.completed_at = UnitStatus.COMPLETED, now
    session.add(unit)
    session.flush()
    wo = session.get(WorkOrder, unit.work_order_id)
    _stock_sub_assembly(session, unit=unit, work_order=wo)
    order = order_of(session, unit=unit)
    siblings = session.exec(
        join_unit_to_order(select(Unit.status), upto=OrderLine).where(
            OrderLine.order_id == order.id
        )
    ).all()
    if (
        wo is not None
        and not session.exec(
            select(Unit.id).where(Unit.work_order_id == wo.id, col(Unit.status).not_in(FINISHED))
        ).first()
    ):
        wo.status = WorkOrderStatus.COMPLETED
        session.add(wo)
    outbox.emit(
        session,
        type=outbox.UNIT_COMPLETED,
        order_id=order.id or 0,
        at=now,
        data={
            "order": order.number,
            "unit": unit.serial,
            "product": _product_code(session, unit),
            "options": list(unit.options),
            "work_order": wo.number if wo is not None else None,
            "completed_at": now,
            "genealogy": _genealogy_summary(session, unit_id=pk(unit)),
        },
    )
    if all(s in FINISHED for s in siblings):
        order.status, order.completed_at = OrderStatus.COMPLETED, now
        session.add(order)
        log.info("order %s completed", order.number)
        outbox.emit(
            session,
            type=outbox.ORDER_COMPLETED,
            order_id=order.id or 0,
            at=now,
            data={
                "order": order.number,
                "completed_at": now,
                "units": sum(1 for s in siblings if s == UnitStatus.COMPLETED),
            },
        )
    session.flush()


def _product_code(session: Session, unit: Unit) -> str:
    code = session.exec(select(Product.code).where(Product.id == unit.product_id)).first()
    return code or ""


def _genealogy_summary(session: Session, *, unit_id: int) -> list[dict[str, object]]:
    """What went into the unit (for unit.completed): part, lot or serial, quantity."""
    rows = session.exec(
        select(Part.sku, StockLot.lot_code, Consumption.serial, Consumption.quantity)  # type: ignore[call-overload]
        .join(Part, col(Part.id) == col(Consumption.part_id))
        .join(StockLot, col(StockLot.id) == col(Consumption.lot_id), isouter=True)
        .where(Consumption.unit_id == unit_id)
        .order_by(col(Consumption.id))
    ).all()
    return [
        {
            "part": sku,
            "lot": (lot or None) if not serial else None,
            "serial": serial or None,
            "quantity": qty,
        }
        for sku, lot, serial, qty in rows
    ]


def _stock_sub_assembly(session: Session, *, unit: Unit, work_order: WorkOrder | None) -> None:
    """A finished unit whose product is also a part (a sub-assembly) goes into line-side
    stock, so the product it is built into can pick it by its serial and the genealogy
    nests it."""
    part = session.exec(select(Part).where(Part.product_id == unit.product_id)).first()
    if part is None:
        return
    location = session.exec(
        select(Location).order_by(col(Location.kind) != "lineside", col(Location.id))
    ).first()
    if location is None:
        log.warning(
            "sub-assembly %s completed but there is no stock location to put it in", unit.serial
        )
        return
    serial = unit.serial if part.tracking == Tracking.SERIAL else ""
    lot_code = "" if serial else (work_order.number if work_order is not None else unit.serial)
    ledger.receive(
        session,
        part=part,
        location_id=pk(location),
        quantity=1,
        serial=serial,
        lot_code=lot_code,
        by="completion",
        reason=f"built as {unit.serial}",
    )
