"""The station workflow against the database: the one adapter every path calls.

The tablet (HTTP), the MQTT ingest and the JSON API all do the same three things::

    with write_session(engine) as session:          # the caller owns the transaction
        outcome = service.handle(session, station_code="BRD-1", event=Scan("..."),
                                 msg_id=msg_id, channel="mqtt", source="scanner1")
    publish(outcome.feedback(), service.snapshot(outcome.state))

``handle`` records the event under its unique ``msg_id`` first (insert-or-ignore: a
``msg_id`` seen before answers ``duplicate`` and changes nothing), loads the station's
state (``load_state``), gathers the facts the event refers to, lets
``station.workflow.decide`` judge, and writes the effects: consumption, ledger
movements, step record (pause time excluded), defect, andon call, sign-in. A
rejected event is recorded with its reason and changes nothing else.

Station state is derived from the database, never kept in memory: the open
``StepRecord`` at the station (``ended_at`` NULL) is the unit and operation in
progress, ``Station.operator_id`` who is signed in, the consumptions of that unit
operation the picks done.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from server import audit
from server.auth import verify_secret
from server.dispatch import DispatchError
from server.inventory import ledger
from server.models import (
    AndonCall,
    Consumption,
    Defect,
    Event,
    Line,
    Operation,
    Operator,
    Part,
    Site,
    Station,
    StepRecord,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
)
from server.models.types import utcnow
from server.orders.reservations import substitutes_for
from station import dispatching, identify, messages
from station import workflow as wf

log = logging.getLogger(__name__)
MAX_DATA = 4096


@dataclass(frozen=True)
class Outcome:
    """The verdict on one event, as the sender and the screens need it."""

    result: str  # accepted | rejected | duplicate
    code: str
    params: dict[str, Any]
    msg_id: str
    station: str
    event_id: int | None = None
    source: str = ""
    state: wf.StationState | None = None
    original: str | None = None  # for a duplicate: the first verdict

    @property
    def accepted(self) -> bool:
        return self.result == "accepted"

    @property
    def message(self) -> str:
        """English text for MQTT, logs and the API."""
        return messages.english(self.code, self.params)

    def lazy_message(self) -> Any:
        """Translated when rendered (the tablet)."""
        return messages.lazy(self.code, self.params)

    def feedback(self) -> dict[str, Any]:
        """The ``cmd/feedback`` payload (MQTT contract v1)."""
        payload: dict[str, Any] = {"ref": self.msg_id, "result": self.result,
                                   "code": self.code, "reason": self.message,
                                   "source": self.source}
        if self.original:
            payload["original"] = self.original
        return payload


@dataclass
class _Ctx:
    session: Session
    station: Station
    state: wf.StationState
    now: datetime
    event_id: int
    by: str
    extra: dict[str, Any] = field(default_factory=dict)


# --- reading the state -------------------------------------------------------------


def load_state(session: Session, *, station_code: str) -> wf.StationState:
    """What the station is doing now; ``LookupError`` for an unknown station."""
    row = session.exec(
        select(Station, Line, Site).join(Line, col(Station.line_id) == Line.id)
        .join(Site, col(Line.site_id) == Site.id).where(Station.code == station_code)
    ).first()
    if row is None:
        raise LookupError(f"unknown station {station_code!r}")
    return _state(session, *row)


def _state(session: Session, station: Station, line: Line, site: Site) -> wf.StationState:
    assert station.id is not None
    state = wf.StationState(station=station.code, station_id=station.id, name=station.name,
                            kind=station.kind, site=site.code, line=line.code)
    if station.operator_id is not None:
        operator = session.get(Operator, station.operator_id)
        if operator is not None:
            state = _with(state, operator=_operator_info(operator))
    step = session.exec(select(StepRecord).where(
        StepRecord.station_id == station.id, col(StepRecord.ended_at).is_(None))
        .order_by(col(StepRecord.id).desc())).first()
    if step is None:
        return state
    candidate = _candidate(session, step.unit_operation_id)
    if candidate is None:
        return state
    return _with(state, unit=candidate.unit, operation=candidate.operation,
                 picks=candidate.picks, step_record_id=step.id, started_at=step.started_at,
                 paused_at=step.paused_at, paused_seconds=step.paused_seconds)


def _with(state: wf.StationState, **changes: Any) -> wf.StationState:
    from dataclasses import replace

    return replace(state, **changes)


def _operator_info(operator: Operator) -> wf.OperatorInfo:
    assert operator.id is not None
    return wf.OperatorInfo(operator.id, operator.name, operator.badge,
                           tuple(operator.skills or ()), operator.locale,
                           has_pin=bool(operator.pin_hash))


def _candidate(session: Session, unit_operation_id: int) -> wf.Candidate | None:
    row = session.exec(
        select(UnitOperation, Operation, Unit)
        .join(Operation, col(UnitOperation.operation_id) == Operation.id)
        .join(Unit, col(UnitOperation.unit_id) == Unit.id)
        .where(UnitOperation.id == unit_operation_id)).first()
    if row is None:
        return None
    uop, op, unit = row
    assert uop.id is not None and op.id is not None and unit.id is not None
    operation = wf.OperationInfo(uop.id, op.id, op.code, op.name, op.instructions, op.image,
                                 op.standard_seconds, op.required_skill)
    return wf.Candidate(wf.UnitInfo(unit.id, unit.serial, tuple(unit.options or ())),
                        operation, _picks(session, uop))


def _picks(session: Session, uop: UnitOperation) -> tuple[wf.Pick, ...]:
    wanted = [p for p in (uop.picks or []) if isinstance(p, dict) and "part_id" in p]
    if not wanted:
        return ()
    part_ids = [int(p["part_id"]) for p in wanted]
    parts = {p.id: p for p in session.exec(select(Part).where(col(Part.id).in_(part_ids)))}
    subs = substitutes_for(session, part_ids)
    # Sums in SQL: a step may have thousands of picks of a bulk part.
    done: dict[int, int] = {
        int(part): int(n) for part, n in session.exec(
            select(Consumption.for_part_id, sa.func.sum(Consumption.quantity))  # type: ignore[call-overload]
            .where(Consumption.unit_operation_id == uop.id)
            .group_by(col(Consumption.for_part_id))).all()}
    tracked = [pid for pid in part_ids if parts.get(pid) and parts[pid].tracking != "none"]
    recorded: dict[int, list[str]] = {}
    if tracked:
        for for_part_id, serial, lot_code in session.exec(
                select(Consumption.for_part_id, Consumption.serial, StockLot.lot_code)  # type: ignore[call-overload]
                .join(StockLot, col(Consumption.lot_id) == StockLot.id, isouter=True)
                .where(Consumption.unit_operation_id == uop.id,
                       col(Consumption.for_part_id).in_(tracked))
                .order_by(col(Consumption.id))).all():
            tag = serial or lot_code
            if tag:
                recorded.setdefault(for_part_id, []).append(tag)
    picks = []
    for p in wanted:
        part_id = int(p["part_id"])
        part = parts.get(part_id)
        allowed = list(subs.get(part_id, []))
        reserved = p.get("reserved_part_id")
        if isinstance(reserved, int) and reserved != part_id and reserved not in allowed:
            allowed.insert(0, reserved)
        qty = int(p.get("qty", 1))
        # Two picks of one part in one step share its consumptions in order.
        got = done.get(part_id, 0)
        mine = min(got, qty)
        done[part_id] = got - mine
        tags = recorded.get(part_id, [])
        picks.append(wf.Pick(
            part_id=part_id, sku=part.sku if part else str(p.get("sku", "")),
            description=part.description if part else "", qty=qty, done=mine,
            tracking=part.tracking if part else "none", bin=part.bin_location if part else "",
            substitutes=tuple(allowed), recorded=tuple(tags[:mine])))
        recorded[part_id] = tags[mine:]
    return tuple(picks)


def snapshot(state: wf.StationState, *, now: datetime | None = None) -> dict[str, Any]:
    """The station as JSON: the retained ``state`` payload and what the tablet renders."""
    now = now or utcnow()
    step = None
    if state.operation is not None:
        op = state.operation
        step = {"unit_operation_id": op.unit_operation_id, "code": op.code, "name": op.name,
                "instructions": op.instructions, "image": op.image,
                "standard_seconds": op.standard_seconds, "required_skill": op.required_skill,
                "started_at": _iso(state.started_at), "paused": state.paused,
                "paused_seconds": round(state.paused_seconds, 1),
                "worked_seconds": round(state.worked_seconds(now), 1),
                "complete": state.complete}
    return {
        "station": state.station, "name": state.name, "kind": state.kind,
        "site": state.site, "line": state.line,
        "operator": None if state.operator is None else {
            "badge": state.operator.badge, "name": state.operator.name,
            "locale": state.operator.locale},
        "unit": None if state.unit is None else {
            "serial": state.unit.serial, "options": list(state.unit.options)},
        "step": step,
        "picks": [{"part_id": p.part_id, "sku": p.sku, "description": p.description,
                   "bin": p.bin, "tracking": p.tracking, "qty": p.qty, "done": p.done,
                   "recorded": list(p.recorded)} for p in state.picks],
        "at": _iso(now),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


# --- handling an event -------------------------------------------------------------


def handle(session: Session, *, station_code: str, event: wf.StationEvent,
           msg_id: str | None = None, channel: str = "ui", source: str = "",
           seq: int | None = None, ts: datetime | None = None,
           payload: dict[str, Any] | None = None, actor: str = "",
           address: str = "") -> Outcome:
    """Decide ``event`` at ``station_code`` and record it in the caller's transaction.

    Start that transaction as a write (``server.db.begin_write`` / ``write_session``)
    and commit after this returns. ``msg_id`` identifies the event for dedupe (a fresh
    one is made when ``None``); ``channel`` is mqtt | http | ui.
    """
    msg_id = msg_id or str(uuid.uuid4())
    now = utcnow()
    row = session.exec(
        select(Station, Line, Site).join(Line, col(Station.line_id) == Line.id)
        .join(Site, col(Line.site_id) == Site.id).where(Station.code == station_code)
    ).first()
    kind, data = _kind_and_data(event)
    event_id = record_event(session, msg_id=msg_id, station_id=row[0].id if row else None,
                            channel=channel, kind=kind, source=source, seq=seq, ts=ts,
                            data=data, payload=payload or {})
    if event_id is None:
        original = session.exec(select(Event.result).where(Event.msg_id == msg_id)).first()
        return Outcome("duplicate", "duplicate", {}, msg_id, station_code, source=source,
                       original=original)
    if row is None:
        return finish_rejected(session, event_id=event_id, msg_id=msg_id,
                               station_code=station_code, source=source,
                               code="unknown_station", params={"station": station_code})
    station = row[0]
    state = _state(session, *row)
    operator = state.operator
    by = actor or (f"{operator.name} ({operator.badge}) at {station.code}" if operator
                   else f"station {station.code}")
    ctx = _Ctx(session, station, state, now, event_id, by)
    facts = _facts(ctx, event)
    decision = wf.decide(state, event, facts)
    if decision.accepted:
        try:
            with session.begin_nested():
                for effect in decision.effects:
                    _apply(ctx, effect)
        except (sa.exc.IntegrityError, ledger.InsufficientStock, LookupError,
                DispatchError) as exc:
            log.warning("station %s: %s refused by the database: %s", station_code, kind, exc)
            decision = wf.reject("conflict", detail=_short(exc))
    if decision.accepted and not isinstance(event, wf.Scan | wf.DeviceEvent):
        audit.record(session, actor=by, action=f"station.{kind}", entity="station",
                     entity_id=station.code, address=address or station.code,
                     detail={"code": decision.code, **decision.params, "msg_id": msg_id})
    session.execute(sa.update(Event).where(col(Event.id) == event_id).values(
        result=decision.result, reason=f"{decision.code}: {decision.message}"[:500],
        unit_id=state.unit.id if state.unit else None,
        operator_id=operator.id if operator else None))
    if not decision.accepted:
        after = state
    elif all(isinstance(e, wf.RecordConsumption) for e in decision.effects):
        after = wf.after(state, decision)  # a pick: no need to read the station again
    else:
        after = _state(session, *row)
    if not decision.accepted:
        log.info("station %s rejected %s %r: %s", station_code, kind, data[:80],
                 decision.message)
    return Outcome(decision.result, decision.code, decision.params, msg_id, station_code,
                   event_id, source, after)


def record_event(session: Session, *, msg_id: str, station_id: int | None, channel: str,
                 kind: str, source: str = "", seq: int | None = None,
                 ts: datetime | None = None, data: str = "",
                 payload: dict[str, Any] | None = None, result: str = "accepted",
                 reason: str = "") -> int | None:
    """Insert the event unless its ``msg_id`` is known; its id, or ``None`` (duplicate).

    Insert-or-ignore on the unique ``msg_id`` (``ON CONFLICT DO NOTHING`` on SQLite and
    PostgreSQL): two deliveries racing each other record one event, whatever the
    process or thread, and the loser learns it without an error or a rollback.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {"msg_id": msg_id, "station_id": station_id, "channel": channel, "kind": kind,
              "source": source[:64], "seq": seq, "ts": ts, "data": data[:MAX_DATA],
              "payload": payload or {}, "result": result, "reason": reason[:500],
              "received_at": utcnow()}
    stmt = (insert(Event).values(**values).on_conflict_do_nothing(index_elements=["msg_id"])
            .returning(col(Event.id)))
    return session.execute(stmt).scalar()


