"""Rework with component replacement, at a station of kind ``rework`` (docs/quality.md).

A unit whose NCR was decided ``rework`` waits in the rework stations' queue. There the
operator removes a component by scanning it: its consumption is marked removed and
the piece goes on the ledger (``removal``) into a quarantine location, never back to
free stock; a quarantined serial is refused at every station until a supervisor
releases it (``release``). The replacement is scanned with the station's own poka-yoke
(``station.workflow.decide`` on a one-pick step: right part or an approved substitute,
reserved for the unit or free, a serial never in two units, nothing expired or
quarantined). The failed check is re-run here; the rework is finished when every
removed component has its replacement and the check passed, and the blocked step goes
back to its station's queue. The caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server import audit
from server.inventory import ledger
from server.models import (
    Check,
    CheckResult,
    ComponentChange,
    Consumption,
    Location,
    NonConformance,
    Operation,
    Part,
    PartSubstitute,
    Station,
    StockLot,
    Unit,
    UnitOperation,
)
from server.models.types import pk, utcnow
from server.quality import results
from server.quality.ncr import QualityError, close_after_rework, label
from station import checks as qc
from station import identify, reading
from station import workflow as wf

REWORK_KIND = "rework"
QUARANTINE_CODE = "QUARANTINE"


@dataclass(frozen=True)
class Component:
    consumption_id: int
    sku: str
    description: str
    serial: str | None
    lot_code: str
    removed_at: datetime | None
    installed_in_rework: bool


def rework_station(session: Session, code: str) -> Station:
    station = session.exec(select(Station).where(Station.code == code)).first()
    if station is None or station.kind != REWORK_KIND:
        raise QualityError("not_rework_station", station=code[:32])
    return station


def queue(session: Session) -> list[tuple[NonConformance, str]]:
    """NCRs sent to rework, oldest first, with their unit serial."""
    rows = session.exec(
        select(NonConformance, Unit.serial)
        .join(Unit, col(Unit.id) == NonConformance.unit_id)
        .where(NonConformance.status == "rework")
        .order_by(col(NonConformance.id))
    ).all()
    return [(n, s) for n, s in rows]


def components(session: Session, *, unit_id: int) -> list[Component]:
    installed = set(
        session.exec(
            select(ComponentChange.consumption_id).where(
                ComponentChange.unit_id == unit_id, ComponentChange.action == "installed"
            )
        ).all()
    )
    rows = session.exec(
        select(Consumption, Part.sku, Part.description, StockLot.lot_code)
        .join(Part, col(Part.id) == Consumption.part_id)
        .outerjoin(StockLot, col(StockLot.id) == Consumption.lot_id)
        .where(Consumption.unit_id == unit_id)
        .order_by(col(Consumption.id))
    ).all()
    return [
        Component(pk(c), sku, desc, c.serial, lot or "", c.removed_at, pk(c) in installed)
        for c, sku, desc, lot in rows
    ]


def _quarantine(session: Session) -> Location:
    loc = session.exec(select(Location).where(Location.kind == "quarantine")).first()
    if loc is None:
        loc = Location(code=QUARANTINE_CODE, name="Quarantine", kind="quarantine")
        session.add(loc)
        session.flush()
    return loc


def _unit(session: Session, ncr: NonConformance) -> Unit:
    session.refresh(ncr, with_for_update=True)  # one rework action at a time per NCR
    if ncr.status != "rework":
        raise QualityError("not_in_rework", ncr=label(ncr), status=ncr.status)
    unit = session.get(Unit, ncr.unit_id)
    assert unit is not None
    return unit


def remove(
    session: Session, *, ncr: NonConformance, data: str, station: Station, by: str
) -> ComponentChange:
    """Take the scanned component out of the NCR's unit, into quarantine."""
    unit = _unit(session, ncr)
    found = identify.identify(session, identify.parse_scan(data.strip()[:4096]))
    if found is None:
        raise QualityError("unknown_barcode", data=data.strip()[:64])
    stmt = select(Consumption).where(
        Consumption.unit_id == unit.id,
        Consumption.part_id == found.part_id,
        col(Consumption.removed_at).is_(None),
    )
    if found.serial:
        stmt = stmt.where(Consumption.serial == found.serial)
    elif found.lot:
        lots = select(StockLot.id).where(StockLot.lot_code == found.lot)
        stmt = stmt.where(col(Consumption.lot_id).in_(lots))
    consumption = session.exec(stmt.order_by(col(Consumption.id).desc())).first()
    if consumption is None:
        what = found.serial or found.lot or found.sku
        raise QualityError("not_in_unit", sku=found.sku, what=what, unit=unit.serial)
    now = utcnow()
    source = session.get(StockLot, consumption.lot_id) if consumption.lot_id else None
    quarantine = _quarantine(session)
    lot_code = source.lot_code if source else ""
    serial = consumption.serial or ""
    qlot = session.exec(
        select(StockLot).where(
            StockLot.part_id == consumption.part_id,
            StockLot.lot_code == lot_code,
            StockLot.serial == serial,
            StockLot.location_id == quarantine.id,
        )
    ).first()
    if qlot is None:
        qlot = StockLot(
            part_id=consumption.part_id,
            lot_code=lot_code,
            serial=serial,
            location_id=pk(quarantine),
            expires_on=source.expires_on if source else None,
        )
        session.add(qlot)
        session.flush()
    consumption.removed_at = now
    session.add(consumption)
    ledger.append(
        session,
        ledger.movement(
            lot_id=pk(qlot),
            part_id=consumption.part_id,
            kind="removal",
            quantity=consumption.quantity,
            by=by,
            unit_id=unit.id,
            reason=f"removed from unit {unit.serial} ({label(ncr)})",
            at=now,
        ),
    )
    change = ComponentChange(
        ncr_id=pk(ncr),
        unit_id=pk(unit),
        consumption_id=pk(consumption),
        action="removed",
        part_id=consumption.part_id,
        serial=consumption.serial,
        lot_id=consumption.lot_id,
        quarantine_lot_id=pk(qlot),
        station_id=station.id,
        by=by[:200],
        at=now,
    )
    session.add(change)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="quality.component_removed",
        entity="unit",
        entity_id=unit.serial,
        address=station.code,
        detail={"ncr": label(ncr), "part": found.sku, "serial": serial, "lot": lot_code},
    )
    return change


