"""What one write transaction may keep between station events: the catalog cache.

``Cache`` keeps, for one write transaction, what does not change inside it: the
station/line/site codes, parts, their identifiers and substitutes, operators, the
work order of a unit; and, where the transaction is the only writer (SQLite) or holds
the row locks of what it carries (an ingest batch on PostgreSQL, ``locking``), the
station states, lots and reservations that its own events change (kept true by
``moved``). Make one per transaction, or keep one for several where nothing else
writes in between (the ingest: the catalog for a second, what it carries while
SQLite says no other connection has written, ``server.ingest.worker``); a fresh one on
every call when none is given. ``station.reading`` and ``station.identify`` read
through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from server.models import Line, Operator, Part, PartIdentifier, Site, Station
from server.orders.reservations import substitutes_for
from station import workflow as wf

station_table: sa.Table = Station.__table__  # type: ignore[attr-defined]
line_table: sa.Table = Line.__table__  # type: ignore[attr-defined]
site_table: sa.Table = Site.__table__  # type: ignore[attr-defined]
part_table: sa.Table = Part.__table__  # type: ignore[attr-defined]
identifier_table: sa.Table = PartIdentifier.__table__  # type: ignore[attr-defined]
operator_table: sa.Table = Operator.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StationRef:
    """A station's identity: its id and the codes of it, its line and its site."""

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


_STATION = (
    sa.select(
        station_table.c.id,
        station_table.c.code,
        station_table.c.name,
        station_table.c.kind,
        line_table.c.code,
        site_table.c.code,
    )
    .select_from(
        station_table.join(line_table, station_table.c.line_id == line_table.c.id).join(
            site_table, line_table.c.site_id == site_table.c.id
        )
    )
    .where(station_table.c.code == sa.bindparam("code"))
)
_OPERATOR_COLUMNS = (
    operator_table.c.id,
    operator_table.c.name,
    operator_table.c.badge,
    operator_table.c.skills,
    operator_table.c.locale,
    operator_table.c.pin_hash,
)
_OPERATOR = sa.select(*_OPERATOR_COLUMNS).where(operator_table.c.id == sa.bindparam("id"))
_BADGE = sa.select(*_OPERATOR_COLUMNS).where(
    operator_table.c.badge == sa.bindparam("badge"), operator_table.c.active.is_(True)
)
MAX_BADGE = 64  # Operator.badge
_PARTS = sa.select(
    part_table.c.id,
    part_table.c.sku,
    part_table.c.description,
    part_table.c.tracking,
    part_table.c.bin_location,
).where(part_table.c.id.in_(sa.bindparam("ids", expanding=True)))
_IDENTIFIER = (
    sa.select(identifier_table.c.part_id)
    .where(
        identifier_table.c.kind == sa.bindparam("kind"),
        identifier_table.c.value == sa.bindparam("value"),
    )
    .limit(1)
)
_PATTERNS = (
    sa.select(identifier_table.c.value, identifier_table.c.part_id)
    .where(identifier_table.c.kind == "pattern")
    .order_by(identifier_table.c.id)
)


@dataclass
class Lot:
    """A stock lot's balances as this transaction knows them."""

    id: int
    lot_code: str
    serial: str
    on_hand: int
    reserved: int
    expires_on: Any
    received_at: Any


class Writes:
    """The rows of a batch's picks not yet written (``station.service``, the ingest's
    batches): events (with the ids they will have), consumptions, outbox events and
    ledger lines, each inserted with one executemany by ``station.service.flush``
    before anything reads those tables and before the commit. ``fresh``: the batch's
    ``msg_id`` s the events table did not hold when the batch began
    (``station.service.expect``), whose events may be kept back."""

    def __init__(self) -> None:
        self.fresh: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self.first_event_id = 0  # SQLite: the id the first kept event will get
        self.event_ids: list[int] = []  # PostgreSQL: ids taken from the sequence, unused
        self.consumptions: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.movements: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.events or self.consumptions or self.outbox or self.movements)

    def clear(self) -> None:
        """Drop the rows (written, or their transaction rolled back)."""
        self.events, self.consumptions, self.outbox, self.movements = [], [], [], []
        self.event_ids = []


