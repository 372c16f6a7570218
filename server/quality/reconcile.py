"""Quality invariants for ``taktline reconcile`` (server.trace.reconcile): every
completed unit passed each check that applies to it, and the quarantine holds exactly
the components removed in reworks and not yet released."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.models import (
    CheckResult,
    ComponentChange,
    Location,
    NonConformance,
    StockLot,
    Unit,
    UnitOperation,
)
from server.models.types import UnitOperationStatus, UnitStatus
from server.quality import results


def checks_complete(session: Session) -> list[str]:
    """A completed unit has, for every check of every operation it went through, as many
    passed results as the check asks (an NCR used as is counts as decided)."""
    problems = []
    used_as_is = {
        (n.unit_operation_id, n.check_id)
        for n in session.exec(
            select(NonConformance).where(NonConformance.disposition == "use_as_is")
        )
    }
    passed: dict[tuple[int, int], int] = defaultdict(int)
    done = session.exec(
        select(UnitOperation, Unit.serial, Unit.options)
        .join(Unit, col(Unit.id) == UnitOperation.unit_id)
        .where(
            Unit.status == UnitStatus.COMPLETED,
            UnitOperation.status == UnitOperationStatus.DONE,
        )
    ).all()
    if not done:
        return []
    for uop_id, check_id, n in session.exec(  # type: ignore[call-overload]
        select(CheckResult.unit_operation_id, CheckResult.check_id, sa.func.count())
        .where(CheckResult.passed == True)  # noqa: E712
        .group_by(col(CheckResult.unit_operation_id), col(CheckResult.check_id))
    ):
        passed[(uop_id, check_id)] = int(n)
    specs: dict[tuple[int, tuple[str, ...]], list] = {}  # type: ignore[type-arg]
    for uop, serial, options in done:
        key = (uop.operation_id, tuple(options or ()))
        if key not in specs:
            specs[key] = results.specs(session, operation_id=key[0], options=key[1])
        for spec in specs[key]:
            got = passed.get((uop.id or 0, spec.id), 0)
            if got < spec.needed and (uop.id, spec.id) not in used_as_is:
                problems.append(
                    f"unit {serial}: check {spec.code} passed {got} of {spec.needed} times"
                )
    return problems


def quarantine_matches_removals(session: Session) -> list[str]:
    """Per quarantine lot: on hand = removals into it not yet released."""
    problems = []
    waiting: dict[int, int] = defaultdict(int)
    for change in session.exec(
        select(ComponentChange).where(
            ComponentChange.action == "removed", col(ComponentChange.released_at).is_(None)
        )
    ):
        waiting[change.quarantine_lot_id or 0] += 1
    lots = session.exec(
        select(StockLot)
        .join(Location, col(Location.id) == StockLot.location_id)
        .where(Location.kind == "quarantine")
    ).all()
    for lot in lots:
        want = waiting.pop(lot.id or 0, 0)
        if lot.on_hand != want:
            problems.append(
                f"quarantine lot {lot.id} ({lot.serial or lot.lot_code}): {lot.on_hand} on hand, "
                f"{want} removed and not released"
            )
    for lot_id, n in waiting.items():
        problems.append(f"{n} removed component(s) point at missing quarantine lot {lot_id}")
    return problems


def figures(session: Session) -> dict[str, int]:
    def count(stmt: sa.Select) -> int:  # type: ignore[type-arg]
        return int(session.execute(stmt).scalar_one())

    return {
        "check results": count(sa.select(sa.func.count()).select_from(CheckResult)),
        "non-conformances": count(sa.select(sa.func.count()).select_from(NonConformance)),
        "components removed in rework": count(
            sa.select(sa.func.count())
            .select_from(ComponentChange)
            .where(col(ComponentChange.action) == "removed")
        ),
    }
