"""The station workflow's calls into dispatch: which unit operation comes next, and
the status moves of a unit operation when a step starts, ends or is put on hold.

``server.dispatch`` (the dispatch policy, issue 3) owns these rules; this module is
the one seam the station service goes through, and falls back to the plain rules
below (ready, same station kind, not claimed by another station; priority, due
date, release order) while that module is not installed.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from sqlmodel import Session, col, select

from server.models import Station, Unit, UnitOperation
from server.models.types import utcnow

log = logging.getLogger(__name__)


def _dispatch() -> ModuleType | None:
    try:
        return importlib.import_module("server.dispatch")
    except ModuleNotFoundError:
        return None


def peek(session: Session, *, station: Station, unit_serial: str | None = None
         ) -> UnitOperation | None:
    """The unit operation this station would start next (or of ``unit_serial``);
    nothing is claimed."""
    stmt = (select(UnitOperation).join(Unit, col(UnitOperation.unit_id) == Unit.id)
            .where(UnitOperation.station_kind == station.kind, UnitOperation.status == "ready",
                   (col(UnitOperation.station_id).is_(None))
                   | (col(UnitOperation.station_id) == station.id)))
    if unit_serial is not None:
        stmt = stmt.where(Unit.serial == unit_serial.strip())
    dispatch = _dispatch()
    if unit_serial is None and dispatch is not None and hasattr(dispatch, "claim_next"):
        with session.begin_nested() as savepoint:
            uop = dispatch.claim_next(session, station=station)
            uop_id = uop.id if uop is not None else None
            savepoint.rollback()  # a rejected start (skill) must leave the queue as it was
        return session.get(UnitOperation, uop_id, populate_existing=True) if uop_id else None
    stmt = stmt.order_by(col(UnitOperation.priority).desc(),
                         col(UnitOperation.due_date).is_(None), col(UnitOperation.due_date),
                         col(UnitOperation.released_at), col(UnitOperation.id))
    return session.exec(stmt).first()


def start(session: Session, *, station: Station, unit_operation_id: int) -> None:
    uop = session.get(UnitOperation, unit_operation_id)
    if uop is None:
        raise LookupError(f"unit operation {unit_operation_id} not found")
    uop.status = "active"
    uop.station_id = station.id
    uop.claimed_at = utcnow()
    session.add(uop)
    unit = session.get(Unit, uop.unit_id)
    dispatch = _dispatch()
    if unit is not None and dispatch is not None and hasattr(dispatch, "mark_started"):
        dispatch.mark_started(session, unit=unit)
    elif unit is not None and unit.status in ("queued", "released", "ready"):
        unit.status = "in_progress"
        session.add(unit)


def complete(session: Session, *, unit_operation_id: int) -> None:
    uop = session.get(UnitOperation, unit_operation_id)
    if uop is None:
        raise LookupError(f"unit operation {unit_operation_id} not found")
    dispatch = _dispatch()
    if dispatch is not None and hasattr(dispatch, "complete_operation"):
        dispatch.complete_operation(session, unit_operation=uop)
        return
    uop.status = "done"
    session.add(uop)
    following = session.exec(select(UnitOperation).where(
        UnitOperation.unit_id == uop.unit_id, UnitOperation.sequence > uop.sequence)
        .order_by(col(UnitOperation.sequence))).first()
    if following is not None:
        if following.status == "pending":
            following.status = "ready"
            session.add(following)
        return
    unit = session.get(Unit, uop.unit_id)
    if unit is not None:
        unit.status = "done"
        unit.completed_at = utcnow()
        session.add(unit)


def hold(session: Session, *, unit_operation_id: int, reason: str) -> None:
    uop = session.get(UnitOperation, unit_operation_id)
    if uop is None:
        raise LookupError(f"unit operation {unit_operation_id} not found")
    uop.status = "held"
    uop.held_reason = reason[:300]
    session.add(uop)
    unit = session.get(Unit, uop.unit_id)
    if unit is not None:
        unit.status = "held"
        session.add(unit)
