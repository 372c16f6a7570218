"""Supervisor moves on the queues: hold, resume, re-prioritise, move to a station.

Each writes an audit entry in the caller's transaction.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from server import audit
from server.models import (
    CustomerOrder,
    OrderLine,
    Station,
    Unit,
    UnitOperation,
    UnitOperationStatus,
    UnitStatus,
    join_unit_to_order,
)

HOLDABLE = (UnitOperationStatus.PENDING, UnitOperationStatus.READY, UnitOperationStatus.ACTIVE)
MOVABLE = (UnitOperationStatus.PENDING, UnitOperationStatus.READY, UnitOperationStatus.HELD)
CLOSED = (UnitOperationStatus.DONE, UnitOperationStatus.CANCELLED)


class DispatchError(ValueError):
    """The move is not possible in the operation's current state."""


def _label(session: Session, op: UnitOperation) -> str:
    unit = session.get(Unit, op.unit_id)
    return f"{unit.serial if unit else op.unit_id} #{op.sequence}"


def hold(
    session: Session, *, unit_operation: UnitOperation, reason: str, by: str, address: str = ""
) -> None:
    op = unit_operation
    if op.status not in HOLDABLE:
        raise DispatchError(f"{_label(session, op)} is {op.status} and cannot be held.")
    if not reason.strip():
        raise DispatchError("Give a reason for the hold.")
    previous, op.status = op.status, UnitOperationStatus.HELD
    op.held_reason = reason.strip()[:300]
    session.add(op)
    audit.record(
        session,
        actor=by,
        action="dispatch.hold",
        entity="unit_operation",
        entity_id=op.id or "",
        address=address,
        detail={"unit": _label(session, op), "previous_status": previous, "reason": op.held_reason},
    )
    session.flush()


def resume(session: Session, *, unit_operation: UnitOperation, by: str, address: str = "") -> None:
    """Back to ready when every earlier operation is done, else pending."""
    op = unit_operation
    if op.status != UnitOperationStatus.HELD:
        raise DispatchError(f"{_label(session, op)} is {op.status}, not held.")
    earlier_open = session.exec(
        select(UnitOperation.id).where(
            UnitOperation.unit_id == op.unit_id,
            UnitOperation.sequence < op.sequence,
            UnitOperation.status != UnitOperationStatus.DONE,
        )
    ).first()
    op.status = UnitOperationStatus.PENDING if earlier_open else UnitOperationStatus.READY
    op.held_reason, op.claimed_at = None, None
    session.add(op)
    unit = session.get(Unit, op.unit_id)
    if unit is not None and unit.status == UnitStatus.HELD:
        started = session.exec(
            select(UnitOperation.id).where(
                UnitOperation.unit_id == unit.id, UnitOperation.status == UnitOperationStatus.DONE
            )
        ).first()
        unit.status = UnitStatus.IN_PROGRESS if started else UnitStatus.QUEUED
        session.add(unit)
    audit.record(
        session,
        actor=by,
        action="dispatch.resume",
        entity="unit_operation",
        entity_id=op.id or "",
        address=address,
        detail={"unit": _label(session, op), "status": op.status},
    )
    session.flush()


def reprioritise(
    session: Session, *, order: CustomerOrder, priority: int, by: str, address: str = ""
) -> int:
    """Set the order's priority and that of its operations not yet done; returns how
    many operations changed."""
    previous, order.priority = order.priority, priority
    session.add(order)
    of_units = select(UnitOperation).join(Unit, col(UnitOperation.unit_id) == Unit.id)
    ops = session.exec(
        join_unit_to_order(of_units, upto=OrderLine).where(
            OrderLine.order_id == order.id, col(UnitOperation.status).not_in(CLOSED)
        )
    ).all()
    for op in ops:
        op.priority = priority
        session.add(op)
    audit.record(
        session,
        actor=by,
        action="dispatch.reprioritise",
        entity="order",
        entity_id=order.number,
        address=address,
        detail={"previous": previous, "priority": priority, "operations": len(ops)},
    )
    session.flush()
    return len(ops)


def move(
    session: Session, *, unit_operation: UnitOperation, station: Station, by: str, address: str = ""
) -> None:
    """Assign the operation to ``station`` (same kind): only that station takes it."""
    op = unit_operation
    if station.kind != op.station_kind:
        raise DispatchError(f"{station.code} does {station.kind} work, not {op.station_kind}.")
    if op.status not in MOVABLE:
        raise DispatchError(f"{_label(session, op)} is {op.status}; hold it before moving it.")
    previous = op.station_id
    op.station_id = station.id
    session.add(op)
    old = session.get(Station, previous) if previous else None
    audit.record(
        session,
        actor=by,
        action="dispatch.move",
        entity="unit_operation",
        entity_id=op.id or "",
        address=address,
        detail={"unit": _label(session, op), "from": old.code if old else None, "to": station.code},
    )
    session.flush()
