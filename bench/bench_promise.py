"""Promise dates at scale: every open order promised, then one receipt slips.

Builds a synthetic plant (``--orders`` open orders over ``--parts`` parts and
``--stations`` stations, two shifts five days a week with breaks, scheduled receipts
for a third of the parts), and prints:

- the pure plan (``server.promise.engine.Plan``: projection + finite-capacity
  schedule of every open order), best and median of ``--repeat`` runs;
- the incremental re-promise after one receipt slips by a week (``Plan.replan``:
  the material pass again, the schedule from the first order that moved), median and
  worst over ``--slips`` different receipts, with how many orders changed;
- the same through the database (``--db``, default on): the plant written to a fresh
  SQLite file, then ``server.promise.service.plan_for`` (load + plan) and
  ``server.promise.service.reschedule_receipt`` (slip, re-promise, flags) timed.

Run: ``.venv/bin/python bench/bench_promise.py`` (``--no-db`` for the pure part only).
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.promise.calendar import Shift, WorkAxis, working_intervals  # noqa: E402
from server.promise.engine import OrderSpec, Plan, Plant  # noqa: E402
from server.promise.projection import PartSupply, Receipt  # noqa: E402
from server.promise.schedule import StationSpec, Step  # noqa: E402

KINDS = ("kitting", "board", "final", "test", "pack")


def synthetic(
    n_orders: int, n_parts: int, n_stations: int, seed: int = 7
) -> tuple[Plant, list[OrderSpec]]:
    rng = random.Random(seed)
    now = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)
    today = now.date()
    shifts = [
        Shift(
            frozenset(range(5)), 6 * 60, 14 * 60, ((9 * 60, 9 * 60 + 15), (12 * 60, 12 * 60 + 30))
        ),
        Shift(
            frozenset(range(5)),
            14 * 60,
            22 * 60,
            ((17 * 60, 17 * 60 + 15), (19 * 60, 19 * 60 + 30)),
        ),
    ]
    axis = WorkAxis(working_intervals(shifts, zone=UTC, first_day=today, days=120))
    stations = [StationSpec(f"ST-{n:02d}", KINDS[n % len(KINDS)], axis) for n in range(n_stations)]
    parts: dict[int, PartSupply] = {}
    rid = 0
    for p in range(1, n_parts + 1):
        receipts = []
        if p % 3 == 0:
            for _ in range(rng.randint(1, 3)):
                rid += 1
                receipts.append(
                    Receipt(
                        rid,
                        p,
                        today + timedelta(days=rng.randint(1, 20)),
                        rng.randint(20, 120),
                        f"PO-{rid}",
                    )
                )
        parts[p] = PartSupply(p, f"P-{p:04d}", free=rng.randint(0, 150), receipts=receipts)
    orders = []
    for o in range(1, n_orders + 1):
        released = rng.random() < 0.3
        units = rng.randint(1, 3)
        steps = tuple(
            Step(kind, rng.choice((240.0, 300.0, 420.0, 480.0, 360.0)), kind.title())
            for kind in KINDS[:4]
        )
        needs = (
            {}
            if released
            else {rng.randint(1, n_parts): units * rng.randint(1, 2) for _ in range(8)}
        )
        orders.append(
            OrderSpec(
                o,
                f"SO-{o:05d}",
                rng.choice((0, 0, 0, 1, 5)),
                today + timedelta(days=rng.randint(1, 30)),
                now.timestamp() - rng.randint(0, 86400 * 5),
                needs,
                tuple(steps for _ in range(units)),
            )
        )
    plant = Plant(now=now.timestamp(), zone=UTC, parts=parts, stations=stations, lead_days=1)
    return plant, orders


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def pure(args: argparse.Namespace) -> None:
    plant, orders = synthetic(args.orders, args.parts, args.stations)
    receipts = sum(len(p.receipts) for p in plant.parts.values())
    units = sum(len(o.units) for o in orders)
    steps = sum(len(u) for o in orders for u in o.units)
    print(
        f"input: {len(orders)} open orders ({units} units, {steps} steps), "
        f"{len(plant.parts)} parts, "
        f"{receipts} scheduled receipts, {len(plant.stations)} stations of {len(KINDS)} kinds, "
        "two shifts x 5 days, 120-day horizon"
    )
    times, plan = timed(lambda: Plan(plant, orders), args.repeat)
    assert isinstance(plan, Plan)
    promised = sum(1 for p in plan.promises.values() if p.promised)
    print(
        f"pure plan, all open orders: best {min(times) * 1000:.0f} ms, median "
        f"{statistics.median(times) * 1000:.0f} ms ({promised} promised, "
        f"{len(orders) - promised} without a date)"
    )
    rng = random.Random(11)
    with_receipts = [p for p in plant.parts.values() if p.receipts]
    slip_times, changed_counts = [], []
    for _ in range(args.slips):
        part = rng.choice(with_receipts)
        r = part.receipts[0]
        slipped = PartSupply(
            part.part_id,
            part.sku,
            part.free,
            [Receipt(r.id, r.part_id, r.day + timedelta(days=7), r.qty, r.ref), *part.receipts[1:]],
        )
        parts = {**plan.plant.parts, part.part_id: slipped}
        t = time.perf_counter()
        changed = plan.replan(parts=parts)
        slip_times.append(time.perf_counter() - t)
        changed_counts.append(len(changed))
        plan.replan(parts={**plan.plant.parts, part.part_id: part})  # back as it was
    print(
        f"pure incremental re-promise after one receipt slips a week ({args.slips} receipts): "
        f"median {statistics.median(slip_times) * 1000:.1f} ms, "
        f"worst {max(slip_times) * 1000:.1f} ms; "
        f"orders whose promise moved: median {statistics.median(changed_counts):.0f}, "
        f"most {max(changed_counts)}"
    )


def database(args: argparse.Namespace, folder: Path) -> None:
    """The same sizes through the database: load + plan, and a receipt slipping."""
    from sqlmodel import Session, select

    from server.catalog import importer
    from server.db import get_engine, migrate, write_session
    from server.inventory import receipts as receipts_mod
    from server.models import ScheduledReceipt
    from server.orders import intake
    from server.promise import service

    rng = random.Random(5)
    url = f"sqlite:///{folder / 'bench.db'}"
    migrate.upgrade(url)
    engine = get_engine(url)
    today = datetime.now(UTC).date()
    kinds = KINDS[:4]
    stations = [
        {"code": f"ST-{n:02d}", "name": f"Station {n}", "kind": kinds[n % len(kinds)]}
        for n in range(args.stations)
    ]
    parts = [{"sku": f"P-{p:04d}", "description": f"Part {p}"} for p in range(args.parts)]
    products = []
    for n in range(20):
        bom_parts = rng.sample(range(args.parts), 25)
        products.append(
            {
                "code": f"PR{n}",
                "name": f"Product {n}",
                "line": "L1",
                "option_groups": [],
                "operations": [
                    {
                        "code": k.upper()[:3],
                        "sequence": 10 * (i + 1),
                        "name": k.title(),
                        "station_kind": k,
                        "standard_seconds": rng.choice((240, 300, 360, 420, 480)),
                    }
                    for i, k in enumerate(kinds)
                ],
                "bom": [
                    {
                        "part": f"P-{p:04d}",
                        "qty": rng.randint(1, 2),
                        "operation": kinds[0].upper()[:3],
                    }
                    for p in bom_parts
                ],
            }
        )
    doc = {
        "plant": {
            "site": "S1",
            "lines": [
                {
                    "code": "L1",
                    "stations": stations,
                    "calendar": {
                        "shifts": [
                            {
                                "days": "mon-fri",
                                "start": "06:00",
                                "end": "14:00",
                                "breaks": ["09:00-09:15"],
                            },
                            {
                                "days": "mon-fri",
                                "start": "14:00",
                                "end": "22:00",
                                "breaks": ["17:00-17:15"],
                            },
                        ]
                    },
                }
            ],
        },
        "locations": [{"code": "WH", "name": "Warehouse"}],
        "parts": parts,
        "products": products,
        "stock": [
            {"part": f"P-{p:04d}", "location": "WH", "qty": rng.randint(400, 1500)}
            for p in range(args.parts)
        ],
        "receipts": [
            {
                "part": f"P-{p:04d}",
                "qty": rng.randint(50, 300),
                "expected": (today + timedelta(days=rng.randint(1, 20))).isoformat(),
                "ref": f"PO-{p}",
            }
            for p in range(0, args.parts, 3)
        ],
    }
    t = time.perf_counter()
    with write_session(engine) as db:
        importer.import_document(db, doc, source="bench", by="bench")
        for o in range(args.orders):
            intake.create_order(
                db,
                order=intake.OrderInput(
                    f"SO-{o:05d}",
                    "Bench",
                    today + timedelta(days=rng.randint(1, 30)),
                    rng.choice((0, 0, 0, 1, 5)),
                    [intake.LineInput(f"PR{rng.randrange(20)}", rng.randint(1, 3))],
                ),
                by="bench",
                channel="bench",
            )
    print(f"database (SQLite): plant written in {time.perf_counter() - t:.1f} s")
    options = service.Options(zone=UTC)
    with Session(engine) as db:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            entry = service.plan_for(db, options=options, cached=False)
            times.append(time.perf_counter() - t)
        promised = sum(1 for p in entry.plan.promises.values() if p.promised)
        kinds = collections.Counter(p.reason.kind for p in entry.plan.promises.values())
        print(
            f"database: load + plan of {len(entry.plan.orders)} open orders: best "
            f"{min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms "
            f"({promised} promised; reasons {dict(kinds)})"
        )
    with write_session(engine) as db:
        entry = service.plan_for(db, options=options)
        for order_id, p in entry.plan.promises.items():
            if p.ship_on is not None:
                from server.models import OrderPromise

                db.add(OrderPromise(order_id=order_id, promised_on=p.ship_on))
    slip_times, flags = [], []
    with Session(engine) as db:
        ids = [r.id for r in db.exec(select(ScheduledReceipt)).all()]
    for rid in rng.sample(ids, min(args.slips, len(ids))):
        with write_session(engine) as db:
            service.plan_for(db, options=options)  # the kept plan, as a web process has it
            row = db.get(ScheduledReceipt, rid)
            assert row is not None
            t = time.perf_counter()
            changes = service.reschedule_receipt(
                db,
                receipt=row,
                expected_on=row.expected_on + timedelta(days=7),
                by="bench",
                options=options,
            )
            slip_times.append(time.perf_counter() - t)
            flags.append(sum(1 for c in changes if c.flagged))
    print(
        f"database: a receipt slips a week, re-promise + flags written ({len(slip_times)} "
        f"receipts): median {statistics.median(slip_times) * 1000:.1f} ms, worst "
        f"{max(slip_times) * 1000:.1f} ms; orders flagged: median "
        f"{statistics.median(flags):.0f}, most {max(flags)}"
    )
    del receipts_mod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--parts", type=int, default=500)
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slips", type=int, default=20)
    parser.add_argument("--no-db", dest="db", action="store_false")
    args = parser.parse_args()
    pure(args)
    if args.db:
        with tempfile.TemporaryDirectory() as folder:
            database(args, Path(folder))


if __name__ == "__main__":
    main()
