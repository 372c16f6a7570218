"""Reading a station's state and a scan's facts from the database, in few statements.

The hot path of the ingest (one accepted scan) reads here. Every read is a Core
select of the columns it needs, built once at import (SQLAlchemy's compiled cache
then serves every call) and run on the session's connection: no ORM objects, so
nothing in the identity map can go stale when the ledger's triggers move stock.
What one transaction may keep between events is in ``station.cache.Cache``; nothing
that a scan changes (who is signed in, the open step, consumptions, stock,
reservations) is kept, except where that transaction is the only writer or holds
the row locks of what it keeps (``Cache.carries``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from server.models import (
    Consumption,
    Location,
    Operation,
    StepRecord,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
)
from server.models.types import utcnow
from server.quality import results as quality
from station import identify
from station import workflow as wf
from station.cache import Cache, Lot, StationRef, station_table

step_table: sa.Table = StepRecord.__table__  # type: ignore[attr-defined]
unit_operation_table: sa.Table = UnitOperation.__table__  # type: ignore[attr-defined]
operation_table: sa.Table = Operation.__table__  # type: ignore[attr-defined]
unit_table: sa.Table = Unit.__table__  # type: ignore[attr-defined]
lot_table: sa.Table = StockLot.__table__  # type: ignore[attr-defined]
movement_table: sa.Table = StockMovement.__table__  # type: ignore[attr-defined]
consumption_table: sa.Table = Consumption.__table__  # type: ignore[attr-defined]
location_table: sa.Table = Location.__table__  # type: ignore[attr-defined]
# Stock removed in a rework waits here until a supervisor releases it: never picked.
_QUARANTINE = sa.select(location_table.c.id).where(location_table.c.kind == "quarantine")
_NOT_QUARANTINED = lot_table.c.location_id.not_in(_QUARANTINE.scalar_subquery())

_CANDIDATE_COLUMNS = (
    unit_operation_table.c.id,
    unit_operation_table.c.picks,
    operation_table.c.id,
    operation_table.c.code,
    operation_table.c.name,
    operation_table.c.instructions,
    operation_table.c.image,
    operation_table.c.standard_seconds,
    operation_table.c.required_skill,
    unit_table.c.id,
    unit_table.c.serial,
    unit_table.c.options,
    unit_table.c.work_order_id,
)
# Who is signed in and the open step with its unit operation, in one statement.
_NOW = (
    sa.select(
        station_table.c.operator_id,
        step_table.c.id,
        step_table.c.started_at,
        step_table.c.paused_at,
        step_table.c.paused_seconds,
        *_CANDIDATE_COLUMNS,
    )
    .select_from(
        station_table.outerjoin(
            step_table,
            sa.and_(step_table.c.station_id == station_table.c.id, step_table.c.ended_at.is_(None)),
        )
        .outerjoin(
            unit_operation_table, unit_operation_table.c.id == step_table.c.unit_operation_id
        )
        .outerjoin(operation_table, operation_table.c.id == unit_operation_table.c.operation_id)
        .outerjoin(unit_table, unit_table.c.id == unit_operation_table.c.unit_id)
    )
    .where(station_table.c.id == sa.bindparam("station_id"))
    .order_by(step_table.c.id.desc())
    .limit(1)
)
_CANDIDATE = (
    sa.select(*_CANDIDATE_COLUMNS)
    .select_from(
        unit_operation_table.join(
            operation_table, operation_table.c.id == unit_operation_table.c.operation_id
        ).join(unit_table, unit_table.c.id == unit_operation_table.c.unit_id)
    )
    .where(unit_operation_table.c.id == sa.bindparam("uop"))
)
_DONE = (
    sa.select(consumption_table.c.for_part_id, sa.func.sum(consumption_table.c.quantity))
    .where(
        consumption_table.c.unit_id == sa.bindparam("unit"),
        consumption_table.c.unit_operation_id == sa.bindparam("uop"),
    )
    .group_by(consumption_table.c.for_part_id)
)
_RECORDED = (
    sa.select(consumption_table.c.for_part_id, consumption_table.c.serial, lot_table.c.lot_code)
    .select_from(
        consumption_table.outerjoin(lot_table, consumption_table.c.lot_id == lot_table.c.id)
    )
    .where(
        consumption_table.c.unit_id == sa.bindparam("unit"),
        consumption_table.c.unit_operation_id == sa.bindparam("uop"),
        consumption_table.c.for_part_id.in_(sa.bindparam("parts", expanding=True)),
    )
    .order_by(consumption_table.c.id)
)
_RESERVATIONS = (
    sa.select(
        movement_table.c.lot_id,
        movement_table.c.part_id,
        sa.func.sum(movement_table.c.reserved_delta),
    )
    .where(movement_table.c.unit_id == sa.bindparam("unit"))
    .group_by(movement_table.c.lot_id, movement_table.c.part_id)
)
_LOT_COLUMNS = (
    lot_table.c.id,
    lot_table.c.lot_code,
    lot_table.c.serial,
    lot_table.c.on_hand,
    lot_table.c.reserved,
    lot_table.c.expires_on,
    lot_table.c.received_at,
)
_LOTS_OF_SERIAL = (
    sa.select(*_LOT_COLUMNS)
    .where(
        lot_table.c.part_id == sa.bindparam("part"),
        lot_table.c.serial == sa.bindparam("serial"),
        _NOT_QUARANTINED,
    )
    .order_by(lot_table.c.id)
)
_SERIAL_QUARANTINED = sa.select(sa.func.count()).where(
    lot_table.c.part_id == sa.bindparam("part"),
    lot_table.c.serial == sa.bindparam("serial"),
    lot_table.c.on_hand > 0,
    lot_table.c.location_id.in_(_QUARANTINE.scalar_subquery()),
)
_LOTS_OF_LOT = (
    sa.select(*_LOT_COLUMNS)
    .where(
        lot_table.c.part_id == sa.bindparam("part"),
        lot_table.c.lot_code == sa.bindparam("lot"),
        lot_table.c.serial == "",
        _NOT_QUARANTINED,
    )
    .order_by(lot_table.c.id)
)
_LOTS = (
    sa.select(*_LOT_COLUMNS)
    .where(lot_table.c.part_id == sa.bindparam("part"), lot_table.c.serial == "", _NOT_QUARANTINED)
    .order_by(lot_table.c.id)
)
# PostgreSQL, a batch that carries what it reads (``Cache.locking``): the lots it
# picks from are read under their row locks, and the lots a unit holds reservations
# on are locked before its reservations are read; whoever else would post to them
# (another station's pick, an order's cancellation, a planner moving a reservation)
# waits for the batch's commit, so what it carries stays true.
# A part's lots with stock, locked (its emptied lots of the past are read, not locked:
# there may be thousands, and nothing is taken from them).
_LOCK_STOCKED_LOTS = (
    sa.select(lot_table.c.id)
    .where(lot_table.c.part_id == sa.bindparam("part"), lot_table.c.on_hand > 0)
    .order_by(lot_table.c.id)
    .with_for_update(key_share=True)
)
_LOTS_OF_LOT_LOCKED = _LOTS_OF_LOT.with_for_update(key_share=True)
_LOCK_RESERVED_LOTS = (
    sa.select(lot_table.c.id)
    .where(
        lot_table.c.id.in_(
            sa.select(movement_table.c.lot_id).where(
                movement_table.c.unit_id == sa.bindparam("unit")
            )
        )
    )
    .order_by(lot_table.c.id)
    .with_for_update(key_share=True)
)
_SERIAL_IN_UNIT = (
    sa.select(unit_table.c.serial)
    .select_from(unit_table.join(consumption_table, consumption_table.c.unit_id == unit_table.c.id))
    .where(
        consumption_table.c.part_id == sa.bindparam("part"),
        consumption_table.c.serial == sa.bindparam("serial"),
        consumption_table.c.removed_at.is_(None),
    )
    .limit(1)
)


def station_state(
    session: Session, info: StationRef, cache: Cache, *, fresh: bool = False
) -> wf.StationState:
    """What the station is doing now (two statements; one when no step is open; none
    when this transaction already knows it, see ``Cache.states``, unless ``fresh``)."""
    known = None if fresh else cache.states.get(info.id)
    if known is not None:
        return known
    return state_from(session, info, now_row(session, info.id), cache)


def now_row(session: Session, station_id: int) -> Any:
    """Who is signed in at the station and its open step, as one row (one statement):
    operator id, step record id, started, paused at, paused seconds, then the
    candidate's columns (``_CANDIDATE_COLUMNS``, all None without an open step); None
    for an unknown station. ``state_from`` makes the station's state of it."""
    return session.connection().execute(_NOW, {"station_id": station_id}).first()


