"""What the planner needs, read from the database in a few bulk statements (DB: no
Flask, no MQTT).

- supply: each part's free stock (on hand less reserved, in lots not expired:
  ``server.inventory.expiry``) and the open quantity of its scheduled receipts;
- capacity: active stations by kind, each on its line's calendar (``LineShift`` less
  ``LineClosure`` days; a line without shifts works around the clock) less the
  station's downtime;
- step times: the routing's standard time of each operation, or the median of its
  last measured steps when there are at least ``min_history`` of them (worked time,
  pauses excluded, as in ``server.trace.timing``);
- open orders (received, released, in progress) in ``OrderSpec`` form: a received
  order needs its whole BOM and every step; released work needs the steps not done
  yet (a running step what is left of its time, on its station); a unit scrapped by a
  defect (disposition ``scrap``, not resolved) is built again: its BOM and every step.
"""

from __future__ import annotations

import functools
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.catalog.configure import Configuration, ConfigurationError, ProductSpec, resolve
from server.catalog.products import load_product
from server.inventory import expiry
from server.models import (
    CustomerOrder,
    Defect,
    Line,
    LineClosure,
    LineShift,
    OrderLine,
    OrderStatus,
    Part,
    PartSubstitute,
    Product,
    ScheduledReceipt,
    Station,
    StationDowntime,
    StepRecord,
    StockLot,
    Unit,
    UnitOperation,
    UnitOperationStatus,
    UnitStatus,
    join_unit_to_order,
)
from server.promise.calendar import Shift, WorkAxis, always, parse_hhmm, subtract, working_intervals
from server.promise.engine import OrderSpec, Plant
from server.promise.projection import PartSupply, Receipt
from server.promise.schedule import StationSpec, Step

OPEN_ORDERS = (OrderStatus.RECEIVED, OrderStatus.RELEASED, OrderStatus.IN_PROGRESS)
TO_DO = (UnitOperationStatus.PENDING, UnitOperationStatus.READY, UnitOperationStatus.HELD)
HISTORY_DAYS = 90
MEDIAN_OF = 200  # the latest steps a measured median is taken over


@dataclass(frozen=True)
class Options:
    zone: tzinfo
    lead_days: int = 1
    horizon_days: int = 120
    min_history: int = 20


@dataclass
class Catalog:
    """Product specs and resolved configurations, read once per plan."""

    session: Session
    seconds: Mapping[int, float]  # operation id -> seconds of work
    specs: dict[int, ProductSpec] = field(default_factory=dict)
    configs: dict[tuple[int, tuple[str, ...]], Configuration] = field(default_factory=dict)
    # Keyed by id() of a configuration held in ``configs`` (alive as long as they are).
    _steps: dict[int, tuple[Step, ...]] = field(default_factory=dict)
    _needs: dict[int, dict[int, int]] = field(default_factory=dict)

    def spec(self, product_id: int) -> ProductSpec:
        spec = self.specs.get(product_id)
        if spec is None:
            product = self.session.get(Product, product_id)
            if product is None:
                raise LookupError(f"no product {product_id}")
            spec = self.specs[product_id] = load_product(self.session, product)
        return spec

    def configuration(self, product_id: int, options: Sequence[str]) -> Configuration:
        key = (product_id, tuple(sorted(options)))
        found = self.configs.get(key)
        if found is None:
            found = self.configs[key] = resolve(self.spec(product_id), list(options))
        return found

    def steps(self, config: Configuration) -> tuple[Step, ...]:
        found = self._steps.get(id(config))
        if found is None:
            found = self._steps[id(config)] = tuple(
                Step(
                    r.operation.station_kind,
                    self.seconds.get(r.operation.id, float(r.operation.standard_seconds)),
                    r.operation.name,
                )
                for r in config.routing
            )
        return found

    def needs(self, config: Configuration, quantity: int) -> dict[int, int]:
        per_unit = self._needs.get(id(config))
        if per_unit is None:
            out: dict[int, int] = defaultdict(int)
            for pick in config.bom:
                out[pick.part_id] += pick.qty
            per_unit = self._needs[id(config)] = dict(out)
        return {part: qty * quantity for part, qty in per_unit.items()}


@dataclass
class Loaded:
    plant: Plant
    orders: list[OrderSpec]
    catalog: Catalog
    skus: dict[int, str]
    receipts: dict[int, ScheduledReceipt]
    problems: dict[int, str]  # order id -> why it could not be read (a bad configuration)


