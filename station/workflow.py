"""The station workflow: what an event at a station means, decided in one pure place.

``decide(state, event, facts) -> Decision`` is shared by every path (MQTT ingest, the
tablet over HTTP, the JSON API). It reads only its arguments: ``state`` is what the
station is doing (``StationState``, loaded from the database by
``station.service.load_state``), ``event`` what just happened, and ``facts`` what the
database knows that the event refers to (the badge's operator, the next unit, the
scanned part and its stock), gathered by ``station.service`` before the call. It
answers accepted or rejected, a message code from ``station.messages`` with its
parameters, and the effects to record; the service writes them in the caller's
transaction. No database, no Flask, no MQTT here.

Poka-yoke for a scan: it must identify a part this unit still needs at this
operation (the BOM part or an approved substitute), the lot or serial must be in
stock and reserved for this unit or available, and a serial must never have been
built into another unit. Nothing expired is built in: a lot is expired when its
``expires_on``, or the expiry on the scanned label (GS1 AI 17), is before the event's
day in UTC (``facts.now``); it is usable on its expiry day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from station import checks as qc
from station.checks import CheckStatus
from station.messages import DEFECT_REASONS, english

# --- state -----------------------------------------------------------------------


@dataclass(frozen=True)
class OperatorInfo:
    id: int
    name: str
    badge: str
    skills: tuple[str, ...] = ()
    locale: str = "en"
    has_pin: bool = False


@dataclass(frozen=True)
class UnitInfo:
    id: int
    serial: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperationInfo:
    unit_operation_id: int
    operation_id: int
    code: str
    name: str
    instructions: str = ""
    image: str = ""
    standard_seconds: int = 0
    required_skill: str | None = None


@dataclass(frozen=True)
class Pick:
    """One component of the current step: ``qty`` needed, ``done`` confirmed so far."""

    part_id: int
    sku: str
    description: str
    qty: int
    done: int = 0
    tracking: str = "none"
    bin: str = ""
    substitutes: tuple[int, ...] = ()
    recorded: tuple[str, ...] = ()  # serials / lot codes confirmed for this pick

    @property
    def remaining(self) -> int:
        return max(self.qty - self.done, 0)


@dataclass(frozen=True)
class StationState:
    station: str
    station_id: int
    name: str = ""
    kind: str = ""
    site: str = ""
    line: str = ""
    operator: OperatorInfo | None = None
    unit: UnitInfo | None = None
    operation: OperationInfo | None = None
    picks: tuple[Pick, ...] = ()
    step_record_id: int | None = None
    started_at: datetime | None = None
    paused_at: datetime | None = None
    paused_seconds: float = 0.0
    checks: tuple[CheckStatus, ...] = ()  # the quality checks of the step (station.checks)

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @property
    def complete(self) -> bool:
        """Every pick and every check of the current step is done."""
        return (
            self.operation is not None
            and all(p.remaining == 0 for p in self.picks)
            and all(c.done for c in self.checks)
        )

    def worked_seconds(self, now: datetime) -> float:
        """Time on the current step so far, pauses excluded."""
        if self.started_at is None:
            return 0.0
        end = self.paused_at or now
        return max((end - self.started_at).total_seconds() - self.paused_seconds, 0.0)


# --- events ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    badge: str
    pin: str | None = None


@dataclass(frozen=True)
class SignOut:
    pass


@dataclass(frozen=True)
class StartNext:
    """Take the next unit the dispatcher gives this station."""


@dataclass(frozen=True)
class StartUnit:
    """Take a given unit (its serial scanned or typed)."""

    unit_serial: str


@dataclass(frozen=True)
class Scan:
    data: str
    gs1: dict[str, Any] | None = None  # the bridge's hint; ``data`` is the truth
    error: str | None = None  # the bridge could not trust the read (docs/bridge.md)


@dataclass(frozen=True)
class DeviceEvent:
    kind: str  # button | pick | torque | weight | hello | fault | unknown
    fields: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    error: str | None = None


@dataclass(frozen=True)
class CompleteStep:
    pass


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class ReportDefect:
    reason_code: str
    note: str = ""
    disposition: str = "rework"  # rework | hold | scrap
    part_sku: str = ""  # the affected part: one of the step's picks (optional)
    photo: tuple[str, bytes] | None = None  # (content type, bytes), checked by the caller


@dataclass(frozen=True)
class CallAndon:
    reason: str = "help"


@dataclass(frozen=True)
class CheckInput:
    """The worker's answer to a check of the step (tablet, API, MQTT action): a typed
    ``value``, ``passed`` for confirm / pass_fail, or a stored ``photo``."""

    check: int | str  # the check's id or code
    value: float | None = None
    passed: bool | None = None
    photo: str = ""


@dataclass(frozen=True)
class CancelAndon:
    """The worker withdraws the station's open andon call (help no longer needed)."""


