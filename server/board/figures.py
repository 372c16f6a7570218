"""The line board's figures: the day's output and flow, and every station's state now.

``day_figures(db, day=..., zone=...)`` reads, for one plant day (midnight to midnight
in the plant's time zone, the ``PLANT_TIMEZONE`` setting given by the views):

- units completed, and per hour (completed / hours since the day's first step, to
  now or the day's end); hourly output (24 local hours);
- work in progress: units in progress or held (whatever the day);
- first-pass yield: completed units with no defect / completed units;
- on-time delivery: orders completed that day on or before their due date / orders
  completed that day; order lead times (received -> completed, hours);
- component shortages: released work not yet built that on-hand stock does not cover
  (only work released with an override can be short: release reserves everything
  otherwise), plus the ATP shortages of received orders
  (``server.orders.service.order_atp``, cached until stock, orders or audit move);
- station states: ``andon`` (an open call), ``working`` / ``paused`` (an open step),
  ``blocked`` (nothing ready for its kind but held work), else ``idle``; with the
  operator signed in, the unit, the current cycle against the line's takt;
- per station, the distribution of the day's step times (for the charts).

Every query is bounded by an index (unit.completed_at, steprecord.started_at /
ended_at, customerorder.completed_at, unit.status), so the board costs the same on a
plant with a million units of history as on an empty one.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.board.plan import HourPlan, HourRow, Interval, hour_plan, hour_rows
from server.board.shortages import WIP_STATUSES, shortages
from server.board.stations import BoardStationState, station_states
from server.models import (
    CustomerOrder,
    Defect,
    Line,
    LineClosure,
    LineShift,
    Operation,
    Station,
    StepRecord,
    Unit,
)
from server.models.types import rfc3339, utcnow
from server.promise.calendar import working_intervals
from server.promise.load import shifts_of
from server.trace.timing import Stats, percentile, summarize

__all__ = [
    "BoardStationState",
    "DayFigures",
    "day_figures",
    "shortages",
    "station_states",
    "to_dict",
]

UTC_ZONE = ZoneInfo("UTC")


@dataclass
class DayFigures:
    day: date
    start: datetime
    end: datetime
    now: datetime
    completed: int = 0
    per_hour: float = 0.0
    hourly: list[int] = field(default_factory=lambda: [0] * 24)
    wip: int = 0
    first_pass: int = 0
    orders_completed: int = 0
    orders_on_time: int = 0
    lead_time_hours: dict[str, float | None] = field(default_factory=dict)
    shortages: list[tuple[str, int, str]] = field(default_factory=list)  # sku, short, source
    stations: list[BoardStationState] = field(default_factory=list)
    cycle_times: dict[str, Stats] = field(default_factory=dict)
    # per station: (min, first quartile, median, third quartile, max) of the step times
    cycle_boxes: dict[str, tuple[float, float, float, float, float]] = field(default_factory=dict)
    takt_seconds: int = 0
    plan: HourPlan = field(default_factory=HourPlan)
    now_hour: int | None = None  # the local hour now, when the day shown is today

    @property
    def hours(self) -> list[HourRow]:
        """Plan against actual, for each hour that had either, up to the next hour."""
        rows = hour_rows(self.plan, self.hourly, now_hour=self.now_hour)
        return [r for r in rows if self.now_hour is None or r.hour <= self.now_hour + 1]

    @property
    def completed_so_far_vs_plan(self) -> int:
        """Units completed minus units planned so far (negative: behind)."""
        return self.completed - int(self.plan.so_far + 1e-9)

    @property
    def first_pass_yield(self) -> float | None:
        return self.first_pass / self.completed if self.completed else None

    @property
    def on_time_rate(self) -> float | None:
        return self.orders_on_time / self.orders_completed if self.orders_completed else None

    @property
    def open_andons(self) -> list[BoardStationState]:
        return [s for s in self.stations if s.andon_id is not None]


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def day_figures(
    db: Session,
    *,
    day: date | None = None,
    now: datetime | None = None,
    zone: ZoneInfo = UTC_ZONE,
    with_stations: bool = True,
) -> DayFigures:
    now = now or utcnow()
    day = day or now.astimezone(zone).date()
    start, end = day_bounds(day, zone)
    conn = db.connection()
    q = _q()
    f = DayFigures(day=day, start=start, end=end, now=now)
    window = {"start": start, "end": end}
    for completed_at, defective in conn.execute(q["completed"], window):
        f.completed += 1
        f.first_pass += 0 if defective else 1
        f.hourly[completed_at.astimezone(zone).hour] += 1
    first_start = conn.execute(q["first_start"], window).scalar()
    if first_start is not None and f.completed:
        hours = (min(now, end) - first_start).total_seconds() / 3600
        f.per_hour = f.completed / max(hours, 1 / 60)
    f.wip = conn.execute(q["wip"]).scalar() or 0
    leads = []
    for due, completed, received in conn.execute(q["orders"], window):
        f.orders_completed += 1
        f.orders_on_time += 1 if completed.astimezone(zone).date() <= due else 0
        leads.append((completed - received).total_seconds() / 3600)
    leads.sort()
    f.lead_time_hours = {
        "mean": sum(leads) / len(leads) if leads else None,
        "p50": percentile(leads, 50) if leads else None,
        "p90": percentile(leads, 90) if leads else None,
    }
    line = conn.execute(
        sa.select(col(Line.id), col(Line.takt_seconds))
        .order_by(col(Line.takt_seconds), col(Line.id))
        .limit(1)
    ).first()
    f.takt_seconds = line.takt_seconds if line else 0
    durations: dict[str, list[float]] = defaultdict(list)
    standards: dict[str, int] = {}
    cycles = _cycles_query(conn.dialect.name)
    for code, seconds, paused, standard in conn.execute(cycles, window):
        durations[code].append(max(float(seconds) - (paused or 0.0), 0.0))
        standards[code] = standard
    f.cycle_times = {code: summarize(v, standards[code]) for code, v in sorted(durations.items())}
    f.cycle_boxes = {code: _box(v) for code, v in sorted(durations.items())}
    if day == now.astimezone(zone).date():
        f.now_hour = now.astimezone(zone).hour
    calendar = _calendar(db, line_id=line.id, day=day, zone=zone) if line else None
    f.plan = hour_plan(
        calendar if calendar is not None else _working(first_start, now=now, end=end),
        takt_seconds=f.takt_seconds,
        zone=zone,
        start=start,
        end=end,
        now=now,
        source="calendar" if calendar is not None else "takt",
    )
    f.shortages = shortages(db)
    if with_stations:
        f.stations = station_states(db, now=now, last_cycles=durations)
    return f


def _calendar(db: Session, *, line_id: int, day: date, zone: ZoneInfo) -> list[Interval] | None:
    """The line's working time that day from its calendar (shifts less breaks, closed
    days out; server.promise), or None when the line has no shifts."""
    rows = db.exec(
        select(LineShift).where(LineShift.line_id == line_id).order_by(col(LineShift.id))
    ).all()
    if not rows:
        return None
    first = day - timedelta(days=1)  # a night shift that started the day before
    closed: list[date] = list(
        db.connection()
        .execute(
            sa.select(col(LineClosure.day)).where(
                col(LineClosure.line_id) == line_id,
                col(LineClosure.day) >= first,
                col(LineClosure.day) <= day,
            )
        )
        .scalars()
    )
    return working_intervals(shifts_of(rows), zone=zone, first_day=first, days=2, closed=closed)


def _working(first_start: datetime | None, *, now: datetime, end: datetime) -> list[Interval]:
    """Without a calendar: from the line's first step that day to now (or the day's end)."""
    if first_start is None:
        return []
    return [(first_start.timestamp(), min(now, end).timestamp())]


def _box(values: list[float]) -> tuple[float, float, float, float, float]:
    v = sorted(values)
    return (v[0], percentile(v, 25), percentile(v, 50), percentile(v, 75), v[-1])


@functools.cache
def _q() -> dict[str, Any]:
    """Statements built once (building a select costs more than running it)."""
    start: Any = sa.bindparam("start")
    end: Any = sa.bindparam("end")
    defective = sa.exists().where(col(Defect.unit_id) == col(Unit.id))
    return {
        "completed": sa.select(col(Unit.completed_at), defective).where(
            col(Unit.completed_at) >= start, col(Unit.completed_at) < end
        ),
        "first_start": sa.select(sa.func.min(col(StepRecord.started_at))).where(
            col(StepRecord.started_at) >= start, col(StepRecord.started_at) < end
        ),
        "wip": sa.select(sa.func.count())
        .select_from(Unit)
        .where(col(Unit.status).in_(WIP_STATUSES)),
        "orders": sa.select(
            col(CustomerOrder.due_date),
            col(CustomerOrder.completed_at),
            col(CustomerOrder.received_at),
        ).where(col(CustomerOrder.completed_at) >= start, col(CustomerOrder.completed_at) < end),
        # Release reserves every pick or records an override: only overridden work orders
        # can be short, so only their open operations are read.
    }


@functools.cache
def _cycles_query(dialect: str) -> Any:
    """The day's step times per station, the subtraction done by the database (parsing
    thousands of timestamps in Python would cost more than the query)."""
    if dialect == "sqlite":
        seconds: Any = (
            sa.func.julianday(col(StepRecord.ended_at))
            - sa.func.julianday(col(StepRecord.started_at))
        ) * 86400.0
    else:
        seconds = sa.extract("epoch", col(StepRecord.ended_at) - col(StepRecord.started_at))
    return (
        sa.select(
            col(Station.code),
            seconds,
            col(StepRecord.paused_seconds),
            col(Operation.standard_seconds),
        )
        .join(Station, col(Station.id) == col(StepRecord.station_id))
        .join(Operation, col(Operation.id) == col(StepRecord.operation_id))
        .where(
            col(StepRecord.ended_at) >= sa.bindparam("start"),
            col(StepRecord.ended_at) < sa.bindparam("end"),
        )
        .order_by(col(StepRecord.ended_at))
    )


def to_dict(f: DayFigures) -> dict[str, Any]:
    """JSON for the board's charts and for integrators."""

    return {
        "day": f.day.isoformat(),
        "completed": f.completed,
        "per_hour": round(f.per_hour, 2),
        "hourly": f.hourly,
        "wip": f.wip,
        "first_pass_yield": f.first_pass_yield,
        "orders_completed": f.orders_completed,
        "orders_on_time": f.orders_on_time,
        "on_time_rate": f.on_time_rate,
        "lead_time_hours": f.lead_time_hours,
        "takt_seconds": f.takt_seconds,
        "plan": {
            "source": f.plan.source,
            "hourly": [round(p, 2) for p in f.plan.hourly],
            "so_far": round(f.plan.so_far, 2),
            "target": round(f.plan.target, 2),
            "now_hour": f.now_hour,
        },
        "shortages": [{"sku": s, "short": n, "source": src} for s, n, src in f.shortages],
        "stations": [
            {
                "code": s.code,
                "name": s.name,
                "state": s.state,
                "operator": s.operator,
                "unit": s.unit,
                "operation": s.operation,
                "cycle_seconds": s.cycle_seconds,
                "standard_seconds": s.standard_seconds,
                "last_cycle_seconds": s.last_cycle_seconds,
                "takt_seconds": s.takt_seconds,
                "blocked_reason": s.blocked_reason,
                "andon": (
                    {
                        "id": s.andon_id,
                        "reason": s.andon_reason,
                        "raised_at": rfc3339(s.andon_raised_at),
                        "acknowledged": s.andon_acknowledged,
                    }
                    if s.andon_id
                    else None
                ),
            }
            for s in f.stations
        ],
        "cycle_times": {
            code: {
                "n": st.n,
                "mean": round(st.mean, 1),
                "p90": round(st.p90, 1),
                "standard": st.standard,
                "histogram": [[round(a), round(b), c] for a, b, c in st.histogram],
                "box": [round(x, 1) for x in f.cycle_boxes[code]],
            }
            for code, st in f.cycle_times.items()
        },
    }
