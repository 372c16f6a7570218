"""Reconcile the database after a shift: every invariant, checked from the rows.

Each check returns the list of mismatches it found (empty: clean). ``reconcile``
runs them all; the shift simulator prints the report and exits non-zero on any
mismatch. The checks read only committed rows, so they hold for any run, simulated
or real (``taktline reconcile`` runs them against a live plant's database).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server.models import (
    Consumption,
    Event,
    EventResult,
    StepRecord,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
    UnitStatus,
)
from server.quality import reconcile as quality_checks


@dataclass
class ReconcileReport:
    checks: dict[str, list[str]] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not any(self.checks.values())

    def lines(self) -> list[str]:
        out = [f"  {name}: {n}" for name, n in self.figures.items()]
        for name, problems in self.checks.items():
            verdict = "ok" if not problems else f"{len(problems)} MISMATCH(ES)"
            out.append(f"[{'ok' if not problems else 'FAIL'}] {name}: {verdict}")
            out += [f"      {p}" for p in problems[:20]]
            if len(problems) > 20:
                out.append(f"      ... and {len(problems) - 20} more")
        return out


def scans_applied_once(session: Session, published: Iterable[str] | None) -> list[str]:
    """Every published msg_id is recorded exactly once, accepted or rejected with a reason."""
    problems = []
    rows = session.exec(select(Event.msg_id, Event.result, Event.reason)).all()
    seen = {msg_id: (result, reason) for msg_id, result, reason in rows}
    if len(seen) != len(rows):  # cannot happen while msg_id is UNIQUE; says so if it does
        problems.append(f"{len(rows) - len(seen)} msg_id(s) recorded more than once")
    for msg_id, (result, reason) in seen.items():
        if result == EventResult.REJECTED and not reason:
            problems.append(f"{msg_id}: rejected without a reason")
        elif result not in EventResult.stored():
            problems.append(f"{msg_id}: recorded as {result!r}")
    for msg_id in published or ():
        if msg_id not in seen:
            problems.append(f"{msg_id}: published but never recorded (lost)")
    twice = session.exec(  # type: ignore[call-overload]
        select(Consumption.event_id, sa.func.count())
        .where(col(Consumption.event_id).is_not(None))
        .group_by(col(Consumption.event_id))
        .having(sa.func.count() > 1)
    ).all()
    problems += [f"event {event_id} confirmed {n} consumptions" for event_id, n in twice]
    return problems


def consumptions_match_bom(session: Session) -> list[str]:
    """A completed unit consumed exactly what its resolved routing's picks ask for:
    consumptions = BOM + replacements - removals (a component removed in a rework no
    longer counts; its replacement does)."""
    problems: list[str] = []
    after = 0
    while True:  # a chunk of completed units at a time: a 1M-unit history fits in memory
        done_units: dict[int, str] = dict(
            session.exec(  # type: ignore[call-overload, arg-type]
                select(Unit.id, Unit.serial)
                .where(Unit.status == UnitStatus.COMPLETED, col(Unit.id) > after)
                .order_by(col(Unit.id))
                .limit(BOM_CHUNK)
            ).all()
        )
        if not done_units:
            return problems
        after = max(done_units)
        problems += _bom_mismatches(session, done_units)


# Completed units compared per round (one IN list of ids each, far below the 65,535
# parameters a statement may carry).
BOM_CHUNK = 5_000


def _bom_mismatches(session: Session, done_units: dict[int, str]) -> list[str]:
    needed: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for unit_id, picks in session.exec(  # type: ignore[call-overload]
        select(UnitOperation.unit_id, UnitOperation.picks).where(
            col(UnitOperation.unit_id).in_(done_units)
        )
    ):
        for pick in picks:
            needed[unit_id][int(pick["part_id"])] += int(pick["qty"])
    got: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for unit_id, part_id, quantity in session.exec(  # type: ignore[call-overload]
        select(Consumption.unit_id, Consumption.for_part_id, sa.func.sum(Consumption.quantity))
        .where(col(Consumption.unit_id).in_(done_units), col(Consumption.removed_at).is_(None))
        .group_by(col(Consumption.unit_id), col(Consumption.for_part_id))
    ):
        got[unit_id][part_id] += int(quantity)
    return [
        f"unit {serial}: BOM asks {dict(needed[unit_id])}, "
        f"consumed {dict(got[unit_id])} (part id: qty)"
        for unit_id, serial in done_units.items()
        if dict(needed[unit_id]) != dict(got[unit_id])
    ]


def stock_matches_ledger(session: Session) -> list[str]:
    """Every lot's on-hand = receipts - consumption - scrap +- adjustments, never negative."""
    problems = []
    sums = {
        lot_id: (q, r)
        for lot_id, q, r in session.exec(  # type: ignore[call-overload]
            select(
                StockMovement.lot_id,
                sa.func.sum(StockMovement.quantity),
                sa.func.sum(StockMovement.reserved_delta),
            ).group_by(col(StockMovement.lot_id))
        )
    }
    for lot in session.exec(select(StockLot)):
        q, r = sums.get(lot.id or 0, (0, 0))
        if (lot.on_hand, lot.reserved) != (q, r):
            problems.append(
                f"lot {lot.id} ({lot.lot_code or lot.serial}): on hand "
                f"{lot.on_hand}/reserved {lot.reserved}, ledger says {q}/{r}"
            )
        if lot.on_hand < 0 or lot.reserved < 0 or lot.reserved > lot.on_hand:
            problems.append(f"lot {lot.id}: impossible balance {lot.on_hand}/{lot.reserved}")
    # Every consumption has its ledger line: per lot, consumed == -(consumption movements).
    consumed: dict[int, int] = dict(
        session.exec(  # type: ignore[call-overload, arg-type]
            select(Consumption.lot_id, sa.func.sum(Consumption.quantity))
            .where(col(Consumption.lot_id).is_not(None))
            .group_by(col(Consumption.lot_id))
        ).all()
    )
    booked: dict[int, int] = dict(
        session.exec(  # type: ignore[call-overload]
            select(StockMovement.lot_id, -sa.func.sum(StockMovement.quantity))
            .where(StockMovement.kind == "consumption")
            .group_by(col(StockMovement.lot_id))
        ).all()
    )
    for lot_id in sorted(set(consumed) | set(booked)):
        if int(consumed.get(lot_id, 0)) != int(booked.get(lot_id, 0)):
            problems.append(
                f"lot {lot_id}: {consumed.get(lot_id, 0)} consumed into units, "
                f"{booked.get(lot_id, 0)} booked as consumption on the ledger"
            )
    return problems


