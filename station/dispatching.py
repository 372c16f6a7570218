"""The station workflow's calls into dispatch (``server.dispatch``, which owns the rules):
which unit operation comes next, and its status moves when a step starts, ends or is
put on hold. One seam, so the station service reads as the workflow it is.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from server import dispatch
from server.models import Station, Unit, UnitOperation

log = logging.getLogger(__name__)


def peek(
    session: Session, *, station: Station, unit_serial: str | None = None
) -> UnitOperation | None:
    """The unit operation this station would start next (or that of ``unit_serial``);
    nothing is claimed: a start the workflow refuses leaves the queue as it was."""
    for op in dispatch.queue_for(session, station=station):
        if unit_serial is None:
            return op
        unit = session.get(Unit, op.unit_id)
        if unit is not None and unit.serial == unit_serial.strip():
            return op
    return None


def start(session: Session, *, station: Station, unit_operation_id: int) -> None:
    """Claim the operation for ``station`` (atomic) and mark its unit started."""
    op = dispatch.claim(session, station=station, unit_operation_id=unit_operation_id)
    if op is None:
        # Another station took it between the peek and now (PostgreSQL, several ingests).
        raise LookupError(f"unit operation {unit_operation_id} is no longer ready here")
    unit = session.get(Unit, op.unit_id)
    assert unit is not None  # foreign key
    dispatch.mark_started(session, unit=unit)


def complete(session: Session, *, unit_operation_id: int) -> None:
    op = session.get(UnitOperation, unit_operation_id)
    if op is None:
        raise LookupError(f"unit operation {unit_operation_id} not found")
    dispatch.complete_operation(session, unit_operation=op)


def hold(session: Session, *, unit_operation_id: int, reason: str, by: str) -> None:
    op = session.get(UnitOperation, unit_operation_id)
    if op is None:
        raise LookupError(f"unit operation {unit_operation_id} not found")
    dispatch.hold(session, unit_operation=op, reason=reason, by=by)
