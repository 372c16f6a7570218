"""Order life cycle: intake, available-to-promise, release, cancel, ship.

Statuses (``OrderStatus``): received -> released -> in_progress -> completed -> shipped,
or cancelled.
Every function takes keyword-only arguments and leaves the commit to the caller, who
runs it in a write transaction (``server.db.write_session``); on error the caller rolls
back, so an order is never half released.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server import audit
from server.catalog.configure import Configuration, resolve
from server.catalog.products import load_product
from server.integration import outbox
from server.inventory import ledger
from server.models import (
    CustomerOrder,
    OrderLine,
    OrderStatus,
    Part,
    Product,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
    UnitOperationStatus,
    UnitStatus,
    WorkOrder,
    WorkOrderStatus,
    join_unit_to_order,
    join_work_order_to_order,
)
from server.models.types import utcnow
from server.orders import atp as atp_mod
from server.orders.intake import InvalidOrder, LineInput, OrderInput, create_order, from_mapping
from server.orders.reservations import (
    lock_lots,
    move_reservation,
    post_allocation,
    release_reservation,
    reserve_for_unit,
    reserved_lots,
    snapshot,
    substitutes_for,
)

__all__ = [
    "InvalidOrder",
    "LineInput",
    "OrderInput",
    "OrderStateError",
    "Shortage",
    "cancel",
    "configurations",
    "create_order",
    "from_mapping",
    "move_reservation",
    "order_atp",
    "release",
    "release_reservation",
    "reserve_for_unit",
    "reserved_lots",
    "ship",
]
log = logging.getLogger(__name__)
STARTED = (UnitOperationStatus.ACTIVE, UnitOperationStatus.DONE)


class OrderStateError(ValueError):
    """The order is not in a state that allows this action."""


class Shortage(ValueError):
    def __init__(self, order: str, lines: list[atp_mod.AtpLine]) -> None:
        short = [f"{line.sku} short {line.short}" for line in lines if line.short]
        super().__init__(f"Order {order} cannot be released: " + ", ".join(short) + ".")
        self.order = order
        self.lines = lines


@dataclass(frozen=True)
class LineConfig:
    line: OrderLine
    product: Product
    configuration: Configuration


def lock_order(session: Session, order_id: int) -> CustomerOrder:
    return session.exec(
        select(CustomerOrder)
        .where(CustomerOrder.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def configurations(session: Session, *, order: CustomerOrder) -> list[LineConfig]:
    lines = session.exec(
        select(OrderLine).where(OrderLine.order_id == order.id).order_by(col(OrderLine.line_no))
    ).all()
    result = []
    for line in lines:
        product = session.get(Product, line.product_id)
        assert product is not None  # foreign key
        result.append(
            LineConfig(line, product, resolve(load_product(session, product), line.options))
        )
    return result


def _needs(configs: list[LineConfig]) -> list[list[atp_mod.Need]]:
    """One list of needs per unit, in release order (lines, then units)."""
    units = []
    for cfg in configs:
        per_part: dict[int, int] = {}
        for pick in cfg.configuration.bom:
            per_part[pick.part_id] = per_part.get(pick.part_id, 0) + pick.qty
        needs = [atp_mod.Need(part, qty) for part, qty in per_part.items()]
        units += [needs] * cfg.line.quantity
    return units


def _work_order_ids(session: Session, order: CustomerOrder) -> list[int]:
    return [
        w
        for w in session.exec(
            join_work_order_to_order(select(WorkOrder.id), upto=OrderLine).where(
                OrderLine.order_id == order.id
            )
        ).all()
        if w is not None
    ]


def order_atp(session: Session, *, order: CustomerOrder) -> list[atp_mod.AtpLine]:
    """Available-to-promise of ``order`` against stock now (read only, no locks)."""
    configs = configurations(session, order=order)
    units = _needs(configs)
    part_ids = {n.part_id for unit in units for n in unit}
    subs = substitutes_for(session, part_ids)
    lots = lock_lots(session, part_ids | {s for v in subs.values() for s in v}, lock=False)
    skus = _skus(session)
    return atp_mod.atp(
        units,
        snapshot(session, lots, exclude_work_orders=_work_order_ids(session, order)),
        skus,
        subs,
    )


def _skus(session: Session) -> dict[int, str]:
    return {part.id or 0: part.sku for part in session.exec(select(Part)).all()}


def next_serial(session: Session, *, product: Product) -> str:
    """The next serial of ``product`` from its pattern. The product row is locked first
    (FOR UPDATE on PostgreSQL; SQLite's write transaction is already exclusive), so two
    releases never hand out the same number."""
    session.exec(select(Product.id).where(Product.id == product.id).with_for_update()).one()
    seq = (
        session.exec(
            select(sa.func.count())
            .select_from(Unit)  # type: ignore[call-overload]
            .where(Unit.product_id == product.id)
        ).one()
        + 1
    )
    while True:
        serial = product.serial_pattern.format(seq=seq, product=product.code, year=utcnow().year)
        if session.exec(select(Unit.id).where(Unit.serial == serial)).first() is None:
            return serial
        seq += 1


def release(
    session: Session,
    *,
    order: CustomerOrder,
    by: str,
    override_reason: str | None = None,
    address: str = "",
) -> list[WorkOrder]:
    """Reserve stock per unit, create the work orders, units and unit operations.

    Raises ``Shortage`` (nothing written) when stock does not cover the order, unless
    ``override_reason`` is given: then what is there is reserved and the rest left
    short, and the reason is recorded on the work orders and in the audit trail.
    """
    order = lock_order(session, order.id or 0)
    if order.status != OrderStatus.RECEIVED:
        raise OrderStateError(
            f"Order {order.number} is {order.status}; only a received order can be released."
        )
    override = (override_reason or "").strip() or None
    configs = configurations(session, order=order)
    units_needs = _needs(configs)
    part_ids = {n.part_id for unit in units_needs for n in unit}
    subs = substitutes_for(session, part_ids)
    locked = lock_lots(session, part_ids | {s for v in subs.values() for s in v})
    plan = atp_mod.plan(units_needs, snapshot(session, locked), subs)
    skus = _skus(session)
    if plan.shortages and override is None:
        raise Shortage(
            order.number, atp_mod.atp(units_needs, snapshot(session, locked), skus, subs)
        )
    lots_by_id = {lot.id or 0: lot for part_lots in locked.values() for lot in part_lots}
    now = utcnow()
    work_orders = []
    released_units: list[dict[str, object]] = []  # for the order.released event
    unit_plans = iter(plan.units)
    for cfg in configs:
        wo = WorkOrder(
            number=f"WO-{order.id:06d}-{cfg.line.line_no}",
            order_line_id=cfg.line.id or 0,
            quantity=cfg.line.quantity,
            released_at=now,
            released_by=by,
            override_reason=override,
        )
        session.add(wo)
        session.flush()
        work_orders.append(wo)
        for _ in range(cfg.line.quantity):
            allocations = {a.part_id: a for a in next(unit_plans)}
            unit = Unit(
                serial=next_serial(session, product=cfg.product),
                work_order_id=wo.id or 0,
                product_id=cfg.product.id or 0,
                options=list(cfg.configuration.options),
                created_at=now,
            )
            session.add(unit)
            session.flush()
            released_units.append(
                {
                    "serial": unit.serial,
                    "product": cfg.product.code,
                    "options": list(unit.options),
                    "work_order": wo.number,
                }
            )
            for n, routed in enumerate(cfg.configuration.routing):
                session.add(
                    UnitOperation(
                        unit_id=unit.id or 0,
                        operation_id=routed.operation.id,
                        sequence=routed.operation.sequence,
                        station_kind=routed.operation.station_kind,
                        status=UnitOperationStatus.READY if n == 0 else UnitOperationStatus.PENDING,
                        priority=order.priority,
                        due_date=order.due_date,
                        released_at=now,
                        picks=[
                            _pick(p.as_dict(), allocations.get(p.part_id), skus)
                            for p in routed.picks
                        ],
                    )
                )
            for allocation in allocations.values():
                post_allocation(
                    session,
                    allocation=allocation,
                    lots=lots_by_id,
                    unit=unit,
                    by=by,
                    reason=f"order {order.number}",
                )
    order.status, order.released_at = OrderStatus.RELEASED, now
    session.add(order)
    shortages = {skus.get(p, str(p)): q for p, q in plan.shortages.items()}
    audit.record(
        session,
        actor=by,
        action="order.release",
        entity="order",
        entity_id=order.number,
        address=address,
        detail={
            "work_orders": [w.number for w in work_orders],
            "units": sum(c.line.quantity for c in configs),
            "override_reason": override,
            "short": shortages,
        },
    )
    session.flush()
    outbox.emit(
        session,
        type=outbox.ORDER_RELEASED,
        order_id=order.id or 0,
        at=now,
        data={
            "order": order.number,
            "customer": order.customer,
            "due_date": order.due_date.isoformat(),
            "priority": order.priority,
            "units": released_units,
            "override_reason": override,
            "short": shortages,
        },
    )
    log.info(
        "order %s released by %s%s",
        order.number,
        by,
        f" with override ({override}); short {shortages}" if override else "",
    )
    return work_orders


def _pick(
    pick: dict[str, object], allocation: atp_mod.Allocation | None, skus: dict[int, str]
) -> dict[str, object]:
    if allocation is not None and allocation.reserved_part_id != allocation.part_id:
        pick["reserved_part_id"] = allocation.reserved_part_id
        pick["reserved_sku"] = skus.get(allocation.reserved_part_id, "")
    return pick


def order_units(session: Session, *, order: CustomerOrder) -> list[Unit]:
    return list(
        session.exec(
            join_unit_to_order(select(Unit), upto=OrderLine)
            .where(OrderLine.order_id == order.id)
            .order_by(col(Unit.id))
        ).all()
    )


def cancel(
    session: Session, *, order: CustomerOrder, by: str, reason: str = "", address: str = ""
) -> int:
    """Cancel an order that has not started; every reservation it holds is given back.
    Returns the quantity unreserved."""
    order = lock_order(session, order.id or 0)
    if order.status not in (OrderStatus.RECEIVED, OrderStatus.RELEASED):
        raise OrderStateError(f"Order {order.number} is {order.status} and cannot be cancelled.")
    units = order_units(session, order=order)
    unit_ids = [u.id for u in units]
    if (
        unit_ids
        and session.exec(
            select(UnitOperation.id).where(
                col(UnitOperation.unit_id).in_(unit_ids), col(UnitOperation.status).in_(STARTED)
            )
        ).first()
        is not None
    ):
        raise OrderStateError(
            f"Order {order.number} has started on the line and cannot be cancelled."
        )
    wo_ids = _work_order_ids(session, order)
    rows = (
        session.exec(
            select(  # type: ignore[call-overload]
                StockMovement.lot_id,
                StockMovement.unit_id,
                sa.func.sum(StockMovement.reserved_delta),
            )
            .where(col(StockMovement.work_order_id).in_(wo_ids))
            .group_by(col(StockMovement.lot_id), col(StockMovement.unit_id))
        ).all()
        if wo_ids
        else []
    )
    held: list[tuple[int, int | None, int]] = [
        (lot_id, unit_id, int(n)) for lot_id, unit_id, n in rows if n and n > 0
    ]
    lots = {
        lot.id: lot
        for lot in session.exec(
            select(StockLot)
            .where(col(StockLot.id).in_([lot_id for lot_id, _, _ in held]))
            .order_by(col(StockLot.id))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
    }
    wo_of_unit = {u.id: u.work_order_id for u in units}
    note = f"order {order.number} cancelled" + (f": {reason}" if reason else "")
    for lot_id, unit_id, n in held:
        ledger.post(
            session,
            lot=lots[lot_id],
            kind="unreservation",
            reserved_delta=-n,
            by=by,
            reason=note,
            unit_id=unit_id,
            work_order_id=wo_of_unit.get(unit_id),
        )
    if unit_ids:
        session.execute(
            sa.update(UnitOperation)
            .where(col(UnitOperation.unit_id).in_(unit_ids))
            .values(status=UnitOperationStatus.CANCELLED)
        )
    for unit in units:
        unit.status = UnitStatus.CANCELLED
        session.add(unit)
    for wo in session.exec(select(WorkOrder).where(col(WorkOrder.id).in_(wo_ids))).all():
        wo.status = WorkOrderStatus.CANCELLED
        session.add(wo)
    previous, order.status = order.status, OrderStatus.CANCELLED
    session.add(order)
    released = sum(n for _, _, n in held)
    audit.record(
        session,
        actor=by,
        action="order.cancel",
        entity="order",
        entity_id=order.number,
        address=address,
        detail={"previous_status": previous, "reason": reason, "unreserved": released},
    )
    session.flush()
    return released


def ship(session: Session, *, order: CustomerOrder, by: str, address: str = "") -> None:
    order = lock_order(session, order.id or 0)
    if order.status != OrderStatus.COMPLETED:
        raise OrderStateError(
            f"Order {order.number} is {order.status}; only a completed order can be shipped."
        )
    order.status, order.shipped_at = OrderStatus.SHIPPED, utcnow()
    session.add(order)
    audit.record(
        session,
        actor=by,
        action="order.ship",
        entity="order",
        entity_id=order.number,
        address=address,
    )
    session.flush()
    outbox.emit(
        session,
        type=outbox.ORDER_SHIPPED,
        order_id=order.id or 0,
        at=order.shipped_at,
        data={"order": order.number, "shipped_at": order.shipped_at, "by": by},
    )