def _open_removals(
    session: Session, ncr: NonConformance
) -> list[tuple[ComponentChange, Consumption]]:
    """Removals of this NCR that have no replacement yet, oldest first: per BOM part
    (a replacement satisfies the pick its removed component did), the removals beyond
    the replacements installed."""
    rows = session.exec(
        select(ComponentChange, Consumption)
        .join(Consumption, col(Consumption.id) == ComponentChange.consumption_id)
        .where(ComponentChange.ncr_id == ncr.id)
        .order_by(col(ComponentChange.id))
    ).all()
    installed: dict[int, int] = {}
    for change, consumption in rows:
        if change.action == "installed":
            installed[consumption.for_part_id] = installed.get(consumption.for_part_id, 0) + 1
    out = []
    for change, consumption in rows:
        if change.action != "removed":
            continue
        if installed.get(consumption.for_part_id, 0) > 0:
            installed[consumption.for_part_id] -= 1
            continue
        out.append((change, consumption))
    return out


def install(
    session: Session, *, ncr: NonConformance, data: str, station: Station, by: str
) -> ComponentChange:
    """Build the scanned replacement in, with the station's poka-yoke."""
    unit = _unit(session, ncr)
    waiting = _open_removals(session, ncr)
    if not waiting:
        raise QualityError("remove_first")
    now = utcnow()
    scan = reading.scan_facts(session, data=data.strip()[:4096], unit_id=pk(unit), today=now.date())
    subs_of = {
        removed.for_part_id: tuple(
            session.exec(
                select(PartSubstitute.substitute_id).where(
                    PartSubstitute.part_id == removed.for_part_id
                )
            ).all()
        )
        for _change, removed in waiting
    }
    # The removal this replacement answers: same BOM part or an approved substitute; else
    # the oldest, and the poka-yoke names what it needs.
    removed = next(
        (
            r
            for _c, r in waiting
            if scan.part_id is not None
            and (scan.part_id == r.for_part_id or scan.part_id in subs_of[r.for_part_id])
        ),
        waiting[0][1],
    )
    part = session.get(Part, removed.for_part_id)
    assert part is not None
    subs = subs_of[removed.for_part_id]
    uop = session.get(UnitOperation, removed.unit_operation_id)
    assert uop is not None
    operation = session.get(Operation, uop.operation_id)
    assert operation is not None
    state = wf.StationState(
        station=station.code,
        station_id=pk(station),
        kind=station.kind,
        operator=wf.OperatorInfo(0, by, ""),
        unit=wf.UnitInfo(pk(unit), unit.serial, tuple(unit.options or ())),
        operation=wf.OperationInfo(pk(uop), pk(operation), operation.code, operation.name),
        picks=(
            wf.Pick(
                pk(part),
                part.sku,
                part.description,
                removed.quantity,
                tracking=part.tracking,
                substitutes=subs,
            ),
        ),
    )
    decision = wf.decide(state, wf.Scan(data.strip()[:4096]), wf.Facts(now=now, scan=scan))
    if not decision.accepted:
        raise QualityError(decision.code, **decision.params)  # the station's poka-yoke
    [effect] = [e for e in decision.effects if isinstance(e, wf.RecordConsumption)]
    consumption = Consumption(
        unit_id=pk(unit),
        part_id=effect.part_id,
        lot_id=effect.lot_id,
        serial=effect.serial,
        quantity=effect.quantity,
        for_part_id=effect.for_part_id,
        unit_operation_id=pk(uop),
        station_id=station.id,
        at=now,
    )
    session.add(consumption)
    session.flush()  # uq_consumption_serial refuses a serial in two units
    ledger.append(
        session,
        ledger.movement(
            lot_id=effect.lot_id,
            part_id=effect.part_id,
            kind="consumption",
            quantity=-effect.quantity,
            reserved_delta=-effect.reserved_here,
            by=by,
            unit_id=unit.id,
            work_order_id=unit.work_order_id,
            reason=f"replacement in unit {unit.serial} ({label(ncr)})",
            at=now,
        ),
    )
    for lot_id, qty in effect.release:
        lot = session.get(StockLot, lot_id)
        assert lot is not None
        ledger.append(
            session,
            ledger.movement(
                lot_id=lot_id,
                part_id=lot.part_id,
                kind="unreservation",
                reserved_delta=-qty,
                by=by,
                unit_id=unit.id,
                work_order_id=unit.work_order_id,
                reason="scanned another lot",
                at=now,
            ),
        )
    change = ComponentChange(
        ncr_id=pk(ncr),
        unit_id=pk(unit),
        consumption_id=pk(consumption),
        action="installed",
        part_id=effect.part_id,
        serial=effect.serial,
        lot_id=effect.lot_id,
        station_id=station.id,
        by=by[:200],
        at=now,
    )
    session.add(change)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="quality.component_installed",
        entity="unit",
        entity_id=unit.serial,
        address=station.code,
        detail={"ncr": label(ncr), "serial": effect.serial, "lot_id": effect.lot_id},
    )
    return change