@dataclass(frozen=True)
class OpenStep:
    """The station's open step as ``now_row`` reads it: its clock, operation and unit
    (what the tablet's timer and unit header show without the picks and checks)."""

    step_record_id: int
    started_at: datetime
    paused_at: datetime | None
    paused_seconds: float
    unit_operation_id: int
    operation_id: int
    name: str
    instructions: str
    image: str
    standard_seconds: int
    unit_id: int
    serial: str
    options: tuple[str, ...]
    part_ids: tuple[int, ...]  # of the step's picks


def open_step(row: Any) -> OpenStep | None:
    """The open step of a ``now_row``; None when nobody works a unit at the station."""
    if row is None or row[1] is None or row[5] is None:
        return None
    (_operator, step_id, started_at, paused_at, paused_seconds, uop_id, picks) = row[:7]
    op_id, _code, name, instructions, image, standard_seconds, _skill = row[7:14]
    unit_id, serial, options = row[14:17]
    return OpenStep(
        step_id,
        started_at,
        paused_at,
        paused_seconds or 0.0,
        uop_id,
        op_id,
        name,
        instructions,
        image,
        standard_seconds,
        unit_id,
        serial,
        tuple(options or ()),
        tuple(int(p["part_id"]) for p in picks or () if isinstance(p, dict) and "part_id" in p),
    )


