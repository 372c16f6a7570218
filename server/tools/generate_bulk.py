"""Bulk-writing helpers of ``server.tools.generate``: the catalog as plain values, inserts
with explicit ids (executemany on SQLite, COPY on PostgreSQL), rolling lots that go
through the stock ledger. See ``server.tools.generate`` for what is generated and why it
bypasses the workflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.catalog.configure import ConfigurationError, resolve
from server.catalog.products import load_product
from server.models import Location, Operation, Operator, Part, Product, Station
from server.models.types import Tracking

GENERATED_BY = "taktline generate"
RECALL_LOT_SIZE = 10_000  # the TP-1 lot of the recall benchmark
LOT_UNITS = {
    "TP-1": RECALL_LOT_SIZE,
    "COOL-STD": 2_000,
    "COOL-TWR": 2_000,
    "FAN-120": 2_500,
}  # units per lot; other lot parts: 500 units a lot


_HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


class Writer:
    """Bulk inserts with explicit ids: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.raw: Any = conn.connection.dbapi_connection

        self._days: dict[int, str] = {}
        self._zone = "+00" if self.pg else ""

    def ts(self, epoch: float) -> str:
        """A UTC time as text both drivers load as is (SQLAlchemy's SQLite DATETIME
        format; COPY text with the offset on PostgreSQL), built without strftime: it
        is called for every row."""
        micros = round(epoch * 1_000_000)
        secs, us = divmod(micros, 1_000_000)
        day, rest = divmod(secs, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = datetime.fromtimestamp(day * 86400, UTC).strftime(
                "%Y-%m-%d "
            )
        return f"{prefix}{_HMS[rest]}.{us:06d}{self._zone}"

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if not self.conn.in_transaction():
            self.conn.begin()  # emits BEGIN (server.db); raw inserts must not autocommit
        cols = ", ".join(columns)
        cursor = self.raw.cursor()
        try:
            if self.pg:
                with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        finally:
            cursor.close()

    def next_id(self, table: str) -> int:
        return (
            int(self.conn.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {table}").scalar_one())
            + 1
        )

    def defer_keys(self, tables: Sequence[str]) -> list[str]:
        """Drop the secondary indexes of ``tables`` (and their foreign keys on
        PostgreSQL, where each row's check is a trigger and a row lock on the parent)
        and return the statements that build them again, to run after the load in the
        same transaction: building an index from sorted rows costs a fraction of
        maintaining it row by row, and re-adding a foreign key (or a unique index)
        checks every row again in one query, so the data loaded is checked all the
        same. Primary keys, unique constraints and triggers (the ledger's) stay."""
        names = list(tables)
        if self.pg:
            keys = self.conn.execute(
                sa.text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE contype = 'f' "
                    "AND conrelid::regclass::text = ANY(:t) ORDER BY 1, 2"
                ),
                {"t": names},
            ).all()
            indexes = self.conn.execute(
                sa.text(
                    "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) "
                    "FROM pg_index i WHERE indrelid::regclass::text = ANY(:t) "
                    "AND NOT indisprimary AND NOT EXISTS "
                    "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                    "ORDER BY 1"
                ),
                {"t": names},
            ).all()
            for table, name, _ in keys:
                self.conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            rebuild = [definition for _, definition in indexes]
            rebuild += [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in keys]
        else:
            marks = ", ".join("?" * len(names))
            indexes = self.conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                f"AND sql IS NOT NULL AND tbl_name IN ({marks}) ORDER BY name",
                tuple(names),
            ).all()
            rebuild = [definition for _, definition in indexes]
        for name, _ in indexes:
            self.conn.exec_driver_sql(f'DROP INDEX "{name}"')
        return rebuild

    def fix_sequences(self, tables: Iterable[str]) -> None:
        if not self.pg:
            return
        for table in tables:
            self.conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 1))"
            )


@dataclass(frozen=True, slots=True)
class PartRow:  # plain copies of the catalog rows: ORM attribute access is slow in hot loops
    id: int
    sku: str
    tracking: str


@dataclass(frozen=True, slots=True)
class OpRow:
    id: int
    code: str
    sequence: int
    station_kind: str
    standard_seconds: int
    required_skill: str | None


@dataclass(frozen=True, slots=True)
class ProductRow:
    id: int
    code: str


@dataclass(frozen=True, slots=True)
class StationRow:
    id: int


@dataclass
class Catalog:
    product: ProductRow
    operations: list[OpRow]
    stations: dict[str, list[StationRow]]
    operators: dict[str, list[int]]  # skill (or "") -> operator ids
    parts: dict[int, PartRow]
    # per config: per operation code: [(part_id, qty)]
    picks: list[dict[str, list[tuple[int, int]]]]
    location_id: int


