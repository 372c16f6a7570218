"""Per-unit stock reservations on specific lots, through the ledger.

A reservation is a ``reservation`` movement (``reserved_delta`` > 0) carrying the
``work_order_id`` and ``unit_id`` it is held for; an ``unreservation`` or a
``consumption`` with ``reserved_delta`` < 0 gives it back. What a unit holds on a lot
is the sum of ``reserved_delta`` of the movements with that unit and lot.

An expired lot (``server.inventory.expiry``) is never reserved: ``snapshot`` marks it,
the planner takes nothing of it, ``move_reservation`` refuses it. A reservation made
before the lot expired stays until given back: ``release_reservation`` gives back those
first, and the station releases it when the unit consumes another lot.

Concurrency: callers run in a write transaction (``server.db.write_session`` /
``begin_write``: BEGIN IMMEDIATE on SQLite). On PostgreSQL ``lock_lots`` takes row
locks on every lot of the parts involved, ordered by id so two releases never
deadlock; the second waits, then reads the first one's reservations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.inventory import expiry, ledger
from server.models import Location, PartSubstitute, StockLot, StockMovement, Unit
from server.orders.atp import Allocation, LotInfo, Need, allocate_need

log = logging.getLogger(__name__)


def substitutes_for(session: Session, part_ids: Iterable[int]) -> dict[int, list[int]]:
    """Approved substitutes of each part, best priority first."""
    rows = session.exec(
        select(PartSubstitute)
        .where(col(PartSubstitute.part_id).in_(list(part_ids)))
        .order_by(col(PartSubstitute.priority), col(PartSubstitute.id))
    ).all()
    subs: dict[int, list[int]] = {}
    for row in rows:
        subs.setdefault(row.part_id, []).append(row.substitute_id)
    return subs


def lock_lots(
    session: Session, part_ids: Iterable[int], *, lock: bool = True
) -> dict[int, list[StockLot]]:
    """Every lot of ``part_ids`` with stock, freshly read; row-locked (FOR UPDATE, by id)
    when ``lock`` (a no-op on SQLite, whose write transaction already excludes others)."""
    ids = sorted(set(part_ids))
    stmt = (
        select(StockLot)
        .where(col(StockLot.part_id).in_(ids), col(StockLot.on_hand) > 0)
        .order_by(col(StockLot.id))
        .execution_options(populate_existing=True)
    )
    if lock:
        stmt = stmt.with_for_update()
    lots: dict[int, list[StockLot]] = {p: [] for p in ids}
    for lot in session.exec(stmt).all():
        lots[lot.part_id].append(lot)
    return lots


class LotExpired(ValueError):
    """A reservation was asked on a lot past its expiry date."""


def snapshot(
    session: Session,
    lots: dict[int, list[StockLot]],
    *,
    exclude_work_orders: Iterable[int] = (),
    today: date | None = None,
) -> dict[int, list[LotInfo]]:
    """``LotInfo`` of each lot; reservations of ``exclude_work_orders`` count as free;
    a lot expired before ``today`` (in UTC by default) is marked ``expired``."""
    day = today or expiry.today()
    kinds = dict(session.exec(select(Location.id, Location.kind)).all())  # type: ignore[call-overload]
    own: dict[int, int] = {}
    wo_ids = list(exclude_work_orders)
    if wo_ids:
        rows = session.exec(
            select(  # type: ignore[call-overload]
                StockMovement.lot_id, sa.func.sum(StockMovement.reserved_delta)
            )
            .where(col(StockMovement.work_order_id).in_(wo_ids))
            .group_by(col(StockMovement.lot_id))
        ).all()
        own = {lot_id: int(n) for lot_id, n in rows}
    return {
        part: [
            LotInfo(
                lot.id or 0,
                lot.part_id,
                lot.on_hand,
                lot.reserved - own.get(lot.id or 0, 0),
                lot.expires_on,
                lot.received_at,
                kinds.get(lot.location_id) == "lineside",
                expiry.expired(lot.expires_on, day),
            )
            for lot in part_lots
        ]
        for part, part_lots in lots.items()
    }


def post_allocation(
    session: Session,
    *,
    allocation: Allocation,
    lots: dict[int, StockLot],
    unit: Unit,
    by: str,
    reason: str,
) -> list[StockMovement]:
    """Write the reservation movements of one planned allocation."""
    return [
        ledger.post(
            session,
            lot=lots[take.lot_id],
            kind="reservation",
            reserved_delta=take.qty,
            by=by,
            reason=reason,
            work_order_id=unit.work_order_id,
            unit_id=unit.id,
        )
        for take in allocation.takes
    ]


def reserve_for_unit(
    session: Session, *, unit: Unit, part_id: int, qty: int, by: str, reason: str = ""
) -> Allocation:
    """Reserve ``qty`` of BOM part ``part_id`` for ``unit``: lots FEFO then FIFO, an
    approved substitute when the part itself cannot cover it. Returns the allocation
    (``reserved_part_id``, lots, ``short`` > 0 when nothing covers it all: then
    nothing is reserved)."""
    subs = substitutes_for(session, [part_id])
    locked = lock_lots(session, [part_id, *subs.get(part_id, [])])
    allocation = allocate_need(Need(part_id, qty), snapshot(session, locked), subs, {})
    if allocation.short:
        return allocation
    by_id = {lot.id or 0: lot for part_lots in locked.values() for lot in part_lots}
    post_allocation(
        session,
        allocation=allocation,
        lots=by_id,
        unit=unit,
        by=by,
        reason=reason or f"unit {unit.serial}",
    )
    return allocation


def reserved_lots(
    session: Session, *, unit_id: int, part_id: int | None = None
) -> list[tuple[StockLot, int]]:
    """Lots holding a reservation for ``unit_id`` (of ``part_id`` when given), with the
    quantity still reserved, FEFO order."""
    stmt = (
        select(StockMovement.lot_id, sa.func.sum(StockMovement.reserved_delta))  # type: ignore[call-overload]
        .where(StockMovement.unit_id == unit_id)
        .group_by(col(StockMovement.lot_id))
    )
    if part_id is not None:
        stmt = stmt.where(StockMovement.part_id == part_id)
    held = {lot_id: int(n) for lot_id, n in session.exec(stmt).all() if n and n > 0}
    if not held:
        return []
    lots = session.exec(
        select(StockLot)
        .where(col(StockLot.id).in_(list(held)))
        .execution_options(populate_existing=True)
    ).all()
    lots = sorted(
        lots,
        key=lambda lot: (lot.expires_on is None, lot.expires_on or "", lot.received_at, lot.id),
    )
    return [(lot, held[lot.id or 0]) for lot in lots]


def release_reservation(
    session: Session,
    *,
    unit_id: int,
    part_id: int,
    qty: int,
    by: str,
    lot_id: int | None = None,
    reason: str = "",
) -> int:
    """Give back up to ``qty`` reserved for the unit on ``part_id`` (from ``lot_id`` only
    when given, else expired lots first, then latest-expiring lots first). Returns the
    quantity unreserved."""
    if qty <= 0:
        raise ValueError("quantity to unreserve must be positive")
    held = reserved_lots(session, unit_id=unit_id, part_id=part_id)
    if lot_id is not None:
        held = [(lot, n) for lot, n in held if lot.id == lot_id]
    day = expiry.today()
    held = [x for x in held if expiry.expired(x[0].expires_on, day)] + [
        x for x in reversed(held) if not expiry.expired(x[0].expires_on, day)
    ]
    unit = session.get(Unit, unit_id)
    left = qty
    for lot, n in held:
        if left == 0:
            break
        take = min(n, left)
        ledger.post(
            session,
            lot=lot,
            kind="unreservation",
            reserved_delta=-take,
            by=by,
            reason=reason or "reservation released",
            unit_id=unit_id,
            work_order_id=unit.work_order_id if unit else None,
        )
        left -= take
    return qty - left


def move_reservation(
    session: Session,
    *,
    unit_id: int,
    from_lot: StockLot,
    to_lot: StockLot,
    qty: int,
    by: str,
    reason: str = "",
) -> None:
    """Move ``qty`` of the unit's reservation from ``from_lot`` to ``to_lot`` (the lot
    actually scanned). Raises ``ledger.InsufficientStock`` when ``to_lot`` has not
    ``qty`` available, ``LotExpired`` when it is past its expiry date; the caller's
    transaction is then left as it was."""
    if expiry.expired(to_lot.expires_on):
        raise LotExpired(
            f"lot {to_lot.serial or to_lot.lot_code or to_lot.id} expired on "
            f"{to_lot.expires_on}: it cannot be reserved"
        )
    if to_lot.part_id != from_lot.part_id:
        log.info(
            "unit %s: reservation moves from part %s to part %s",
            unit_id,
            from_lot.part_id,
            to_lot.part_id,
        )
    unit = session.get(Unit, unit_id)
    wo_id = unit.work_order_id if unit else None
    note = reason or "reservation moved to the scanned lot"
    with session.begin_nested():
        ledger.post(
            session,
            lot=to_lot,
            kind="reservation",
            reserved_delta=qty,
            by=by,
            reason=note,
            unit_id=unit_id,
            work_order_id=wo_id,
        )
        ledger.post(
            session,
            lot=from_lot,
            kind="unreservation",
            reserved_delta=-qty,
            by=by,
            reason=note,
            unit_id=unit_id,
            work_order_id=wo_id,
        )