StationEvent = (
    SignIn
    | SignOut
    | StartNext
    | StartUnit
    | Scan
    | DeviceEvent
    | CompleteStep
    | Pause
    | Resume
    | ReportDefect
    | CallAndon
    | CancelAndon
    | CheckInput
)

# --- facts the service gathers ---------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A unit operation this station could start, with its picks."""

    unit: UnitInfo
    operation: OperationInfo
    picks: tuple[Pick, ...] = ()


@dataclass(frozen=True)
class LotFacts:
    lot_id: int
    lot_code: str
    serial: str
    on_hand: int
    reserved: int
    reserved_for_unit: int = 0  # of ``reserved``, how much this unit holds
    expires_on: date | None = None

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class ScanFacts:
    """What the scanned code is, according to the catalog and the stock."""

    error: str | None = None  # a GS1 check digit / format error
    part_id: int | None = None
    sku: str = ""
    description: str = ""
    tracking: str = "none"
    lot_code: str | None = None
    serial: str | None = None
    lot: LotFacts | None = None  # the stock lot this scan would consume from
    expiry: date | None = None  # the expiry the label itself carries (GS1 AI 17)
    serial_in_unit: str | None = None  # unit serial the serial was already built into
    quarantined: bool = False  # the serial was removed in a rework and is not released
    # This unit's outstanding reservations: (lot_id, part_id, qty).
    unit_reservations: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True)
class Facts:
    now: datetime
    # SignIn, or a Scan of a badge: the badge's operator (None: not an active badge).
    operator: OperatorInfo | None = None
    pin_ok: bool = False  # SignIn: the PIN matched (or none is needed)
    pin_locked: bool = False  # SignIn: too many wrong PINs for this badge lately
    candidate: Candidate | None = None  # StartNext / StartUnit
    scan: ScanFacts | None = None  # Scan
    andon_open: bool = False  # CancelAndon: the station has an open andon call
    # ReportDefect: the catalog's defect reason codes (None: the built-in DEFECT_REASONS)
    defect_reasons: frozenset[str] | None = None


# --- effects the service records -------------------------------------------------


@dataclass(frozen=True)
class RecordSignIn:
    operator_id: int


@dataclass(frozen=True)
class RecordSignOut:
    operator_id: int


@dataclass(frozen=True)
class BeginStep:
    unit_id: int
    unit_operation_id: int
    operation_id: int
    operator_id: int


@dataclass(frozen=True)
class RecordConsumption:
    part_id: int
    for_part_id: int
    lot_id: int
    serial: str | None
    quantity: int
    reserved_here: int  # reservation of this unit released on the consumed lot
    release: tuple[tuple[int, int], ...] = ()  # (lot_id, qty) of this unit to unreserve


@dataclass(frozen=True)
class EndStep:
    unit_operation_id: int


@dataclass(frozen=True)
class PauseStep:
    at: datetime


@dataclass(frozen=True)
class ResumeStep:
    paused_seconds: float


@dataclass(frozen=True)
class RecordDefect:
    unit_id: int
    unit_operation_id: int | None
    reason_code: str
    note: str
    disposition: str
    part_id: int | None = None
    photo: tuple[str, bytes] | None = None


@dataclass(frozen=True)
class HoldUnit:
    unit_id: int
    unit_operation_id: int
    reason: str


@dataclass(frozen=True)
class RaiseAndon:
    reason: str
    unit_id: int | None


@dataclass(frozen=True)
class WithdrawAndon:
    """Close the station's open andon call(s): cancelled from the station."""


@dataclass(frozen=True)
class RecordCheckResult:
    unit_id: int
    unit_operation_id: int
    check_id: int
    passed: bool
    value: float | None = None
    source: str = "typed"
    tool: str = ""
    photo: str = ""


