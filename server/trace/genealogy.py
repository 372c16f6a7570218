"""One unit's genealogy: what it is made of, who built it where and when, what went wrong.

A component whose part is itself a product built here (``Part.product_id``) and that
was picked by serial is a sub-assembly: its serial is a ``Unit.serial`` and its own
genealogy is nested under the pick, up to ``MAX_DEPTH`` levels (a guard against a
cycle in bad data, never reached by a real bill of materials).

Each level costs five indexed queries (unit, picks, steps, defects, parent), so one
unit's genealogy stays in single milliseconds however large the history is.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from server.models import (
    Consumption,
    CustomerOrder,
    Defect,
    Event,
    Operation,
    Operator,
    Part,
    Product,
    Station,
    StepRecord,
    StockLot,
    Unit,
    UnitOperation,
    WorkOrder,
    join_unit_to_order,
)
from server.models.types import rfc3339
from server.quality import records as quality_records

MAX_DEPTH = 5


@dataclass
class PickedComponent:
    """One component built into the unit: the pick, where, by whom and the scan."""

    sku: str
    description: str
    tracking: str
    quantity: int
    lot_code: str | None
    serial: str | None
    for_sku: str  # the BOM part this pick satisfies
    operation: str
    station: str | None
    operator: str | None
    at: datetime | None
    scan: str | None  # the scanned text that confirmed the pick (None: no scan recorded)
    scan_msg_id: str | None
    scan_channel: str | None
    sub_product_id: int | None = None  # set when the part is itself a product built here
    removed_at: datetime | None = None  # taken out in a rework (docs/quality.md)
    sub_unit: Genealogy | None = None

    @property
    def substituted(self) -> bool:
        return self.sku != self.for_sku


@dataclass
class Step:
    operation: str
    name: str
    sequence: int
    station: str
    operator: str | None
    badge: str | None
    started_at: datetime
    ended_at: datetime | None
    paused_seconds: float
    standard_seconds: int

    @property
    def duration_seconds(self) -> float | None:
        """Worked time: end - start - pauses (None while the step is open)."""
        if self.ended_at is None:
            return None
        return max((self.ended_at - self.started_at).total_seconds() - self.paused_seconds, 0.0)

    @property
    def versus_standard(self) -> float | None:
        d = self.duration_seconds
        return None if d is None or not self.standard_seconds else d / self.standard_seconds


@dataclass
class DefectRow:
    reason_code: str
    note: str
    disposition: str
    at: datetime
    station: str | None
    operator: str | None
    resolved_at: datetime | None
    operation: str | None


@dataclass
class Genealogy:
    serial: str
    product: str
    product_name: str
    options: list[str]
    status: str
    created_at: datetime | None
    completed_at: datetime | None
    work_order: str | None
    order: str | None
    customer: str | None
    due_date: Any
    picks: list[PickedComponent] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    defects: list[DefectRow] = field(default_factory=list)
    built_into: str | None = None  # serial of the unit this one is a sub-assembly of
    depth: int = 0
    # checks, component_changes, non_conformances (server.quality.records)
    quality: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def assembly_seconds(self) -> float:
        """Total worked time over the finished steps (pauses excluded)."""
        return sum(s.duration_seconds or 0.0 for s in self.steps)

    @property
    def standard_seconds(self) -> int:
        return sum(s.standard_seconds for s in self.steps)

    @property
    def reworked(self) -> bool:
        return bool(self.defects)


def genealogy(db: Session, *, serial: str, max_depth: int = MAX_DEPTH) -> Genealogy | None:
    """The genealogy of the unit ``serial``, or None when there is no such unit."""
    return _unit(db, serial, 0, max_depth, set())


def _unit(db: Session, serial: str, depth: int, max_depth: int, seen: set[str]) -> Genealogy | None:
    conn = db.connection()
    row = conn.execute(_q()["unit"], {"serial": serial}).first()
    if row is None:
        return None
    seen.add(serial)
    # Every statement's columns are labelled with the field names they fill.
    g = Genealogy(
        serial=row.serial,
        product=row.product,
        product_name=row.product_name,
        options=list(row.options),
        status=row.status,
        created_at=row.created_at,
        completed_at=row.completed_at,
        work_order=row.work_order,
        order=row.order,
        customer=row.customer,
        due_date=row.due_date,
        depth=depth,
    )
    params = {"serial": serial}
    g.picks = [
        PickedComponent(**(r._asdict() | {"lot_code": r.lot_code or None}))
        for r in conn.execute(_q()["picks"], params)
    ]
    g.steps = [
        Step(**(r._asdict() | {"paused_seconds": r.paused_seconds or 0.0}))
        for r in conn.execute(_q()["steps"], params)
    ]
    g.defects = [DefectRow(**r._asdict()) for r in conn.execute(_q()["defects"], params)]
    g.quality = quality_records.for_unit(db, unit_id=row.id)
    g.built_into = conn.execute(
        _q()["parent"], {"serial": serial, "product_id": row.product_id}
    ).scalar()
    for pick in g.picks:
        if (
            pick.serial
            and pick.sub_product_id is not None
            and pick.serial not in seen
            and depth < max_depth
        ):
            pick.sub_unit = _unit(db, pick.serial, depth + 1, max_depth, seen)
    return g


@functools.cache
def _q() -> dict[str, Any]:
    """The statements, built once: building a select costs more than running it."""
    # The unit's id, found again by its serial in each statement (one index probe): a
    # Python int goes to PostgreSQL as smallint below 32,768 and as integer above, and
    # each is a statement of its own to prepare and plan, so the units with small ids
    # were planned afresh where the others ran prepared (7-10 ms instead of 2.5 on a
    # 1M-unit history, bench/README.md). Text is text.
    unit_id: Any = (
        sa.select(col(Unit.id)).where(col(Unit.serial) == sa.bindparam("serial")).scalar_subquery()
    )
    for_part = aliased(Part)

    def name_of(column: Any, key: Any) -> Any:
        """``column`` of the one row of a small catalog table whose id is ``key``: a
        lookup per pick, not a join, so the picks statement plans in 0.25 ms instead of
        1.7 (nine joined tables; every unprepared run pays it)."""
        return sa.select(column).where(key).scalar_subquery()

    unit: Any = join_unit_to_order(
        sa.select(
            col(Unit.id).label("id"),
            col(Unit.serial).label("serial"),
            col(Unit.options).label("options"),
            col(Unit.status).label("status"),
            col(Unit.created_at).label("created_at"),
            col(Unit.completed_at).label("completed_at"),
            col(Unit.product_id).label("product_id"),
            col(Product.code).label("product"),
            col(Product.name).label("product_name"),
            col(WorkOrder.number).label("work_order"),
            col(CustomerOrder.number).label("order"),
            col(CustomerOrder.customer).label("customer"),
            col(CustomerOrder.due_date).label("due_date"),
        ).join(Product, col(Product.id) == col(Unit.product_id)),
        outer=True,
    ).where(col(Unit.serial) == sa.bindparam("serial"))
    parent = (
        sa.select(col(Unit.serial))
        .join(Consumption, col(Consumption.unit_id) == col(Unit.id))
        .join(Part, col(Part.id) == col(Consumption.part_id))
        .where(
            col(Consumption.serial) == sa.bindparam("serial"),
            col(Part.product_id) == sa.bindparam("product_id"),
        )
        .limit(1)
    )
    picks: Any = (
        sa.select(
            col(Part.sku).label("sku"),
            col(Part.description).label("description"),
            col(Part.tracking).label("tracking"),
            col(Consumption.quantity).label("quantity"),
            name_of(StockLot.lot_code, col(StockLot.id) == col(Consumption.lot_id)).label(
                "lot_code"
            ),
            col(Consumption.serial).label("serial"),
            name_of(for_part.sku, col(for_part.id) == col(Consumption.for_part_id)).label(
                "for_sku"
            ),
            col(Operation.code).label("operation"),
            name_of(Station.code, col(Station.id) == col(Consumption.station_id)).label("station"),
            name_of(Operator.name, col(Operator.id) == col(Consumption.operator_id)).label(
                "operator"
            ),
            col(Consumption.at).label("at"),
            col(Event.data).label("scan"),
            col(Event.msg_id).label("scan_msg_id"),
            col(Event.channel).label("scan_channel"),
            col(Part.product_id).label("sub_product_id"),
            col(Consumption.removed_at).label("removed_at"),
        )
        .select_from(Consumption)
        .join(Part, col(Part.id) == col(Consumption.part_id))
        .outerjoin(Event, col(Event.id) == col(Consumption.event_id))
        .join(UnitOperation, col(UnitOperation.id) == col(Consumption.unit_operation_id))
        .join(Operation, col(Operation.id) == col(UnitOperation.operation_id))
        .where(col(Consumption.unit_id) == unit_id)
        .order_by(col(UnitOperation.sequence), col(Consumption.id))
    )
    steps: Any = (
        sa.select(
            col(Operation.code).label("operation"),
            col(Operation.name).label("name"),
            col(Operation.sequence).label("sequence"),
            col(Station.code).label("station"),
            col(Operator.name).label("operator"),
            col(Operator.badge).label("badge"),
            col(StepRecord.started_at).label("started_at"),
            col(StepRecord.ended_at).label("ended_at"),
            col(StepRecord.paused_seconds).label("paused_seconds"),
            col(Operation.standard_seconds).label("standard_seconds"),
        )
        .join(Operation, col(Operation.id) == col(StepRecord.operation_id))
        .join(Station, col(Station.id) == col(StepRecord.station_id))
        .outerjoin(Operator, col(Operator.id) == col(StepRecord.operator_id))
        .where(col(StepRecord.unit_id) == unit_id)
        .order_by(col(StepRecord.started_at), col(StepRecord.id))
    )
    defects: Any = (
        sa.select(
            col(Defect.reason_code).label("reason_code"),
            col(Defect.note).label("note"),
            col(Defect.disposition).label("disposition"),
            col(Defect.at).label("at"),
            col(Station.code).label("station"),
            col(Operator.name).label("operator"),
            col(Defect.resolved_at).label("resolved_at"),
            col(Operation.code).label("operation"),
        )
        .outerjoin(Station, col(Station.id) == col(Defect.station_id))
        .outerjoin(Operator, col(Operator.id) == col(Defect.operator_id))
        .outerjoin(UnitOperation, col(UnitOperation.id) == col(Defect.unit_operation_id))
        .outerjoin(Operation, col(Operation.id) == col(UnitOperation.operation_id))
        .where(col(Defect.unit_id) == unit_id)
        .order_by(col(Defect.at))
    )
    return {"unit": unit, "parent": parent, "picks": picks, "steps": steps, "defects": defects}


def to_dict(g: Genealogy) -> dict[str, Any]:
    """The JSON representation (API and .json export)."""
    return {
        "serial": g.serial,
        "product": g.product,
        "product_name": g.product_name,
        "options": g.options,
        "status": g.status,
        "created_at": rfc3339(g.created_at),
        "completed_at": rfc3339(g.completed_at),
        "work_order": g.work_order,
        "order": g.order,
        "customer": g.customer,
        "due_date": g.due_date.isoformat() if g.due_date is not None else None,
        "built_into": g.built_into,
        "assembly_seconds": round(g.assembly_seconds, 1),
        "standard_seconds": g.standard_seconds,
        "components": [
            {
                "sku": p.sku,
                "description": p.description,
                "tracking": p.tracking,
                "quantity": p.quantity,
                "lot": p.lot_code,
                "serial": p.serial,
                "for_sku": p.for_sku,
                "substituted": p.substituted,
                "operation": p.operation,
                "station": p.station,
                "operator": p.operator,
                "at": rfc3339(p.at),
                "scan": (
                    {"data": p.scan, "msg_id": p.scan_msg_id, "channel": p.scan_channel}
                    if p.scan_msg_id
                    else None
                ),
                "removed_at": rfc3339(p.removed_at),
                "sub_assembly": to_dict(p.sub_unit) if p.sub_unit else None,
            }
            for p in g.picks
        ],
        "steps": [
            {
                "operation": s.operation,
                "name": s.name,
                "station": s.station,
                "operator": s.operator,
                "badge": s.badge,
                "started_at": rfc3339(s.started_at),
                "ended_at": rfc3339(s.ended_at),
                "paused_seconds": round(s.paused_seconds, 1),
                "duration_seconds": (
                    round(s.duration_seconds, 1) if s.duration_seconds is not None else None
                ),
                "standard_seconds": s.standard_seconds,
                "versus_standard": (
                    round(s.versus_standard, 3) if s.versus_standard is not None else None
                ),
            }
            for s in g.steps
        ],
        "defects": [
            {
                "reason_code": d.reason_code,
                "note": d.note,
                "disposition": d.disposition,
                "at": rfc3339(d.at),
                "station": d.station,
                "operator": d.operator,
                "operation": d.operation,
                "resolved_at": rfc3339(d.resolved_at),
            }
            for d in g.defects
        ],
        **g.quality,
    }