def finish_rejected(session: Session, *, event_id: int, msg_id: str, station_code: str,
                    source: str, code: str, params: dict[str, Any]) -> Outcome:
    """Mark a recorded event rejected (bad payload, unknown station) and say why."""
    text = messages.english(code, params)
    session.execute(sa.update(Event).where(col(Event.id) == event_id).values(
        result="rejected", reason=f"{code}: {text}"[:500]))
    log.warning("station %s: event %s rejected: %s", station_code, msg_id, text)
    return Outcome("rejected", code, params, msg_id, station_code, event_id, source)


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _kind_and_data(event: wf.StationEvent) -> tuple[str, str]:
    if isinstance(event, wf.Scan):
        return "scan", event.data
    if isinstance(event, wf.DeviceEvent):
        return "device", event.kind
    if isinstance(event, wf.SignIn):
        return "sign_in", event.badge
    if isinstance(event, wf.StartUnit):
        return "start", event.unit_serial
    if isinstance(event, wf.ReportDefect):
        return "defect", event.reason_code
    if isinstance(event, wf.CallAndon):
        return "andon", event.reason
    names = {wf.SignOut: "sign_out", wf.StartNext: "start", wf.CompleteStep: "complete",
             wf.Pause: "pause", wf.Resume: "resume"}
    return names[type(event)], ""


