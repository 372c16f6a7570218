"""Traceability and line-board benchmark: 1,000,000 units on SQLite (and PostgreSQL).

Builds the history once with ``server.tools.generate`` into a cached file
(``bench/out/trace-<N>.db``, gitignored; reused on the next run), then times, each
beside a hand-written indexed SQL query for the same answer in the same run:

- one unit's genealogy (``server.trace.genealogy.genealogy``),
- the recall of the lot that went into 10,000 units (``server.trace.recall.recall_lot``),
- the line board's figures for one day (``server.board.figures.day_figures``).

Run:  .venv/bin/python bench/bench_trace.py [--units 1000000] [--pg URL] [--repeat 50]
PostgreSQL runs too when ``--pg`` or TAKTLINE_TEST_DATABASE_URL is given (a database
``taktline_bench_<N>`` is created there once and reused).
Aims: genealogy < 5 ms, recall < 50 ms, board < 200 ms.

As in a running server, and the same for ours and the hand-written SQL: what start-up
made is frozen out of the garbage collector first, as ``taktline serve`` and ``taktline
ingest`` do (``server.operations.startup.freeze``; otherwise every full collection walks
every module, 60-80 ms here, and a 10,000-unit recall makes one every fifth call), and
each query runs ``--warmup`` times before it is timed: psycopg prepares a statement on
its sixth run, PostgreSQL plans a prepared statement afresh for its first five runs and
plans it once more, generically, on the sixth, so a query's eleventh call is the first
one without planning (each new pooled connection pays that, statement by statement).
The first, cold call of each is printed too. With 50 runs, p99 is the slowest of them;
``--samples`` prints the five slowest of each and the collector's full passes.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import Session  # noqa: E402

from server.db import dispose_engine, get_engine, migrate  # noqa: E402

log = logging.getLogger("bench_trace")
OUT = Path(__file__).parent / "out"


def build(url: str, units: int) -> None:
    """Migrate, seed the demo plant and generate ``units`` units (once per database)."""
    from server.tools.demo import seed
    from server.tools.generate import generate

    migrate.upgrade(url)
    engine = get_engine(url)
    if not seed.is_empty(engine):
        with engine.connect() as conn:
            have = conn.exec_driver_sql("SELECT COUNT(*) FROM unit").scalar_one()
        if have >= units:
            return
        raise SystemExit(f"{url} holds {have} units, not {units}; delete it to rebuild")
    seed.seed(engine)
    started = time.perf_counter()
    last = [started, 0]

    def progress(n: int) -> None:
        last[1] += n
        now = time.perf_counter()
        if now - last[0] > 15:
            last[0] = now
            print(f"  generated {last[1]:,} units ({last[1] / (now - started):,.0f}/s)", flush=True)

    report = generate(engine, units=units, progress=progress)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    print(
        f"built {units:,} units in {time.perf_counter() - started:,.0f} s: {report.counts}",
        flush=True,
    )


class Timing:
    """One query's timed runs (ms, in the order run) and the collector's full passes."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn, self.first, self.full_collections = fn, 0.0, 0
        self.samples: list[float] = []

    def warm(self, times: int) -> None:
        for i in range(times):
            t = time.perf_counter()
            self.fn()
            if i == 0:
                self.first = (time.perf_counter() - t) * 1000

    def run(self, repeat: int) -> None:
        before = gc.get_stats()[2]["collections"]
        for _ in range(repeat):
            t = time.perf_counter()
            self.fn()
            self.samples.append((time.perf_counter() - t) * 1000)
        self.full_collections = gc.get_stats()[2]["collections"] - before

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    def slowest(self, n: int = 5) -> str:
        worst = sorted(range(len(self.samples)), key=self.samples.__getitem__)[-n:]
        return ", ".join(f"#{i} {self.samples[i]:.2f}" for i in sorted(worst))


