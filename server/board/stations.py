"""Every station's state now, for the line board.

``andon`` (an open call), ``working`` / ``paused`` (an open step), ``blocked`` (nothing
ready for its kind of work but held work), else ``idle``; with the operator signed in,
the unit, the current cycle (pauses excluded) against the line's takt.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from server.models import (
    AndonCall,
    Line,
    Operation,
    Operator,
    Station,
    StepRecord,
    Unit,
    UnitOperation,
    UnitOperationStatus,
)


@dataclass
class BoardStationState:
    code: str
    name: str
    kind: str
    state: str  # idle | working | paused | andon | blocked
    operator: str | None = None
    unit: str | None = None
    operation: str | None = None
    cycle_seconds: float | None = None  # the open step so far, pauses excluded
    standard_seconds: int | None = None
    last_cycle_seconds: float | None = None
    takt_seconds: int = 0
    blocked_reason: str | None = None
    andon_id: int | None = None
    andon_reason: str | None = None
    andon_raised_at: datetime | None = None
    andon_acknowledged: bool = False


def station_states(
    db: Session, *, now: datetime, last_cycles: dict[str, list[float]] | None = None
) -> list[BoardStationState]:
    conn = db.connection()
    q = _q()
    out = []
    open_steps = {r.station_id: r for r in conn.execute(q["open_steps"])}
    andons: dict[int, Any] = {}
    for r in conn.execute(q["andons"]):
        andons.setdefault(r.station_id, r)  # the oldest open call per station
    stations = conn.execute(q["stations"]).all()
    kinds = {"kinds": sorted({r.kind for r in stations}) or [""]}
    held = {kind: reason for kind, reason in conn.execute(q["held"], kinds)}
    ready = {kind for (kind,) in conn.execute(q["ready"], kinds)}
    for code, name, kind, takt, operator, station_id in stations:
        s = BoardStationState(
            code=code, name=name, kind=kind, state="idle", operator=operator, takt_seconds=takt
        )
        step = open_steps.get(station_id)
        if step is not None:
            _, serial, op_code, started, paused_at, paused, standard, step_operator = step
            s.unit, s.operation, s.standard_seconds = serial, op_code, standard
            s.operator = s.operator or step_operator
            s.state = "paused" if paused_at is not None else "working"
            until = paused_at or now
            s.cycle_seconds = max((until - started).total_seconds() - (paused or 0.0), 0.0)
        elif kind in held and kind not in ready:
            s.state, s.blocked_reason = "blocked", held[kind]
        andon = andons.get(station_id)
        if andon is not None:
            s.state = "andon"
            s.andon_id, s.andon_reason, s.andon_raised_at = andon.id, andon.reason, andon.raised_at
            s.andon_acknowledged = andon.acknowledged_at is not None
        if last_cycles and last_cycles.get(code):
            s.last_cycle_seconds = last_cycles[code][-1]
        out.append(s)
    return out


@functools.cache
def _q() -> dict[str, Any]:
    """Statements built once (building a select costs more than running it)."""
    return {
        "open_steps": sa.select(
            col(StepRecord.station_id),
            col(Unit.serial),
            col(Operation.code),
            col(StepRecord.started_at),
            col(StepRecord.paused_at),
            col(StepRecord.paused_seconds),
            col(Operation.standard_seconds),
            col(Operator.name),
        )
        .join(Unit, col(Unit.id) == col(StepRecord.unit_id))
        .join(Operation, col(Operation.id) == col(StepRecord.operation_id))
        .outerjoin(Operator, col(Operator.id) == col(StepRecord.operator_id))
        .where(col(StepRecord.ended_at).is_(None)),
        "andons": sa.select(
            col(AndonCall.station_id),
            col(AndonCall.id),
            col(AndonCall.reason),
            col(AndonCall.raised_at),
            col(AndonCall.acknowledged_at),
        )
        .where(col(AndonCall.resolved_at).is_(None))
        .order_by(col(AndonCall.raised_at)),
        # Per kind through ix_unitop_queue (station_kind, status): never a scan of the
        # millions of done operations.
        "held": sa.select(
            col(UnitOperation.station_kind), sa.func.max(col(UnitOperation.held_reason))
        )
        .where(
            col(UnitOperation.station_kind).in_(sa.bindparam("kinds", expanding=True)),
            col(UnitOperation.status) == UnitOperationStatus.HELD,
        )
        .group_by(col(UnitOperation.station_kind)),
        "ready": sa.select(col(UnitOperation.station_kind))
        .where(
            col(UnitOperation.station_kind).in_(sa.bindparam("kinds", expanding=True)),
            col(UnitOperation.status) == UnitOperationStatus.READY,
        )
        .distinct(),
        "stations": sa.select(
            col(Station.code),
            col(Station.name),
            col(Station.kind),
            col(Line.takt_seconds),
            col(Operator.name),
            col(Station.id),
        )
        .join(Line, col(Line.id) == col(Station.line_id))
        .outerjoin(Operator, col(Operator.id) == col(Station.operator_id))
        .where(col(Station.active).is_(True))
        .order_by(col(Line.id), col(Station.position)),
    }
