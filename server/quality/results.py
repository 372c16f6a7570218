"""The checks of a step and their results, read and written for the station adapters
(``station.reading``, ``station.service``). Database only: no Flask, no MQTT."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from server.catalog.configure import applies
from server.models import Check, CheckResult, NonConformance, Operator, Station
from server.models.types import utcnow
from station.checks import CheckSpec, CheckStatus

check_table: sa.Table = Check.__table__  # type: ignore[attr-defined]
result_table: sa.Table = CheckResult.__table__  # type: ignore[attr-defined]
ncr_table: sa.Table = NonConformance.__table__  # type: ignore[attr-defined]

_SPECS = (
    sa.select(
        check_table.c.id,
        check_table.c.code,
        check_table.c.kind,
        check_table.c.name,
        check_table.c.instructions,
        check_table.c.nominal,
        check_table.c.lower,
        check_table.c.upper,
        check_table.c.unit,
        check_table.c.source,
        check_table.c.tool,
        check_table.c.count,
        check_table.c.retries,
        check_table.c.when_options,
    )
    .where(check_table.c.operation_id == sa.bindparam("op"))
    .order_by(check_table.c.position, check_table.c.id)
)
_COUNTS = (
    sa.select(
        result_table.c.check_id,
        result_table.c.passed,
        result_table.c.ncr_id.is_(None),
        sa.func.count(),
    )
    .where(result_table.c.unit_operation_id == sa.bindparam("uop"))
    .group_by(result_table.c.check_id, result_table.c.passed, result_table.c.ncr_id.is_(None))
)


def specs(
    session: Session,
    *,
    operation_id: int,
    options: tuple[str, ...],
    known: dict[int, list[Any]] | None = None,
) -> list[CheckSpec]:
    """The checks of an operation that apply to a unit with ``options``. ``known``: the
    operations' check rows already read (``station.cache.Cache.checks``: catalog data,
    kept like the parts), so a scan does not read them again."""
    chosen = set(options)
    if known is None or operation_id not in known:
        rows = list(session.connection().execute(_SPECS, {"op": operation_id}).mappings())
        if known is not None:
            known[operation_id] = rows
    else:
        rows = known[operation_id]
    return [
        CheckSpec(
            id=m["id"],
            code=m["code"],
            kind=m["kind"],
            name=m["name"],
            instructions=m["instructions"],
            nominal=m["nominal"],
            lower=m["lower"],
            upper=m["upper"],
            unit=m["unit"],
            source=m["source"],
            tool=m["tool"],
            count=m["count"],
            retries=m["retries"],
        )
        for m in rows
        if applies(m["when_options"] or [], chosen)
    ]


def statuses(
    session: Session,
    *,
    operation_id: int,
    unit_operation_id: int,
    options: tuple[str, ...],
    known: dict[int, list[Any]] | None = None,
) -> tuple[CheckStatus, ...]:
    """The checks of a unit operation with what passed and what failed so far (the
    failures a non-conformance took are no longer counted against the retries)."""
    found = specs(session, operation_id=operation_id, options=options, known=known)
    if not found:
        return ()
    passed: dict[int, int] = {}
    failed: dict[int, int] = {}
    for check_id, ok, fresh, n in session.connection().execute(_COUNTS, {"uop": unit_operation_id}):
        if ok:
            passed[check_id] = passed.get(check_id, 0) + int(n)
        elif fresh:
            failed[check_id] = failed.get(check_id, 0) + int(n)
    return tuple(
        CheckStatus(spec, passed.get(spec.id, 0), failed.get(spec.id, 0)) for spec in found
    )


def record(
    session: Session,
    *,
    unit_id: int,
    unit_operation_id: int,
    check_id: int,
    passed: bool,
    value: float | None,
    source: str,
    tool: str = "",
    photo: str = "",
    station_id: int | None,
    operator_id: int | None,
    event_id: int | None,
    at: datetime | None = None,
) -> None:
    """One result, with the check's limits copied onto it."""
    check = session.get(Check, check_id)
    if check is None:
        raise LookupError(f"check {check_id} not found")
    session.connection().execute(
        sa.insert(result_table),
        {
            "unit_id": unit_id,
            "unit_operation_id": unit_operation_id,
            "check_id": check_id,
            "station_id": station_id,
            "operator_id": operator_id,
            "event_id": event_id,
            "ncr_id": None,
            "passed": passed,
            "value": value,
            "lower": check.lower,
            "upper": check.upper,
            "unit": check.unit,
            "source": source[:16],
            "tool": tool[:64],
            "photo": photo[:300],
            "at": at or utcnow(),
        },
    )


def open_for_check(
    session: Session,
    *,
    unit_id: int,
    unit_operation_id: int,
    check_id: int,
    value: float | None,
    station_id: int | None,
    by: str,
    at: datetime | None = None,
) -> NonConformance:
    """The NCR of a check failed after its last retry; it takes the failures, so the
    check's retries start again after the rework."""
    check = session.get(Check, check_id)
    if check is None:
        raise LookupError(f"check {check_id} not found")
    ncr = NonConformance(
        unit_id=unit_id,
        unit_operation_id=unit_operation_id,
        station_id=station_id,
        check_id=check_id,
        origin="check",
        cause=check.code,
        characteristic=check.name,
        value=value,
        lower=check.lower,
        upper=check.upper,
        unit=check.unit,
        opened_by=by[:200],
        opened_at=at or utcnow(),
    )
    session.add(ncr)
    session.flush()
    session.execute(
        sa.update(result_table)
        .where(
            result_table.c.unit_operation_id == unit_operation_id,
            result_table.c.check_id == check_id,
            result_table.c.passed.is_(False),
            result_table.c.ncr_id.is_(None),
        )
        .values(ncr_id=ncr.id)
    )
    return ncr


def unit_results(session: Session, *, unit_id: int) -> list[dict[str, object]]:
    """Every result of a unit, oldest first, for its genealogy (page, JSON, PDF, CSV)."""
    rows = session.execute(
        sa.select(
            CheckResult,
            col(Check.code),
            col(Check.name),
            col(Check.kind),
            col(Station.code),
            col(Operator.name),
        )
        .join(Check, col(Check.id) == CheckResult.check_id)
        .outerjoin(Station, col(Station.id) == CheckResult.station_id)
        .outerjoin(Operator, col(Operator.id) == CheckResult.operator_id)
        .where(col(CheckResult.unit_id) == unit_id)
        .order_by(col(CheckResult.id))
    ).all()
    return [
        {
            "check": code,
            "name": name,
            "kind": kind,
            "value": r.value,
            "lower": r.lower,
            "upper": r.upper,
            "unit": r.unit,
            "passed": r.passed,
            "source": r.source,
            "tool": r.tool,
            "photo": r.photo,
            "station": station,
            "operator": operator,
            "at": r.at,
            "ncr_id": r.ncr_id,
        }
        for r, code, name, kind, station, operator in rows
    ]


def open_for_defect(
    session: Session,
    *,
    unit_id: int,
    unit_operation_id: int | None,
    station_id: int | None,
    reason_code: str,
    note: str,
    by: str,
    at: datetime | None = None,
) -> NonConformance:
    """The NCR of a defect that put the unit on hold: quality decides what happens."""
    ncr = NonConformance(
        unit_id=unit_id,
        unit_operation_id=unit_operation_id,
        station_id=station_id,
        origin="defect",
        cause=reason_code[:64],
        note=note[:1000],
        opened_by=by[:200],
        opened_at=at or utcnow(),
    )
    session.add(ncr)
    return ncr