class Cache:
    """What one write transaction may keep between events (see the module docstring)."""

    def __init__(self, *, locking: bool = False) -> None:
        self.stations: dict[str, StationRef | None] = {}
        self.parts: dict[int, PartInfo | None] = {}
        self.substitutes: dict[int, list[int]] = {}
        self.identifiers: dict[tuple[str, str], int | None] = {}
        self.patterns: list[tuple[str, int]] | None = None
        self.operators: dict[int, wf.OperatorInfo | None] = {}
        self.badges: dict[str, wf.OperatorInfo | None] = {}
        self.work_orders: dict[int, int | None] = {}  # unit id -> its work order
        # Operation id -> its quality checks' rows (server.quality.results.specs).
        self.checks: dict[int, list[Any]] = {}
        # Station id -> its state after the last event of this transaction. Kept only
        # where nothing else can change the station between two events (``carries``):
        # the write transaction excludes every other writer (SQLite: BEGIN IMMEDIATE),
        # or holds the station's row lock (PostgreSQL, ``locked``), which every
        # ``station.service.handle`` takes before it reads a state.
        self.states: dict[int, wf.StationState] = {}
        # Likewise the lots a scan picks from and each unit's reservations, kept true
        # by ``moved`` for every ledger line written here (on PostgreSQL with
        # ``locking``: read under the lots' row locks, ``station.reading``).
        self.lots: dict[tuple[int, str | None], list[Lot]] = {}
        self.lot_rows: dict[int, Lot] = {}
        self.reservations: dict[int, dict[tuple[int, int], int]] = {}
        # The picks' rows kept back until ``station.service.flush`` (the ingest).
        self.writes = Writes()
        # PostgreSQL: the stations whose row this transaction has locked, and whether
        # it also locks the lots it reads so as to carry them (the ingest's batches).
        self.locked: set[int] = set()
        self.locking = locking
        self._exclusive: bool | None = None

    def moved(
        self, *, unit_id: int | None, lot_id: int, part_id: int, quantity: int, reserved_delta: int
    ) -> None:
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
        or a refusal rolled back to a savepoint, which gives its row locks back): the
        next event reads it again."""
        self.states.clear()
        self.locked.clear()
        self.lots.clear()
        self.lot_rows.clear()
        self.reservations.clear()

    def carry(self, other: Cache) -> None:
        """Take what ``other`` carries between events (states, lots, reservations)."""
        self.states, self.lots = other.states, other.lots
        self.lot_rows, self.reservations = other.lot_rows, other.reservations

    def exclusive(self, session: Session) -> bool:
        """Whether this transaction is the only writer (SQLite)."""
        if self._exclusive is None:
            self._exclusive = session.connection().dialect.name == "sqlite"
        return self._exclusive

    def carries(self, session: Session) -> bool:
        """Whether this transaction may keep lots, reservations and kept-back rows
        from event to event: it is the only writer (SQLite), or it row-locks what it
        reads (``locking``, PostgreSQL)."""
        return self.locking or self.exclusive(session)

    def station(self, session: Session, code: str) -> StationRef | None:
        if code not in self.stations:
            row = session.connection().execute(_STATION, {"code": code}).first()
            self.stations[code] = None if row is None else StationRef(*row)
        return self.stations[code]

    def load_parts(self, session: Session, part_ids: list[int]) -> None:
        missing = [p for p in part_ids if p not in self.parts]
        if missing:
            for row in session.connection().execute(_PARTS, {"ids": missing}):
                self.parts[row.id] = PartInfo(*row)
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
            self.identifiers[key] = (
                session.connection().execute(_IDENTIFIER, {"kind": kind, "value": value}).scalar()
            )
        return self.identifiers[key]

    def pattern_identifiers(self, session: Session) -> list[tuple[str, int]]:
        if self.patterns is None:
            self.patterns = [(v, p) for v, p in session.connection().execute(_PATTERNS)]
        return self.patterns

    def operator(self, session: Session, operator_id: int) -> wf.OperatorInfo | None:
        if operator_id not in self.operators:
            row = session.connection().execute(_OPERATOR, {"id": operator_id}).first()
            self.operators[operator_id] = None if row is None else _operator(row)
        return self.operators[operator_id]

    def badge(self, session: Session, text: str) -> wf.OperatorInfo | None:
        """The active operator whose badge ``text`` is, or ``None``."""
        if not text or len(text) > MAX_BADGE:
            return None
        if text not in self.badges:
            row = session.connection().execute(_BADGE, {"badge": text}).first()
            self.badges[text] = None if row is None else _operator(row)
        return self.badges[text]


def _operator(row: Any) -> wf.OperatorInfo:
    return wf.OperatorInfo(
        row.id, row.name, row.badge, tuple(row.skills or ()), row.locale, has_pin=bool(row.pin_hash)
    )
