"""Reading a station's state and a scan's facts from the database, in few statements.

The hot path of the ingest (one accepted scan) reads here. Every read is a Core
select of the columns it needs, built once at import (SQLAlchemy's compiled cache
then serves every call) and run on the session's connection: no ORM objects, so
nothing in the identity map can go stale when the ledger's triggers move stock.

``Cache`` keeps, for one write transaction, what does not change inside it: the
station/line/site codes, parts, their identifiers and substitutes, operators, the
work order of a unit. Make one per transaction (the ingest makes one per batch);
a fresh one on every call when none is given. Nothing that a scan changes (who is
signed in, the open step, consumptions, stock, reservations) is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from server.models import (
    Consumption,
    Line,
    Operation,
    Operator,
    Part,
    PartIdentifier,
    Site,
    Station,
    StepRecord,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
)
from server.orders.reservations import substitutes_for
from station import identify
from station import workflow as wf


@dataclass(frozen=True)
class StationInfo:
    id: int
    code: str
    name: str
    kind: str
    line: str
    site: str


@dataclass(frozen=True)
class PartInfo:
    id: int
    sku: str
    description: str
    tracking: str
    bin: str


def _t(model: Any) -> sa.Table:
    table: sa.Table = model.__table__
    return table


_st, _ln, _si = _t(Station), _t(Line), _t(Site)
_sr, _uo, _op, _un = _t(StepRecord), _t(UnitOperation), _t(Operation), _t(Unit)
_pt, _pi, _lot, _mv, _cn = (_t(Part), _t(PartIdentifier), _t(StockLot), _t(StockMovement),
                            _t(Consumption))
_who = _t(Operator)

_STATION = (sa.select(_st.c.id, _st.c.code, _st.c.name, _st.c.kind, _ln.c.code, _si.c.code)
            .select_from(_st.join(_ln, _st.c.line_id == _ln.c.id)
                         .join(_si, _ln.c.site_id == _si.c.id))
            .where(_st.c.code == sa.bindparam("code")))
_CANDIDATE_COLUMNS = (_uo.c.id, _uo.c.picks, _op.c.id, _op.c.code, _op.c.name,
                      _op.c.instructions, _op.c.image, _op.c.standard_seconds,
                      _op.c.required_skill, _un.c.id, _un.c.serial, _un.c.options,
                      _un.c.work_order_id)
# Who is signed in and the open step with its unit operation, in one statement.
_NOW = (sa.select(_st.c.operator_id, _sr.c.id, _sr.c.started_at, _sr.c.paused_at,
                  _sr.c.paused_seconds, *_CANDIDATE_COLUMNS)
        .select_from(_st.outerjoin(_sr, sa.and_(_sr.c.station_id == _st.c.id,
                                                _sr.c.ended_at.is_(None)))
                     .outerjoin(_uo, _uo.c.id == _sr.c.unit_operation_id)
                     .outerjoin(_op, _op.c.id == _uo.c.operation_id)
                     .outerjoin(_un, _un.c.id == _uo.c.unit_id))
        .where(_st.c.id == sa.bindparam("station_id"))
        .order_by(_sr.c.id.desc()).limit(1))
_CANDIDATE = (sa.select(*_CANDIDATE_COLUMNS)
              .select_from(_uo.join(_op, _op.c.id == _uo.c.operation_id)
                           .join(_un, _un.c.id == _uo.c.unit_id))
              .where(_uo.c.id == sa.bindparam("uop")))
_OPERATOR = (sa.select(_who.c.id, _who.c.name, _who.c.badge, _who.c.skills, _who.c.locale,
                       _who.c.pin_hash).where(_who.c.id == sa.bindparam("id")))
_PARTS = (sa.select(_pt.c.id, _pt.c.sku, _pt.c.description, _pt.c.tracking, _pt.c.bin_location)
          .where(_pt.c.id.in_(sa.bindparam("ids", expanding=True))))
# unit_id narrows by its index; every consumption of a unit operation is its unit's.
_DONE = (sa.select(_cn.c.for_part_id, sa.func.sum(_cn.c.quantity))
         .where(_cn.c.unit_id == sa.bindparam("unit"),
                _cn.c.unit_operation_id == sa.bindparam("uop"))
         .group_by(_cn.c.for_part_id))
_RECORDED = (sa.select(_cn.c.for_part_id, _cn.c.serial, _lot.c.lot_code)
             .select_from(_cn.outerjoin(_lot, _cn.c.lot_id == _lot.c.id))
             .where(_cn.c.unit_id == sa.bindparam("unit"),
                    _cn.c.unit_operation_id == sa.bindparam("uop"),
                    _cn.c.for_part_id.in_(sa.bindparam("parts", expanding=True)))
             .order_by(_cn.c.id))
_IDENTIFIER = (sa.select(_pi.c.part_id).where(_pi.c.kind == sa.bindparam("kind"),
                                              _pi.c.value == sa.bindparam("value")).limit(1))
_PATTERNS = (sa.select(_pi.c.value, _pi.c.part_id).where(_pi.c.kind == "pattern")
             .order_by(_pi.c.id))
_RESERVATIONS = (sa.select(_mv.c.lot_id, _mv.c.part_id, sa.func.sum(_mv.c.reserved_delta))
                 .where(_mv.c.unit_id == sa.bindparam("unit"))
                 .group_by(_mv.c.lot_id, _mv.c.part_id))
_LOT_COLUMNS = (_lot.c.id, _lot.c.lot_code, _lot.c.serial, _lot.c.on_hand, _lot.c.reserved,
                _lot.c.expires_on, _lot.c.received_at)
_LOTS_OF_SERIAL = (sa.select(*_LOT_COLUMNS).where(_lot.c.part_id == sa.bindparam("part"),
                                                  _lot.c.serial == sa.bindparam("serial"))
                   .order_by(_lot.c.id))
_LOTS_OF_LOT = (sa.select(*_LOT_COLUMNS).where(_lot.c.part_id == sa.bindparam("part"),
                                               _lot.c.lot_code == sa.bindparam("lot"),
                                               _lot.c.serial == "")
                .order_by(_lot.c.id))
_LOTS = (sa.select(*_LOT_COLUMNS).where(_lot.c.part_id == sa.bindparam("part"),
                                        _lot.c.serial == "").order_by(_lot.c.id))
_SERIAL_IN_UNIT = (sa.select(_un.c.serial).select_from(_un.join(_cn, _cn.c.unit_id == _un.c.id))
                   .where(_cn.c.part_id == sa.bindparam("part"),
                          _cn.c.serial == sa.bindparam("serial")).limit(1))


@dataclass
class _Lot:
    """A stock lot's balances as this transaction knows them."""

    id: int
    lot_code: str
    serial: str
    on_hand: int
    reserved: int
    expires_on: Any
    received_at: Any


