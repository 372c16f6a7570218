"""Realistic production history at scale, for benchmarks and demos (``taktline generate``).

This module BYPASSES THE WORKFLOW ON PURPOSE, for speed: it does not release orders or
run the station workflow, it writes finished history straight into the tables with
bulk inserts (``executemany`` on SQLite, ``COPY`` on PostgreSQL), so that a million
units take minutes instead of days. It still keeps the invariants the rest of the
system relies on:

- stock goes through the ledger: every generated lot gets a ``receipt`` movement and
  ``consumption`` movements (one per lot and day, ``unit_id`` empty, reason
  "generated history"); the database triggers apply them to ``StockLot`` balances,
  which never go negative;
- serial numbers are unique: units are ``{product}-G{n:07d}``, components
  ``G{sku}-{n:07d}``; a serial is built into one unit only;
- times are UTC, step durations exclude pauses, nothing is in the future: units whose
  steps would end after *now* stay in progress (work in progress) or queued.

A load that more than doubles the history runs in ONE transaction, its tables'
secondary indexes (and PostgreSQL's foreign keys) dropped first and built again at the
end (``Writer.defer_keys``): a failure leaves the database as it was, but the tables are
locked until the commit (on PostgreSQL exclusively, with the catalog tables their foreign
keys refer to), so run it when no plant is using the database. A smaller load appends
batch by batch into the indexed tables.

What it leaves out: serial-tracked components are recorded on the consumption only (no
``StockLot`` per consumed serial, i.e. received and consumed outside the ledger), and
generated picks carry no scan event (``event_id`` empty).

The catalog comes from the database (the demo plant is seeded when it is empty). One lot
of the thermal paste TP-1 goes into exactly 10,000 units (``RECALL_LOT_SIZE``): the
recall benchmark's lot.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from server.models.types import (
    OrderStatus,
    Tracking,
    UnitOperationStatus,
    UnitStatus,
    WorkOrderStatus,
)
from server.quality import results
from server.tools.generate_bulk import (
    RECALL_LOT_SIZE,
    Catalog,
    Lots,
    OpRow,
    PartRow,
    Writer,
    load_catalog,
)
from station.checks import MEASURED, CheckSpec

log = logging.getLogger(__name__)

# Statuses as plain strings: the drivers bind a str faster than a StrEnum.
_QUEUED, _IN_PROGRESS, _COMPLETED = (
    UnitStatus.QUEUED.value,
    UnitStatus.IN_PROGRESS.value,
    UnitStatus.COMPLETED.value,
)
_READY, _ACTIVE, _DONE = (
    UnitOperationStatus.READY.value,
    UnitOperationStatus.ACTIVE.value,
    UnitOperationStatus.DONE.value,
)
BATCH_UNITS = 5_000
DAY_START_H, DAY_HOURS = 6, 16
# Valid option sets of the demo PC and how often customers pick them.
CONFIGS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (30, ("i5", "mem16", "ssd512", "mt")),
    (10, ("i5", "mem16", "ssd512", "sff")),
    (15, ("i7", "mem32", "ssd1t", "mt", "gpu4060")),
    (15, ("i7", "mem32", "ssd1t", "sff", "wifi")),
    (10, ("i7", "mem16", "ssd1t", "mt", "wifi")),
    (10, ("i5", "mem32", "ssd512", "hdd4t", "mt")),
    (5, ("i9", "mem32", "ssd2t", "mt", "gpu4060")),
    (5, ("i9", "mem64", "ssd2t", "hdd4t", "mt", "gpu4080", "wifi")),
)
DEFECT_RATE = 0.03
NCR_RATE = 0.01  # units whose board screws never hold their torque (an NCR, reworked)
DEFECT_REASONS = ("BOOT-FAIL", "MEM-ERR", "SCRATCH", "LOOSE-CABLE")
CUSTOMERS = (
    "Atelier Dupont",
    "Nordic Render AB",
    "Cabinet Leroy",
    "Studio Kappa",
    "École Pasteur",
    "Müller & Söhne GmbH",
    "Hospital San Juan",
    "Lyon Métropole",
)


@dataclass
class GenerateReport:
    units: int = 0
    orders: int = 0
    consumptions: int = 0
    steps: int = 0
    defects: int = 0
    recall_lot: str = ""
    recall_part: str = ""
    counts: dict[str, int] = field(default_factory=dict)


def generate(
    engine: Engine,
    *,
    units: int,
    days: int | None = None,
    seed: int = 7,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> GenerateReport:
    """Write ``units`` finished (or in-progress) units over the last ``days`` days."""
    if units <= 0:
        raise ValueError("units must be positive")
    days = days or max(1, math.ceil(units / 500))
    rng = random.Random(seed)
    now_ts = (now or datetime.now(UTC)).timestamp()
    with Session(engine) as session:
        cat = load_catalog(session, [c[1] for c in CONFIGS])
        # The quality checks of each operation for each configuration (docs/quality.md).
        specs = [
            {
                op.code: results.specs(session, operation_id=op.id, options=cfg)
                for op in cat.operations
            }
            for _weight, cfg in CONFIGS
        ]
    report = GenerateReport()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # On the DB-API connection, outside any transaction: SQLite ignores (or
            # refuses) these pragmas inside one. Every row refers to ids written just
            # before or read from the catalog, and checking ~20 foreign keys per unit
            # took 38 % of the run (issue 19); no fsync per commit during the load (a
            # crash can lose the last batches, never the database); a big page cache
            # keeps the index inserts in memory. Back to the defaults below.
            _pragmas(conn, foreign_keys="OFF", synchronous="OFF", cache_size="-262144")
        try:
            _bulk(conn, cat, specs, rng, units, days, now_ts, progress, report)
        finally:
            if sqlite:
                conn.rollback()
                _pragmas(conn, foreign_keys="ON", synchronous="NORMAL", cache_size="-2000")
    return report


def _pragmas(conn: sa.Connection, **values: str) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for name, value in values.items():
            cursor.execute(f"PRAGMA {name}={value}")
    finally:
        cursor.close()


# The tables written in bulk whose secondary indexes (and foreign keys on PostgreSQL)
# are built after the load when it more than doubles them (``Writer.defer_keys``).
HISTORY_TABLES = (
    "customerorder",
    "orderline",
    "workorder",
    "unit",
    "unitoperation",
    "steprecord",
    "consumption",
    "defect",
    "nonconformance",
    "checkresult",
)


def _bulk(
    conn: sa.Connection,
    cat: Catalog,
    specs: list[dict[str, Any]],
    rng: random.Random,
    units: int,
    days: int,
    now_ts: float,
    progress: Callable[[int], None] | None,
    report: GenerateReport,
) -> None:
    """The history itself, on one connection.

    Rows are built on this thread and written by another (``_BatchWriter``), so the
    database (PostgreSQL's server, or SQLite's C code, which releases the GIL) works
    while the next batch is built. A load that more than doubles the history runs in
    one transaction with its indexes built at the end; a smaller one commits each
    batch into the indexed tables."""
    w = Writer(conn)
    ids = {t: w.next_id(t) for t in HISTORY_TABLES}
    existing = ids["unit"] - 1
    run = f"{ids['unit']:x}".upper()
    part_of_lot: dict[int, int] = {}
    generator = _Generator(w, cat, rng, ids, part_of_lot, report, run)
    generator.lots = lots = Lots(w, cat, run, generator.add)
    generator.specs = specs
    one_transaction = existing < units
    rebuild: list[str] = []
    if one_transaction:
        if w.pg:  # index builds sort in memory; the one commit need not wait for disk
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        rebuild = w.defer_keys(HISTORY_TABLES)
    writer = _BatchWriter(w, commit_each=not one_transaction)
    started = time.perf_counter()
    writer.start()
    try:
        generator.run(units, days, now_ts, progress, writer.put)
    finally:
        writer.finish()
    loaded = time.perf_counter()
    for statement in rebuild:
        conn.exec_driver_sql(statement)
    rebuilt = time.perf_counter()
    w.fix_sequences([*ids, "stocklot", "stockmovement"])
    conn.commit()
    committed = time.perf_counter()
    if one_transaction:
        # Fresh statistics for the planner: without them SQLite took 1.7 s instead of
        # 10 ms for the line board's day on a 1M-unit history (issue 19).
        for table in HISTORY_TABLES:
            conn.exec_driver_sql(f"ANALYZE {table}")
        conn.commit()
    log.info(
        "generated %d units: rows written in %.1f s, %d indexes and keys built in %.1f s, "
        "commit %.1f s, statistics %.1f s",
        units,
        loaded - started,
        len(rebuild),
        rebuilt - loaded,
        committed - rebuilt,
        time.perf_counter() - committed,
    )
    for table, count in generator.written.items():
        report.counts[table] = report.counts.get(table, 0) + count
    report.steps = report.counts.get("steprecord", 0)
    if lots.recall_lot_id is not None:
        report.recall_lot = lots.lot_codes[lots.recall_lot_id]
        report.recall_part = "TP-1"


Batch = list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]


class _BatchWriter:
    """Writes batches on its own thread, in the order they come; the first error
    stops it and is raised again on the generating thread."""

    def __init__(self, w: Writer, *, commit_each: bool) -> None:
        self.w, self.commit_each = w, commit_each
        self.queue: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="generate-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, batch: Batch) -> None:
        if self.error is None:
            self.queue.put(batch)
        if self.error is not None:
            raise RuntimeError("writing the generated history failed") from self.error

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise RuntimeError("writing the generated history failed") from self.error

    def _loop(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain until the generating thread stops
            try:
                for table, columns, rows in batch:
                    self.w.insert(table, columns, rows)
                if self.commit_each:
                    self.w.conn.commit()  # one transaction per batch keeps the WAL small
            except BaseException as exc:  # raised again by put() / finish()
                self.error = exc


class _Generator:
    def __init__(
        self,
        w: Writer,
        cat: Catalog,
        rng: random.Random,
        ids: dict[str, int],
        part_of_lot: dict[int, int],
        report: GenerateReport,
        run: str,
    ) -> None:
        self.w, self.cat, self.rng, self.ids = w, cat, rng, ids
        self.lots: Lots
        self.part_of_lot, self.report, self.run_tag = part_of_lot, report, run
        self.weights = [c[0] for c in CONFIGS]
        self.serial_seq: dict[int, int] = {}
        self.op_picks_json = [
            {
                op: json.dumps(
                    [{"part_id": p, "sku": cat.parts[p].sku, "qty": q} for p, q in picks]
                )
                for op, picks in cfg.items()
            }
            for cfg in cat.picks
        ]
        serial_prefix = {
            p.id: f"G{run}{p.sku}-" if p.tracking == Tracking.SERIAL else ""
            for p in cat.parts.values()
        }
        self.plans = [
            {
                op: [(cat.parts[p], q, serial_prefix[p]) for p, q in picks]
                for op, picks in cfg.items()
            }
            for cfg in cat.picks
        ]
        self.specs: list[dict[str, list[CheckSpec]]] = []
        # Per operation: its stations' ids, who may work it, whether it is the last.
        self.op_plan = [
            (
                op,
                [st.id for st in cat.stations[op.station_kind]],
                cat.operators.get(op.required_skill or "", []) or cat.operators[""],
                op is cat.operations[-1],
            )
            for op in cat.operations
        ]
        self.consumptions: list[tuple[Any, ...]] = []
        self.rows: dict[str, list[tuple[Any, ...]]] = {"consumption": self.consumptions}
        self.rows["steprecord"] = []
        self.written: dict[str, int] = {}
        self._check_plans: dict[int, tuple[Any, ...]] = {}

    def take(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] += 1
        return value

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, []).append(row)

    def run(
        self,
        units: int,
        days: int,
        now_ts: float,
        progress: Callable[[int], None] | None,
        write: Callable[[Batch], None],
    ) -> None:
        per_day = units / days
        today0 = math.floor(now_ts / 86400) * 86400
        first_day = today0 - (days - 1) * 86400
        gap = DAY_HOURS * 3600 / per_day
        done = 0
        while done < units:
            # An order of 1..8 identical units.
            size = min(units - done, self.rng.choice((1, 1, 1, 2, 2, 3, 4, 5, 6, 8)))
            cfg = self.rng.choices(range(len(CONFIGS)), self.weights)[0]
            start = (
                first_day
                + math.floor(done / per_day) * 86400
                + DAY_START_H * 3600
                + (done % per_day) * gap
            )
            self.order(done, size, cfg, start, gap, now_ts)
            done += size
            if len(self.consumptions) >= BATCH_UNITS * 15 or done >= units:
                self.lots.flush(self.part_of_lot, now_ts)
                write(self.batch())
                if progress:
                    progress(done - self.report.units)
                self.report.units = done

    def order(
        self, index: int, size: int, cfg: int, start: float, gap: float, now_ts: float
    ) -> None:
        rng, w = self.rng, self.w
        order_id, line_id, wo_id = (
            self.take("customerorder"),
            self.take("orderline"),
            self.take("workorder"),
        )
        received = start - rng.uniform(1, 5) * 86400
        due = datetime.fromtimestamp(received + rng.choice((4, 5, 6, 7, 10)) * 86400, UTC)
        options = list(CONFIGS[cfg][1])
        ends = [self.unit(wo_id, options, cfg, start + k * gap, now_ts) for k in range(size)]
        finished = [e for e in ends if e is not None]
        complete = len(finished) == size
        completed = max(finished) if complete else None
        # About one order in twelve is late: its due date is before completion.
        if completed is not None and rng.random() < 0.08:
            due = datetime.fromtimestamp(completed - 86400, UTC)
        status = (
            OrderStatus.COMPLETED
            if complete
            else OrderStatus.IN_PROGRESS
            if finished or start < now_ts
            else OrderStatus.RELEASED
        )
        self.add(
            "customerorder",
            (
                order_id,
                f"SO-G{self.run_tag}-{order_id:07d}",
                rng.choice(CUSTOMERS),
                due.date() if w.pg else due.date().isoformat(),
                status,
                0,
                w.ts(received),
                w.ts(received + 3600),
                w.ts(start) if start < now_ts else None,
                w.ts(completed) if completed else None,
                None,
                "taktline generate",
            ),
        )
        self.add(
            "orderline", (line_id, order_id, 1, self.cat.product.id, size, json.dumps(options))
        )
        self.add(
            "workorder",
            (
                wo_id,
                f"WO-G{self.run_tag}-{wo_id:07d}",
                line_id,
                size,
                WorkOrderStatus.COMPLETED if complete else WorkOrderStatus.RELEASED,
                w.ts(received + 3600),
                "taktline generate",
            ),
        )
        self.report.orders += 1

    def unit(
        self, wo_id: int, options: list[str], cfg: int, start: float, now_ts: float
    ) -> float | None:
        """One unit's operations, steps, picks and maybe a defect; returns its end time."""
        rng, ts, cat, ids = self.rng, self.w.ts, self.cat, self.ids
        uniform, rand, lognorm = rng.uniform, rng.random, rng.lognormvariate
        unit_id = self.take("unit")
        unit_ops, steps = self.rows.setdefault("unitoperation", []), self.rows["steprecord"]
        picks_json, plans = self.op_picks_json[cfg], self.plans[cfg]
        specs = self.specs[cfg] if self.specs else None
        t = start
        ended: float | None = None
        status = _QUEUED
        for op, stations, people, last in self.op_plan:
            uo_id = ids["unitoperation"]
            ids["unitoperation"] = uo_id + 1
            station_id = stations[unit_id % len(stations)]
            operator = people[(unit_id // 7) % len(people)]
            paused = uniform(30, 300) if rand() < 0.1 else 0.0
            work = op.standard_seconds * lognorm(0, 0.2) * (1 + 0.1 * (operator % 3))
            end = t + work + paused
            if t > now_ts:  # not started yet: neither is the unit complete
                unit_ops.append(
                    (uo_id, unit_id, op.id, op.sequence, op.station_kind, _READY, 0)
                    + (ts(t - 3600), None, None, picks_json[op.code])
                )
                ended = None
                continue
            t_s = ts(t)
            done = end <= now_ts
            end_s = ts(end) if done else None
            unit_ops.append(
                (uo_id, unit_id, op.id, op.sequence, op.station_kind)
                + (_DONE if done else _ACTIVE, 0, ts(t - 3600), station_id, t_s)
                + (picks_json[op.code],)
            )
            status = _IN_PROGRESS
            step_id = ids["steprecord"]
            ids["steprecord"] = step_id + 1
            steps.append(
                (step_id, unit_id, uo_id, op.id, station_id, operator, t_s, end_s, None, paused)
            )
            if done:
                self.picks(unit_id, uo_id, station_id, operator, plans[op.code], end, end_s)
                if specs:
                    self.checks(unit_id, uo_id, station_id, operator, specs[op.code], end)
                if last and rand() < DEFECT_RATE:
                    end = self.defect(unit_id, uo_id, op, station_id, operator, end, now_ts)
            ended = end if end <= now_ts else None
            t = end + uniform(10, 120)
        if ended is not None:
            status = _COMPLETED
        self.add(
            "unit",
            (
                unit_id,
                f"{cat.product.code}-G{unit_id:07d}",
                wo_id,
                cat.product.id,
                json.dumps(options),
                status,
                ts(start - 3600),
                ts(ended) if ended else None,
            ),
        )
        return ended

    def picks(
        self,
        unit_id: int,
        uo_id: int,
        station_id: Any,
        operator: int,
        plan: list[tuple[PartRow, int, str]],
        at: float,
        at_s: Any,
    ) -> None:
        """One consumption row per lot pick, one per serial; ``plan`` holds (part,
        quantity, serial prefix or "" for a part picked from a lot)."""
        day = math.floor(at / 86400)
        rows = self.consumptions
        used, lot_for, part_of_lot = self.lots.used, self.lots.lot_for, self.part_of_lot
        serial_seq = self.serial_seq
        tail = (uo_id, station_id, operator, None, at_s)
        cid = first = self.ids["consumption"]
        for part, qty, serial_prefix in plan:
            part_id = part.id
            if serial_prefix:
                for _ in range(qty):
                    n = serial_seq[part_id] = serial_seq.get(part_id, 0) + 1
                    rows.append(
                        (cid, unit_id, part_id, None, f"{serial_prefix}{n:07d}", 1, part_id) + tail
                    )
                    cid += 1
                continue
            lot_id = lot_for(part, at, qty)
            part_of_lot[lot_id] = part_id
            key = (lot_id, day)
            used[key] = used.get(key, 0) + qty
            rows.append((cid, unit_id, part_id, lot_id, None, qty, part_id) + tail)
            cid += 1
        self.report.consumptions += cid - first
        self.ids["consumption"] = cid

    def checks(
        self,
        unit_id: int,
        uo_id: int,
        station_id: Any,
        operator: int,
        specs: list[CheckSpec],
        end: float,
    ) -> None:
        """The step's check results: readings with sigma a sixth of the tolerance (Cpk
        about 1, a few in a thousand out of limits, then tried again); now and then a
        screw that never holds its torque: an NCR decided rework and closed, then four
        good readings."""
        rng, w = self.rng, self.w
        for spec in specs:
            at = end - 30.0
            ncr_id = None
            if spec.source == "torque" and rng.random() < NCR_RATE:
                ncr_id = self.take("nonconformance")
                bad = round((spec.upper or 1.0) * rng.uniform(1.15, 1.4), 3)
                for _ in range(spec.retries + 1):
                    self._result(unit_id, uo_id, spec, station_id, operator, bad, False, at, ncr_id)
                    at += 5
                self.add(
                    "nonconformance",
                    (
                        ncr_id, unit_id, uo_id, station_id, spec.id, "check", spec.code,
                        spec.name, bad, spec.lower, spec.upper, spec.unit, "", "closed",
                        "rework", "", "taktline generate", w.ts(at), "taktline generate",
                        w.ts(at + 300), "taktline generate", w.ts(at + 900),
                    ),
                )  # fmt: skip
                self.report.counts["ncr_rework"] = self.report.counts.get("ncr_rework", 0) + 1
                at += 900
            needed, measured, pass_fail, nominal, sigma, lo, hi, tail = self._check_plan(spec)
            rows = self.rows.setdefault("checkresult", [])
            rid = self.ids["checkresult"]
            ts, gauss, rand = w.ts, rng.gauss, rng.random
            passed = 0
            while passed < needed:
                value: float | None = None
                ok = True
                if measured:
                    value = round(gauss(nominal, sigma), 3)
                    ok = (lo is None or value >= lo) and (hi is None or value <= hi)
                elif pass_fail:
                    ok = rand() > 0.01
                rows.append(
                    (rid, unit_id, uo_id, spec.id, station_id, operator, None, None, ok, value)
                    + tail
                    + (ts(at),)
                )
                rid += 1
                passed += ok
                at += 5
            self.ids["checkresult"] = rid

    def _check_plan(self, spec: CheckSpec) -> tuple[Any, ...]:
        """What ``checks`` needs of a spec, worked out once per spec."""
        plan = self._check_plans.get(spec.id)
        if plan is None:
            nominal = spec.nominal if spec.nominal is not None else (spec.lower or 0.0)
            width = (spec.upper or nominal) - (spec.lower or nominal) or 0.1
            source = "typed" if spec.source == "typed" else spec.source
            plan = self._check_plans[spec.id] = (
                spec.needed,
                spec.kind in MEASURED,
                spec.kind == "pass_fail",
                nominal,
                width / 6,
                spec.lower,
                spec.upper,
                (spec.lower, spec.upper, spec.unit, source, spec.tool or "", ""),
            )
        return plan

    def _result(
        self,
        unit_id: int,
        uo_id: int,
        spec: CheckSpec,
        station_id: Any,
        operator: int,
        value: float | None,
        ok: bool,
        at: float,
        ncr_id: int | None,
    ) -> None:
        self.add(
            "checkresult",
            (
                self.take("checkresult"), unit_id, uo_id, spec.id, station_id, operator, None,
                ncr_id, ok, value, spec.lower, spec.upper, spec.unit,
                "typed" if spec.source == "typed" else spec.source, spec.tool or "", "",
                self.w.ts(at),
            ),
        )  # fmt: skip

    def defect(
        self,
        unit_id: int,
        uo_id: int,
        op: OpRow,
        station_id: Any,
        operator: int,
        end: float,
        now_ts: float,
    ) -> float:
        """A failed test, reworked and retested: one more step on the same operation."""
        w, rng = self.w, self.rng
        retest_end = end + 600 + op.standard_seconds * rng.lognormvariate(0, 0.2)
        self.add(
            "defect",
            (
                self.take("defect"),
                unit_id,
                station_id,
                operator,
                uo_id,
                rng.choice(DEFECT_REASONS),
                "generated",
                "rework",
                w.ts(end),
                w.ts(end + 600) if end + 600 <= now_ts else None,
                operator if end + 600 <= now_ts else None,
            ),
        )
        self.report.defects += 1
        if end + 600 <= now_ts:
            self.add(
                "steprecord",
                (
                    self.take("steprecord"),
                    unit_id,
                    uo_id,
                    op.id,
                    station_id,
                    operator,
                    w.ts(end + 600),
                    w.ts(retest_end) if retest_end <= now_ts else None,
                    None,
                    0.0,
                ),
            )
        return retest_end

    COLUMNS = {
        # Lots before their movements (the on-hand trigger updates the lot).
        "stocklot": (
            "id",
            "part_id",
            "lot_code",
            "serial",
            "location_id",
            "received_at",
            "on_hand",
            "reserved",
        ),
        "stockmovement": (
            "id",
            "lot_id",
            "part_id",
            "kind",
            "quantity",
            "reserved_delta",
            "reason",
            "by",
            "at",
        ),
        "customerorder": (
            "id",
            "number",
            "customer",
            "due_date",
            "status",
            "priority",
            "received_at",
            "released_at",
            "first_started_at",
            "completed_at",
            "shipped_at",
            "created_by",
        ),
        "orderline": ("id", "order_id", "line_no", "product_id", "quantity", "options"),
        "workorder": (
            "id",
            "number",
            "order_line_id",
            "quantity",
            "status",
            "released_at",
            "released_by",
        ),
        "unit": (
            "id",
            "serial",
            "work_order_id",
            "product_id",
            "options",
            "status",
            "created_at",
            "completed_at",
        ),
        "unitoperation": (
            "id",
            "unit_id",
            "operation_id",
            "sequence",
            "station_kind",
            "status",
            "priority",
            "released_at",
            "station_id",
            "claimed_at",
            "picks",
        ),
        "steprecord": (
            "id",
            "unit_id",
            "unit_operation_id",
            "operation_id",
            "station_id",
            "operator_id",
            "started_at",
            "ended_at",
            "paused_at",
            "paused_seconds",
        ),
        "consumption": (
            "id",
            "unit_id",
            "part_id",
            "lot_id",
            "serial",
            "quantity",
            "for_part_id",
            "unit_operation_id",
            "station_id",
            "operator_id",
            "event_id",
            "at",
        ),
        "defect": (
            "id",
            "unit_id",
            "station_id",
            "operator_id",
            "unit_operation_id",
            "reason_code",
            "note",
            "disposition",
            "at",
            "resolved_at",
            "resolved_by_id",
        ),
    }

    COLUMNS["nonconformance"] = (
        "id", "unit_id", "unit_operation_id", "station_id", "check_id", "origin", "cause",
        "characteristic", "value", "lower", "upper", "unit", "note", "status", "disposition",
        "disposition_reason", "opened_by", "opened_at", "decided_by", "decided_at",
        "closed_by", "closed_at",
    )  # fmt: skip
    COLUMNS["checkresult"] = (
        "id", "unit_id", "unit_operation_id", "check_id", "station_id", "operator_id",
        "event_id", "ncr_id", "passed", "value", "lower", "upper", "unit", "source", "tool",
        "photo", "at",
    )  # fmt: skip

    def batch(self) -> Batch:
        """The rows built since the last batch, table by table in writing order."""
        batch: Batch = []
        for table, columns in self.COLUMNS.items():
            rows = self.rows.pop(table, [])
            if rows:
                batch.append((table, columns, rows))
                self.written[table] = self.written.get(table, 0) + len(rows)
        self.consumptions = self.rows["consumption"] = []
        self.rows["steprecord"] = []
        self.report.steps = self.written.get("steprecord", 0)
        return batch


def _command() -> Any:
    import click
    from flask import current_app
    from flask.cli import with_appcontext

    @click.command("generate")
    @click.option(
        "--units", type=click.IntRange(min=1), required=True, help="How many units to write."
    )
    @click.option(
        "--days",
        type=click.IntRange(min=1),
        default=None,
        help="Spread them over this many days up to today (default: 500 a day).",
    )
    @click.option(
        "--seed",
        type=int,
        default=7,
        show_default=True,
        help="Random seed (same seed, same history).",
    )
    @with_appcontext
    def generate_command(units: int, days: int | None, seed: int) -> None:
        """Write realistic production history (orders, units, steps, picks, defects).

        For benchmarks and demos: it bypasses the station workflow for speed (see
        docs/traceability.md). Seeds the demo plant first when the database is empty.
        """
        from server.db import migrate
        from server.tools.demo import seed as demo_seed

        app = current_app
        migrate.upgrade(app.config["DATABASE_URL"])
        engine = app.extensions["taktline.engine"]
        if demo_seed.is_empty(engine):
            demo_seed.seed(engine)
            click.echo("Demo plant loaded.")
        with click.progressbar(length=units, label="Generating units") as bar:
            try:
                report = generate(engine, units=units, days=days, seed=seed, progress=bar.update)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(
            f"{report.units} units in {report.orders} orders: "
            f"{report.consumptions} component picks, {report.steps} steps, "
            f"{report.defects} defects."
        )
        if report.recall_lot:
            click.echo(
                f"Recall example: part {report.recall_part} lot {report.recall_lot} "
                f"(up to {RECALL_LOT_SIZE} units)."
            )

    return generate_command


generate_command = _command()