def serials_unique(session: Session) -> list[str]:
    rows = session.exec(  # type: ignore[call-overload]
        select(Consumption.part_id, Consumption.serial, sa.func.count())
        .where(
            col(Consumption.serial).is_not(None),
            col(Consumption.removed_at).is_(None),  # removed in a rework: no longer in it
        )
        .group_by(col(Consumption.part_id), col(Consumption.serial))
        .having(sa.func.count() > 1)
    ).all()
    return [f"part {part_id} serial {serial} built into {n} units" for part_id, serial, n in rows]


def steps_closed(session: Session) -> list[str]:
    open_steps = session.exec(select(StepRecord).where(StepRecord.ended_at.is_(None))).all()  # type: ignore[union-attr]
    return [
        f"step record {s.id} (unit {s.unit_id}, station {s.station_id}) has no end"
        for s in open_steps
    ]


def reconcile(
    engine: Engine, *, published: Iterable[str] | None = None, allow_open_steps: bool = False
) -> ReconcileReport:
    report = ReconcileReport()
    with Session(engine) as session:
        report.checks["every scan applied once or rejected with a reason"] = scans_applied_once(
            session, published
        )
        report.checks["completed units consumed exactly their BOM"] = consumptions_match_bom(
            session
        )
        report.checks["on-hand equals the ledger for every lot"] = stock_matches_ledger(session)
        report.checks["no serial in two units"] = serials_unique(session)
        report.checks["completed units passed every check"] = quality_checks.checks_complete(
            session
        )
        report.checks["quarantine holds the removals not yet released"] = (
            quality_checks.quarantine_matches_removals(session)
        )
        if not allow_open_steps:
            report.checks["every step record has a start and an end"] = steps_closed(session)
        report.figures = {
            "events recorded": _count(session, Event),
            "events accepted": _count(session, Event, Event.result == EventResult.ACCEPTED),
            "events rejected": _count(session, Event, Event.result == EventResult.REJECTED),
            "units completed": _count(session, Unit, Unit.status == UnitStatus.COMPLETED),
            "consumptions": _count(session, Consumption),
            "step records": _count(session, StepRecord),
            **quality_checks.figures(session),
        }
    return report


def _count(session: Session, model: type, *where: object) -> int:
    stmt = select(sa.func.count()).select_from(model)
    for clause in where:
        stmt = stmt.where(clause)  # type: ignore[arg-type]
    return int(session.exec(stmt).one())  # type: ignore[call-overload]