@dataclass(frozen=True)
class OpenNonConformance:
    """A check failed after its last retry: the step is blocked (``HoldUnit``)."""

    unit_id: int
    unit_operation_id: int
    check_id: int
    value: float | None = None


Effect = (
    RecordSignIn
    | RecordSignOut
    | BeginStep
    | RecordConsumption
    | EndStep
    | PauseStep
    | ResumeStep
    | RecordDefect
    | HoldUnit
    | RaiseAndon
    | WithdrawAndon
    | RecordCheckResult
    | OpenNonConformance
)


@dataclass(frozen=True)
class Decision:
    accepted: bool
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    effects: tuple[Effect, ...] = ()

    @property
    def result(self) -> str:
        return "accepted" if self.accepted else "rejected"

    @property
    def message(self) -> str:
        """English text (MQTT feedback, logs); the tablet uses ``messages.lazy``."""
        return english(self.code, self.params)


def accept(code: str, *effects: Effect, **params: Any) -> Decision:
    return Decision(True, code, params, tuple(effects))


def reject(code: str, **params: Any) -> Decision:
    return Decision(False, code, params)


def refuse(code: str, *effects: Effect, **params: Any) -> Decision:
    """Rejected, and still recorded: a measurement out of limits is kept as a failure."""
    return Decision(False, code, params, tuple(effects))


DISPOSITIONS = ("rework", "hold", "scrap")
DEFECT_REASON_CODES = frozenset(code for code, _label in DEFECT_REASONS)

# --- the decision ----------------------------------------------------------------


def decide(state: StationState, event: StationEvent, facts: Facts) -> Decision:
    """Accept or reject ``event`` at a station in ``state``; never raises on bad input.

    A badge means the same on every path (tablet, serial scanner, MQTT, API): a scan
    whose text is an active operator's badge signs that operator in, handing the
    station over from whoever was signed in; with nobody signed in, any scan is taken
    for a badge."""
    if isinstance(event, SignIn):
        return _sign_in(state, event.badge, event.pin, facts)
    if isinstance(event, Scan) and not event.error and facts.operator is not None:
        return _sign_in(state, event.data.strip(), None, facts)
    if isinstance(event, CallAndon):
        return accept(
            "andon_raised",
            RaiseAndon(event.reason or "help", state.unit.id if state.unit else None),
            reason=event.reason or "help",
        )
    if isinstance(event, CancelAndon):
        if not facts.andon_open:
            return reject("no_andon")
        return accept("andon_cancelled", WithdrawAndon())
    if state.operator is None:
        if isinstance(event, Scan) and not event.error:
            return reject("unknown_badge", badge=event.data.strip()[:64])
        return reject("sign_in_first")
    if isinstance(event, SignOut):
        effects: list[Effect] = []
        if state.operation is not None and not state.paused:
            effects.append(PauseStep(facts.now))  # a break: the clock stops
        effects.append(RecordSignOut(state.operator.id))
        return accept("signed_out", *effects, name=state.operator.name)
    if isinstance(event, StartNext | StartUnit):
        return _start(state, event, facts)
    if state.operation is None or state.unit is None:
        if isinstance(event, Scan) and not event.error and facts.candidate is not None:
            # A unit's traveler scanned while no unit is in progress: start that unit,
            # if dispatch has its step waiting here (the service found the candidate).
            return _start(state, StartUnit(event.data.strip()), facts)
        return reject("no_unit")
    if isinstance(event, Pause):
        if state.paused:
            return reject("already_paused")
        return accept("paused", PauseStep(facts.now))
    if isinstance(event, Resume):
        if not state.paused:
            return reject("not_paused")
        return accept("resumed", ResumeStep(_pause_so_far(state, facts.now)))
    if isinstance(event, ReportDefect):
        return _defect(state, event, facts)
    if state.paused:
        return reject("paused_now")
    if isinstance(event, Scan):
        return _scan(state, event, facts)
    if isinstance(event, DeviceEvent):
        return _device(state, event)
    if isinstance(event, CheckInput):
        return _check_input(state, event)
    if isinstance(event, CompleteStep):
        missing = [p for p in state.picks if p.remaining]
        if missing:
            return reject(
                "picks_missing", missing=", ".join(f"{p.remaining} x {p.sku}" for p in missing)
            )
        if not all(c.done for c in state.checks):
            return reject("checks_missing", missing=", ".join(qc.missing(state.checks)))
        return accept(
            "step_complete",
            EndStep(state.operation.unit_operation_id),
            unit=state.unit.serial,
            operation=state.operation.name,
            operation_id=state.operation.operation_id,
        )
    raise TypeError(f"not a station event: {event!r}")