def check_status(session: Session, *, ncr: NonConformance) -> qc.CheckStatus | None:
    """The NCR's check as re-run in this rework: results since the NCR opened."""
    if ncr.check_id is None or ncr.unit_operation_id is None:
        return None
    check = session.get(Check, ncr.check_id)
    assert check is not None
    [spec] = [
        s
        for s in results.specs(session, operation_id=check.operation_id, options=())
        if s.id == check.id
    ] or [_spec(check)]
    rows = session.exec(
        select(CheckResult.passed, sa.func.count())
        .where(
            CheckResult.unit_operation_id == ncr.unit_operation_id,
            CheckResult.check_id == ncr.check_id,
            CheckResult.at >= ncr.opened_at,
            col(CheckResult.ncr_id).is_(None),
        )
        .group_by(col(CheckResult.passed))
    ).all()
    counts = {bool(p): int(n) for p, n in rows}
    return qc.CheckStatus(spec, counts.get(True, 0), counts.get(False, 0))


def _spec(check: Check) -> qc.CheckSpec:
    return qc.CheckSpec(
        pk(check), check.code, check.kind, check.name, check.instructions, check.nominal,
        check.lower, check.upper, check.unit, check.source, check.tool, check.count,
        check.retries,
    )  # fmt: skip


def measure(
    session: Session,
    *,
    ncr: NonConformance,
    value: float | None,
    passed: bool | None,
    station: Station,
    by: str,
) -> bool:
    """Re-run the NCR's check once: a value judged against its limits, or pass / fail.
    Returns whether the result passed."""
    unit = _unit(session, ncr)
    status = check_status(session, ncr=ncr)
    if status is None:
        raise QualityError("no_check", ncr=label(ncr))
    spec = status.spec
    if spec.kind in qc.MEASURED:
        number = qc.usable(value)
        if number is None:
            raise QualityError("value_needed", name=spec.name, limits=spec.limits)
        ok = qc.within(spec, number)
    else:
        number, ok = None, passed is True
    results.record(
        session,
        unit_id=pk(unit),
        unit_operation_id=ncr.unit_operation_id or 0,
        check_id=spec.id,
        passed=ok,
        value=number,
        source="rework",
        tool=spec.tool,
        station_id=station.id,
        operator_id=None,
        event_id=None,
    )
    return ok