# --- facts ---------------------------------------------------------------------------


def _facts(ctx: _Ctx, event: wf.StationEvent) -> wf.Facts:
    session, state = ctx.session, ctx.state
    if isinstance(event, wf.SignIn):
        operator = session.exec(select(Operator).where(
            Operator.badge == event.badge.strip(), Operator.active == True)  # noqa: E712
        ).first()
        if operator is None:
            return wf.Facts(now=ctx.now)
        pin_ok = (not operator.pin_hash) or verify_secret(operator.pin_hash, event.pin or "")
        return wf.Facts(now=ctx.now, operator=_operator_info(operator), pin_ok=pin_ok)
    if isinstance(event, wf.StartNext | wf.StartUnit) and state.operator and not state.unit:
        uop = dispatching.peek(session, station=ctx.station,
                               unit_serial=getattr(event, "unit_serial", None))
        return wf.Facts(now=ctx.now, candidate=_candidate(session, uop.id) if uop and uop.id
                        else None)
    if isinstance(event, wf.Scan) and state.unit is not None and not event.error:
        return wf.Facts(now=ctx.now, scan=scan_facts(session, data=event.data,
                                                     unit_id=state.unit.id))
    return wf.Facts(now=ctx.now)


def scan_facts(session: Session, *, data: str, unit_id: int) -> wf.ScanFacts:
    """What ``data`` identifies, and the stock it would be taken from for ``unit_id``."""
    code = identify.parse_scan(data)
    found = identify.identify(session, code)
    if found is None:
        return wf.ScanFacts(error=code.error)
    reservations = tuple(
        (int(lot_id), int(part_id), int(n)) for lot_id, part_id, n in session.exec(
            select(StockMovement.lot_id, StockMovement.part_id,  # type: ignore[call-overload]
                   sa.func.sum(StockMovement.reserved_delta))
            .where(StockMovement.unit_id == unit_id)
            .group_by(col(StockMovement.lot_id), col(StockMovement.part_id))) if n and n > 0)
    mine = {lot_id: n for lot_id, _part, n in reservations}
    lots_q = select(StockLot).where(StockLot.part_id == found.part_id)
    serial_in_unit = None
    if found.serial:
        lots_q = lots_q.where(StockLot.serial == found.serial)
        serial_in_unit = session.exec(
            select(Unit.serial).join(Consumption, col(Consumption.unit_id) == Unit.id)
            .where(Consumption.part_id == found.part_id, Consumption.serial == found.serial)
        ).first()
    elif found.lot:
        lots_q = lots_q.where(StockLot.lot_code == found.lot, StockLot.serial == "")
    else:
        lots_q = lots_q.where(StockLot.serial == "")
    lots = list(session.exec(lots_q.order_by(col(StockLot.id))).all())
    # The unit's own reserved lot first, then what is free (first expiring, oldest), then
    # anything on hand (so the verdict can say "reserved for other units").
    lots.sort(key=lambda lot: (-(mine.get(lot.id or 0, 0) > 0), lot.on_hand - lot.reserved < 1,
                               lot.on_hand < 1, lot.expires_on is None,
                               lot.expires_on or lot.received_at.date(), lot.received_at))
    lot = lots[0] if lots else None
    lot_facts = None if lot is None or lot.id is None else wf.LotFacts(
        lot.id, lot.lot_code, lot.serial, lot.on_hand, lot.reserved, mine.get(lot.id, 0))
    return wf.ScanFacts(error=None, part_id=found.part_id, sku=found.sku,
                        description=found.description, tracking=found.tracking,
                        lot_code=found.lot, serial=found.serial, lot=lot_facts,
                        serial_in_unit=serial_in_unit, unit_reservations=reservations)