def _pause_so_far(state: StationState, now: datetime) -> float:
    if state.paused_at is None:
        return 0.0
    return max((now - state.paused_at).total_seconds(), 0.0)


def _sign_in(state: StationState, badge: str, pin: str | None, facts: Facts) -> Decision:
    operator = facts.operator
    if operator is None:
        return reject("unknown_badge", badge=badge[:64])
    if facts.pin_locked:
        return reject("pin_locked", badge=badge[:64])
    if not facts.pin_ok:
        if pin is None:  # a badge that needs its PIN: the tablet asks for it
            return reject("pin_needed", badge=badge, name=operator.name)
        return reject("wrong_pin", badge=badge)
    effects: list[Effect] = []
    if state.operator is not None and state.operator.id != operator.id:
        effects.append(RecordSignOut(state.operator.id))
    effects.append(RecordSignIn(operator.id))
    return accept("signed_in", *effects, name=operator.name)


def _start(state: StationState, event: StartNext | StartUnit, facts: Facts) -> Decision:
    assert state.operator is not None
    if state.unit is not None:
        return reject("step_in_progress", unit=state.unit.serial)
    candidate = facts.candidate
    if candidate is None:
        if isinstance(event, StartUnit):
            return reject("unit_not_here", unit=event.unit_serial)
        return reject("no_work")
    skill = candidate.operation.required_skill
    if skill and skill not in state.operator.skills:
        return reject("missing_skill", operation=candidate.operation.name, skill=skill)
    return accept(
        "step_started",
        BeginStep(
            candidate.unit.id,
            candidate.operation.unit_operation_id,
            candidate.operation.operation_id,
            state.operator.id,
        ),
        unit=candidate.unit.serial,
        operation=candidate.operation.name,
        operation_id=candidate.operation.operation_id,
    )


def _defect(state: StationState, event: ReportDefect, facts: Facts) -> Decision:
    assert state.unit is not None and state.operation is not None
    if event.reason_code not in (facts.defect_reasons or DEFECT_REASON_CODES):
        return reject("bad_reason", reason=event.reason_code[:32])
    if event.disposition not in DISPOSITIONS:
        return reject("bad_disposition", disposition=event.disposition[:32])
    part_id = None
    if event.part_sku:
        part = next((p for p in state.picks if p.sku == event.part_sku), None)
        if part is None:
            return reject("defect_part_unknown", sku=event.part_sku[:64])
        part_id = part.part_id
    effects: list[Effect] = [
        RecordDefect(
            state.unit.id,
            state.operation.unit_operation_id,
            event.reason_code,
            event.note,
            event.disposition,
            part_id,
            event.photo,
        )
    ]
    if event.disposition in ("hold", "scrap"):
        effects.append(
            HoldUnit(
                state.unit.id,
                state.operation.unit_operation_id,
                f"defect {event.reason_code} ({event.disposition})",
            )
        )
        return accept("unit_held", *effects, reason=event.reason_code, unit=state.unit.serial)
    return accept("defect_recorded", *effects, reason=event.reason_code, unit=state.unit.serial)


def _device(state: StationState, event: DeviceEvent) -> Decision:
    if event.error or event.kind == "unknown":
        return reject("unreadable", detail=event.error or "unknown device line")
    if event.kind == "fault":
        return reject(
            "device_fault", source=event.source or "?", detail=str(event.fields.get("message", ""))
        )
    check = qc.for_device(state.checks, event.kind, event.source)
    if check is not None:
        value = qc.usable(event.fields.get("value"))
        if value is None:
            return reject("unreadable", detail=f"{event.kind} value is not a usable number")
        ok = event.fields.get("ok") is not False  # the tool's own NOK fails the result too
        return _measured(state, check, value, source=event.kind, tool=event.source, ok=ok)
    if event.kind == "torque" and event.fields.get("ok") is False:
        return reject(
            "torque_nok", value=event.fields.get("value", "?"), unit=event.fields.get("unit", "Nm")
        )
    return accept("device_recorded", kind=event.kind)


