"""The station workflow against the database: the one adapter every path calls.

The tablet (HTTP), the MQTT ingest and the JSON API all do the same three things::

    with write_session(engine) as session:          # the caller owns the transaction
        outcome = service.handle(session, station_code="BRD-1", event=Scan("..."),
                                 msg_id=msg_id, channel="mqtt", source="scanner1")
    publish(outcome.feedback(), service.snapshot(outcome.state))

``handle`` loads the station's state (``load_state``), gathers the facts the event
refers to (``station.reading``; for a scan, whether it is a part or a badge), lets
``station.workflow.decide`` judge, records the event with its verdict (message code
and parameters, ``Event.code`` / ``Event.params``) under its unique ``msg_id``
(insert-or-ignore: a ``msg_id`` seen before answers ``duplicate`` and changes
nothing), then writes the effects:
consumption, ledger movements, step record (pause time excluded), defect, andon
call, sign-in. A rejected event is recorded with its reason and changes nothing else.
A pick (the hot path) is a handful of Core statements: see ``station.reading``; in the
ingest's batches its consumption, outbox event and ledger lines are inserted with the
batch's others, one executemany per table (``flush``).

One station's events are decided one at a time: on PostgreSQL ``handle`` first takes
the station's row lock (``SELECT ... FOR NO KEY UPDATE``, held to the commit), so a
tablet's event waits for an ingest batch holding that station, and a batch may carry
the station's state from one of its events to the next (``Cache.carries``); SQLite's
write transaction already excludes every other writer.

Station state is derived from the database, never kept in memory: the open
``StepRecord`` at the station (``ended_at`` NULL) is the unit and operation in
progress, ``Station.operator_id`` who is signed in, the consumptions of that unit
operation the picks done.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from server import audit
from server.dispatch import DispatchError
from server.integration import outbox
from server.inventory import ledger
from server.models import (
    AndonCall,
    Consumption,
    Defect,
    DefectPhoto,
    Event,
    Operator,
    Part,
    Reason,
    Station,
    StepRecord,
    StockLot,
    Unit,
)
from server.models.types import EventResult, rfc3339, utcnow
from server.quality import results as quality
from server.security.secrets import verify_secret
from station import dispatching, messages, reading
from station import workflow as wf
from station.cache import Cache, StationRef, station_table

log = logging.getLogger(__name__)
MAX_DATA = 4096
MAX_REASON = 500
# Wrong PINs one badge may get, on every path together, before it is refused for a
# while (the tablet's own sign-in limiter, SIGNIN_MAX_FAILURES, sits in front of it).
PIN_MAX_FAILURES = 5
PIN_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class Outcome:
    """The verdict on one event, as the sender and the screens need it."""

    result: EventResult
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
        return self.result == EventResult.ACCEPTED

    @property
    def message(self) -> str:
        """English text for MQTT, logs and the API (the tablet: ``station.texts``)."""
        return messages.english(self.code, self.params)

    def feedback(self) -> dict[str, Any]:
        """The ``cmd/feedback`` payload (MQTT contract v1)."""
        payload: dict[str, Any] = {
            "ref": self.msg_id,
            "result": self.result,
            "code": self.code,
            "reason": self.message,
            "source": self.source,
        }
        if self.original:
            payload["original"] = self.original
        return payload


@dataclass
class _Ctx:
    session: Session
    info: StationRef
    state: wf.StationState
    now: datetime
    by: str
    cache: Cache
    event_id: int = 0
    facts: wf.Facts | None = None
    defer: bool = False  # a pick's rows go to ``cache.writes`` (see ``handle``)

    @property
    def station(self) -> Station:
        """The ORM row, for the effects that change it (sign-in, dispatch)."""
        station = self.session.get(Station, self.info.id)
        if station is None:
            raise LookupError(f"station {self.info.code} vanished")
        return station


class RefusedByDatabase(Exception):
    """The ledger refused a movement of a pick (the lot would go negative); raised by
    ``handle(savepoint=False)``: roll back and retry with savepoints."""

    def __init__(self, lot_id: int, kind: str, quantity: int, reserved_delta: int) -> None:
        super().__init__(f"lot {lot_id}: {kind} refused")
        self.lot_id, self.kind = lot_id, kind
        self.quantity, self.reserved_delta = quantity, reserved_delta


# --- reading the state -------------------------------------------------------------


def load_state(
    session: Session, *, station_code: str, cache: Cache | None = None
) -> wf.StationState:
    """What the station is doing now; ``LookupError`` for an unknown station."""
    cache = cache or Cache()
    info = cache.station(session, station_code)
    if info is None:
        raise LookupError(f"unknown station {station_code!r}")
    return reading.station_state(session, info, cache)


def _operator_info(operator: Operator) -> wf.OperatorInfo:
    assert operator.id is not None
    return wf.OperatorInfo(
        operator.id,
        operator.name,
        operator.badge,
        tuple(operator.skills or ()),
        operator.locale,
        has_pin=bool(operator.pin_hash),
    )


def snapshot(state: wf.StationState, *, now: datetime | None = None) -> dict[str, Any]:
    """The station as JSON: the retained ``state`` payload and what the tablet renders."""
    now = now or utcnow()
    step = None
    if state.operation is not None:
        op = state.operation
        step = {
            "unit_operation_id": op.unit_operation_id,
            "code": op.code,
            "name": op.name,
            "instructions": op.instructions,
            "image": op.image,
            "standard_seconds": op.standard_seconds,
            "required_skill": op.required_skill,
            "started_at": rfc3339(state.started_at),
            "paused": state.paused,
            "paused_seconds": round(state.paused_seconds, 1),
            "worked_seconds": round(state.worked_seconds(now), 1),
            "complete": state.complete,
        }
    return {
        "station": state.station,
        "name": state.name,
        "kind": state.kind,
        "site": state.site,
        "line": state.line,
        "operator": None
        if state.operator is None
        else {
            "badge": state.operator.badge,
            "name": state.operator.name,
            "locale": state.operator.locale,
        },
        "unit": None
        if state.unit is None
        else {"serial": state.unit.serial, "options": list(state.unit.options)},
        "step": step,
        "picks": [
            {
                "part_id": p.part_id,
                "sku": p.sku,
                "description": p.description,
                "bin": p.bin,
                "tracking": p.tracking,
                "qty": p.qty,
                "done": p.done,
                "recorded": list(p.recorded),
            }
            for p in state.picks
        ],
        "checks": [
            {
                "code": c.spec.code,
                "kind": c.spec.kind,
                "name": c.spec.name,
                "count": c.spec.needed,
                "passed": c.passed,
                "lower": c.spec.lower,
                "upper": c.spec.upper,
                "unit": c.spec.unit,
                "done": c.done,
            }
            for c in state.checks
        ],
        "at": rfc3339(now),
    }


# --- handling an event -------------------------------------------------------------


def handle(
    session: Session,
    *,
    station_code: str,
    event: wf.StationEvent,
    msg_id: str | None = None,
    channel: str = "ui",
    source: str = "",
    seq: int | None = None,
    ts: datetime | None = None,
    payload: dict[str, Any] | None = None,
    actor: str = "",
    address: str = "",
    cache: Cache | None = None,
    savepoint: bool = True,
    defer: bool = False,
) -> Outcome:
    """Decide ``event`` at ``station_code`` and record it in the caller's transaction.

    Start that transaction as a write (``server.db.begin_write`` / ``write_session``)
    and commit after this returns. ``msg_id`` identifies the event for dedupe (a fresh
    one is made when ``None``); ``channel`` is mqtt | http | ui.

    ``cache`` (``station.cache.Cache``) may be shared by the calls of one
    transaction. With ``savepoint`` (the default) a database refusal of the effects
    (a serial built in twice by a concurrent writer, stock gone) is answered
    ``conflict`` and the transaction stays usable; without it the error propagates
    and the caller must roll back and retry (the ingest's batches: one statement
    fewer per effect, and a refused batch is retried event by event).

    With ``defer`` and without a savepoint, where the transaction carries its states,
    lots and reservations in ``cache`` (``Cache.carries``: SQLite's one writer, or a
    PostgreSQL batch with ``cache.locking``: the ingest's batches), a pick's
    consumption, outbox event and ledger lines are kept in ``cache.writes`` and
    inserted with one executemany per table by ``flush``: before anything reads those
    tables (any event but a scan at a station whose state is carried, a serially
    tracked scan, effects other than picks), and by the caller, who must call
    ``flush`` before its commit. A refusal by the database (the serial's unique index,
    a lot's CHECK) then surfaces at that ``flush``: roll back and retry, as for any
    refusal without a savepoint.
    """
    msg_id = msg_id or str(uuid.uuid4())
    now = utcnow()
    cache = cache or Cache()
    if session.new or session.dirty:
        session.flush()  # Core reads below run on the connection, without autoflush
    kind, data = _kind_and_data(event)
    # What was sent, as the event row keeps it (``event_row``), with its verdict.
    sent: dict[str, Any] = {
        "msg_id": msg_id,
        "channel": channel,
        "kind": kind,
        "source": source,
        "seq": seq,
        "ts": ts,
        "data": data,
        "payload": payload,
    }
    info = cache.station(session, station_code)
    if info is None:
        code, params = "unknown_station", {"station": station_code[:64]}
        if cache.writes:
            flush(session, cache)  # the kept events' ids come first
        event_id = record_event(
            session,
            event_row(
                **sent, station_id=None, result=EventResult.REJECTED, code=code, params=params
            ),
        )
        if event_id is None:
            return _duplicate(session, msg_id, station_code, source)
        log.warning(
            "station %s: event %s rejected: %s",
            station_code[:64],
            msg_id,
            messages.english(code, params),
        )
        return Outcome(EventResult.REJECTED, code, params, msg_id, station_code, event_id, source)
    if info.id not in cache.locked and not cache.exclusive(session):
        # PostgreSQL: one station's events one at a time (the module docstring).
        session.connection().execute(_LOCK_STATION, {"id": info.id})
        cache.locked.add(info.id)
    defer = defer and not savepoint and cache.carries(session)
    if cache.writes and not (defer and isinstance(event, wf.Scan)):
        flush(session, cache)  # this event reads the database: it must see every pick
    # A scan reads its station's state (when not carried) without the kept rows: they
    # are other units' picks (a unit's picks are kept only at the station of its open
    # step, and it leaves that station by an event that flushes), and the lots they
    # moved are carried (``_post``), never read again.
    state = reading.station_state(session, info, cache)
    operator = state.operator
    by = actor or (
        f"{operator.name} ({operator.badge}) at {info.code}" if operator else f"station {info.code}"
    )
    ctx = _Ctx(session, info, state, now, by, cache)
    ctx.facts = facts = _facts(ctx, event)
    if cache.writes and facts.scan is not None and facts.scan.serial:
        # A serial's lot and where it went are read from the database, never carried.
        flush(session, cache)
        ctx.facts = facts = _facts(ctx, event)
    decision = wf.decide(state, event, facts)
    if decision.code == "signed_in" and facts.operator is not None and not actor:
        # A sign-in or a hand-over is the act of the badge's owner, not of whoever
        # was signed in before.
        ctx.by = by = f"{facts.operator.name} ({facts.operator.badge}) at {info.code}"
    ctx.defer = defer and all(isinstance(e, wf.RecordConsumption) for e in decision.effects)
    keep = ctx.defer and msg_id in cache.writes.fresh
    if cache.writes and (not ctx.defer or (not keep and cache.writes.events)):
        # Sign-in, start, end, hold... read and write the rest; an event inserted
        # now takes the id after the kept ones.
        flush(session, cache)
    # The event row carries its verdict: one INSERT, and a msg_id seen before (or
    # raced by another process) changes nothing; kept back with the picks' rows when
    # the batch knows its msg_id is new (``expect``).
    row = event_row(
        **sent,
        station_id=info.id,
        result=decision.result,
        code=decision.code,
        params=decision.params,
        unit_id=state.unit.id if state.unit else None,
        operator_id=operator.id if operator else None,
    )
    event_id = _keep_event(session, cache, row) if keep else record_event(session, row)
    if event_id is None:
        return _duplicate(session, msg_id, station_code, source)
    ctx.event_id = event_id
    if decision.effects:  # a measurement out of limits is rejected and still recorded
        if savepoint:
            try:
                with session.begin_nested():
                    _apply_all(ctx, decision)
            except (
                sa.exc.IntegrityError,
                ledger.InsufficientStock,
                LookupError,
                DispatchError,
                RefusedByDatabase,
            ) as exc:
                log.warning("station %s: %s refused by the database: %s", station_code, kind, exc)
                cache.forget()  # it may have counted what the savepoint took back
                decision = wf.reject("conflict", detail=_short(_explain(session, exc)))
                session.execute(
                    sa.update(_EVENTS)
                    .where(_EVENTS.c.id == event_id)
                    .values(
                        result=decision.result,
                        code=decision.code,
                        params=decision.params,
                        reason=decision.message[:MAX_REASON],
                    )
                )
        else:
            _apply_all(ctx, decision)
    if decision.accepted and not isinstance(event, wf.Scan | wf.DeviceEvent):
        audit.record(
            session,
            actor=by,
            action=f"station.{kind}",
            entity="station",
            entity_id=info.code,
            address=address or info.code,
            detail={"code": decision.code, **decision.params, "msg_id": msg_id},
        )
    if not decision.accepted:
        log.info("station %s rejected %s %r: %s", station_code, kind, data[:80], decision.message)
    if not decision.effects:
        after = state
    elif all(isinstance(e, wf.RecordConsumption) for e in decision.effects):
        after = _after_picks(state, decision, facts)  # a pick: no need to read again
    else:
        cache.forget()  # sign-in, start, end, hold...: read everything again
        after = reading.station_state(session, info, cache, fresh=True)
    if cache.exclusive(session) or info.id in cache.locked:
        cache.states[info.id] = after
    else:
        cache.states.pop(info.id, None)
    return Outcome(
        EventResult(decision.result),
        decision.code,
        decision.params,
        msg_id,
        station_code,
        event_id,
        source,
        after,
    )


def lock_stations(session: Session, cache: Cache, codes: list[str]) -> None:
    """PostgreSQL: take the row locks of the stations ``codes`` names (known ones) in one
    statement, in id order, before a batch reads anything else. ``handle`` would take
    each at the station's first event; taken first and together, a batch never holds a
    lot's lock while it waits for a station, so a tablet's event (its station, then the
    lots) and a batch never wait on each other in a circle. Nothing on SQLite."""
    if cache.exclusive(session):
        return
    ids = sorted(
        {info.id for code in set(codes) if (info := cache.station(session, code)) is not None}
        - cache.locked
    )
    if ids:
        session.connection().execute(_LOCK_STATIONS, {"ids": ids}).all()
        cache.locked.update(ids)


def _duplicate(session: Session, msg_id: str, station_code: str, source: str) -> Outcome:
    original = session.connection().execute(_ORIGINAL, {"msg_id": msg_id}).scalar()
    return Outcome(
        EventResult.DUPLICATE,
        "duplicate",
        {},
        msg_id,
        station_code,
        source=source,
        original=original,
    )


def _after_picks(state: wf.StationState, decision: wf.Decision, facts: wf.Facts) -> wf.StationState:
    """The state after a pick, as ``load_state`` would read it back."""
    picks = list(state.picks)
    lot = facts.scan.lot if facts.scan else None
    for effect in decision.effects:
        if not isinstance(effect, wf.RecordConsumption):
            continue
        for i, p in enumerate(picks):
            if p.part_id == effect.for_part_id and p.remaining:
                tag = ""
                if p.tracking != "none":
                    tag = effect.serial or (
                        lot.lot_code if lot and lot.lot_id == effect.lot_id else ""
                    )
                picks[i] = replace(
                    p, done=p.done + effect.quantity, recorded=p.recorded + ((tag,) if tag else ())
                )
                break
    return replace(state, picks=tuple(picks))


_EVENTS: sa.Table = Event.__table__  # type: ignore[attr-defined]
_CONSUMPTIONS: sa.Table = Consumption.__table__  # type: ignore[attr-defined]
_ORIGINAL = sa.select(_EVENTS.c.result).where(_EVENTS.c.msg_id == sa.bindparam("msg_id"))
_INSERT_CONSUMPTION = sa.insert(_CONSUMPTIONS)
_INSERT_KEPT_EVENTS = sa.insert(_EVENTS)
_LAST_EVENT = sa.select(sa.func.max(_EVENTS.c.id))
_NEXT_EVENT_IDS = sa.select(
    sa.func.nextval(sa.func.pg_get_serial_sequence("event", "id"))
).select_from(sa.func.generate_series(1, sa.bindparam("n", type_=sa.Integer)))
_LOCK_STATION = (
    sa.select(station_table.c.id)
    .where(station_table.c.id == sa.bindparam("id"))
    .with_for_update(key_share=True)
)
_LOCK_STATIONS = (
    sa.select(station_table.c.id)
    .where(station_table.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(station_table.c.id)
    .with_for_update(key_share=True)
)
_KNOWN = sa.select(_EVENTS.c.msg_id).where(
    _EVENTS.c.msg_id.in_(sa.bindparam("ids", expanding=True))
)
_units: sa.Table = Unit.__table__  # type: ignore[attr-defined]
_lots: sa.Table = StockLot.__table__  # type: ignore[attr-defined]
_WORK_ORDER = sa.select(_units.c.work_order_id).where(_units.c.id == sa.bindparam("unit"))
_LOT_PART = sa.select(_lots.c.part_id).where(_lots.c.id == sa.bindparam("lot"))
_INSERT_EVENT = {
    name: dialect.insert(_EVENTS)
    .on_conflict_do_nothing(index_elements=["msg_id"])
    .returning(_EVENTS.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_INSERT_EVENTS = {
    name: dialect.insert(_EVENTS)
    .on_conflict_do_nothing(index_elements=["msg_id"])
    .returning(_EVENTS.c.msg_id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def record_event(session: Session, row: dict[str, Any]) -> int | None:
    """Insert the event ``row`` (``event_row``) unless its ``msg_id`` is known; its id,
    or ``None`` (duplicate).

    The verdict is stored as its message ``code`` and ``params`` (rendered when read,
    in the reader's language: ``station.texts``), with the English text in ``reason``
    for a person reading the table.

    Insert-or-ignore on the unique ``msg_id`` (``ON CONFLICT DO NOTHING`` on SQLite and
    PostgreSQL): two deliveries racing each other record one event, whatever the
    process or thread, and the loser learns it without an error or a rollback.
    """
    conn = session.connection()
    event_id: int | None = conn.execute(_INSERT_EVENT[conn.dialect.name], row).scalar()
    return event_id


def _keep_event(session: Session, cache: Cache, row: dict[str, Any]) -> int:
    """``record_event`` kept back in ``cache.writes`` (``handle(defer=True)``): the
    ``msg_id`` is known to be new (``expect``). On SQLite the id is the one SQLite will
    give it, the events table's last id plus the events kept before it (nothing else
    inserts an event before the flush: ``handle`` flushes first); on PostgreSQL one
    of the ids the batch took from the events' sequence (one statement for all)."""
    writes = cache.writes
    conn = session.connection()
    if not cache.exclusive(session):
        if not writes.event_ids:
            n = max(len(writes.fresh), 1)
            writes.event_ids = list(conn.execute(_NEXT_EVENT_IDS, {"n": n}).scalars())[::-1]
        event_id = writes.event_ids.pop()
    else:
        if not writes.events:
            writes.first_event_id = (conn.execute(_LAST_EVENT).scalar() or 0) + 1
        event_id = writes.first_event_id + len(writes.events)
    row["id"] = event_id
    writes.events.append(row)
    writes.fresh.discard(row["msg_id"])
    return int(row["id"])


def expect(session: Session, cache: Cache, msg_ids: list[str]) -> None:
    """The ``msg_id`` s a batch is about to decide: those the events table does not
    hold yet (one statement) may have their events kept back (``handle(defer=True)``
    where the transaction carries, ``Cache.carries``). Call it inside the batch's write
    transaction. On PostgreSQL another writer may still record one of them before the
    flush: the unique ``msg_id`` then refuses the flush, and the batch is rolled back
    and retried event by event, which answers that one ``duplicate``."""
    cache.writes.fresh = set()
    ids = [m for m in msg_ids if m]
    if not ids or not cache.carries(session):
        return
    known = set(session.connection().execute(_KNOWN, {"ids": ids}).scalars())
    cache.writes.fresh = set(ids) - known


def event_row(
    *,
    msg_id: str,
    station_id: int | None,
    channel: str,
    kind: str,
    source: str = "",
    seq: int | None = None,
    ts: datetime | None = None,
    data: str = "",
    payload: dict[str, Any] | None = None,
    result: str = EventResult.ACCEPTED,
    code: str = "",
    params: dict[str, Any] | None = None,
    unit_id: int | None = None,
    operator_id: int | None = None,
) -> dict[str, Any]:
    """The values of one event row (``record_event``, ``record_events``)."""
    return {
        "msg_id": msg_id,
        "station_id": station_id,
        "channel": channel,
        "kind": kind,
        "source": source[:64],
        "seq": seq,
        "ts": ts,
        "data": data[:MAX_DATA],
        "payload": payload or {},
        "result": result,
        "code": code,
        "params": params or {},
        "reason": messages.english(code, params)[:MAX_REASON] if code else "",
        "unit_id": unit_id,
        "operator_id": operator_id,
        "received_at": utcnow(),
    }


def record_events(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert many events (``event_row``) in one statement, each unless its ``msg_id``
    is known; the ``msg_id``s inserted (the others are duplicates)."""
    if not rows:
        return set()
    conn = session.connection()
    inserted = conn.execute(_INSERT_EVENTS[conn.dialect.name], rows).scalars()
    return set(inserted)


def _explain(session: Session, exc: Exception) -> Exception:
    """A refused ledger line as ``InsufficientStock`` (what the lot holds now)."""
    if not isinstance(exc, RefusedByDatabase):
        return exc
    lot = session.get(StockLot, exc.lot_id, populate_existing=True)
    if lot is None:
        return exc
    return ledger.InsufficientStock(
        lot, session.get(Part, lot.part_id), exc.kind, exc.quantity, exc.reserved_delta
    )


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _pin_failures(ctx: _Ctx, badge: str) -> bool:
    """Whether ``badge`` had PIN_MAX_FAILURES wrong PINs within PIN_WINDOW, on any path
    (tablet, MQTT, API) and any process: counted from the stored verdicts."""
    since = ctx.now - PIN_WINDOW
    failures = (
        ctx.session.connection()
        .execute(
            sa.select(sa.func.count()).where(
                _EVENTS.c.kind == "sign_in",
                _EVENTS.c.data == badge.strip()[:MAX_DATA],
                _EVENTS.c.code == "wrong_pin",
                _EVENTS.c.received_at >= since,
            )
        )
        .scalar()
    )
    return int(failures or 0) >= PIN_MAX_FAILURES


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
    if isinstance(event, wf.CheckInput):
        return "check", str(event.check)
    if isinstance(event, wf.CallAndon):
        return "andon", event.reason
    names = {
        wf.SignOut: "sign_out",
        wf.StartNext: "start",
        wf.CompleteStep: "complete",
        wf.Pause: "pause",
        wf.Resume: "resume",
        wf.CancelAndon: "andon_cancel",
    }
    return names[type(event)], ""


# --- facts ---------------------------------------------------------------------------


def _facts(ctx: _Ctx, event: wf.StationEvent) -> wf.Facts:
    session, state = ctx.session, ctx.state
    if isinstance(event, wf.Scan):
        if event.error:
            return wf.Facts(now=ctx.now)
        scan = None
        if state.unit is not None and state.operator is not None and not state.paused:
            scan = reading.scan_facts(
                session,
                data=event.data,
                unit_id=state.unit.id,
                cache=ctx.cache,
                today=ctx.now.date(),  # expiry judged on the event's UTC day, as decide does
            )
            if scan.part_id is not None:
                return wf.Facts(now=ctx.now, scan=scan)
        # Not a part: perhaps a badge (a sign-in, or a hand-over), on every path alike.
        badge = ctx.cache.badge(session, event.data.strip())
        candidate = None
        if badge is None and state.operator is not None and state.unit is None:
            # Or a unit's traveler: its step waiting here, if dispatch has it queued.
            uop = dispatching.peek(session, station=ctx.station, unit_serial=event.data[:64])
            if uop is not None and uop.id is not None:
                candidate = reading.candidate(session, uop.id, ctx.cache)
        return wf.Facts(
            now=ctx.now,
            scan=scan,
            operator=badge,
            pin_ok=badge is not None and not badge.has_pin,
            candidate=candidate,
        )
    if isinstance(event, wf.SignIn):
        operator = session.exec(
            select(Operator).where(Operator.badge == event.badge.strip(), Operator.active == True)  # noqa: E712
        ).first()
        if operator is None:
            return wf.Facts(now=ctx.now)
        info = _operator_info(operator)
        if operator.pin_hash and event.pin is not None and _pin_failures(ctx, event.badge):
            return wf.Facts(now=ctx.now, operator=info, pin_locked=True)
        pin_ok = (not operator.pin_hash) or verify_secret(operator.pin_hash, event.pin or "")
        return wf.Facts(now=ctx.now, operator=info, pin_ok=pin_ok)
    if isinstance(event, wf.StartNext | wf.StartUnit) and state.operator and not state.unit:
        uop = dispatching.peek(
            session, station=ctx.station, unit_serial=getattr(event, "unit_serial", None)
        )
        return wf.Facts(
            now=ctx.now,
            candidate=reading.candidate(session, uop.id, ctx.cache) if uop and uop.id else None,
        )
    if isinstance(event, wf.ReportDefect):
        codes = session.exec(select(Reason.code).where(Reason.kind == "defect")).all()
        return wf.Facts(now=ctx.now, defect_reasons=frozenset(codes) or None)
    if isinstance(event, wf.CancelAndon):
        open_call = session.exec(
            select(AndonCall.id).where(
                AndonCall.station_id == ctx.info.id, col(AndonCall.resolved_at).is_(None)
            )
        ).first()
        return wf.Facts(now=ctx.now, andon_open=open_call is not None)
    return wf.Facts(now=ctx.now)


# --- effects -------------------------------------------------------------------------


def _apply_all(ctx: _Ctx, decision: wf.Decision) -> None:
    for effect in decision.effects:
        if isinstance(effect, wf.RecordConsumption):
            _consume(ctx, effect)  # Core statements: nothing to flush
        else:
            _apply(ctx, effect)


def _apply(ctx: _Ctx, effect: wf.Effect) -> None:
    session, state = ctx.session, ctx.state
    if isinstance(effect, wf.RecordSignIn):
        station = ctx.station
        station.operator_id = effect.operator_id
        station.signed_in_at = ctx.now
        session.add(station)
    elif isinstance(effect, wf.RecordSignOut):
        station = ctx.station
        station.operator_id = None
        station.signed_in_at = None
        session.add(station)
    elif isinstance(effect, wf.BeginStep):
        dispatching.start(session, station=ctx.station, unit_operation_id=effect.unit_operation_id)
        session.add(
            StepRecord(
                unit_id=effect.unit_id,
                unit_operation_id=effect.unit_operation_id,
                operation_id=effect.operation_id,
                station_id=ctx.info.id,
                operator_id=effect.operator_id,
                started_at=ctx.now,
            )
        )
    elif isinstance(effect, wf.PauseStep | wf.ResumeStep | wf.EndStep | wf.HoldUnit):
        _step_change(ctx, effect)
    elif isinstance(effect, wf.RecordDefect):
        defect = Defect(
            unit_id=effect.unit_id,
            station_id=ctx.info.id,
            operator_id=state.operator.id if state.operator else None,
            unit_operation_id=effect.unit_operation_id,
            reason_code=effect.reason_code[:32],
            note=effect.note[:1000],
            disposition=effect.disposition,
            part_id=effect.part_id,
            at=ctx.now,
        )
        session.add(defect)
        if effect.photo is not None:
            session.flush()
            assert defect.id is not None
            content_type, data = effect.photo
            session.add(
                DefectPhoto(defect_id=defect.id, content_type=content_type, data=data, at=ctx.now)
            )
        if effect.disposition in ("hold", "scrap"):
            _emit_hold(ctx, effect)
            quality.open_for_defect(  # the held unit waits for quality's decision
                session,
                unit_id=effect.unit_id,
                unit_operation_id=effect.unit_operation_id,
                station_id=ctx.info.id,
                reason_code=effect.reason_code,
                note=effect.note,
                by=ctx.by,
                at=ctx.now,
            )
    elif isinstance(effect, wf.RaiseAndon):
        session.add(
            AndonCall(
                station_id=ctx.info.id,
                unit_id=effect.unit_id,
                operator_id=state.operator.id if state.operator else None,
                reason=effect.reason[:200],
                raised_at=ctx.now,
            )
        )
    elif isinstance(effect, wf.RecordCheckResult):
        quality.record(
            session,
            unit_id=effect.unit_id,
            unit_operation_id=effect.unit_operation_id,
            check_id=effect.check_id,
            passed=effect.passed,
            value=effect.value,
            source=effect.source,
            tool=effect.tool,
            photo=effect.photo,
            station_id=ctx.info.id,
            operator_id=state.operator.id if state.operator else None,
            event_id=ctx.event_id,
            at=ctx.now,
        )
    elif isinstance(effect, wf.OpenNonConformance):
        quality.open_for_check(
            session,
            unit_id=effect.unit_id,
            unit_operation_id=effect.unit_operation_id,
            check_id=effect.check_id,
            value=effect.value,
            station_id=ctx.info.id,
            by=ctx.by,
            at=ctx.now,
        )
    elif isinstance(effect, wf.WithdrawAndon):
        session.execute(
            sa.update(AndonCall)
            .where(col(AndonCall.station_id) == ctx.info.id, col(AndonCall.resolved_at).is_(None))
            .values(resolved_at=ctx.now)
        )
    else:
        raise TypeError(f"unknown effect {effect!r}")
    session.flush()


def _consume(ctx: _Ctx, effect: wf.RecordConsumption) -> None:
    """One consumption row and its ledger line(s), as Core statements."""
    session, state = ctx.session, ctx.state
    assert state.unit is not None and state.operation is not None
    unit_id = state.unit.id
    if unit_id not in ctx.cache.work_orders:
        ctx.cache.work_orders[unit_id] = (
            session.connection().execute(_WORK_ORDER, {"unit": unit_id}).scalar()
        )
    work_order_id = ctx.cache.work_orders[unit_id]
    operator_id = state.operator.id if state.operator else None
    row = {
        "unit_id": unit_id,
        "part_id": effect.part_id,
        "lot_id": effect.lot_id,
        "serial": effect.serial,
        "quantity": effect.quantity,
        "for_part_id": effect.for_part_id,
        "unit_operation_id": state.operation.unit_operation_id,
        "station_id": ctx.info.id,
        "operator_id": operator_id,
        "event_id": ctx.event_id,
        "at": ctx.now,
    }
    # uq_consumption_serial refuses a serial built in twice (IntegrityError).
    if ctx.defer:
        ctx.cache.writes.consumptions.append(row)
    else:
        session.connection().execute(_INSERT_CONSUMPTION, row)
    _post(
        ctx,
        lot_id=effect.lot_id,
        part_id=effect.part_id,
        kind="consumption",
        quantity=-effect.quantity,
        reserved_delta=-effect.reserved_here,
        work_order_id=work_order_id,
        reason=f"unit {state.unit.serial} {state.operation.code}",
    )
    scan = ctx.facts.scan if ctx.facts else None
    parts = {lot_id: part_id for lot_id, part_id, _n in (scan.unit_reservations if scan else ())}
    for lot_id, qty in effect.release:
        part_id = parts.get(lot_id)
        if part_id is None:
            part_id = session.connection().execute(_LOT_PART, {"lot": lot_id}).scalar()
        if part_id is None:
            raise LookupError(f"stock lot {lot_id} not found")
        _post(
            ctx,
            lot_id=lot_id,
            part_id=part_id,
            kind="unreservation",
            reserved_delta=-qty,
            work_order_id=work_order_id,
            reason="scanned another lot",
        )
    # Last: the outbound event takes its order's lock (PostgreSQL) after the lots', as
    # an ingest batch does (lots locked when read, orders at its flush), so a tablet's
    # pick and a batch never wait on each other in a circle.
    _emit_consumption(ctx, effect)


def _emit_consumption(ctx: _Ctx, effect: wf.RecordConsumption) -> None:
    """The component.consumed outbound event: one INSERT (docs/integration.md)."""
    state = ctx.state
    assert state.unit is not None and state.operation is not None
    scan = ctx.facts.scan if ctx.facts else None
    part = ctx.cache.part(ctx.session, effect.part_id)
    lot_code: str | None = None
    if not effect.serial and scan is not None:
        lot_code = scan.lot.lot_code if scan.lot and scan.lot.lot_id == effect.lot_id else None
        lot_code = lot_code or scan.lot_code
    event = outbox.event(
        type=outbox.COMPONENT_CONSUMED,
        unit_id=state.unit.id,
        at=ctx.now,
        data={
            "unit": state.unit.serial,
            "part": part.sku if part else (scan.sku if scan else ""),
            "lot": lot_code or None,
            "serial": effect.serial or None,
            "quantity": effect.quantity,
            "station": ctx.info.code,
            "operation": state.operation.code,
        },
    )
    if ctx.defer:
        ctx.cache.writes.outbox.append(event)
    else:
        outbox.emit_many(ctx.session, [event])


def _emit_hold(ctx: _Ctx, effect: wf.RecordDefect) -> None:
    """unit.held / unit.scrapped: a defect put the unit on hold."""
    outbox.emit(
        ctx.session,
        type=outbox.UNIT_SCRAPPED if effect.disposition == "scrap" else outbox.UNIT_HELD,
        unit_id=effect.unit_id,
        at=ctx.now,
        data={
            "unit": ctx.state.unit.serial if ctx.state.unit else None,
            "reason": effect.reason_code,
            "note": effect.note[:1000],
            "disposition": effect.disposition,
            "station": ctx.info.code,
        },
    )


def _post(
    ctx: _Ctx,
    *,
    lot_id: int,
    part_id: int,
    kind: str,
    work_order_id: int | None,
    reason: str,
    quantity: int = 0,
    reserved_delta: int = 0,
) -> None:
    assert ctx.state.unit is not None
    row = ledger.movement(
        lot_id=lot_id,
        part_id=part_id,
        kind=kind,
        quantity=quantity,
        reserved_delta=reserved_delta,
        by=ctx.by,
        unit_id=ctx.state.unit.id,
        work_order_id=work_order_id,
        event_id=ctx.event_id,
        reason=reason,
        at=ctx.now,
    )
    if ctx.defer and lot_id in ctx.cache.lot_rows:
        # Kept back only for a lot whose balances this transaction carries (``moved``
        # below): a later scan reads them from memory, never from the table.
        ctx.cache.writes.movements.append(row)
    else:
        if ctx.cache.writes:
            flush(ctx.session, ctx.cache)  # the lines before this one, in order
        try:
            ledger.append_many(ctx.session, [row])
        except sa.exc.IntegrityError as exc:
            raise RefusedByDatabase(lot_id, kind, quantity, reserved_delta) from exc
    ctx.cache.moved(
        unit_id=ctx.state.unit.id,
        lot_id=lot_id,
        part_id=part_id,
        quantity=quantity,
        reserved_delta=reserved_delta,
    )


def flush(session: Session, cache: Cache) -> None:
    """Insert the picks' rows ``handle`` kept in ``cache.writes``: their events, the
    consumptions, the ledger lines and the outbox events, each table with one
    executemany in the order the picks were decided (the ledger's triggers and the
    unique serial index run for every row). Call it before committing a transaction
    whose events went through ``handle(savepoint=False)``; a refusal raises
    ``sa.exc.IntegrityError`` and the transaction must be rolled back."""
    writes = cache.writes
    if not writes:
        return
    try:
        if writes.events:  # first: the other rows refer to them
            session.connection().execute(_INSERT_KEPT_EVENTS, writes.events)
        if writes.consumptions:
            session.connection().execute(_INSERT_CONSUMPTION, writes.consumptions)
        ledger.append_many(session, writes.movements)
        outbox.emit_many(session, writes.outbox)  # the orders' locks last (``_consume``)
    finally:
        writes.clear()


def _step_change(
    ctx: _Ctx, effect: wf.PauseStep | wf.ResumeStep | wf.EndStep | wf.HoldUnit
) -> None:
    session, state = ctx.session, ctx.state
    step = session.get(StepRecord, state.step_record_id) if state.step_record_id else None
    if step is None:
        raise LookupError(f"station {ctx.info.code} has no open step record")
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
            dispatching.hold(
                session, unit_operation_id=effect.unit_operation_id, reason=effect.reason, by=ctx.by
            )
    session.add(step)