class Cache:
    """What one write transaction may keep between events (see the module docstring)."""

    def __init__(self) -> None:
        self.stations: dict[str, StationInfo | None] = {}
        self.parts: dict[int, PartInfo | None] = {}
        self.substitutes: dict[int, list[int]] = {}
        self.identifiers: dict[tuple[str, str], int | None] = {}
        self.patterns: list[tuple[str, int]] | None = None
        self.operators: dict[int, wf.OperatorInfo | None] = {}
        self.work_orders: dict[int, int | None] = {}  # unit id -> its work order
        # Station id -> its state after the last event of this transaction. Kept only
        # where the write transaction excludes every other writer (SQLite: BEGIN
        # IMMEDIATE), so nothing else can change the station between two events; on
        # PostgreSQL each event reads the state again.
        self.states: dict[int, wf.StationState] = {}
        # Likewise (SQLite only) the lots a scan picks from and each unit's
        # reservations, kept true by ``moved`` for every ledger line written here.
        self.lots: dict[tuple[int, str | None], list[_Lot]] = {}
        self.lot_rows: dict[int, _Lot] = {}
        self.reservations: dict[int, dict[tuple[int, int], int]] = {}
        self._exclusive: bool | None = None

    def moved(self, *, unit_id: int | None, lot_id: int, part_id: int, quantity: int,
              reserved_delta: int) -> None:
        """A ledger line this transaction just wrote: keep the carried balances true."""
        lot = self.lot_rows.get(lot_id)
        if lot is not None:
            lot.on_hand += quantity
            lot.reserved += reserved_delta
        held = self.reservations.get(unit_id) if unit_id is not None else None
        if held is not None and reserved_delta:
            held[(lot_id, part_id)] = held.get((lot_id, part_id), 0) + reserved_delta

    def forget(self) -> None:
        """Drop what a transaction carries between events (after anything but a pick,
        or a refusal rolled back to a savepoint): the next event reads it again."""
        self.states.clear()
        self.lots.clear()
        self.lot_rows.clear()
        self.reservations.clear()

    def exclusive(self, session: Session) -> bool:
        """Whether this transaction is the only writer (SQLite)."""
        if self._exclusive is None:
            self._exclusive = session.connection().dialect.name == "sqlite"
        return self._exclusive

    def station(self, session: Session, code: str) -> StationInfo | None:
        if code not in self.stations:
            row = session.connection().execute(_STATION, {"code": code}).first()
            self.stations[code] = None if row is None else StationInfo(*row)
        return self.stations[code]

    def load_parts(self, session: Session, part_ids: list[int]) -> None:
        missing = [p for p in part_ids if p not in self.parts]
        if missing:
            for row in session.connection().execute(_PARTS, {"ids": missing}):
                self.parts[row[0]] = PartInfo(*row)
            for part_id in missing:
                self.parts.setdefault(part_id, None)
        missing = [p for p in part_ids if p not in self.substitutes]
        if missing:
            subs = substitutes_for(session, missing)
            for part_id in missing:
                self.substitutes[part_id] = subs.get(part_id, [])

    def part(self, session: Session, part_id: int) -> PartInfo | None:
        if part_id not in self.parts:
            self.load_parts(session, [part_id])
        return self.parts[part_id]

    def identifier(self, session: Session, kind: str, value: str) -> int | None:
        """The part whose ``kind`` identifier (gtin | code) is ``value``."""
        key = (kind, value)
        if key not in self.identifiers:
            self.identifiers[key] = session.connection().execute(
                _IDENTIFIER, {"kind": kind, "value": value}).scalar()
        return self.identifiers[key]

    def pattern_identifiers(self, session: Session) -> list[tuple[str, int]]:
        if self.patterns is None:
            self.patterns = [(v, p) for v, p in session.connection().execute(_PATTERNS)]
        return self.patterns

    def operator(self, session: Session, operator_id: int) -> wf.OperatorInfo | None:
        if operator_id not in self.operators:
            row = session.connection().execute(_OPERATOR, {"id": operator_id}).first()
            self.operators[operator_id] = None if row is None else wf.OperatorInfo(
                row[0], row[1], row[2], tuple(row[3] or ()), row[4], has_pin=bool(row[5]))
        return self.operators[operator_id]