def load(session: Session, *, now: datetime, options: Options) -> Loaded:
    skus = {int(pid or 0): sku for pid, sku in session.exec(select(Part.id, Part.sku)).all()}  # type: ignore[call-overload]
    receipts = open_receipts(session)
    parts = supply(session, today=expiry.today(), receipts=receipts.values(), skus=skus)
    subs: dict[int, list[int]] = defaultdict(list)
    for part_id, sub_id in session.exec(
        select(PartSubstitute.part_id, PartSubstitute.substitute_id).order_by(  # type: ignore[call-overload]
            col(PartSubstitute.priority), col(PartSubstitute.id)
        )
    ).all():
        subs[int(part_id)].append(int(sub_id))
    stations = station_specs(session, now=now, options=options)
    catalog = Catalog(session, step_seconds(session, now=now, min_history=options.min_history))
    orders, problems = open_orders(session, catalog=catalog, now=now)
    plant = Plant(
        now=now.timestamp(),
        zone=options.zone,
        parts=parts,
        stations=stations,
        substitutes=dict(subs),
        lead_days=options.lead_days,
        horizon_days=options.horizon_days,
    )
    return Loaded(plant, orders, catalog, skus, receipts, problems)


# -- supply ----------------------------------------------------------------------------


def open_receipts(session: Session) -> dict[int, ScheduledReceipt]:
    rows = session.exec(
        select(ScheduledReceipt).where(
            ScheduledReceipt.status == "open",
            col(ScheduledReceipt.received) < col(ScheduledReceipt.quantity),
        )
    ).all()
    return {r.id or 0: r for r in rows}


def supply(
    session: Session,
    *,
    today: date,
    receipts: Iterable[ScheduledReceipt],
    skus: Mapping[int, str],
) -> dict[int, PartSupply]:
    """Free stock of every part (unexpired lots, less reserved) and its open receipts."""
    free = dict(
        session.connection()
        .execute(
            sa.select(
                col(StockLot.part_id),
                sa.func.sum(col(StockLot.on_hand) - col(StockLot.reserved)),
            )
            .where(
                col(StockLot.on_hand) > 0,
                sa.not_(expiry.expired_clause(col(StockLot.expires_on), sa.literal(today))),
            )
            .group_by(col(StockLot.part_id))
        )
        .all()
    )
    parts = {pid: PartSupply(pid, sku, int(free.get(pid) or 0)) for pid, sku in skus.items()}
    for r in sorted(receipts, key=lambda r: (r.expected_on, r.id or 0)):
        supply_of = parts.get(r.part_id)
        if supply_of is not None:
            supply_of.receipts.append(
                Receipt(r.id or 0, r.part_id, r.expected_on, r.open_quantity, r.supplier_ref)
            )
    return parts


# -- capacity --------------------------------------------------------------------------


def shifts_of(rows: Iterable[LineShift]) -> list[Shift]:
    out = []
    for row in rows:
        out.append(
            Shift(
                frozenset(int(d) for d in row.weekdays),
                parse_hhmm(row.start),
                parse_hhmm(row.end) % (24 * 60),
                tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in row.breaks),
                row.name,
            )
        )
    return out


def station_specs(session: Session, *, now: datetime, options: Options) -> list[StationSpec]:
    today = now.astimezone(options.zone).date()
    first = today - timedelta(days=1)
    days = options.horizon_days + 2
    shifts: dict[int, list[LineShift]] = defaultdict(list)
    for row in session.exec(select(LineShift).order_by(col(LineShift.id))).all():
        shifts[row.line_id].append(row)
    closed: dict[int, list[date]] = defaultdict(list)
    for line_id, day in session.exec(
        select(LineClosure.line_id, LineClosure.day).where(LineClosure.day >= first)  # type: ignore[call-overload]
    ).all():
        closed[int(line_id)].append(day)
    down: dict[int, list[tuple[float, float]]] = defaultdict(list)
    horizon_end = now + timedelta(days=days)
    for downtime in session.exec(
        select(StationDowntime).where(
            col(StationDowntime.end_at).is_(None) | (col(StationDowntime.end_at) > now)
        )
    ).all():
        end = downtime.end_at or horizon_end
        down[downtime.station_id].append((downtime.start_at.timestamp(), end.timestamp()))
    axes: dict[int, WorkAxis] = {}
    for line_id in session.exec(select(Line.id)).all():
        lid = int(line_id or 0)
        if shifts.get(lid):
            intervals = working_intervals(
                shifts_of(shifts[lid]),
                zone=options.zone,
                first_day=first,
                days=days,
                closed=closed.get(lid, ()),
            )
        else:
            start = datetime(first.year, first.month, first.day, tzinfo=options.zone)
            intervals = always(start.timestamp(), (start + timedelta(days=days)).timestamp())
        axes[lid] = WorkAxis(intervals)
    specs = []
    for st in session.exec(
        select(Station).where(col(Station.active)).order_by(col(Station.position), col(Station.id))
    ).all():
        axis = axes[st.line_id]
        if down.get(st.id or 0):
            axis = WorkAxis(subtract(axis.intervals, down[st.id or 0]))
        specs.append(StationSpec(st.code, st.kind, axis))
    return specs