def _check_input(state: StationState, event: CheckInput) -> Decision:
    check = qc.find(state.checks, event.check)
    if check is None:
        return reject("unknown_check", check=str(event.check)[:32])
    spec = check.spec
    if spec.kind in qc.MEASURED:
        if spec.source != "typed":
            return reject("check_by_device", **_named(spec), source=spec.source)
        value = qc.usable(event.value)
        if value is None:
            return reject("value_needed", **_named(spec), limits=spec.limits)
        return _measured(state, check, value, source="typed", tool="")
    if check.done:
        return reject("check_done", **_named(spec))
    if spec.kind == "photo":
        if not event.photo:
            return reject("photo_needed", **_named(spec))
        return _result(state, check, True, photo=event.photo)
    if spec.kind == "confirm" and event.passed is not True:
        return reject("confirm_needed", **_named(spec))
    if event.passed is None:  # a pass / fail check needs its answer, never a guess
        return reject("answer_needed", **_named(spec))
    return _result(state, check, event.passed)


def _named(spec: qc.CheckSpec) -> dict[str, Any]:
    """A check verdict's ``name`` (the catalog's text: the event row, the devices'
    feedback) and ``check_id``, by which a screen shows the check in its reader's
    language (``station.views``)."""
    return {"name": spec.name, "check_id": spec.id}


def _measured(
    state: StationState,
    check: CheckStatus,
    value: float,
    *,
    source: str,
    tool: str,
    ok: bool = True,
) -> Decision:
    spec = check.spec
    shown = {
        **_named(spec),
        "value": qc.number(value),
        "unit": spec.unit,
        "limits": spec.limits,
    }
    if check.done:
        if qc.within(spec, value):
            return reject("check_done", **_named(spec))
        return reject("out_of_limits_done", **shown)
    passed = ok and qc.within(spec, value)
    return _result(state, check, passed, value=value, source=source, tool=tool)


def _result(
    state: StationState,
    check: CheckStatus,
    passed: bool,
    *,
    value: float | None = None,
    source: str = "typed",
    tool: str = "",
    photo: str = "",
) -> Decision:
    """One result of ``check``: counted, or a failure (a retry used, or the NCR)."""
    assert state.unit is not None and state.operation is not None
    spec = check.spec
    uop = state.operation.unit_operation_id
    record = RecordCheckResult(
        state.unit.id, uop, spec.id, passed, value, source, tool[:64], photo[:300]
    )
    shown: dict[str, Any] = _named(spec)
    if value is not None:
        shown.update(value=qc.number(value), unit=spec.unit, limits=spec.limits)
    if passed:
        done = check.passed + 1
        if spec.needed > 1:
            return accept("measured", record, done=done, count=spec.needed, **shown)
        return accept("check_passed", record, **shown)
    judged = qc.judge(check, passed)
    failure = "out_of_limits" if value is not None else "check_failed"
    if not judged.blocks:
        return refuse(failure, record, left=check.tries_left, **shown)
    return refuse(
        f"{failure}_ncr",
        record,
        OpenNonConformance(state.unit.id, uop, spec.id, value),
        HoldUnit(state.unit.id, uop, f"check {spec.code} failed"),
        unit_serial=state.unit.serial,
        **shown,
    )


