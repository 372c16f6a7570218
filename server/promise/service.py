"""Promises over the database (DB: no Flask, no MQTT): the plan of all open orders, the
promise of an order being entered, booking a promise, re-promising and the flags, the
on-time figures.

The plan is kept per database for as long as nothing it reads has moved (the newest
stock movement, order, audit entry, station event and receipt, and the minute), so
the order form asks ``what_if`` of a plan already made. Re-promising (``refresh``)
compares each open order's booked date with the plan and records, on the order's
``OrderPromise``, whether it still holds; it returns what changed (newly flagged, a
flag's date moved, a flag cleared) for the caller to publish after the commit
(``server.promise.publish``). ``reschedule_receipt`` moves a receipt's date and
re-promises incrementally: only that part's supply is read again and only orders
from the first one it moves are scheduled again.

Every function takes keyword arguments and leaves the commit to the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server import audit
from server.catalog.configure import ConfigurationError
from server.inventory.receipts import label as receipts_label
from server.models import (
    AuditEntry,
    CustomerOrder,
    Event,
    OrderPromise,
    Product,
    ScheduledReceipt,
    StockMovement,
)
from server.models.types import utcnow
from server.promise import load as loader
from server.promise.engine import OrderSpec, Plan, Promise, Reason
from server.promise.projection import PartSupply, Receipt

log = logging.getLogger(__name__)
Options = loader.Options
WHAT_IF_ID = -1  # the id of an order being entered (not in the database yet)


@dataclass
class Cached:
    key: tuple[Any, ...]
    plan: Plan
    loaded: loader.Loaded
    lock: threading.Lock = field(default_factory=threading.Lock)


_PLANS: dict[str, Cached] = {}
_GUARD = threading.Lock()


def _key(session: Session, now: datetime, options: Options) -> tuple[Any, ...]:
    conn = session.connection()
    row = conn.execute(
        sa.select(
            sa.select(sa.func.max(col(StockMovement.id))).scalar_subquery(),
            sa.select(sa.func.max(col(CustomerOrder.id))).scalar_subquery(),
            sa.select(sa.func.max(col(AuditEntry.id))).scalar_subquery(),
            sa.select(sa.func.max(col(Event.id))).scalar_subquery(),
            sa.select(sa.func.max(col(ScheduledReceipt.updated_at))).scalar_subquery(),
        )
    ).one()
    minute = now.replace(second=0, microsecond=0)
    return (*row, minute, options)


def plan_for(
    session: Session, *, options: Options, now: datetime | None = None, cached: bool = True
) -> Cached:
    """The plan of every open order now; the kept one while nothing it reads moved."""
    now = now or utcnow()
    url = str(session.get_bind().engine.url)
    key = _key(session, now, options)
    with _GUARD:
        found = _PLANS.get(url)
    if cached and found is not None and found.key == key:
        return found
    loaded = loader.load(session, now=now, options=options)
    entry = Cached(key, Plan(loaded.plant, loaded.orders), loaded)
    with _GUARD:
        _PLANS[url] = entry
    return entry


def forget(session: Session) -> None:
    with _GUARD:
        _PLANS.pop(str(session.get_bind().engine.url), None)


# -- an order being entered ------------------------------------------------------------


@dataclass(frozen=True)
class LineWanted:
    product: str  # product code
    quantity: int
    options: tuple[str, ...]


def what_if(
    session: Session,
    *,
    lines: Sequence[LineWanted],
    priority: int = 0,
    due: date | None = None,
    options: Options,
    now: datetime | None = None,
) -> Promise:
    """The promise an order with ``lines`` would get if it were taken now. Raises
    ``ConfigurationError`` / ``LookupError`` for a product or options that do not
    resolve."""
    now = now or utcnow()
    entry = plan_for(session, options=options, now=now)
    catalog = entry.loaded.catalog
    needs: dict[int, int] = {}
    units = []
    for line in lines:
        product = session.exec(select(Product).where(Product.code == line.product)).first()
        if product is None:
            raise LookupError(f"unknown product {line.product!r}")
        config = catalog.configuration(product.id or 0, list(line.options))
        for part, qty in catalog.needs(config, line.quantity).items():
            needs[part] = needs.get(part, 0) + qty
        units += [catalog.steps(config)] * line.quantity
    spec = OrderSpec(WHAT_IF_ID, "", priority, due, now.timestamp(), needs, tuple(units))
    with entry.lock:
        return entry.plan.what_if(spec)


def promise_of(session: Session, *, order: CustomerOrder, options: Options) -> Promise | None:
    """The plan's promise for an open order (None: closed, or it does not resolve)."""
    entry = plan_for(session, options=options)
    return entry.plan.promises.get(order.id or 0)