def load_catalog(session: Session, configs: Sequence[Sequence[str]]) -> Catalog:
    product = session.exec(select(Product).order_by(Product.id)).first()  # type: ignore[arg-type]
    if product is None:
        raise ValueError("no product in the database; run `taktline seed-demo` first")
    operations = list(
        session.exec(
            select(Operation)
            .where(Operation.product_id == product.id)
            .order_by(col(Operation.sequence))
        )
    )
    stations: dict[str, list[Station]] = {}
    for st in session.exec(
        select(Station)
        .where(Station.active == True)  # noqa: E712
        .order_by(col(Station.position))
    ):
        stations.setdefault(st.kind, []).append(st)
    missing = [op.station_kind for op in operations if op.station_kind not in stations]
    if missing:
        raise ValueError(f"no active station of kind {', '.join(missing)}")
    operators: dict[str, list[int]] = {"": []}
    for person in session.exec(select(Operator).where(Operator.role == "operator")):
        operators[""].append(int(person.id))  # type: ignore[arg-type]
        for skill in person.skills:
            operators.setdefault(skill, []).append(int(person.id))  # type: ignore[arg-type]
    if not operators[""]:
        raise ValueError("no operator in the database")
    parts = {int(p.id): p for p in session.exec(select(Part))}  # type: ignore[arg-type]
    spec = load_product(session, product)
    picks = []
    for options in configs:
        try:
            config = resolve(spec, list(options))
        except ConfigurationError as exc:
            raise ValueError(f"{product.code} {' '.join(options)}: {exc}") from exc
        per_op: dict[str, list[tuple[int, int]]] = {op.code: [] for op in operations}
        for routed in config.routing:
            per_op[routed.operation.code] = [(p.part_id, p.qty) for p in routed.picks]
        picks.append(per_op)
    location = session.exec(select(Location).order_by(Location.kind.desc())).first()  # type: ignore[attr-defined]
    if location is None:
        raise ValueError("no stock location in the database")
    return Catalog(
        ProductRow(int(product.id), product.code),  # type: ignore[arg-type]
        [
            OpRow(
                int(o.id),  # type: ignore[arg-type]
                o.code,
                o.sequence,
                o.station_kind,
                o.standard_seconds,
                o.required_skill,
            )
            for o in operations
        ],
        {k: [StationRow(int(st.id)) for st in v] for k, v in stations.items()},  # type: ignore[arg-type]
        operators,
        {k: PartRow(k, p.sku, p.tracking) for k, p in parts.items()},
        picks,
        int(location.id),  # type: ignore[arg-type]
    )


class Lots:
    """Lot-tracked and untracked parts: rolling lots, received and consumed via the ledger."""

    def __init__(
        self, w: Writer, cat: Catalog, run: str, add: Callable[[str, tuple[Any, ...]], None]
    ) -> None:
        """``add(table, row)`` queues a row for the batch (``stocklot`` rows are written
        before ``stockmovement`` rows, so the on-hand trigger finds its lot)."""
        self.w, self.cat, self.run, self.add = w, cat, run, add
        self.current: dict[int, tuple[int, int]] = {}  # part -> (lot id, units left)
        self.used: dict[tuple[int, int], int] = {}  # (lot, day number) -> quantity
        self.lot_codes: dict[int, str] = {}
        self.next_lot = w.next_id("stocklot")
        self.next_move = w.next_id("stockmovement")
        self.recall_lot_id: int | None = None
        self.untracked: dict[int, int] = {}  # part -> lot id (one per part)
        # Untracked parts keep one lot each across runs: the lots already there.
        self.untracked_before: dict[int, int] = {
            int(part): int(lot)
            for part, lot in w.conn.execute(
                sa.text(
                    "SELECT part_id, MIN(id) FROM stocklot WHERE lot_code = '' AND "
                    "serial = '' AND location_id = :l GROUP BY part_id"
                ),
                {"l": cat.location_id},
            )
        }

    def lot_for(self, part: PartRow, received: float, qty: int) -> int:
        pid = part.id
        if part.tracking == Tracking.NONE:
            lot = self.untracked.get(pid)
            if lot is None:
                lot = self.untracked_before.get(pid)
                if lot is None:
                    lot = self._new_lot(part, "", 10**9, received)
                else:
                    self._move(
                        lot, pid, "receipt", 10**9, "generated history: receipt", received - 86400
                    )
                self.untracked[pid] = lot
            return lot
        lot_id, left = self.current.get(pid, (0, 0))
        if left <= 0:
            size = LOT_UNITS.get(part.sku, 500)
            code = f"G{self.run}-{part.sku}-{self.next_lot:06d}"
            lot_id = self._new_lot(part, code, size * qty, received)
            if part.sku == "TP-1" and self.recall_lot_id is None:
                self.recall_lot_id = lot_id
            left = size
        self.current[pid] = (lot_id, left - 1)
        return lot_id

    def _new_lot(self, part: PartRow, code: str, qty: int, received: float) -> int:
        lot_id = self.next_lot
        self.next_lot += 1
        self.lot_codes[lot_id] = code
        self.add(
            "stocklot",
            (lot_id, part.id, code, "", self.cat.location_id, self.w.ts(received - 86400), 0, 0),
        )
        self._move(lot_id, part.id, "receipt", qty, "generated history: receipt", received - 86400)
        return lot_id

    def _move(self, lot_id: int, part_id: int, kind: str, qty: int, reason: str, at: float) -> None:
        self.add(
            "stockmovement",
            (
                self.next_move,
                lot_id,
                part_id,
                kind,
                qty,
                0,
                reason,
                "taktline generate",
                self.w.ts(at),
            ),
        )
        self.next_move += 1

    def flush(self, part_of_lot: dict[int, int], now_ts: float) -> None:
        """One consumption movement per lot and day (through the on-hand trigger)."""
        for (lot_id, day), qty in sorted(self.used.items()):
            self._move(
                lot_id,
                part_of_lot[lot_id],
                "consumption",
                -qty,
                "generated history: consumption",
                min(now_ts, day * 86400 + 86399),
            )
        self.used.clear()
