"""Quality checks in the pure workflow: readings judged against limits, counts, retries
and the non-conformance, typed values, confirmations, photos; control charts and Cpk.
No database (station.checks, station.workflow)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from station import checks as qc
from station.checks import CheckSpec, CheckStatus
from station.workflow import (
    CheckInput,
    CompleteStep,
    DeviceEvent,
    EndStep,
    Facts,
    HoldUnit,
    OpenNonConformance,
    OperationInfo,
    OperatorInfo,
    RecordCheckResult,
    StationState,
    UnitInfo,
    decide,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TORQUE = CheckSpec(
    1, "TQ-MB", "count", "Motherboard screw torque", nominal=0.6, lower=0.5, upper=0.7,
    unit="Nm", source="torque", count=4, retries=2,
)  # fmt: skip
LED = CheckSpec(2, "LED", "pass_fail", "Power LED lights green", retries=0)
PHOTO = CheckSpec(3, "LABEL", "photo", "Photo of the rating label")
GAP = CheckSpec(4, "GAP", "measure", "Door gap", lower=1.0, upper=2.0, unit="mm")
OK = CheckSpec(5, "ESD", "confirm", "ESD strap worn")
STATE = StationState(
    "BRD-1",
    2,
    operator=OperatorInfo(1, "Alice Martin", "OP1001"),
    unit=UnitInfo(7, "PC-000007"),
    operation=OperationInfo(70, 2, "BRD", "Board assembly"),
    step_record_id=9,
    started_at=NOW - timedelta(minutes=5),
)


def with_checks(*checks: CheckStatus) -> StationState:
    return replace(STATE, checks=checks)


def torque(value: float, ok: bool = True, source: str = "torque1") -> DeviceEvent:
    return DeviceEvent("torque", {"value": value, "unit": "Nm", "ok": ok}, source=source)


def facts() -> Facts:
    return Facts(now=NOW)


def test_a_reading_in_limits_counts_towards_the_check() -> None:
    d = decide(with_checks(CheckStatus(TORQUE, passed=2)), torque(0.61), facts())
    assert d.accepted and d.code == "measured"
    assert d.params == {
        "name": "Motherboard screw torque",
        "check_id": 1,  # a screen shows the check in its reader's language by it
        "value": "0.61",
        "unit": "Nm",
        "limits": "0.5–0.7 Nm",
        "done": 3,
        "count": 4,
    }
    assert d.effects == (RecordCheckResult(7, 70, 1, True, 0.61, "torque", "torque1"),)
    assert d.message == "Motherboard screw torque 0.61 Nm OK (3 of 4)."


def test_a_reading_out_of_limits_is_refused_with_value_and_limits_and_kept() -> None:
    d = decide(with_checks(CheckStatus(TORQUE, passed=1)), torque(0.82), facts())
    assert not d.accepted and d.code == "out_of_limits"
    assert d.message == (
        "Motherboard screw torque 0.82 Nm is out of limits (0.5–0.7 Nm): do it again "
        "(tries left: 2)."
    )
    assert d.effects == (RecordCheckResult(7, 70, 1, False, 0.82, "torque", "torque1"),)


def test_the_tools_own_nok_fails_a_value_in_limits() -> None:
    d = decide(with_checks(CheckStatus(TORQUE)), torque(0.6, ok=False), facts())
    assert d.code == "out_of_limits" and not d.effects[0].passed  # type: ignore[union-attr]


def test_the_failure_after_the_last_retry_blocks_the_step_and_opens_an_ncr() -> None:
    d = decide(with_checks(CheckStatus(TORQUE, passed=1, failed=2)), torque(0.3), facts())
    assert not d.accepted and d.code == "out_of_limits_ncr"
    assert d.effects == (
        RecordCheckResult(7, 70, 1, False, 0.3, "torque", "torque1"),
        OpenNonConformance(7, 70, 1, 0.3),
        HoldUnit(7, 70, "check TQ-MB failed"),
    )
    assert "unit PC-000007 is blocked" in d.message


def test_a_reading_after_the_check_is_full_is_judged_and_never_counted() -> None:
    full = with_checks(CheckStatus(TORQUE, passed=4))
    bad = decide(full, torque(0.95), facts())
    assert (bad.accepted, bad.code, bad.effects) == (False, "out_of_limits_done", ())
    assert "0.95 Nm is out of limits (0.5–0.7 Nm)" in bad.message
    good = decide(full, torque(0.6), facts())
    assert (good.accepted, good.code) == (False, "check_done")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e12, "12abc", None, True])
def test_a_reading_that_is_no_usable_number_is_unreadable(value: object) -> None:
    event = DeviceEvent("torque", {"value": value}, source="t")
    d = decide(with_checks(CheckStatus(TORQUE)), event, facts())
    assert (d.accepted, d.code, d.effects) == (False, "unreadable", ())


def test_a_tool_named_by_the_check_is_the_only_one_it_takes() -> None:
    pinned = replace(TORQUE, tool="torque1")
    other = decide(with_checks(CheckStatus(pinned)), torque(0.6, source="torque2"), facts())
    assert other.code == "device_recorded"  # not this check's tool: recorded, not counted
    mine = decide(with_checks(CheckStatus(pinned)), torque(0.6, source="torque1"), facts())
    assert mine.code == "measured"


def test_the_step_completes_only_when_its_checks_are_done() -> None:
    open_ = with_checks(CheckStatus(TORQUE, passed=3), CheckStatus(LED))
    d = decide(open_, CompleteStep(), facts())
    assert (d.accepted, d.code) == (False, "checks_missing")
    assert d.params["missing"] == "Motherboard screw torque (3 of 4), Power LED lights green"
    done = with_checks(CheckStatus(TORQUE, passed=4), CheckStatus(LED, passed=1))
    assert done.complete
    assert decide(done, CompleteStep(), facts()).effects == (EndStep(70),)


def test_typed_confirm_pass_fail_and_photo() -> None:
    state = with_checks(CheckStatus(GAP), CheckStatus(OK), CheckStatus(LED), CheckStatus(PHOTO))
    assert decide(state, CheckInput("GAP", value=1.4), facts()).code == "check_passed"
    assert decide(state, CheckInput("GAP", value=2.4), facts()).code == "out_of_limits"
    assert decide(state, CheckInput("GAP"), facts()).code == "value_needed"
    assert decide(state, CheckInput("ESD", passed=False), facts()).code == "confirm_needed"
    assert decide(state, CheckInput(5, passed=True), facts()).code == "check_passed"
    failed = decide(state, CheckInput("LED", passed=False), facts())  # no retry allowed
    assert failed.code == "check_failed_ncr" and len(failed.effects) == 3
    assert decide(state, CheckInput("LED"), facts()).code == "answer_needed"
    assert decide(state, CheckInput("LABEL"), facts()).code == "photo_needed"
    photo = decide(state, CheckInput("LABEL", photo="quality/7/a.jpg"), facts())
    assert photo.effects == (RecordCheckResult(7, 70, 3, True, photo="quality/7/a.jpg"),)
    assert decide(state, CheckInput("NOPE"), facts()).code == "unknown_check"
    by_tool = decide(with_checks(CheckStatus(TORQUE)), CheckInput("TQ-MB", value=0.6), facts())
    assert by_tool.code == "check_by_device"  # a torque tool's check is never typed


def test_control_chart_limits_from_the_data_and_cpk_against_the_spec() -> None:
    values = [0.60, 0.62, 0.59, 0.61, 0.60, 0.63, 0.58, 0.60]
    chart = qc.control_chart(values, 0.5, 0.7)
    assert chart is not None
    mrs = [0.02, 0.03, 0.02, 0.01, 0.03, 0.05, 0.02]
    assert chart.centre == pytest.approx(sum(values) / 8)
    assert chart.mr_bar == pytest.approx(sum(mrs) / 7)
    sigma = chart.mr_bar / 1.128
    assert chart.ucl == pytest.approx(chart.centre + 3 * sigma)
    assert chart.lcl == pytest.approx(chart.centre - 3 * sigma)
    assert chart.mr_ucl == pytest.approx(3.267 * chart.mr_bar)
    expected = min(0.7 - chart.centre, chart.centre - 0.5) / (3 * sigma)
    assert chart.cpk == pytest.approx(expected)
    assert qc.control_chart([0.6], 0.5, 0.7) is None
    assert qc.control_chart([0.6, 0.6], 0.5, 0.7).cpk is None  # type: ignore[union-attr]


def test_first_pass_means_every_check_first_time_and_no_ncr() -> None:
    assert qc.first_pass([True, True], 0)
    assert not qc.first_pass([True, False, True], 0)
    assert not qc.first_pass([True], 1)