# -- booking and re-promising ----------------------------------------------------------


def _row(session: Session, order_id: int) -> OrderPromise:
    row = session.exec(select(OrderPromise).where(OrderPromise.order_id == order_id)).first()
    return row or OrderPromise(order_id=order_id)


MAX_AHEAD_DAYS = 3660  # a date booked by hand: from today to ten years ahead


def bookable(day: date, today: date) -> bool:
    """Whether ``day`` may be booked by hand as a promise (not in the past, not year 9999)."""
    return today <= day <= today + timedelta(days=MAX_AHEAD_DAYS)


def book(
    session: Session,
    *,
    order: CustomerOrder,
    promise: Promise | None,
    by: str,
    address: str = "",
    day: date | None = None,
) -> OrderPromise:
    """Book ``day`` (or the promise's date) as the date promised to the customer."""
    chosen = day or (promise.ship_on if promise is not None else None)
    if chosen is None:
        raise ValueError(f"Order {order.number} has no promise date to book.")
    row = _row(session, order.id or 0)
    now = utcnow()
    previous = row.promised_on
    row.promised_on, row.booked_at, row.booked_by = chosen, now, by
    if promise is not None:
        _project(row, promise, now)
    row.flagged, row.flagged_at, row.flag_reason = False, None, {}
    session.add(row)
    audit.record(
        session,
        actor=by,
        action="order.promise",
        entity="order",
        entity_id=order.number,
        address=address,
        detail={
            "promised_on": chosen.isoformat(),
            "previous": previous.isoformat() if previous else None,
            "reason": promise.reason.text if promise is not None else "",
        },
    )
    session.flush()
    return row


def _project(row: OrderPromise, promise: Promise, now: datetime) -> None:
    row.projected_on = promise.ship_on
    row.completion_at = promise.completion
    row.reason = promise.reason.as_dict()
    row.computed_at = now


@dataclass(frozen=True)
class Change:
    """A flag raised, moved or cleared on an order's booked promise."""

    order: str
    customer: str
    due_date: date
    promised_on: date
    projected_on: date | None
    flagged: bool
    reason: dict[str, Any]
    trigger: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "customer": self.customer,
            "due_date": self.due_date.isoformat(),
            "promised_on": self.promised_on.isoformat(),
            "projected_on": self.projected_on.isoformat() if self.projected_on else None,
            "flagged": self.flagged,
            "reason": self.reason,
            "trigger": self.trigger,
        }


def refresh(
    session: Session,
    *,
    options: Options,
    trigger: str = "",
    order_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    plan: Plan | None = None,
) -> list[Change]:
    """Re-promise: record the plan's date for each open order (``order_ids`` only,
    when given) and flag those whose booked promise no longer holds. Returns the flags
    raised, moved or cleared."""
    now = now or utcnow()
    if plan is None:
        plan = plan_for(session, options=options, now=now).plan
    stmt = select(CustomerOrder, OrderPromise).join(
        OrderPromise, col(OrderPromise.order_id) == col(CustomerOrder.id), isouter=True
    )
    wanted = list(plan.promises) if order_ids is None else list(order_ids)
    changes: list[Change] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for order, row in session.exec(stmt.where(col(CustomerOrder.id).in_(chunk))).all():
            promise = plan.promises.get(order.id or 0)
            if promise is None:
                continue
            change = _apply(session, order, row, promise, now, trigger)
            if change is not None:
                changes.append(change)
    # Orders no longer open keep their row; a flag on them is cleared.
    if order_ids is None:
        for order, row in session.exec(
            select(CustomerOrder, OrderPromise)
            .join(OrderPromise, col(OrderPromise.order_id) == col(CustomerOrder.id))
            .where(col(OrderPromise.flagged), col(CustomerOrder.id).not_in(list(plan.promises)))
        ).all():
            row.flagged = False
            session.add(row)
            changes.append(_change(order, row, False, trigger or "order closed"))
    session.flush()
    return changes


