"""The transactional outbox: an event row written in the same transaction as what it
reports, and the CloudEvents 1.0 envelope built from it.

``emit(session, type=..., data=..., order_id=... | unit_id=...)`` is one Core INSERT
(``INSERT ... SELECT``: the order's id and number and the next per-order sequence are
read by the statement itself). On PostgreSQL a transaction-scoped advisory lock on the
order comes first, so two transactions reporting on the same order take sequences in
commit order (the second waits for the first to commit); SQLite has one writer.

Every column is fixed once written (``event_id``, ``type``, ``order_seq``, ``time``,
``data`` as JSON text), so ``envelope(row)`` gives the same bytes on every delivery.
This module imports no Flask and no MQTT client (the station service calls it).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from sqlmodel import Session
from uuid6 import uuid7

from server.models import CustomerOrder, OrderLine, OutboxEvent, Unit, WorkOrder
from server.models.types import UTCDateTime, rfc3339, utcnow

TYPE_PREFIX = "com.taktline."
# The short names (``TYPE_PREFIX`` + name is the CloudEvent type).
ORDER_RELEASED = "order.released"
UNIT_STARTED = "unit.started"
UNIT_COMPLETED = "unit.completed"
ORDER_COMPLETED = "order.completed"
COMPONENT_CONSUMED = "component.consumed"
UNIT_HELD = "unit.held"
UNIT_SCRAPPED = "unit.scrapped"
ORDER_SHIPPED = "order.shipped"
TYPES = (
    ORDER_RELEASED,
    UNIT_STARTED,
    COMPONENT_CONSUMED,
    UNIT_HELD,
    UNIT_SCRAPPED,
    UNIT_COMPLETED,
    ORDER_COMPLETED,
    ORDER_SHIPPED,
)
_LOCK_KEY = 0x7A6B  # first key of pg_advisory_xact_lock(key, order_id)

_outbox: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]
_orders: sa.Table = CustomerOrder.__table__  # type: ignore[attr-defined]
_lines: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_work_orders: sa.Table = WorkOrder.__table__  # type: ignore[attr-defined]
_units: sa.Table = Unit.__table__  # type: ignore[attr-defined]
# A unit's order: unit -> work order -> order line -> order.
_UNIT_TO_ORDER = (
    _units.join(_work_orders, _work_orders.c.id == _units.c.work_order_id)
    .join(_lines, _lines.c.id == _work_orders.c.order_line_id)
    .join(_orders, _orders.c.id == _lines.c.order_id)
)


def _order_by_id() -> sa.Select[Any]:
    return sa.select(_orders.c.id, _orders.c.number).where(
        _orders.c.id == sa.bindparam("order_id", type_=sa.Integer)
    )


def _order_by_unit() -> sa.Select[Any]:
    return (
        sa.select(_orders.c.id, _orders.c.number)
        .select_from(_UNIT_TO_ORDER)
        .where(_units.c.id == sa.bindparam("unit_id", type_=sa.Integer))
    )


def _insert(source: sa.Select[Any]) -> sa.Insert:
    order = source.subquery("o")
    seq = (
        sa.select(sa.func.coalesce(sa.func.max(_outbox.c.order_seq), 0) + 1)
        .where(_outbox.c.order_id == order.c.id)
        .scalar_subquery()
    )
    return sa.insert(_outbox).from_select(
        ["event_id", "type", "order_id", "order_seq", "subject", "time", "data", "fanned_out"],
        sa.select(
            sa.bindparam("event_id", type_=sa.String),
            sa.bindparam("type", type_=sa.String),
            order.c.id,
            seq,
            order.c.number,
            sa.bindparam("time", type_=UTCDateTime()),
            sa.bindparam("data", type_=sa.Text),
            sa.false(),
        ),
    )


def _locks(source: Any, where: Any) -> sa.Select[Any]:
    """The advisory locks of the orders of many ids (``ids``), one statement taking
    them in order id order: two writers never wait on each other in a circle."""
    ids = (
        sa.select(_orders.c.id)
        .select_from(source)
        .where(where.in_(sa.bindparam("ids", expanding=True)))
        .distinct()
        .order_by(_orders.c.id)
        .subquery("o")
    )
    return sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY, ids.c.id))


_INSERT = {"order": _insert(_order_by_id()), "unit": _insert(_order_by_unit())}
_LOCKS = {"order": _locks(_orders, _orders.c.id), "unit": _locks(_UNIT_TO_ORDER, _units.c.id)}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def dumps(data: dict[str, Any]) -> str:
    """The event's data as stored: compact JSON, keys sorted (the same text every time);
    times as RFC 3339 UTC."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def emit(
    session: Session,
    *,
    type: str,
    data: dict[str, Any],
    order_id: int | None = None,
    unit_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Write one outbound event of ``order_id`` (or of the order ``unit_id`` belongs to)
    in the caller's transaction. ``type`` is a short name (``UNIT_COMPLETED``...)."""
    emit_many(session, [event(type=type, data=data, order_id=order_id, unit_id=unit_id, at=at)])


def event(
    *,
    type: str,
    data: dict[str, Any],
    order_id: int | None = None,
    unit_id: int | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """One outbound event as ``emit_many`` writes it; its ``event_id`` (UUIDv7) is
    taken now, so events made in order keep their order."""
    if type not in TYPES:
        raise ValueError(f"unknown outbound event type {type!r}")
    params: dict[str, Any] = {
        "event_id": str(uuid7()),
        "type": TYPE_PREFIX + type,
        "time": at or utcnow(),
        "data": dumps(data),
    }
    if order_id is not None:
        params["order_id"] = order_id
    elif unit_id is not None:
        params["unit_id"] = unit_id
    else:
        raise ValueError("emit needs order_id or unit_id")
    return params


def emit_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Write outbound events (``event``) in their order: one executemany for each run
    of events of the same kind (by order, by unit). Each row's ``INSERT ... SELECT``
    reads the order's last sequence after the rows before it, so sequences follow
    the list's order; on PostgreSQL each order's advisory lock is taken first."""
    if not events:
        return
    conn = session.connection()
    run: list[dict[str, Any]] = []
    key = ""
    for params in events:
        kind = "order" if "order_id" in params else "unit"
        if run and kind != key:
            _write(conn, key, run)
            run = []
        key = kind
        run.append(params)
    _write(conn, key, run)


def _write(conn: sa.Connection, key: str, run: list[dict[str, Any]]) -> None:
    if conn.dialect.name == "postgresql":
        # One statement for the run's orders: a batch of the ingest reports many picks
        # of a few units.
        name = "order_id" if key == "order" else "unit_id"
        conn.execute(_LOCKS[key], {"ids": sorted({params[name] for params in run})})
    conn.execute(_INSERT[key], run[0] if len(run) == 1 else run)


def envelope(row: OutboxEvent, *, source: str) -> CloudEvent:
    """The CloudEvents 1.0 event of an outbox row: ``id`` is stable, ``subject`` the
    order number, ``sequence`` (extension) the per-order sequence as decimal text."""
    return CloudEvent(
        {
            "id": row.event_id,
            "source": source,
            "type": row.type,
            "subject": row.subject,
            "time": row.time,
            "datacontenttype": "application/json",
            "sequence": str(row.order_seq),
        },
        data=json.loads(row.data),
    )


def to_json(event: CloudEvent) -> bytes:
    """The structured-mode JSON body (``application/cloudevents+json``)."""
    return JSONFormat().write(event)