# --- effects -------------------------------------------------------------------------


def _apply(ctx: _Ctx, effect: wf.Effect) -> None:
    session, station, state = ctx.session, ctx.station, ctx.state
    if isinstance(effect, wf.RecordSignIn):
        station.operator_id = effect.operator_id
        station.signed_in_at = ctx.now
        session.add(station)
    elif isinstance(effect, wf.RecordSignOut):
        station.operator_id = None
        station.signed_in_at = None
        session.add(station)
    elif isinstance(effect, wf.BeginStep):
        dispatching.start(session, station=station, unit_operation_id=effect.unit_operation_id)
        assert station.id is not None
        session.add(StepRecord(unit_id=effect.unit_id, unit_operation_id=effect.unit_operation_id,
                               operation_id=effect.operation_id, station_id=station.id,
                               operator_id=effect.operator_id, started_at=ctx.now))
    elif isinstance(effect, wf.RecordConsumption):
        _consume(ctx, effect)
    elif isinstance(effect, wf.PauseStep | wf.ResumeStep | wf.EndStep | wf.HoldUnit):
        _step_change(ctx, effect)
    elif isinstance(effect, wf.RecordDefect):
        session.add(Defect(unit_id=effect.unit_id, station_id=station.id,
                           operator_id=state.operator.id if state.operator else None,
                           unit_operation_id=effect.unit_operation_id,
                           reason_code=effect.reason_code[:32], note=effect.note[:1000],
                           disposition=effect.disposition, at=ctx.now))
    elif isinstance(effect, wf.RaiseAndon):
        assert station.id is not None
        session.add(AndonCall(station_id=station.id, unit_id=effect.unit_id,
                              operator_id=state.operator.id if state.operator else None,
                              reason=effect.reason[:200], raised_at=ctx.now))
    else:
        raise TypeError(f"unknown effect {effect!r}")
    session.flush()