def run(url: str, label: str, repeat: int, warmup: int, samples: bool, seed: int) -> None:
    from server.board.figures import day_figures
    from server.operations import startup
    from server.trace.genealogy import genealogy
    from server.trace.recall import recall_lot

    engine = get_engine(url)
    startup.freeze()  # as a server does once started, before its first request
    with engine.connect() as conn:
        n_units = conn.exec_driver_sql("SELECT COUNT(*) FROM unit").scalar_one()
        n_cons = conn.exec_driver_sql("SELECT COUNT(*) FROM consumption").scalar_one()
        lot = conn.execute(
            sa.text(
                "SELECT l.id, l.lot_code, p.sku, COUNT(DISTINCT c.unit_id) FROM stocklot l "
                "JOIN part p ON p.id = l.part_id JOIN consumption c ON c.lot_id = l.id "
                "WHERE p.sku = 'TP-1' AND l.lot_code LIKE 'G%' GROUP BY l.id, l.lot_code, p.sku "
                "ORDER BY l.id LIMIT 1"
            )
        ).one()
        last_done = conn.execute(sa.text("SELECT MAX(completed_at) FROM unit")).scalar_one()
        max_id = conn.exec_driver_sql("SELECT MAX(id) FROM unit").scalar_one()
    day = _as_date(last_done) - timedelta(days=1)
    print(
        f"\n[{label}] {n_units:,} units, {n_cons:,} consumptions; recall lot {lot[1]} "
        f"({lot[3]:,} units); board day {day}"
    )
    # Random units, not the same ones for ours and the hand SQL: neither reads the
    # pages the other just brought in. The same ones from run to run: another --seed
    # picks units whose pages no run has read yet.
    rng = random.Random(seed)
    ours_units = iter([f"PC-G{rng.randint(1, max_id):07d}" for _ in range(repeat + warmup)])
    hand_units = iter([f"PC-G{rng.randint(1, max_id):07d}" for _ in range(repeat + warmup)])

    with Session(engine) as db:
        rows = [
            (
                "genealogy of one unit",
                5,
                lambda: genealogy(db, serial=next(ours_units)),
                lambda: _sql_genealogy(db, next(hand_units)),
            ),
            (
                f"recall of a lot in {lot[3]:,} units",
                50,
                lambda: recall_lot(db, part_sku=lot[2], lot_code=lot[1]),
                lambda: _sql_recall(db, lot[0]),
            ),
            (
                "board figures for one day",
                200,
                lambda: day_figures(db, day=day),
                lambda: _sql_board(db, day),
            ),
        ]
        print(
            f"{'query':34} {'aim':>6} {'p50 ms':>8} {'p99 ms':>8} {'1st':>8}"
            f"   {'hand SQL p50':>12} {'p99':>8} {'1st':>8}"
        )
        timings = []
        for name, aim, ours_fn, hand_fn in rows:
            n = repeat if aim < 100 else max(5, repeat // 5)
            ours, hand = Timing(ours_fn), Timing(hand_fn)
            for t in (ours, hand):
                t.warm(warmup if aim < 100 else 1)
                t.run(n)
                db.rollback()
            timings.append((name, ours, hand))
            print(
                f"{name:34} {aim:>6} {ours.p50:8.2f} {ours.p99:8.2f} {ours.first:8.2f}"
                f"   {hand.p50:12.2f} {hand.p99:8.2f} {hand.first:8.2f}"
            )
        if samples:
            print(f"slowest timed runs (#run: ms), after {warmup} warm-up runs:")
            for name, ours, hand in timings:
                for who, t in (("ours", ours), ("hand", hand)):
                    print(
                        f"  {name:34} {who}: {t.slowest()}; full collections {t.full_collections}"
                    )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    return datetime.fromisoformat(str(value)).date()


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _sql_genealogy(db: Session, serial: str) -> list[Any]:
    """The same genealogy, hand-written: unit, its picks with part and lot, its steps."""
    unit = db.execute(sa.text("SELECT id FROM unit WHERE serial = :s"), {"s": serial}).one()
    picks = db.execute(
        sa.text(
            "SELECT c.id, p.sku, c.serial, l.lot_code, c.quantity, c.at FROM consumption c "
            "JOIN part p ON p.id = c.part_id LEFT JOIN stocklot l ON l.id = c.lot_id "
            "WHERE c.unit_id = :u"
        ),
        {"u": unit[0]},
    ).all()
    steps = db.execute(
        sa.text(
            "SELECT s.id, st.code, o.name, s.started_at, s.ended_at, s.paused_seconds "
            "FROM steprecord s JOIN station st ON st.id = s.station_id "
            "LEFT JOIN operator o ON o.id = s.operator_id WHERE s.unit_id = :u"
        ),
        {"u": unit[0]},
    ).all()
    defects = db.execute(sa.text("SELECT id FROM defect WHERE unit_id = :u"), {"u": unit[0]}).all()
    return [picks, steps, defects]


def _sql_recall(db: Session, lot_id: int) -> list[Any]:
    if db.get_bind().dialect.name == "postgresql":
        # The faster shape there: the lot's units, then each work order's order once.
        sql = (
            "WITH u AS (SELECT u.serial, u.status, u.work_order_id FROM consumption c "
            "JOIN unit u ON u.id = c.unit_id WHERE c.lot_id = :l) "
            "SELECT u.serial, u.status, o.number, o.customer FROM u JOIN ("
            "SELECT w.id, co.number, co.customer FROM workorder w "
            "JOIN orderline ol ON ol.id = w.order_line_id "
            "JOIN customerorder co ON co.id = ol.order_id "
            "WHERE w.id IN (SELECT DISTINCT work_order_id FROM u)) o ON o.id = u.work_order_id"
        )
    else:
        sql = (
            "SELECT u.serial, u.status, co.number, co.customer FROM consumption c "
            "JOIN unit u ON u.id = c.unit_id JOIN workorder w ON w.id = u.work_order_id "
            "JOIN orderline ol ON ol.id = w.order_line_id "
            "JOIN customerorder co ON co.id = ol.order_id WHERE c.lot_id = :l"
        )
    return list(db.execute(sa.text(sql), {"l": lot_id}).all())


def _sql_board(db: Session, day: date) -> list[Any]:
    """The same day's figures, hand-written: counts, yield, hourly output, WIP, on-time
    orders and lead times, step durations per station, open steps and andon calls."""
    start, end = _bounds(day)
    pg = db.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
    secs = (
        "EXTRACT(EPOCH FROM s.ended_at - s.started_at)"
        if pg
        else "(julianday(s.ended_at) - julianday(s.started_at)) * 86400.0"
    )
    day_of = "CAST(completed_at AS DATE)" if pg else "date(completed_at)"
    p = {"a": start, "b": end}
    b = [sa.bindparam("a", type_=_dt()), sa.bindparam("b", type_=_dt())]

    def q(sql: str) -> Any:
        return db.execute(sa.text(sql).bindparams(*b) if ":a" in sql else sa.text(sql), p)

    done = q(
        "SELECT u.completed_at, EXISTS (SELECT 1 FROM defect d WHERE d.unit_id = u.id) "
        "FROM unit u WHERE u.completed_at >= :a AND u.completed_at < :b"
    ).all()
    first = q(
        "SELECT MIN(started_at) FROM steprecord WHERE started_at >= :a AND started_at < :b"
    ).scalar()
    wip = q("SELECT COUNT(*) FROM unit WHERE status IN ('in_progress', 'held')").scalar()
    orders = q(
        f"SELECT due_date, {day_of} <= due_date, completed_at, received_at "
        "FROM customerorder WHERE completed_at >= :a AND completed_at < :b"
    ).all()
    cycles = q(
        f"SELECT st.code, {secs} - s.paused_seconds FROM steprecord s "
        "JOIN station st ON st.id = s.station_id "
        "WHERE s.ended_at >= :a AND s.ended_at < :b"
    ).all()
    open_steps = q(
        "SELECT s.station_id, u.serial, s.started_at FROM steprecord s "
        "JOIN unit u ON u.id = s.unit_id WHERE s.ended_at IS NULL"
    ).all()
    andons = q("SELECT station_id, reason FROM andoncall WHERE resolved_at IS NULL").all()
    return [done, first, wip, orders, cycles, open_steps, andons]


def _dt() -> Any:
    from server.models.types import UTCDateTime

    return UTCDateTime()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=11, help="runs of each query before timing")
    parser.add_argument("--samples", action="store_true", help="print the slowest runs")
    parser.add_argument("--seed", type=int, default=1, help="of the random units' choice")
    parser.add_argument("--pg", default=os.environ.get("TAKTLINE_TEST_DATABASE_URL", ""))
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    OUT.mkdir(exist_ok=True)
    targets = [] if args.no_sqlite else [(f"sqlite:///{OUT / f'trace-{args.units}.db'}", "SQLite")]
    if args.pg:
        targets.append((_pg_database(args.pg, args.units), "PostgreSQL"))
    for url, label in targets:
        build(url, args.units)
        if not args.build_only:
            run(url, label, args.repeat, args.warmup, args.samples, args.seed)
        dispose_engine(url)


def _pg_database(admin_url: str, units: int) -> str:
    name = f"taktline_bench_{units}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.exec_driver_sql(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).first():
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


if __name__ == "__main__":
    main()
