"""Component shortages for the line board.

Released work not yet built that on-hand stock does not cover (work released with an
override, and units whose reservation sits on a lot that has expired since: release
reserves everything otherwise), plus the ATP shortages of received orders
(``server.orders.service.order_atp``, cached until stock, orders, the audit trail or
the day move). Expired stock (``server.inventory.expiry``) covers nothing; what is
still on hand of it is listed too, as source ``expired``, so it is taken off the line.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from server.inventory import expiry
from server.models import (
    AuditEntry,
    Consumption,
    CustomerOrder,
    OrderStatus,
    Part,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
    UnitOperationStatus,
    UnitStatus,
    WorkOrder,
    join_unit_to_order,
)

WIP_STATUSES = (UnitStatus.IN_PROGRESS, UnitStatus.HELD)
OPEN_OPERATIONS = (
    UnitOperationStatus.PENDING,
    UnitOperationStatus.READY,
    UnitOperationStatus.ACTIVE,
    UnitOperationStatus.HELD,
)


def shortages(db: Session, *, today: date | None = None) -> list[tuple[str, int, str]]:
    """(sku, quantity short, "released" | "received") for parts unexpired stock does not
    cover, then (sku, quantity on hand, "expired") for expired stock."""
    conn = db.connection()
    q = _q()
    day = {"today": today or expiry.today()}
    need: dict[int, int] = defaultdict(int)
    open_ops = conn.execute(q["open_ops"]).all()
    consumed: dict[tuple[int, int], int] = defaultdict(int)
    active = [op_id for op_id, status, _picks in open_ops if status == UnitOperationStatus.ACTIVE]
    if active:
        for op_id, part_id, qty in conn.execute(q["consumed"], {"ops": active}):
            consumed[(op_id, part_id)] += qty
    for op_id, _status, picks in open_ops:
        for pick in picks or []:
            part = int(pick.get("reserved_part_id") or pick["part_id"])
            left = int(pick.get("qty", 0)) - consumed.get((op_id, part), 0)
            need[part] += max(left, 0)
    # Reserved on a lot that expired since the release: the unit needs other stock.
    for part, n in conn.execute(q["expired_reserved"], day):
        need[int(part)] += int(n or 0)
    result: list[tuple[str, int, str]] = []
    if need:
        on_hand = dict(conn.execute(q["on_hand"], {"parts": list(need), **day}).all())
        skus = dict(conn.execute(q["skus"], {"parts": list(need)}).all())
        result += [
            (skus[p], n - int(on_hand.get(p, 0)), "released")
            for p, n in sorted(need.items(), key=lambda kv: skus[kv[0]])
            if n > int(on_hand.get(p, 0))
        ]
    result += _received_shortages(db, day["today"])
    result += [(sku, int(n), "expired") for sku, n in conn.execute(q["expired_on_hand"], day) if n]
    return result


_ATP_CACHE: dict[str, tuple[tuple[Any, ...], list[tuple[str, int, str]]]] = {}


def _received_shortages(db: Session, today: date) -> list[tuple[str, int, str]]:
    """ATP shortages of received orders, recomputed only when stock, orders or the audit
    trail moved (any release, cancel, receipt or pick appends to one of them), or the
    day changed (a lot may have expired)."""
    conn = db.connection()
    key = (*conn.execute(_q()["atp_key"]).one(), today)
    url = str(conn.engine.url)
    cached = _ATP_CACHE.get(url)
    if cached is not None and cached[0] == key:
        return cached[1]
    result = _received_shortages_now(db)
    _ATP_CACHE[url] = (key, result)
    return result


def _received_shortages_now(db: Session) -> list[tuple[str, int, str]]:
    from sqlmodel import select

    from server.orders.service import order_atp

    short: dict[str, int] = defaultdict(int)
    for order in db.exec(
        select(CustomerOrder)
        .where(col(CustomerOrder.status) == OrderStatus.RECEIVED)
        .order_by(col(CustomerOrder.due_date))
        .limit(200)
    ):
        for line in order_atp(db, order=order):
            if line.short:
                short[line.sku] += line.short
    return [(sku, n, "received") for sku, n in sorted(short.items())]


@functools.cache
def _q() -> dict[str, Any]:
    """Statements built once (building a select costs more than running it)."""
    today: Any = sa.bindparam("today", type_=sa.Date)
    expired = expiry.expired_clause(col(StockLot.expires_on), today)
    return {
        "open_ops": join_unit_to_order(
            sa.select(
                col(UnitOperation.id), col(UnitOperation.status), col(UnitOperation.picks)
            ).join(Unit, col(Unit.id) == col(UnitOperation.unit_id)),
            upto=WorkOrder,
        ).where(
            col(Unit.completed_at).is_(None),
            col(Unit.status).in_((UnitStatus.QUEUED, *WIP_STATUSES)),
            col(WorkOrder.override_reason).is_not(None),
            col(UnitOperation.status).in_(OPEN_OPERATIONS),
        ),
        "atp_key": sa.select(
            sa.select(sa.func.max(col(StockMovement.id))).scalar_subquery(),
            sa.select(sa.func.max(col(CustomerOrder.id))).scalar_subquery(),
            sa.select(sa.func.max(col(AuditEntry.id))).scalar_subquery(),
        ),
        "consumed": sa.select(
            col(Consumption.unit_operation_id), col(Consumption.part_id), col(Consumption.quantity)
        ).where(col(Consumption.unit_operation_id).in_(sa.bindparam("ops", expanding=True))),
        "on_hand": sa.select(col(StockLot.part_id), sa.func.sum(col(StockLot.on_hand)))
        .where(col(StockLot.part_id).in_(sa.bindparam("parts", expanding=True)), ~expired)
        .group_by(col(StockLot.part_id)),
        # What units released without override still hold on expired lots (the few
        # expired lots with reservations first, then their ledger lines by lot).
        "expired_reserved": sa.select(
            col(StockMovement.part_id), sa.func.sum(col(StockMovement.reserved_delta))
        )
        .join(WorkOrder, col(WorkOrder.id) == col(StockMovement.work_order_id))
        .where(
            col(StockMovement.lot_id).in_(
                sa.select(col(StockLot.id)).where(expired, col(StockLot.reserved) > 0)
            ),
            col(WorkOrder.override_reason).is_(None),
        )
        .group_by(col(StockMovement.part_id)),
        "expired_on_hand": sa.select(col(Part.sku), sa.func.sum(col(StockLot.on_hand)))
        .join(Part, col(Part.id) == col(StockLot.part_id))
        .where(expired, col(StockLot.on_hand) > 0)
        .group_by(col(Part.sku))
        .order_by(col(Part.sku)),
        "skus": sa.select(col(Part.id), col(Part.sku)).where(
            col(Part.id).in_(sa.bindparam("parts", expanding=True))
        ),
    }