def station_state(session: Session, info: StationInfo, cache: Cache, *,
                  fresh: bool = False) -> wf.StationState:
    """What the station is doing now (two statements; one when no step is open; none
    when this transaction already knows it, see ``Cache.states``, unless ``fresh``)."""
    known = None if fresh else cache.states.get(info.id)
    if known is not None:
        return known
    state = wf.StationState(station=info.code, station_id=info.id, name=info.name,
                            kind=info.kind, site=info.site, line=info.line)
    row = session.connection().execute(_NOW, {"station_id": info.id}).first()
    if row is None:
        return state
    operator_id, step_id, started_at, paused_at, paused_seconds = row[:5]
    operator = cache.operator(session, operator_id) if operator_id is not None else None
    if operator is not None:
        state = wf.StationState(station=info.code, station_id=info.id, name=info.name,
                                kind=info.kind, site=info.site, line=info.line,
                                operator=operator)
    if step_id is None or row[5] is None:
        return state
    candidate = _candidate_from(session, row[5:], cache)
    return wf.StationState(
        station=info.code, station_id=info.id, name=info.name, kind=info.kind,
        site=info.site, line=info.line, operator=operator, unit=candidate.unit,
        operation=candidate.operation, picks=candidate.picks, step_record_id=step_id,
        started_at=started_at, paused_at=paused_at, paused_seconds=paused_seconds or 0.0)


def candidate(session: Session, unit_operation_id: int, cache: Cache) -> wf.Candidate | None:
    row = session.connection().execute(_CANDIDATE, {"uop": unit_operation_id}).first()
    return None if row is None else _candidate_from(session, tuple(row), cache)


def _candidate_from(session: Session, row: Any, cache: Cache) -> wf.Candidate:
    (uop_id, picks, op_id, code, name, instructions, image, standard_seconds, skill,
     unit_id, serial, options, work_order_id) = row
    cache.work_orders[unit_id] = work_order_id
    operation = wf.OperationInfo(uop_id, op_id, code, name, instructions, image,
                                 standard_seconds, skill)
    return wf.Candidate(wf.UnitInfo(unit_id, serial, tuple(options or ())), operation,
                        _picks(session, unit_id, uop_id, picks, cache))