def state_from(session: Session, info: StationRef, row: Any, cache: Cache) -> wf.StationState:
    """The station's state from its ``now_row`` (the picks and checks read here)."""
    state = wf.StationState(
        station=info.code,
        station_id=info.id,
        name=info.name,
        kind=info.kind,
        site=info.site,
        line=info.line,
    )
    if row is None:
        return state
    operator_id, step_id, started_at, paused_at, paused_seconds = row[:5]
    operator = cache.operator(session, operator_id) if operator_id is not None else None
    state = replace(state, operator=operator)
    if step_id is None or row[5] is None:
        return state
    candidate = _candidate_from(session, row[5:], cache)
    return replace(
        state,
        unit=candidate.unit,
        operation=candidate.operation,
        picks=candidate.picks,
        checks=quality.statuses(
            session,
            operation_id=candidate.operation.operation_id,
            unit_operation_id=candidate.operation.unit_operation_id,
            options=candidate.unit.options,
            known=cache.checks,
        ),
        step_record_id=step_id,
        started_at=started_at,
        paused_at=paused_at,
        paused_seconds=paused_seconds or 0.0,
    )


def candidate(session: Session, unit_operation_id: int, cache: Cache) -> wf.Candidate | None:
    row = session.connection().execute(_CANDIDATE, {"uop": unit_operation_id}).first()
    return None if row is None else _candidate_from(session, tuple(row), cache)


def _candidate_from(session: Session, row: Any, cache: Cache) -> wf.Candidate:
    (
        uop_id,
        picks,
        op_id,
        code,
        name,
        instructions,
        image,
        standard_seconds,
        skill,
        unit_id,
        serial,
        options,
        work_order_id,
    ) = row
    cache.work_orders[unit_id] = work_order_id
    operation = wf.OperationInfo(
        uop_id, op_id, code, name, instructions, image, standard_seconds, skill
    )
    return wf.Candidate(
        wf.UnitInfo(unit_id, serial, tuple(options or ())),
        operation,
        _picks(session, unit_id, uop_id, picks, cache),
    )


def _picks(
    session: Session, unit_id: int, uop_id: int, picks: Any, cache: Cache
) -> tuple[wf.Pick, ...]:
    wanted = [p for p in (picks or []) if isinstance(p, dict) and "part_id" in p]
    if not wanted:
        return ()
    part_ids = [int(p["part_id"]) for p in wanted]
    cache.load_parts(session, part_ids)
    parts = cache.parts
    conn = session.connection()
    # Sums in SQL: a step may have thousands of picks of a bulk part.
    done: dict[int, int] = {
        int(part): int(n) for part, n in conn.execute(_DONE, {"unit": unit_id, "uop": uop_id})
    }
    tracked = [pid for pid in part_ids if (info := parts.get(pid)) and info.tracking != "none"]
    recorded: dict[int, list[str]] = {}
    if tracked and done:
        for for_part_id, serial, lot_code in conn.execute(
            _RECORDED, {"unit": unit_id, "uop": uop_id, "parts": tracked}
        ):
            tag = serial or lot_code
            if tag:
                recorded.setdefault(for_part_id, []).append(tag)
    out = []
    for p in wanted:
        part_id = int(p["part_id"])
        part = parts.get(part_id)
        allowed = list(cache.substitutes.get(part_id, []))
        reserved = p.get("reserved_part_id")
        if isinstance(reserved, int) and reserved != part_id and reserved not in allowed:
            allowed.insert(0, reserved)
        qty = int(p.get("qty", 1))
        # Two picks of one part in one step share its consumptions in order.
        got = done.get(part_id, 0)
        mine = min(got, qty)
        done[part_id] = got - mine
        tags = recorded.get(part_id, [])
        out.append(
            wf.Pick(
                part_id=part_id,
                sku=part.sku if part else str(p.get("sku", "")),
                description=part.description if part else "",
                qty=qty,
                done=mine,
                tracking=part.tracking if part else "none",
                bin=part.bin if part else "",
                substitutes=tuple(allowed),
                recorded=tuple(tags[:mine]),
            )
        )
        recorded[part_id] = tags[mine:]
    return tuple(out)