def _consume(ctx: _Ctx, effect: wf.RecordConsumption) -> None:
    session, state = ctx.session, ctx.state
    assert state.unit is not None and state.operation is not None
    unit = session.get(Unit, state.unit.id)
    work_order_id = unit.work_order_id if unit else None
    session.add(Consumption(
        unit_id=state.unit.id, part_id=effect.part_id, lot_id=effect.lot_id,
        serial=effect.serial, quantity=effect.quantity, for_part_id=effect.for_part_id,
        unit_operation_id=state.operation.unit_operation_id, station_id=ctx.station.id,
        operator_id=state.operator.id if state.operator else None, event_id=ctx.event_id,
        at=ctx.now))
    session.flush()  # uq_consumption_serial refuses a serial built in twice
    lot = session.get(StockLot, effect.lot_id, populate_existing=True)
    assert lot is not None
    ledger.post(session, lot=lot, kind="consumption", quantity=-effect.quantity,
                reserved_delta=-effect.reserved_here, by=ctx.by, unit_id=state.unit.id,
                work_order_id=work_order_id, event_id=ctx.event_id,
                reason=f"unit {state.unit.serial} {state.operation.code}")
    for lot_id, qty in effect.release:
        other = session.get(StockLot, lot_id, populate_existing=True)
        assert other is not None
        ledger.post(session, lot=other, kind="unreservation", reserved_delta=-qty, by=ctx.by,
                    unit_id=state.unit.id, work_order_id=work_order_id,
                    event_id=ctx.event_id, reason="scanned another lot")


def _step_change(ctx: _Ctx, effect: wf.PauseStep | wf.ResumeStep | wf.EndStep | wf.HoldUnit
                 ) -> None:
    session, state = ctx.session, ctx.state
    step = session.get(StepRecord, state.step_record_id) if state.step_record_id else None
    if step is None:
        raise LookupError(f"station {ctx.station.code} has no open step record")
    if isinstance(effect, wf.PauseStep):
        step.paused_at = effect.at
    elif isinstance(effect, wf.ResumeStep):
        step.paused_seconds += effect.paused_seconds
        step.paused_at = None
    else:
        if step.paused_at is not None:
            step.paused_seconds += max((ctx.now - step.paused_at).total_seconds(), 0.0)
            step.paused_at = None
        step.ended_at = ctx.now
        if isinstance(effect, wf.EndStep):
            dispatching.complete(session, unit_operation_id=effect.unit_operation_id)
        else:
            dispatching.hold(session, unit_operation_id=effect.unit_operation_id,
                             reason=effect.reason, by=ctx.by)
    session.add(step)
