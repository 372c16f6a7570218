"""The pure station workflow: every verdict a line worker can get, without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from station import messages
from station.identify import parse_scan
from station.workflow import (
    BeginStep,
    CallAndon,
    Candidate,
    CompleteStep,
    DeviceEvent,
    EndStep,
    Facts,
    HoldUnit,
    LotFacts,
    OperationInfo,
    OperatorInfo,
    Pause,
    PauseStep,
    Pick,
    RaiseAndon,
    RecordConsumption,
    RecordDefect,
    RecordSignIn,
    RecordSignOut,
    ReportDefect,
    Resume,
    ResumeStep,
    Scan,
    ScanFacts,
    SignIn,
    SignOut,
    StartNext,
    StartUnit,
    StationState,
    UnitInfo,
    decide,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ALICE = OperatorInfo(1, "Alice Martin", "OP1001", ("kitting", "esd"))
UNIT = UnitInfo(7, "PC-000007", ("i7", "mem32"))
BRD = OperationInfo(70, 2, "BRD", "Board assembly", required_skill="esd")
MEM32 = Pick(40, "MEM-32", "32 GB memory", 1, tracking="lot", substitutes=(41,))
CPU = Pick(10, "CPU-I7", "Processor Core i7", 1, tracking="serial")
FANS = Pick(50, "FAN-120", "Case fan 120 mm", 2, tracking="none")
IDLE = StationState("BRD-1", 2, kind="board")
SIGNED = replace(IDLE, operator=ALICE)
BUSY = replace(
    SIGNED,
    unit=UNIT,
    operation=BRD,
    picks=(CPU, MEM32, FANS),
    step_record_id=9,
    started_at=NOW - timedelta(minutes=5),
)


def facts(**kw: object) -> Facts:
    return Facts(now=NOW, **kw)  # type: ignore[arg-type]


def lot(
    lot_id: int = 100,
    *,
    on_hand: int = 5,
    reserved: int = 0,
    mine: int = 0,
    code: str = "",
    serial: str = "",
    expires: date | None = None,
) -> LotFacts:
    return LotFacts(lot_id, code, serial, on_hand, reserved, mine, expires)


def test_sign_in_checks_badge_and_pin() -> None:
    assert decide(IDLE, SignIn("NOPE"), facts()).code == "unknown_badge"
    assert decide(IDLE, SignIn("OP1001", "0000"), facts(operator=ALICE)).code == "wrong_pin"
    ok = decide(IDLE, SignIn("OP1001"), facts(operator=ALICE, pin_ok=True))
    assert ok.accepted and ok.effects == (RecordSignIn(1),)
    assert ok.message == "Welcome, Alice Martin."
    # Another operator taking over signs the first one out.
    bob = OperatorInfo(2, "Bruno", "OP1002")
    swap = decide(SIGNED, SignIn("OP1002"), facts(operator=bob, pin_ok=True))
    assert swap.effects == (RecordSignOut(1), RecordSignIn(2))


@pytest.mark.parametrize(
    "event", [StartNext(), CompleteStep(), Pause(), SignOut(), Scan("", error="garbled")]
)
def test_nothing_but_sign_in_and_andon_without_operator(event: object) -> None:
    decision = decide(IDLE, event, facts())  # type: ignore[arg-type]
    assert not decision.accepted and decision.code == "sign_in_first"
    assert decision.message == "Sign in with your badge first."


def test_with_nobody_signed_in_a_scan_is_a_badge() -> None:
    unknown = decide(IDLE, Scan("OP9999"), facts())
    assert (unknown.accepted, unknown.code) == (False, "unknown_badge")
    assert unknown.message == "Badge OP9999 is not known or not active."
    ok = decide(IDLE, Scan(" OP1001\r"), facts(operator=ALICE, pin_ok=True))
    assert ok.accepted and ok.code == "signed_in" and ok.effects == (RecordSignIn(1),)


def test_a_badge_scanned_mid_step_hands_the_station_over() -> None:
    bob = OperatorInfo(2, "Bruno", "OP1002", ("esd",))
    swap = decide(BUSY, Scan("OP1002"), facts(operator=bob, pin_ok=True))
    assert swap.accepted and swap.effects == (RecordSignOut(1), RecordSignIn(2))


def test_a_badge_that_needs_a_pin_asks_for_it_on_every_path() -> None:
    bob = OperatorInfo(2, "Bruno", "OP1002", has_pin=True)
    asked = decide(IDLE, Scan("OP1002"), facts(operator=bob, pin_ok=False))
    assert (asked.accepted, asked.code, asked.params) == (
        False,
        "pin_needed",
        {"badge": "OP1002", "name": "Bruno"},
    )
    assert decide(IDLE, SignIn("OP1002"), facts(operator=bob)).code == "pin_needed"
    assert decide(IDLE, SignIn("OP1002", "1"), facts(operator=bob)).code == "wrong_pin"


def test_a_defect_reason_must_be_one_of_the_list() -> None:
    bad = decide(BUSY, ReportDefect("<b>x</b>"), facts())
    assert (bad.accepted, bad.code, bad.params) == (False, "bad_reason", {"reason": "<b>x</b>"})
    assert bad.effects == ()


def test_andon_works_even_without_operator() -> None:
    decision = decide(IDLE, CallAndon("no parts"), facts())
    assert decision.accepted and decision.effects == (RaiseAndon("no parts", None),)


def test_start_needs_work_the_skill_and_a_free_station() -> None:
    candidate = Candidate(UNIT, BRD, (CPU,))
    assert decide(SIGNED, StartNext(), facts()).code == "no_work"
    assert (
        decide(SIGNED, StartUnit("PC-9"), facts()).message
        == "Unit PC-9 has no step waiting at this station."
    )
    chen = replace(SIGNED, operator=OperatorInfo(3, "Chen", "OP1003", ("kitting",)))
    refused = decide(chen, StartNext(), facts(candidate=candidate))
    assert refused.code == "missing_skill" and "esd" in refused.message
    ok = decide(SIGNED, StartNext(), facts(candidate=candidate))
    assert ok.accepted and ok.effects == (BeginStep(7, 70, 2, 1),)
    assert decide(BUSY, StartNext(), facts(candidate=candidate)).code == "step_in_progress"


def test_a_scanned_traveler_starts_its_unit_when_dispatch_has_it_here() -> None:
    candidate = Candidate(UNIT, BRD, (CPU,))
    ok = decide(SIGNED, Scan(UNIT.serial), facts(candidate=candidate))
    assert ok.accepted and ok.code == "step_started" and ok.effects == (BeginStep(7, 70, 2, 1),)
    assert decide(SIGNED, Scan(UNIT.serial), facts()).code == "no_unit"  # not queued here
    assert decide(BUSY, Scan(UNIT.serial), facts(candidate=candidate)).code != "step_started"


def test_wrong_part_names_both_parts() -> None:
    scan = ScanFacts(
        part_id=30,
        sku="MEM-16",
        description="16 GB memory",
        tracking="lot",
        lot_code="M16-1",
        lot=lot(),
    )
    decision = decide(BUSY, Scan("x"), facts(scan=scan))
    assert not decision.accepted and decision.code == "wrong_part"
    assert decision.message == "Wrong part: this is 16 GB memory, step needs 32 GB memory."
    assert decision.effects == ()


def test_serial_part_accepted_once_and_never_in_another_unit() -> None:
    base = ScanFacts(
        part_id=10,
        sku="CPU-I7",
        description="Core i7",
        tracking="serial",
        serial="I7X00001",
        lot=lot(200, on_hand=1, serial="I7X00001"),
    )
    ok = decide(BUSY, Scan("x"), facts(scan=base))
    assert ok.accepted and ok.code == "picked"
    assert ok.effects == (RecordConsumption(10, 10, 200, "I7X00001", 1, 0, ()),)
    used = decide(BUSY, Scan("x"), facts(scan=replace(base, serial_in_unit="PC-000042")))
    assert used.message == "Serial I7X00001 is already in unit PC-000042."
    assert decide(BUSY, Scan("x"), facts(scan=replace(base, serial=None))).code == "serial_needed"
    assert decide(BUSY, Scan("x"), facts(scan=replace(base, lot=None))).code == "serial_unknown"
    done = replace(BUSY, picks=(replace(CPU, done=1), MEM32, FANS))
    assert decide(done, Scan("x"), facts(scan=base)).code == "already_picked"


def test_stock_must_be_reserved_for_this_unit_or_available() -> None:
    scan = ScanFacts(
        part_id=40,
        sku="MEM-32",
        tracking="lot",
        lot_code="M32-A",
        lot=lot(300, on_hand=2, reserved=2, mine=0),
        unit_reservations=((301, 40, 1),),
    )
    assert decide(BUSY, Scan("x"), facts(scan=scan)).code == "reserved_elsewhere"
    mine = replace(scan, lot=lot(300, on_hand=2, reserved=2, mine=1))
    ok = decide(BUSY, Scan("x"), facts(scan=mine))
    assert ok.effects == (RecordConsumption(40, 40, 300, None, 1, 1, ()),)
    # Available stock of another lot: consume it and give back the unit's reservation.
    free = replace(scan, lot=lot(302, on_hand=3, reserved=0))
    moved = decide(BUSY, Scan("x"), facts(scan=free))
    assert moved.effects == (RecordConsumption(40, 40, 302, None, 1, 0, ((301, 1),)),)
    empty = replace(scan, lot=lot(302, on_hand=0))
    assert decide(BUSY, Scan("x"), facts(scan=empty)).code == "out_of_stock"
    assert decide(BUSY, Scan("x"), facts(scan=replace(scan, lot=None))).code == "lot_unknown"
    # No lot on the label: only the lot kitted for this unit is trusted.
    bare = replace(scan, lot_code=None, lot=lot(300, on_hand=2, reserved=1, mine=0))
    assert decide(BUSY, Scan("x"), facts(scan=bare)).code == "lot_needed"


def test_an_expired_lot_is_refused_with_its_date() -> None:
    # NOW is 2026-03-02 (UTC): a lot is usable on its expiry day, refused the day after.
    scan = ScanFacts(
        part_id=40,
        sku="MEM-32",
        tracking="lot",
        lot_code="M32-OLD",
        lot=lot(300, on_hand=4, code="M32-OLD", expires=date(2026, 3, 1)),
    )
    refused = decide(BUSY, Scan("x"), facts(scan=scan))
    assert (refused.accepted, refused.code, refused.effects) == (False, "lot_expired", ())
    assert refused.params == {"sku": "MEM-32", "lot": "M32-OLD", "date": "2026-03-01"}
    assert refused.message == (
        "MEM-32 lot M32-OLD expired on 2026-03-01: do not use it; take another one."
    )
    # Even the lot kitted for this unit, when it expired after the release.
    kitted = replace(scan, lot=lot(300, on_hand=4, reserved=1, mine=1, expires=date(2026, 3, 1)))
    assert decide(BUSY, Scan("x"), facts(scan=kitted)).code == "lot_expired"
    # A label without a lot: only expired stock was found, the verdict names its lot.
    bare = replace(scan, lot_code=None)
    assert decide(BUSY, Scan("x"), facts(scan=bare)).params["lot"] == "M32-OLD"
    last_day = replace(scan, lot=lot(300, on_hand=4, code="M32-OLD", expires=date(2026, 3, 2)))
    assert decide(BUSY, Scan("x"), facts(scan=last_day)).code == "picked"
    # The day is the event's day in UTC (2026-03-02 here), whatever the clock's zone.
    evening = datetime(2026, 3, 2, 0, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    assert decide(BUSY, Scan("x"), Facts(now=evening, scan=scan)).code == "lot_expired"
    # A serial of an expired lot is refused too, named by its serial.
    serial = ScanFacts(
        part_id=10,
        sku="CPU-I7",
        tracking="serial",
        serial="I7X00009",
        lot=lot(200, on_hand=1, serial="I7X00009", expires=date(2025, 12, 31)),
    )
    assert decide(BUSY, Scan("x"), facts(scan=serial)).params == {
        "sku": "CPU-I7",
        "lot": "I7X00009",
        "date": "2025-12-31",
    }


def test_the_label_expiry_refuses_even_a_lot_without_a_date() -> None:
    scan = ScanFacts(
        part_id=40,
        sku="MEM-32",
        tracking="lot",
        lot_code="M32-2611A",
        lot=lot(300, on_hand=4, code="M32-2611A"),  # no expiry recorded in stock
        expiry=date(2026, 2, 28),
    )
    refused = decide(BUSY, Scan("x"), facts(scan=scan))
    assert (refused.code, refused.params["date"]) == ("lot_expired", "2026-02-28")
    # The earlier of the label's and the stock's dates, when both are past.
    both = replace(scan, lot=lot(300, on_hand=4, code="M32-2611A", expires=date(2026, 1, 31)))
    assert decide(BUSY, Scan("x"), facts(scan=both)).params["date"] == "2026-01-31"
    # An untracked part's label may carry an expiry too.
    fans = ScanFacts(part_id=50, sku="FAN-120", lot=lot(500), expiry=date(2026, 3, 1))
    assert decide(BUSY, Scan("x"), facts(scan=fans)).params == {
        "sku": "FAN-120",
        "lot": "line-side",
        "date": "2026-03-01",
    }
    ok = replace(scan, expiry=date(2026, 3, 2))
    assert decide(BUSY, Scan("x"), facts(scan=ok)).code == "picked"


def test_approved_substitute_fills_the_pick() -> None:
    scan = ScanFacts(
        part_id=41, sku="MEM-32B", tracking="lot", lot_code="B-1", lot=lot(400, on_hand=5)
    )
    decision = decide(BUSY, Scan("x"), facts(scan=scan))
    assert decision.code == "picked_substitute"
    assert decision.effects[0] == RecordConsumption(41, 40, 400, None, 1, 0, ())


def test_bad_reads_are_rejected_with_a_reason() -> None:
    assert decide(BUSY, Scan("\\x00", error="binary noise"), facts()).code == "unreadable"
    bad = ScanFacts(error="Invalid GTIN check digit")
    assert decide(BUSY, Scan("9506000001013"), facts(scan=bad)).code == "bad_check_digit"
    unknown = decide(BUSY, Scan("HELLO"), facts(scan=ScanFacts()))
    assert unknown.message == "Unknown barcode HELLO: not a part of this plant."


def test_complete_needs_every_pick_and_excludes_pauses() -> None:
    missing = decide(BUSY, CompleteStep(), facts())
    assert missing.message == "Not finished: still to pick 1 x CPU-I7, 1 x MEM-32, 2 x FAN-120."
    done = replace(BUSY, picks=tuple(replace(p, done=p.qty) for p in BUSY.picks))
    assert done.complete
    assert decide(done, CompleteStep(), facts()).effects == (EndStep(70),)
    paused = replace(BUSY, paused_at=NOW - timedelta(seconds=30), paused_seconds=10)
    assert paused.worked_seconds(NOW) == pytest.approx(300 - 30 - 10)
    assert decide(paused, Scan("x"), facts()).code == "paused_now"
    assert decide(paused, Pause(), facts()).code == "already_paused"
    assert decide(paused, Resume(), facts()).effects == (ResumeStep(30.0),)
    assert decide(BUSY, Resume(), facts()).code == "not_paused"
    assert decide(BUSY, Pause(), facts()).effects == (PauseStep(NOW),)


def test_sign_out_pauses_the_running_step() -> None:
    decision = decide(BUSY, SignOut(), facts())
    assert decision.effects == (PauseStep(NOW), RecordSignOut(1))


def test_defects_and_holds() -> None:
    rework = decide(BUSY, ReportDefect("cosmetic", "left panel"), facts())
    assert rework.effects == (RecordDefect(7, 70, "cosmetic", "left panel", "rework"),)
    hold = decide(BUSY, ReportDefect("function", disposition="hold"), facts())
    assert isinstance(hold.effects[1], HoldUnit) and hold.code == "unit_held"
    assert (
        decide(BUSY, ReportDefect("other", disposition="burn"), facts()).code == "bad_disposition"
    )
    assert decide(SIGNED, ReportDefect("other"), facts()).code == "no_unit"


def test_device_events() -> None:
    assert (
        decide(
            BUSY, DeviceEvent("torque", {"value": 5.2, "unit": "Nm", "ok": False}), facts()
        ).message
        == "Torque 5.2 Nm not OK: tighten again."
    )
    assert decide(BUSY, DeviceEvent("torque", {"value": 5.2, "ok": True}), facts()).accepted
    assert (
        decide(BUSY, DeviceEvent("unknown", error="unknown device line 'FOO'"), facts()).code
        == "unreadable"
    )


def test_every_message_renders() -> None:
    for code in messages.TEMPLATES:
        assert messages.english(code, {}) and "%(" not in messages.english(code, {})


@pytest.mark.parametrize(
    ("data", "gtin", "lot_code", "serial", "error"),
    [
        ("]C1010950600000104310M32-2611A\x1d17281231", "09506000001043", "M32-2611A", None, False),
        ("(01)09506000001012(21)I7X00001", "09506000001012", None, "I7X00001", False),
        ("010950600000101221I7X00001", "09506000001012", None, "I7X00001", False),
        ("9506000001012", "09506000001012", None, None, False),
        ("9506000001013", None, None, None, True),  # check digit wrong: an error, not a guess
        ("]d2010950600000101321I7X00001", None, None, None, True),
        ("I7X00001", None, None, None, False),
    ],
)
def test_parse_scan(
    data: str, gtin: str | None, lot_code: str | None, serial: str | None, error: bool
) -> None:
    code = parse_scan(data)
    assert (code.gtin, code.lot, code.serial, bool(code.error)) == (gtin, lot_code, serial, error)


def test_parse_scan_reads_the_expiry_date() -> None:
    code = parse_scan("]C1010950600000104310M32-2611A\x1d17281231")
    assert (code.expiry, code.expiry_date) == ("281231", date(2028, 12, 31))
    # Day 00: the last day of the month (GS1 General Specifications).
    assert parse_scan("(01)09506000001210(10)FN-1(17)250200").expiry_date == date(2025, 2, 28)
    assert parse_scan("(01)09506000001210(17)251340").error  # month 13: not trusted
    assert parse_scan("9506000001012").expiry_date is None