def _scan(state: StationState, event: Scan, facts: Facts) -> Decision:
    assert state.unit is not None
    if event.error:
        return reject("unreadable", detail=event.error)
    scan = facts.scan
    if scan is None or scan.part_id is None:
        if scan is not None and scan.error:
            return reject("bad_check_digit", detail=scan.error)
        return reject("unknown_barcode", data=event.data[:64])
    pick = _pick_for(state.picks, scan.part_id)
    if pick is None:
        return _wrong_part(state, scan)
    if pick.remaining == 0:
        return reject("already_picked", sku=pick.sku, qty=pick.qty)
    if scan.tracking == "serial":
        if not scan.serial:
            return reject("serial_needed", sku=scan.sku)
        if scan.serial_in_unit is not None:
            if scan.serial_in_unit == state.unit.serial:
                return reject("serial_twice", serial=scan.serial)
            return reject("serial_used", serial=scan.serial, unit=scan.serial_in_unit)
        if scan.quarantined:
            return reject("serial_quarantined", serial=scan.serial, sku=scan.sku)
        if scan.lot is None:
            return reject("serial_unknown", serial=scan.serial, sku=scan.sku)
    elif scan.tracking == "lot" and scan.lot is None and scan.lot_code:
        return reject("lot_unknown", lot=scan.lot_code, sku=scan.sku)
    expired = _expired(scan, _today(facts.now))
    if expired is not None:
        return expired
    if (
        scan.tracking == "lot"
        and not scan.lot_code
        and (scan.lot is None or not scan.lot.reserved_for_unit)
    ):
        # Without a lot on the label we only trust the lot kitted for this unit.
        return reject("lot_needed", sku=scan.sku)
    lot = scan.lot
    where = scan.serial or scan.lot_code or "line-side"
    if lot is None or lot.on_hand < 1:
        return reject("out_of_stock", sku=scan.sku, where=where)
    reserved_here = 1 if lot.reserved_for_unit >= 1 else 0
    release: tuple[tuple[int, int], ...] = ()
    if not reserved_here:
        if lot.available < 1:
            return reject("reserved_elsewhere", sku=scan.sku, where=where)
        # The unit's reservation for this pick sits on another lot: give one back.
        for lot_id, part_id, qty in scan.unit_reservations:
            if qty > 0 and lot_id != lot.lot_id and part_id in (pick.part_id, scan.part_id):
                release = ((lot_id, 1),)
                break
    effect = RecordConsumption(
        part_id=scan.part_id,
        for_part_id=pick.part_id,
        lot_id=lot.lot_id,
        serial=scan.serial,
        quantity=1,
        reserved_here=reserved_here,
        release=release,
    )
    if scan.part_id != pick.part_id:
        return accept(
            "picked_substitute",
            effect,
            sku=scan.sku,
            for_sku=pick.sku,
            done=pick.done + 1,
            qty=pick.qty,
        )
    return accept("picked", effect, sku=scan.sku, done=pick.done + 1, qty=pick.qty)


def _today(now: datetime) -> date:
    """The event's day in UTC: what expiry dates are compared with."""
    return (now.astimezone(UTC) if now.tzinfo is not None else now).date()


def _expired(scan: ScanFacts, today: date) -> Decision | None:
    """``lot_expired`` when the label's expiry or the stock lot's is before ``today``."""
    past = [
        d
        for d in (scan.expiry, scan.lot.expires_on if scan.lot else None)
        if d is not None and d < today
    ]
    if not past:
        return None
    stock = (scan.lot.serial or scan.lot.lot_code) if scan.lot else ""
    return reject(
        "lot_expired",
        sku=scan.sku,
        lot=scan.serial or scan.lot_code or stock or "line-side",
        date=min(past).isoformat(),
    )


def _pick_for(picks: tuple[Pick, ...], part_id: int) -> Pick | None:
    """The pick ``part_id`` satisfies: itself first, then as a substitute; open ones first."""
    exact = [p for p in picks if p.part_id == part_id]
    subs = [p for p in picks if part_id in p.substitutes]
    for candidates in (exact, subs):
        open_ = [p for p in candidates if p.remaining]
        if open_:
            return open_[0]
    found = exact or subs
    return found[0] if found else None


def _wrong_part(state: StationState, scan: ScanFacts) -> Decision:
    open_picks = [p for p in state.picks if p.remaining]
    if not open_picks:
        return reject(
            "wrong_part_step_done", scanned=scan.description or scan.sku, scanned_sku=scan.sku
        )
    # Name the open picks most like the scanned part (same SKU family: MEM-16 vs
    # MEM-32), all of them. ``needed`` is the English list (MQTT feedback, logs);
    # the tablet joins ``needed_list`` in the reader's language and highlights the
    # rows of ``needed_skus``.
    family = scan.sku.split("-")[0]
    similar = [p for p in open_picks if p.sku.split("-")[0] == family]
    needed = similar or open_picks
    names = [p.description or p.sku for p in needed]
    return reject(
        "wrong_part",
        scanned=scan.description or scan.sku,
        needed=" or ".join(names),
        needed_list=names,
        needed_skus=[p.sku for p in needed],
        scanned_sku=scan.sku,
    )
