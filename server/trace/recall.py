"""Recall, both ways.

Upward: from a component lot (part + lot code) or a serial, every unit that holds it,
with its customer order and status. When a hit is itself a sub-assembly built into
another unit, that parent is a hit too (``level`` 1, 2, ...; ``via`` names the
sub-assembly), up to ``MAX_DEPTH`` levels.

Downward: from a customer order, everything its units were built from, sub-assemblies
opened up (``via`` names the sub-assembly a component came in).

The upward query is one indexed join per level (``consumption.lot_id`` /
``consumption.serial``), so a lot used in 10,000 units answers in tens of milliseconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col

from server.models import (
    Consumption,
    CustomerOrder,
    Part,
    Product,
    StockLot,
    Unit,
    WorkOrder,
    join_unit_to_order,
    join_work_order_to_order,
)
from server.models.types import rfc3339

MAX_DEPTH = 5


class Hit(NamedTuple):
    """One unit that holds the recalled component (a tuple: recalls return thousands)."""

    serial: str
    product: str
    status: str
    order: str | None
    customer: str | None
    due_date: str | None  # ISO date (text from the database: no parsing per row)
    component: str  # sku that was picked
    lot: str | None
    component_serial: str | None
    level: int = 0  # 0: built in directly; n: through n sub-assemblies
    via: str | None = None  # serial of the sub-assembly the component came in
    removed_at: Any = None  # set when the component was removed in a rework (serial recall)


@dataclass(frozen=True)
class Component:
    """One component of one unit of an order (downward trace)."""

    unit: str
    sku: str
    description: str
    quantity: int
    lot: str | None
    serial: str | None
    for_sku: str
    via: str | None = None


@dataclass
class Recall:
    query: dict[str, str]
    hits: list[Hit]

    @property
    def units(self) -> int:
        return len({h.serial for h in self.hits})

    @property
    def orders(self) -> list[str]:
        return sorted({h.order for h in self.hits if h.order})


def recall_lot(db: Session, *, part_sku: str, lot_code: str) -> Recall:
    """Every unit that holds lot ``lot_code`` of ``part_sku`` (any location)."""
    conn = db.connection()
    lot_ids = conn.scalars(_q()["lots"], {"sku": part_sku, "lot": lot_code}).all()
    hits: list[Hit] = []
    if lot_ids:
        # Part and lot are the query's own: not joined per row (a lot can be in 10,000s).
        products = dict(conn.execute(_q()["products"]).all())
        any_removed, lot = False, lot_code
        pg = conn.dialect.name == "postgresql"
        by_lot = _q()["by_lot_orders_once" if pg else "by_lot"]
        for lot_id in lot_ids:
            rows = _raw_rows(conn, by_lot, {"lot": lot_id})
            hits += [
                Hit(serial, products[product_id], status, order, customer, due, part_sku, lot, None)
                for serial, product_id, status, order, customer, due, _removed_flag in rows
            ]
            any_removed = any_removed or any(row[6] for row in rows)
        # Removals are rare: the second query (a group over the whole lot) runs only
        # when a picked row of the lot says one was taken out (issue 19: it was a
        # third of the time of a 10,000-unit recall on PostgreSQL).
        removed = _removed(conn, lot_ids) if any_removed else {}
        if removed:
            hits = [h._replace(removed_at=removed.get(h.serial)) for h in hits]
    return Recall({"part": part_sku, "lot": lot_code}, _upward(conn, hits))


def _removed(conn: sa.Connection, lot_ids: Any) -> dict[str, Any]:
    """Units that held these lots and had every such component removed in a rework:
    serial -> when the last one came out (docs/quality.md)."""
    rows = conn.execute(
        sa.select(
            col(Unit.serial),
            sa.func.count(),
            sa.func.count(col(Consumption.removed_at)),
            sa.func.max(col(Consumption.removed_at)),
        )
        .join(Unit, col(Unit.id) == col(Consumption.unit_id))
        .where(col(Consumption.lot_id).in_(list(lot_ids)))
        .group_by(col(Unit.serial))
        .having(sa.func.count(col(Consumption.removed_at)) > 0)
    ).all()
    return {serial: last for serial, n, gone, last in rows if n == gone}


def _raw_rows(conn: sa.Connection, stmt: Any, params: dict[str, Any]) -> list[Any]:
    """Rows as plain DB-API tuples. For the 10,000-row recall, SQLAlchemy's row objects
    cost as much as the query; every column here is already a plain int or text."""
    compiled = _compiled(stmt, conn.dialect.name, conn.dialect)
    values: Any = (
        tuple(params[name] for name in compiled.positiontup or ())
        if compiled.positional
        else params
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), values)
        return list(cursor.fetchall())
    finally:
        cursor.close()


_COMPILED: dict[tuple[int, str], Any] = {}


def _compiled(stmt: Any, name: str, dialect: Any) -> Any:
    key = (id(stmt), name)
    if key not in _COMPILED:
        _COMPILED[key] = stmt.compile(dialect=dialect)
    return _COMPILED[key]


def recall_serial(db: Session, *, serial: str, part_sku: str | None = None) -> Recall:
    """The unit that holds component serial ``serial`` (and any unit above it)."""
    conn = db.connection()
    hits = _direct(conn, _q()["by_serial"], {"serial": serial})
    if part_sku:
        hits = [h for h in hits if h.component == part_sku]
    query = {"serial": serial} | ({"part": part_sku} if part_sku else {})
    return Recall(query, _upward(conn, hits))


def _direct(conn: sa.Connection, stmt: Any, params: dict[str, Any]) -> list[Hit]:
    """Hits read by column label (the statement's labels are ``Hit``'s field names)."""
    return [Hit(**r._asdict()) for r in conn.execute(stmt, params).all()]


def _upward(conn: sa.Connection, hits: list[Hit]) -> list[Hit]:
    """Add the units that hold, as a sub-assembly, any unit already hit."""
    result = list(hits)
    level_hits = hits
    for level in range(1, MAX_DEPTH + 1):
        products = {h.product for h in level_hits}
        sub_parts = conn.scalars(_q()["sub_parts"], {"codes": list(products)}).all()
        if not sub_parts:
            break
        by_serial = {h.serial: h for h in level_hits}
        serials = sorted(by_serial)
        parents: list[Hit] = []
        for chunk in range(0, len(serials), 500):
            for r in conn.execute(
                _q()["parents"], {"parts": sub_parts, "serials": serials[chunk : chunk + 500]}
            ):
                # The parent unit, holding the component of the hit it was built from.
                parents.append(
                    by_serial[r.via]._replace(
                        serial=r.serial,
                        product=r.product,
                        status=r.status,
                        order=r.order,
                        customer=r.customer,
                        due_date=r.due_date,
                        level=level,
                        via=r.via,
                    )
                )
        if not parents:
            break
        result.extend(parents)
        level_hits = parents
    return result


def order_components(db: Session, *, order_number: str) -> list[Component] | None:
    """Everything the units of order ``order_number`` were built from (None: no order)."""
    conn = db.connection()
    if (
        conn.execute(
            sa.select(col(CustomerOrder.id)).where(col(CustomerOrder.number) == order_number)
        ).first()
        is None
    ):
        return None
    rows = [Component(**r._asdict()) for r in conn.execute(_q()["order"], {"number": order_number})]
    out: list[Component] = []
    for c in rows:
        out.append(c)
        out.extend(_sub_components(conn, c, 1))
    return out


def _sub_components(conn: sa.Connection, c: Component, depth: int) -> list[Component]:
    if not c.serial or depth > MAX_DEPTH:
        return []
    is_sub = conn.execute(sa.select(col(Part.product_id)).where(col(Part.sku) == c.sku)).scalar()
    if is_sub is None:
        return []
    out: list[Component] = []
    for r in conn.execute(_q()["unit_components"], {"serial": c.serial}):
        sub = Component(unit=c.unit, **r._asdict(), via=c.serial)
        out.append(sub)
        out.extend(_sub_components(conn, sub, depth + 1))
    return out


@functools.cache
def _q() -> dict[str, Any]:
    """Statements built once (building a select costs more than running it)."""
    due = sa.cast(col(CustomerOrder.due_date), sa.String)
    # Labelled with the field names of Hit and Component, which are read by label.
    hit_cols: tuple[Any, ...] = (
        col(Unit.serial).label("serial"),
        col(Product.code).label("product"),
        col(Unit.status).label("status"),
        col(CustomerOrder.number).label("order"),
        col(CustomerOrder.customer).label("customer"),
        due.label("due_date"),
    )

    def hits_from_consumption() -> Any:
        return join_unit_to_order(
            sa.select(
                *hit_cols,
                col(Part.sku).label("component"),
                col(StockLot.lot_code).label("lot"),
                col(Consumption.serial).label("component_serial"),
            )
            .select_from(Consumption)
            .join(Unit, col(Unit.id) == col(Consumption.unit_id))
            .join(Product, col(Product.id) == col(Unit.product_id))
            .join(Part, col(Part.id) == col(Consumption.part_id))
            .outerjoin(StockLot, col(StockLot.id) == col(Consumption.lot_id)),
            outer=True,
        )

    lots = (
        sa.select(col(StockLot.id))
        .join(Part, col(Part.id) == col(StockLot.part_id))
        .where(col(Part.sku) == sa.bindparam("sku"), col(StockLot.lot_code) == sa.bindparam("lot"))
    )
    # In index order (the order the units were built), no sort: a recall can be 10,000s.
    by_lot = join_unit_to_order(
        sa.select(
            col(Unit.serial),
            col(Unit.product_id),
            col(Unit.status),
            col(CustomerOrder.number),
            col(CustomerOrder.customer),
            due,
            col(Consumption.removed_at).is_not(None),
        )
        .select_from(Consumption)
        .join(Unit, col(Unit.id) == col(Consumption.unit_id)),
        outer=True,
    ).where(col(Consumption.lot_id) == sa.bindparam("lot"))
    # On PostgreSQL: the lot's units first, then each of their work orders' order once
    # (units of a work order are built together: ~3 units an order), joined by hash.
    # Four index probes per unit became two, and the recall of a lot in 10,000 units
    # of a 1M-unit history about 40 % faster (issue 19; bench/README.md).
    lot_units = (
        sa.select(
            col(Unit.serial).label("serial"),
            col(Unit.product_id).label("product_id"),
            col(Unit.status).label("status"),
            col(Unit.work_order_id).label("work_order_id"),
            col(Consumption.removed_at).is_not(None).label("removed"),
        )
        .select_from(Consumption)
        .join(Unit, col(Unit.id) == col(Consumption.unit_id))
        .where(col(Consumption.lot_id) == sa.bindparam("lot"))
        .cte("lot_units")
    )
    orders = (
        join_work_order_to_order(
            sa.select(
                col(WorkOrder.id).label("id"),
                col(CustomerOrder.number).label("number"),
                col(CustomerOrder.customer).label("customer"),
                due.label("due_date"),
            ).select_from(WorkOrder),
        )
        .where(col(WorkOrder.id).in_(sa.select(lot_units.c.work_order_id).distinct()))
        .subquery("lot_orders")
    )
    by_lot_orders_once = sa.select(
        lot_units.c.serial,
        lot_units.c.product_id,
        lot_units.c.status,
        orders.c.number,
        orders.c.customer,
        orders.c.due_date,
        lot_units.c.removed,
    ).select_from(lot_units.outerjoin(orders, orders.c.id == lot_units.c.work_order_id))
    products = sa.select(col(Product.id), col(Product.code))
    by_serial = (
        hits_from_consumption()
        .add_columns(col(Consumption.removed_at).label("removed_at"))  # taken out in a rework
        .where(col(Consumption.serial) == sa.bindparam("serial"))
        .order_by(col(Unit.serial))
    )
    sub_parts = (
        sa.select(col(Part.id))
        .join(Product, col(Product.id) == col(Part.product_id))
        .where(col(Product.code).in_(sa.bindparam("codes", expanding=True)))
    )
    parents = (
        hits_from_consumption()
        .add_columns(col(Consumption.serial).label("via"))
        .where(
            col(Consumption.part_id).in_(sa.bindparam("parts", expanding=True)),
            col(Consumption.serial).in_(sa.bindparam("serials", expanding=True)),
        )
    )
    for_part = sa.orm.aliased(Part)
    component_cols: tuple[Any, ...] = (
        col(Part.sku).label("sku"),
        col(Part.description).label("description"),
        col(Consumption.quantity).label("quantity"),
        col(StockLot.lot_code).label("lot"),
        col(Consumption.serial).label("serial"),
        col(for_part.sku).label("for_sku"),
    )

    def components() -> Any:
        return (
            sa.select(col(Unit.serial).label("unit"), *component_cols)
            .select_from(Consumption)
            .join(Unit, col(Unit.id) == col(Consumption.unit_id))
            .join(Part, col(Part.id) == col(Consumption.part_id))
            .join(for_part, col(for_part.id) == col(Consumption.for_part_id))
            .outerjoin(StockLot, col(StockLot.id) == col(Consumption.lot_id))
        )

    order = (
        join_unit_to_order(components())
        .where(col(CustomerOrder.number) == sa.bindparam("number"))
        .order_by(col(Unit.serial), col(Consumption.id))
    )
    unit_components = (
        sa.select(*component_cols)
        .select_from(Consumption)
        .join(Unit, col(Unit.id) == col(Consumption.unit_id))
        .join(Part, col(Part.id) == col(Consumption.part_id))
        .join(for_part, col(for_part.id) == col(Consumption.for_part_id))
        .outerjoin(StockLot, col(StockLot.id) == col(Consumption.lot_id))
        .where(col(Unit.serial) == sa.bindparam("serial"))
        .order_by(col(Consumption.id))
    )
    return {
        "lots": lots,
        "by_lot": by_lot,
        "by_lot_orders_once": by_lot_orders_once,
        "products": products,
        "by_serial": by_serial,
        "sub_parts": sub_parts,
        "parents": parents,
        "order": order,
        "unit_components": unit_components,
    }


def hit_dict(h: Hit) -> dict[str, Any]:
    return {
        "serial": h.serial,
        "product": h.product,
        "status": h.status,
        "order": h.order,
        "customer": h.customer,
        "due_date": h.due_date,
        "component": h.component,
        "lot": h.lot or None,
        "component_serial": h.component_serial,
        "level": h.level,
        "via": h.via,
        "removed": h.removed_at is not None,
        "removed_at": rfc3339(h.removed_at) if h.removed_at is not None else None,
    }


def component_dict(c: Component) -> dict[str, Any]:
    return {
        "unit": c.unit,
        "sku": c.sku,
        "description": c.description,
        "quantity": c.quantity,
        "lot": c.lot or None,
        "serial": c.serial,
        "for_sku": c.for_sku,
        "substituted": c.sku != c.for_sku,
        "via": c.via,
    }