@functools.cache
def _seconds_expr(dialect: str) -> Any:
    if dialect == "sqlite":
        return (
            sa.func.julianday(col(StepRecord.ended_at))
            - sa.func.julianday(col(StepRecord.started_at))
        ) * 86400.0 - col(StepRecord.paused_seconds)
    return sa.extract("epoch", col(StepRecord.ended_at) - col(StepRecord.started_at)) - col(
        StepRecord.paused_seconds
    )


def step_seconds(session: Session, *, now: datetime, min_history: int) -> dict[int, float]:
    """Operation id -> the median of its latest measured steps, for operations with at
    least ``min_history`` steps ended in the last ``HISTORY_DAYS`` days (others keep
    their standard time)."""
    if min_history <= 0:
        return {}
    conn = session.connection()
    since = now - timedelta(days=HISTORY_DAYS)
    counts = conn.execute(
        sa.select(col(StepRecord.operation_id), sa.func.count())
        .where(col(StepRecord.ended_at) >= since)
        .group_by(col(StepRecord.operation_id))
    ).all()
    seconds = _seconds_expr(conn.dialect.name)
    out = {}
    for op_id, n in counts:
        if n < min_history:
            continue
        values = [
            max(float(v), 0.0)
            for (v,) in conn.execute(
                sa.select(seconds)
                .where(col(StepRecord.operation_id) == op_id, col(StepRecord.ended_at) >= since)
                .order_by(col(StepRecord.ended_at).desc())
                .limit(MEDIAN_OF)
            )
        ]
        out[int(op_id)] = statistics.median(values)
    return out


# -- orders ----------------------------------------------------------------------------


def open_orders(
    session: Session, *, catalog: Catalog, now: datetime
) -> tuple[list[OrderSpec], dict[int, str]]:
    orders = session.exec(
        select(CustomerOrder).where(col(CustomerOrder.status).in_(OPEN_ORDERS))
    ).all()
    ids = [o.id or 0 for o in orders]
    lines: dict[int, list[OrderLine]] = defaultdict(list)
    if ids:
        for line in session.exec(
            select(OrderLine)
            .where(col(OrderLine.order_id).in_(ids))
            .order_by(col(OrderLine.line_no))
        ).all():
            lines[line.order_id].append(line)
    released = [o.id or 0 for o in orders if o.status != OrderStatus.RECEIVED]
    work = released_work(session, order_ids=released, catalog=catalog, now=now)
    specs, problems = [], {}
    for order in orders:
        oid = order.id or 0
        needs: dict[int, int] = defaultdict(int)
        units: list[tuple[Step, ...]] = []
        try:
            if order.status == OrderStatus.RECEIVED:
                for line in lines[oid]:
                    config = catalog.configuration(line.product_id, line.options)
                    for part, qty in catalog.needs(config, line.quantity).items():
                        needs[part] += qty
                    units += [catalog.steps(config)] * line.quantity
            else:
                unit_needs, units = work.get(oid, ({}, []))
                for part, qty in unit_needs.items():
                    needs[part] += qty
        except (ConfigurationError, LookupError) as exc:
            problems[oid] = str(exc)
            continue
        since = order.released_at or order.received_at
        specs.append(
            OrderSpec(
                oid,
                order.number,
                order.priority,
                order.due_date,
                since.timestamp(),
                dict(needs),
                tuple(units),
            )
        )
    return specs, problems