def _apply(
    session: Session,
    order: CustomerOrder,
    row: OrderPromise | None,
    promise: Promise,
    now: datetime,
    trigger: str,
) -> Change | None:
    if row is None:
        row = OrderPromise(order_id=order.id or 0)
    moved = (row.projected_on, row.reason.get("text")) != (promise.ship_on, promise.reason.text)
    if moved or row.computed_at is None:
        _project(row, promise, now)
        session.add(row)
    if row.promised_on is None:
        return None
    broken = promise.ship_on is None or promise.ship_on > row.promised_on
    if broken and (not row.flagged or row.flag_reason.get("projected_on") != _iso(promise.ship_on)):
        row.flagged, row.flagged_at = True, row.flagged_at if row.flagged else now
        row.flag_reason = {
            **promise.reason.as_dict(),
            "projected_on": _iso(promise.ship_on),
            "trigger": trigger,
        }
        session.add(row)
        return _change(order, row, True, trigger)
    if not broken and row.flagged:
        row.flagged, row.flag_reason = False, {}
        session.add(row)
        return _change(order, row, False, trigger)
    return None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _change(order: CustomerOrder, row: OrderPromise, flagged: bool, trigger: str) -> Change:
    assert row.promised_on is not None
    return Change(
        order.number,
        order.customer,
        order.due_date,
        row.promised_on,
        row.projected_on,
        flagged,
        dict(row.reason),
        trigger,
    )


def flagged(session: Session) -> list[tuple[CustomerOrder, OrderPromise]]:
    return list(
        session.exec(
            select(CustomerOrder, OrderPromise)
            .join(OrderPromise, col(OrderPromise.order_id) == col(CustomerOrder.id))
            .where(col(OrderPromise.flagged))
            .order_by(col(OrderPromise.flagged_at), col(CustomerOrder.id))
        ).all()
    )


def rows_by_order(session: Session, order_ids: Sequence[int]) -> dict[int, OrderPromise]:
    if not order_ids:
        return {}
    return {
        r.order_id: r
        for r in session.exec(
            select(OrderPromise).where(col(OrderPromise.order_id).in_(list(order_ids)))
        ).all()
    }


# -- a receipt slips -------------------------------------------------------------------