def _picks(session: Session, unit_id: int, uop_id: int, picks: Any, cache: Cache
           ) -> tuple[wf.Pick, ...]:
    wanted = [p for p in (picks or []) if isinstance(p, dict) and "part_id" in p]
    if not wanted:
        return ()
    part_ids = [int(p["part_id"]) for p in wanted]
    cache.load_parts(session, part_ids)
    parts = cache.parts
    conn = session.connection()
    # Sums in SQL: a step may have thousands of picks of a bulk part.
    done: dict[int, int] = {int(part): int(n) for part, n in
                            conn.execute(_DONE, {"unit": unit_id, "uop": uop_id})}
    tracked = [pid for pid in part_ids if (info := parts.get(pid)) and info.tracking != "none"]
    recorded: dict[int, list[str]] = {}
    if tracked and done:
        for for_part_id, serial, lot_code in conn.execute(
                _RECORDED, {"unit": unit_id, "uop": uop_id, "parts": tracked}):
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
        out.append(wf.Pick(
            part_id=part_id, sku=part.sku if part else str(p.get("sku", "")),
            description=part.description if part else "", qty=qty, done=mine,
            tracking=part.tracking if part else "none", bin=part.bin if part else "",
            substitutes=tuple(allowed), recorded=tuple(tags[:mine])))
        recorded[part_id] = tags[mine:]
    return tuple(out)


def scan_facts(session: Session, *, data: str, unit_id: int, cache: Cache | None = None
               ) -> wf.ScanFacts:
    """What ``data`` identifies, and the stock it would be taken from for ``unit_id``."""
    cache = cache or Cache()
    code = identify.parse_scan(data)
    found = identify.identify(session, code, cache=cache)
    if found is None:
        return wf.ScanFacts(error=code.error)
    conn = session.connection()
    carry = cache.exclusive(session)
    held = cache.reservations.get(unit_id) if carry else None
    if held is None:
        held = {}
        for lot_id, part_id, n in conn.execute(_RESERVATIONS, {"unit": unit_id}):
            held[(int(lot_id), int(part_id))] = int(n or 0)
        if carry:
            cache.reservations[unit_id] = held
    reservations = tuple((lot_id, part_id, n) for (lot_id, part_id), n in sorted(held.items())
                         if n > 0)
    mine = {lot_id: n for lot_id, _part, n in reservations}
    serial_in_unit = None
    if found.serial:  # never carried: the serial's own lot and where it went
        lots = [_Lot(*row) for row in conn.execute(
            _LOTS_OF_SERIAL, {"part": found.part_id, "serial": found.serial})]
        serial_in_unit = conn.execute(_SERIAL_IN_UNIT, {"part": found.part_id,
                                                        "serial": found.serial}).scalar()
    else:
        key = (found.part_id, found.lot)
        known = cache.lots.get(key) if carry else None
        if known is None:
            rows = (conn.execute(_LOTS_OF_LOT, {"part": found.part_id, "lot": found.lot})
                    if found.lot else conn.execute(_LOTS, {"part": found.part_id}))
            known = [cache.lot_rows.setdefault(row[0], _Lot(*row)) if carry else _Lot(*row)
                     for row in rows]
            if carry:
                cache.lots[key] = known
        lots = list(known)
    # The unit's own reserved lot first, then what is free (first expiring, oldest), then
    # anything on hand (so the verdict can say "reserved for other units").
    if len(lots) > 1:
        lots.sort(key=lambda lot: (-(mine.get(lot.id, 0) > 0), lot.on_hand - lot.reserved < 1,
                                   lot.on_hand < 1, lot.expires_on is None,
                                   lot.expires_on or lot.received_at.date(), lot.received_at))
    lot = lots[0] if lots else None
    lot_facts = None if lot is None else wf.LotFacts(
        lot.id, lot.lot_code, lot.serial, lot.on_hand, lot.reserved, mine.get(lot.id, 0))
    return wf.ScanFacts(error=None, part_id=found.part_id, sku=found.sku,
                        description=found.description, tracking=found.tracking,
                        lot_code=found.lot, serial=found.serial, lot=lot_facts,
                        serial_in_unit=serial_in_unit, unit_reservations=reservations)