def _lots(conn: sa.Connection, part_id: int, lot: str | None, locking: bool) -> Any:
    """The part's lots (of the lot code ``lot`` when the label names one), locked with
    ``locking`` (see ``_LOCK_STOCKED_LOTS``)."""
    if lot:
        named: Any = _LOTS_OF_LOT_LOCKED if locking else _LOTS_OF_LOT
        return conn.execute(named, {"part": part_id, "lot": lot})
    if locking:
        conn.execute(_LOCK_STOCKED_LOTS, {"part": part_id}).all()
    return conn.execute(_LOTS, {"part": part_id})


def scan_facts(
    session: Session,
    *,
    data: str,
    unit_id: int,
    cache: Cache | None = None,
    today: date | None = None,
) -> wf.ScanFacts:
    """What ``data`` identifies, and the stock it would be taken from for ``unit_id``.

    A lot expired before ``today`` (the event's day in UTC; today by default) is taken
    only when no unexpired lot has stock: the workflow then refuses it (``lot_expired``).
    """
    cache = cache or Cache()
    day = today or utcnow().date()
    code = identify.parse_scan(data)
    found = identify.identify(session, code, cache=cache)
    if found is None:
        return wf.ScanFacts(error=code.error)
    conn = session.connection()
    carry = cache.carries(session)
    locking = cache.locking and not cache.exclusive(session)
    held = cache.reservations.get(unit_id) if carry else None
    if held is None:
        held = {}
        if locking:
            conn.execute(_LOCK_RESERVED_LOTS, {"unit": unit_id}).all()
        for lot_id, part_id, n in conn.execute(_RESERVATIONS, {"unit": unit_id}):
            held[(int(lot_id), int(part_id))] = int(n or 0)
        if carry:
            cache.reservations[unit_id] = held
    reservations = tuple(
        (lot_id, part_id, n) for (lot_id, part_id), n in sorted(held.items()) if n > 0
    )
    mine = {lot_id: n for lot_id, _part, n in reservations}
    serial_in_unit = None
    quarantined = False
    if found.serial:  # never carried: the serial's own lot and where it went
        lots = [
            Lot(*row)
            for row in conn.execute(
                _LOTS_OF_SERIAL, {"part": found.part_id, "serial": found.serial}
            )
        ]
        serial_in_unit = conn.execute(
            _SERIAL_IN_UNIT, {"part": found.part_id, "serial": found.serial}
        ).scalar()
        quarantined = bool(
            conn.execute(
                _SERIAL_QUARANTINED, {"part": found.part_id, "serial": found.serial}
            ).scalar()
        )
    else:
        key = (found.part_id, found.lot)
        known = cache.lots.get(key) if carry else None
        if known is None:
            rows = _lots(conn, found.part_id, found.lot, locking)
            known = [
                cache.lot_rows.setdefault(row[0], Lot(*row)) if carry else Lot(*row) for row in rows
            ]
            if carry:
                cache.lots[key] = known
        lots = list(known)
    # Lots with stock first, unexpired ones before expired ones (an expired lot is
    # never taken while a good one is there); among them the unit's own reserved lot
    # first, then what is free (first expiring, oldest), then anything on hand (so the
    # verdict can say "reserved for other units").
    if len(lots) > 1:
        lots.sort(
            key=lambda lot: (
                lot.on_hand < 1,
                lot.expires_on is not None and lot.expires_on < day,
                -(mine.get(lot.id, 0) > 0),
                lot.on_hand - lot.reserved < 1,
                lot.expires_on is None,
                lot.expires_on or lot.received_at.date(),
                lot.received_at,
            )
        )
    lot = lots[0] if lots else None
    lot_facts = (
        None
        if lot is None
        else wf.LotFacts(
            lot.id,
            lot.lot_code,
            lot.serial,
            lot.on_hand,
            lot.reserved,
            mine.get(lot.id, 0),
            lot.expires_on,
        )
    )
    return wf.ScanFacts(
        error=None,
        part_id=found.part_id,
        sku=found.sku,
        description=found.description,
        tracking=found.tracking,
        lot_code=found.lot,
        serial=found.serial,
        lot=lot_facts,
        expiry=found.expiry,
        serial_in_unit=serial_in_unit,
        quarantined=quarantined,
        unit_reservations=reservations,
    )