def reschedule_receipt(
    session: Session,
    *,
    receipt: ScheduledReceipt,
    expected_on: date,
    by: str,
    options: Options,
    address: str = "",
    note: str = "",
    now: datetime | None = None,
) -> list[Change]:
    """Move ``receipt`` to ``expected_on`` and re-promise: the kept plan is changed for
    that part only (``Plan.replan``), and only orders whose promise moved are checked."""
    now = now or utcnow()
    entry = plan_for(session, options=options, now=now)
    before = receipt.expected_on
    receipt.expected_on, receipt.updated_at = expected_on, now
    if note:
        receipt.note = note[:500]
    session.add(receipt)
    sku = entry.loaded.skus.get(receipt.part_id, str(receipt.part_id))
    audit.record(
        session,
        actor=by,
        action="receipt.reschedule",
        entity="receipt",
        entity_id=receipts_label(receipt),
        address=address,
        detail={
            "part": sku,
            "supplier_ref": receipt.supplier_ref,
            "from": before.isoformat(),
            "to": expected_on.isoformat(),
            "note": note,
        },
    )
    session.flush()
    old = entry.plan.plant.parts.get(receipt.part_id) or PartSupply(receipt.part_id, sku, 0)
    receipts = [r for r in old.receipts if r.id != receipt.id]
    if receipt.open_quantity:
        receipts.append(
            Receipt(
                receipt.id or 0,
                receipt.part_id,
                expected_on,
                receipt.open_quantity,
                receipt.supplier_ref,
            )
        )
    receipts.sort(key=lambda r: (r.day, r.id))
    with entry.lock:
        moved = entry.plan.replan(
            parts={
                **entry.plan.plant.parts,
                receipt.part_id: PartSupply(receipt.part_id, sku, old.free, receipts),
            }
        )
        word = "slipped" if expected_on > before else "moved"
        trigger = f"receipt {receipt.supplier_ref or receipt.id} ({sku}) {word} to {expected_on}"
        changes = refresh(
            session, options=options, trigger=trigger, order_ids=moved, now=now, plan=entry.plan
        )
    entry.key = _key(session, now, options)  # the plan already holds this change
    return changes


# -- on-time delivery ------------------------------------------------------------------


@dataclass(frozen=True)
class OnTime:
    start: date
    end: date
    shipped: int
    with_promise: int
    on_time_to_promise: int
    on_time_to_due: int
    late: list[dict[str, Any]]

    @property
    def promise_rate(self) -> float | None:
        return self.on_time_to_promise / self.with_promise if self.with_promise else None

    @property
    def due_rate(self) -> float | None:
        return self.on_time_to_due / self.shipped if self.shipped else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "shipped": self.shipped,
            "with_promise": self.with_promise,
            "on_time_to_promise": self.on_time_to_promise,
            "on_time_to_due": self.on_time_to_due,
            "promise_rate": self.promise_rate,
            "due_rate": self.due_rate,
            "late": self.late,
        }


def on_time(session: Session, *, start: date, end: date, zone: Any = UTC) -> OnTime:
    """Orders shipped from ``start`` to ``end`` (plant days, both included): how many
    shipped on or before the date promised (of those with one booked), and on or
    before the customer's due date. An order completed but not marked shipped is not
    delivered yet."""
    lo = datetime(start.year, start.month, start.day, tzinfo=zone).astimezone(UTC)
    hi = (datetime(end.year, end.month, end.day, tzinfo=zone) + timedelta(days=1)).astimezone(UTC)
    rows = session.exec(
        select(CustomerOrder, OrderPromise)
        .join(OrderPromise, col(OrderPromise.order_id) == col(CustomerOrder.id), isouter=True)
        .where(col(CustomerOrder.shipped_at) >= lo, col(CustomerOrder.shipped_at) < hi)
        .order_by(col(CustomerOrder.shipped_at))
    ).all()
    shipped = with_promise = to_promise = to_due = 0
    late = []
    for order, row in rows:
        assert order.shipped_at is not None
        day = order.shipped_at.astimezone(zone).date()
        shipped += 1
        to_due += day <= order.due_date
        promised = row.promised_on if row is not None else None
        if promised is not None:
            with_promise += 1
            to_promise += day <= promised
        if day > order.due_date or (promised is not None and day > promised):
            late.append(
                {
                    "order": order.number,
                    "shipped_on": day.isoformat(),
                    "promised_on": promised.isoformat() if promised else None,
                    "due_date": order.due_date.isoformat(),
                }
            )
    return OnTime(start, end, shipped, with_promise, to_promise, to_due, late)


def reason_text(reason: dict[str, Any] | Reason | None) -> str:
    if reason is None:
        return ""
    if isinstance(reason, Reason):
        return reason.text
    return str(reason.get("text", ""))


__all__ = [
    "Change",
    "ConfigurationError",
    "LineWanted",
    "OnTime",
    "Options",
    "book",
    "flagged",
    "on_time",
    "plan_for",
    "refresh",
    "reschedule_receipt",
    "what_if",
]