def released_work(
    session: Session, *, order_ids: list[int], catalog: Catalog, now: datetime
) -> dict[int, tuple[dict[int, int], list[tuple[Step, ...]]]]:
    """Per released order: (components to find again for scrapped units, each open
    unit's remaining steps)."""
    if not order_ids:
        return {}
    rows = session.exec(
        join_unit_to_order(
            select(OrderLine.order_id, Unit.id, Unit.product_id, Unit.options, UnitOperation),  # type: ignore[call-overload]
            upto=OrderLine,
        )
        .join(UnitOperation, col(UnitOperation.unit_id) == col(Unit.id))
        .where(
            col(OrderLine.order_id).in_(order_ids),
            col(Unit.status).not_in((UnitStatus.COMPLETED, UnitStatus.CANCELLED)),
        )
        .order_by(col(Unit.id), col(UnitOperation.sequence))
    ).all()
    unit_ids = sorted({r[1] for r in rows})
    scrapped = scrapped_units(session, unit_ids)
    active_ids = [r[4].id for r in rows if r[4].status == UnitOperationStatus.ACTIVE]
    worked: dict[int, float] = {}
    if active_ids:
        for op_id, started, paused_at, paused in session.exec(
            select(  # type: ignore[call-overload]
                StepRecord.unit_operation_id,
                StepRecord.started_at,
                StepRecord.paused_at,
                StepRecord.paused_seconds,
            ).where(
                col(StepRecord.unit_operation_id).in_(active_ids),
                col(StepRecord.ended_at).is_(None),
            )
        ).all():
            until = paused_at or now
            worked[int(op_id)] = max((until - started).total_seconds() - (paused or 0.0), 0.0)
    out: dict[int, tuple[dict[int, int], list[tuple[Step, ...]]]] = {}
    per_unit: dict[int, list[Step]] = {}
    unit_order: dict[int, int] = {}
    rebuilt: set[int] = set()
    for order_id, unit_id, product_id, options, op in rows:
        needs, _units = out.setdefault(order_id, ({}, []))
        unit_order[unit_id] = order_id
        if unit_id in scrapped:
            if unit_id not in rebuilt:
                rebuilt.add(unit_id)
                config = catalog.configuration(product_id, options)
                for part, qty in catalog.needs(config, 1).items():
                    needs[part] = needs.get(part, 0) + qty
                per_unit[unit_id] = list(catalog.steps(config))
            continue
        steps = per_unit.setdefault(unit_id, [])
        seconds = catalog.seconds.get(op.operation_id)
        if seconds is None:
            seconds = float(_standard(catalog, product_id, op.operation_id))
        if op.status in TO_DO:
            steps.append(
                Step(op.station_kind, seconds, _name(catalog, product_id, op.operation_id))
            )
        elif op.status == UnitOperationStatus.ACTIVE:
            station = session.get(Station, op.station_id) if op.station_id else None
            left = max(seconds - worked.get(op.id or 0, 0.0), 60.0)
            steps.append(
                Step(
                    op.station_kind,
                    left,
                    _name(catalog, product_id, op.operation_id),
                    station.code if station else None,
                )
            )
    for unit_id, steps in per_unit.items():
        if steps:
            out[unit_order[unit_id]][1].append(tuple(steps))
    return out


def _operation(catalog: Catalog, product_id: int, operation_id: int) -> Any:
    return next((o for o in catalog.spec(product_id).operations if o.id == operation_id), None)


def _standard(catalog: Catalog, product_id: int, operation_id: int) -> int:
    op = _operation(catalog, product_id, operation_id)
    return op.standard_seconds if op is not None else 300


def _name(catalog: Catalog, product_id: int, operation_id: int) -> str:
    op = _operation(catalog, product_id, operation_id)
    return op.name if op is not None else ""


def scrapped_units(session: Session, unit_ids: Sequence[int]) -> set[int]:
    """Units a defect scrapped (disposition ``scrap``, not resolved): to be built again."""
    if not unit_ids:
        return set()
    return {
        int(u)
        for u in session.exec(
            select(Defect.unit_id).where(
                col(Defect.unit_id).in_(list(unit_ids)),
                Defect.disposition == "scrap",
                col(Defect.resolved_at).is_(None),
            )
        ).all()
    }