def finish(session: Session, *, ncr: NonConformance, by: str, address: str = "") -> None:
    """Close the rework: every removal replaced, the check re-run to the end."""
    _unit(session, ncr)
    if _open_removals(session, ncr):
        raise QualityError("replacement_missing")
    status = check_status(session, ncr=ncr)
    if status is not None and not status.done:
        raise QualityError(
            "rerun_first", name=status.spec.name, passed=status.passed, needed=status.spec.needed
        )
    close_after_rework(session, ncr=ncr, by=by, address=address)


@dataclass(frozen=True)
class Quarantined:
    change: ComponentChange
    sku: str
    unit: str
    lot_code: str


def quarantined(session: Session) -> list[Quarantined]:
    """Removed components not yet released, oldest first."""
    rows = session.exec(
        select(ComponentChange, Part.sku, Unit.serial, StockLot.lot_code)
        .join(Part, col(Part.id) == ComponentChange.part_id)
        .join(Unit, col(Unit.id) == ComponentChange.unit_id)
        .outerjoin(StockLot, col(StockLot.id) == ComponentChange.quarantine_lot_id)
        .where(ComponentChange.action == "removed", col(ComponentChange.released_at).is_(None))
        .order_by(col(ComponentChange.id))
    ).all()
    return [Quarantined(c, sku, unit, lot or "") for c, sku, unit, lot in rows]


def release(session: Session, *, change_id: int, by: str, address: str = "") -> None:
    """A supervisor lets a removed component out of quarantine, back to the lot it came
    from (it may then be built into a unit again)."""
    # Row-locked (PostgreSQL): a release sent twice at once moves the stock once.
    change = session.get(ComponentChange, change_id, with_for_update=True)
    if change is None or change.action != "removed":
        raise QualityError("no_removal")
    if change.released_at is not None:
        raise QualityError("released_already")
    if change.quarantine_lot_id is None or change.lot_id is None:
        raise QualityError("no_lot")
    now = utcnow()
    consumption = session.get(Consumption, change.consumption_id)
    qty = consumption.quantity if consumption else 1
    for lot_id, quantity in ((change.quarantine_lot_id, -qty), (change.lot_id, qty)):
        ledger.append(
            session,
            ledger.movement(
                lot_id=lot_id,
                part_id=change.part_id,
                kind="release",
                quantity=quantity,
                by=by,
                reason=f"released from quarantine (removed from unit {change.unit_id})",
                at=now,
            ),
        )
    change.released_at, change.released_by = now, by[:200]
    session.add(change)
    audit.record(
        session,
        actor=by,
        action="quality.quarantine_released",
        entity="component",
        entity_id=change.id or "",
        address=address,
        detail={"serial": change.serial, "part_id": change.part_id},
    )
    session.flush()
