"""Non-conformances: opened by a failed check (``results.open_for_check``), a defect
report or a supervisor; decided by a supervisor: rework, use as is (with a reason) or
scrap. Service functions take keyword arguments; the caller owns the transaction.

Status: ``open`` -> ``rework`` (in a rework station's queue) -> ``closed``; ``use_as_is``
and ``scrap`` close at once. Use as is lets the blocked step go on (its check counts as
done by that decision only in the records, never in the yield); scrap keeps the unit
held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server import audit
from server.dispatch import DispatchError, supervise
from server.integration import outbox
from server.models import NonConformance, Station, Unit, UnitOperation
from server.models.types import UnitOperationStatus, utcnow
from server.quality import messages

DISPOSITIONS = ("rework", "use_as_is", "scrap")
STATUSES = ("open", "rework", "closed")
ORIGINS = ("check", "defect", "supervisor")


class QualityError(ValueError):
    """A quality action that is not allowed now: a message ``code`` of
    ``server.quality.messages`` (or of ``station.messages``) and its parameters,
    rendered in the reader's language by the views; ``str()`` is the English text."""

    def __init__(self, code: str, **params: Any) -> None:
        self.code, self.params = code, params
        super().__init__(messages.english(code, params))


@dataclass(frozen=True)
class NcrRow:
    ncr: NonConformance
    unit: str
    station: str


def label(ncr: NonConformance) -> str:
    return f"NCR-{ncr.id:05d}" if ncr.id else "NCR"


def listing(
    session: Session,
    *,
    status: str | None = None,
    station: str | None = None,
    cause: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[NcrRow]:
    """NCRs newest first, filtered."""
    stmt = (
        select(NonConformance, Unit.serial, Station.code)
        .join(Unit, col(Unit.id) == NonConformance.unit_id)
        .outerjoin(Station, col(Station.id) == NonConformance.station_id)
        .order_by(col(NonConformance.id).desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(NonConformance.status == status)
    if station:
        stmt = stmt.where(Station.code == station)
    if cause:
        stmt = stmt.where(NonConformance.cause == cause)
    if since is not None:
        stmt = stmt.where(NonConformance.opened_at >= since)
    return [NcrRow(n, serial, code or "") for n, serial, code in session.exec(stmt)]


def open_ncr(
    session: Session,
    *,
    unit_serial: str,
    cause: str,
    note: str,
    by: str,
    origin: str = "supervisor",
    station_code: str | None = None,
    address: str = "",
) -> NonConformance:
    """A non-conformance opened by a person (a supervisor, or a defect report)."""
    unit = session.exec(select(Unit).where(Unit.serial == unit_serial.strip())).first()
    if unit is None:
        raise QualityError("unknown_unit", unit=unit_serial[:64])
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {', '.join(ORIGINS)}")  # a caller's bug
    cause = cause.strip()
    if not cause or len(cause) > 64:
        raise QualityError("cause_needed")
    station = None
    if station_code:
        station = session.exec(select(Station).where(Station.code == station_code)).first()
        if station is None:
            raise QualityError("unknown_station", station=station_code[:32])
    ncr = NonConformance(
        unit_id=unit.id or 0,
        station_id=station.id if station else None,
        origin=origin,
        cause=cause,
        note=note.strip()[:1000],
        opened_by=by[:200],
        opened_at=utcnow(),
    )
    session.add(ncr)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="quality.ncr_opened",
        entity="ncr",
        entity_id=ncr.id or "",
        address=address,
        detail={"unit": unit.serial, "cause": cause, "origin": origin},
    )
    return ncr


def decide(
    session: Session,
    *,
    ncr: NonConformance,
    disposition: str,
    reason: str,
    by: str,
    address: str = "",
) -> None:
    """Decide an open NCR. Rework sends the unit to the rework stations' queue."""
    session.refresh(ncr, with_for_update=True)  # two decisions at once: one wins (PostgreSQL)
    if ncr.status != "open":
        raise QualityError("decided_already", ncr=label(ncr), status=ncr.status)
    if disposition not in DISPOSITIONS:
        raise QualityError("bad_disposition")
    reason = reason.strip()
    if disposition in ("use_as_is", "scrap") and not reason:
        raise QualityError("reason_needed")
    now = utcnow()
    ncr.disposition = disposition
    ncr.disposition_reason = reason[:500]
    ncr.decided_by, ncr.decided_at = by[:200], now
    if disposition == "rework":
        ncr.status = "rework"
    else:
        ncr.status = "closed"
        ncr.closed_by, ncr.closed_at = by[:200], now
        if disposition == "use_as_is":
            _resume(session, ncr, by=by, address=address)
        else:  # scrap: the ERP hears of it as of a defect scrapped at the station
            unit = session.get(Unit, ncr.unit_id)
            outbox.emit(
                session,
                type=outbox.UNIT_SCRAPPED,
                unit_id=ncr.unit_id,
                at=now,
                data={
                    "unit": unit.serial if unit else None,
                    "reason": ncr.cause,
                    "note": reason[:500],
                    "disposition": "scrap",
                    "ncr": label(ncr),
                },
            )
    session.add(ncr)
    audit.record(
        session,
        actor=by,
        action="quality.ncr_decided",
        entity="ncr",
        entity_id=ncr.id or "",
        address=address,
        detail={"disposition": disposition, "reason": reason[:500]},
    )
    session.flush()


def _resume(session: Session, ncr: NonConformance, *, by: str, address: str) -> None:
    """Back to the line: the step the NCR blocked goes to its station's queue again."""
    if ncr.unit_operation_id is None:
        return
    op = session.get(UnitOperation, ncr.unit_operation_id)
    if op is None or op.status != UnitOperationStatus.HELD:
        return
    try:
        supervise.resume(session, unit_operation=op, by=by, address=address)
    except DispatchError as exc:
        raise QualityError("not_resumed", detail=str(exc)) from exc


def close_after_rework(
    session: Session, *, ncr: NonConformance, by: str, address: str = ""
) -> None:
    ncr.status = "closed"
    ncr.closed_by, ncr.closed_at = by[:200], utcnow()
    session.add(ncr)
    _resume(session, ncr, by=by, address=address)
    audit.record(
        session,
        actor=by,
        action="quality.ncr_closed",
        entity="ncr",
        entity_id=ncr.id or "",
        address=address,
        detail={"after": "rework"},
    )
    session.flush()


def count_by_cause(session: Session, *, since: datetime) -> list[tuple[str, int]]:
    """NCR causes since ``since``, most frequent first."""
    rows = session.exec(  # type: ignore[call-overload]
        select(NonConformance.cause, sa.func.count())
        .where(NonConformance.opened_at >= since)
        .group_by(col(NonConformance.cause))
    ).all()
    return sorted(((c, int(n)) for c, n in rows), key=lambda r: (-r[1], r[0]))
