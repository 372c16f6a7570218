"""Quality figures: first-pass yield per station, the Pareto of NCR and defect causes,
and the individuals / moving-range control chart of a measured characteristic with
its Cpk (the arithmetic is in the pure ``station.checks``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.models import (
    Check,
    CheckResult,
    Defect,
    NonConformance,
    Operation,
    Product,
    Station,
    StepRecord,
)
from station import checks as qc

CHART_POINTS = 200  # the newest results of a characteristic on its chart


@dataclass(frozen=True)
class StationYield:
    station: str
    units: int
    first_pass: int

    @property
    def rate(self) -> float | None:
        return self.first_pass / self.units if self.units else None


def _day(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def first_pass_yield(session: Session, *, day: date) -> list[StationYield]:
    """Per station, the unit operations whose step ended there on ``day`` (UTC), and
    how many passed every check the first time with no NCR (a reworked unit is not
    first-pass)."""
    start, end = _day(day)
    steps = session.exec(  # type: ignore[call-overload]
        select(Station.code, StepRecord.unit_operation_id)
        .join(Station, col(Station.id) == StepRecord.station_id)
        .where(col(StepRecord.ended_at) >= start, col(StepRecord.ended_at) < end)
        .distinct()
    ).all()
    if not steps:
        return []
    uops = {u for _s, u in steps}
    failed = set(
        session.exec(
            select(CheckResult.unit_operation_id).where(
                col(CheckResult.unit_operation_id).in_(uops),
                CheckResult.passed == False,  # noqa: E712
            )
        ).all()
    ) | set(
        session.exec(
            select(NonConformance.unit_operation_id).where(
                col(NonConformance.unit_operation_id).in_(uops)
            )
        ).all()
    )
    per: dict[str, list[int]] = {}
    for station, uop in steps:
        per.setdefault(station, []).append(uop)
    return [
        StationYield(station, len(set(ids)), len({u for u in ids if u not in failed}))
        for station, ids in sorted(per.items())
    ]


def pareto(session: Session, *, since: datetime) -> list[tuple[str, int]]:
    """NCR causes and defect reasons since ``since``, most frequent first."""
    counts: dict[str, int] = {}
    for cause, n in session.exec(  # type: ignore[call-overload]
        select(NonConformance.cause, sa.func.count())
        .where(col(NonConformance.opened_at) >= since)
        .group_by(col(NonConformance.cause))
    ):
        counts[cause] = counts.get(cause, 0) + int(n)
    for reason, n in session.exec(  # type: ignore[call-overload]
        select(Defect.reason_code, sa.func.count())
        .where(col(Defect.at) >= since)
        .group_by(col(Defect.reason_code))
    ):
        counts[reason] = counts.get(reason, 0) + int(n)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class Characteristic:
    check_id: int
    product: str
    operation: str
    code: str
    name: str
    unit: str
    results: int


def characteristics(session: Session) -> list[Characteristic]:
    """Every measured check of the catalog, with how many values it has."""
    counts = dict(
        session.exec(  # type: ignore[call-overload]
            select(CheckResult.check_id, sa.func.count())
            .where(col(CheckResult.value).is_not(None))
            .group_by(col(CheckResult.check_id))
        ).all()
    )
    rows = session.exec(
        select(Check, Operation.code, Product.code)
        .join(Operation, col(Operation.id) == Check.operation_id)
        .join(Product, col(Product.id) == Operation.product_id)
        .where(col(Check.kind).in_(qc.MEASURED))
        .order_by(col(Product.code), col(Operation.sequence), col(Check.position))
    ).all()
    return [
        Characteristic(
            c.id or 0, product, op, c.code, c.name, c.unit, int(counts.get(c.id or 0, 0))
        )
        for c, op, product in rows
    ]


def chart(session: Session, *, check_id: int) -> tuple[Check, qc.ControlChart | None, list[str]]:
    """The check, its I-MR chart over the newest CHART_POINTS values, and their times."""
    check = session.get(Check, check_id)
    if check is None:
        raise LookupError(f"check {check_id} not found")
    newest = session.exec(
        select(CheckResult.value, CheckResult.at)
        .where(CheckResult.check_id == check_id, col(CheckResult.value).is_not(None))
        .order_by(col(CheckResult.at).desc(), col(CheckResult.id).desc())
        .limit(CHART_POINTS)
    ).all()
    rows = list(reversed(newest))
    values = [float(v) for v, _at in rows if v is not None]
    return (
        check,
        qc.control_chart(values, check.lower, check.upper),
        [at.strftime("%m-%d %H:%M") for _v, at in rows],
    )


@dataclass(frozen=True)
class BoardQuality:
    stations: list[StationYield]
    pareto: list[tuple[str, int]]
    open_ncrs: int


def board(session: Session, *, now: datetime) -> BoardQuality:
    """What the line board shows: today's FPY per station, the Pareto, open NCRs."""
    today = now.astimezone(UTC).date()
    start, _end = _day(today)
    open_ncrs = session.exec(  # type: ignore[call-overload]
        select(sa.func.count())
        .select_from(NonConformance)
        .where(col(NonConformance.status) != "closed")
    ).one()
    return BoardQuality(
        first_pass_yield(session, day=today), pareto(session, since=start)[:8], int(open_ncrs)
    )
