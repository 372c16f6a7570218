"""Property-based tests (Hypothesis) of the pure planning and quality modules: the
projection, the line calendar, the finite-capacity schedule, the promise engine and
the quality checks never raise on any input of their declared types, and keep their
invariants (a promise is never before today nor before the receipt it waits for; a
measurement is accepted exactly when it is a usable number within its limits)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server.promise.calendar import (
    DAY_MINUTES,
    Shift,
    WorkAxis,
    always,
    merge,
    parse_hhmm,
    subtract,
    working_intervals,
)
from server.promise.engine import OrderSpec, Plan, Plant
from server.promise.projection import PartSupply, Projection, Receipt, projected
from server.promise.schedule import Scheduler, StationSpec, Step
from station import checks as qc
from station.checks import CheckSpec, CheckStatus
from station.workflow import CheckInput, Facts, decide
from tests.test_checks import STATE

FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
TODAY = date(2026, 11, 27)
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC).timestamp()
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30))]
)
ANY_DATE = st.dates(min_value=date.min, max_value=date.max)
QTY = st.one_of(st.integers(-2, 4), st.integers(min_value=-5, max_value=2**40))


def _receipts(part_id: int) -> st.SearchStrategy[list[Receipt]]:
    return st.lists(
        st.builds(Receipt, st.integers(1, 50), st.just(part_id), ANY_DATE, QTY), max_size=4
    )


PART_IDS = st.integers(1, 4)
SUPPLY = st.dictionaries(
    PART_IDS,
    st.one_of(st.integers(-2, 4), st.integers(-10, 2**40)),
    max_size=4,
).flatmap(
    lambda frees: st.fixed_dictionaries(
        {
            p: st.builds(PartSupply, st.just(p), st.just(f"P{p}"), st.just(f), _receipts(p))
            for p, f in frees.items()
        }
    )
)
NEEDS = st.dictionaries(PART_IDS, QTY, max_size=4)
SUBSTITUTES = st.dictionaries(PART_IDS, st.lists(PART_IDS, max_size=3), max_size=3)


# -- projection ----------------------------------------------------------------------------


@FAST
@given(SUPPLY, SUBSTITUTES, st.lists(NEEDS, max_size=6))
@example(  # the substitute chosen for MEM-A is also the order's own MEM-B
    parts={1: PartSupply(1, "MEM-A", 0), 2: PartSupply(2, "MEM-B", 1)},
    subs={1: [2]},
    orders=[{1: 1, 2: 1}, {2: 1}],
)
def test_projection_never_raises_and_never_gives_more_than_there_is(
    parts: dict[int, PartSupply], subs: dict[int, list[int]], orders: list[dict[int, int]]
) -> None:
    projection = Projection(TODAY, parts, subs)
    taken: dict[int, int] = {}
    for needs in orders:
        result = projection.take(needs)
        if result.day is None:
            assert result.takes == []
            continue
        assert result.day >= TODAY
        binding = result.binding
        if binding is not None and binding.receipt is not None:
            assert result.day >= max(binding.receipt.day, TODAY)
        for t in result.takes:
            assert t.qty > 0 and t.day >= TODAY
            taken[t.part_id] = taken.get(t.part_id, 0) + t.qty
    for part_id, qty in taken.items():
        supply = parts.get(part_id)
        there = (
            0
            if supply is None
            else max(supply.free, 0) + sum(r.qty for r in supply.receipts if r.qty > 0)
        )
        assert qty <= there
    for supply in parts.values():
        projected(TODAY, supply, [t for m in [] for t in m], short=1)


# -- the line calendar ---------------------------------------------------------------------

MINUTE = st.integers(0, DAY_MINUTES - 1)
SHIFTS = st.lists(
    st.builds(
        Shift,
        st.frozensets(st.integers(0, 6), min_size=1),
        MINUTE,
        MINUTE,
        st.lists(st.tuples(MINUTE, MINUTE), max_size=2).map(tuple),
    ),
    max_size=3,
)


@FAST
@given(st.text(max_size=12))
def test_parse_hhmm_answers_minutes_of_a_day_or_a_value_error(text: str) -> None:
    try:
        minutes = parse_hhmm(text)
    except ValueError:
        return
    assert 0 <= minutes <= DAY_MINUTES


@FAST
@given(SHIFTS, ZONES, ANY_DATE, st.integers(0, 10), st.lists(ANY_DATE, max_size=3))
@example(
    shifts=[Shift(frozenset(range(7)), 22 * 60, 6 * 60)],
    zone=timezone(timedelta(hours=-12)),
    first=date.max - timedelta(days=1),
    days=3,
    closed=[],
)
@example(
    shifts=[Shift(frozenset(range(7)), 0, 0)],
    zone=timezone(timedelta(hours=14)),
    first=date.min,
    days=2,
    closed=[],
)
def test_working_intervals_are_sorted_disjoint_and_within_the_days(
    shifts: list[Shift], zone: timezone, first: date, days: int, closed: list[date]
) -> None:
    intervals = working_intervals(shifts, zone=zone, first_day=first, days=days, closed=closed)
    for (a, b), (c, _) in zip(intervals, intervals[1:], strict=False):
        assert a < b < c
    axis = WorkAxis(intervals)
    probes = [a for a, _ in intervals] + [b for _, b in intervals] + [0.0, 1e12, -1e12]
    works = [axis.to_work(t) for t in sorted(probes)]
    assert works == sorted(works)
    assert all(0 <= w <= axis.total for w in works)
    for w in (0.0, axis.total / 3, axis.total, axis.total + 1):
        wall = axis.to_wall(w)
        assert wall == math.inf or any(a <= wall <= b for a, b in intervals) or not intervals


@FAST
@given(
    st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)), max_size=5),
    st.lists(st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)), max_size=5),
)
def test_subtracting_downtime_leaves_no_working_time_inside_it(
    raw: list[tuple[float, float]], holes: list[tuple[float, float]]
) -> None:
    left = subtract(merge(raw), holes)
    for a, b in left:
        assert a < b
        assert not any(ha < b and a < hb for ha, hb in holes if hb > ha)


# -- the schedule -------------------------------------------------------------------------

SECONDS = st.one_of(st.floats(0, 1e7), st.sampled_from([math.nan, math.inf, -1.0, -math.inf, 0.0]))
STEPS = st.lists(
    st.builds(Step, st.sampled_from(["KIT", "BRD", "TST"]), SECONDS), min_size=1, max_size=3
)


@FAST
@given(
    st.lists(st.lists(STEPS, min_size=1, max_size=2), max_size=5),
    st.floats(0, 1e6),
    st.booleans(),
)
def test_a_schedule_never_raises_and_never_books_a_station_twice(
    jobs: list[list[list[Step]]], delay: float, shifts: bool
) -> None:
    if shifts:
        day_shift = Shift(frozenset(range(5)), 6 * 60, 14 * 60, ((10 * 60, 10 * 60 + 15),))
        intervals = working_intervals([day_shift], zone=UTC, first_day=TODAY, days=30)
    else:
        intervals = always(NOW, NOW + 30 * 86400)
    axis = WorkAxis(intervals)
    stations = [StationSpec(code, code[:3], axis) for code in ("KIT-1", "BRD-1", "BRD-2")]
    scheduler = Scheduler(stations, now=NOW)
    booked: dict[str, list[tuple[float, float]]] = {}
    for position, units in enumerate(jobs):
        result = scheduler.place(position, units, NOW + delay, position)
        for p in result.placements:
            assert p.start >= NOW and p.end >= p.start
            if p.end > p.start:
                booked.setdefault(p.station, []).append((p.start, p.end))
    for spans in booked.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end


# -- promises -----------------------------------------------------------------------------


@FAST
@given(
    SUPPLY,
    SUBSTITUTES,
    st.lists(
        st.tuples(NEEDS, st.integers(-(2**31), 2**31 - 1), st.one_of(st.none(), ANY_DATE)),
        max_size=5,
    ),
    ZONES,
    st.integers(0, 30),
)
def test_a_promise_is_never_before_today_nor_before_the_receipt_it_waits_for(
    parts: dict[int, PartSupply],
    subs: dict[int, list[int]],
    raw: list[tuple[dict[int, int], int, date | None]],
    zone: timezone,
    lead: int,
) -> None:
    axis = WorkAxis(always(NOW, NOW + 122 * 86400))
    plant = Plant(NOW, zone, parts, [StationSpec("KIT-1", "KIT", axis)], subs, lead, 120)
    today = plant.today
    unit = (Step("KIT", 600.0),)
    orders = [
        OrderSpec(i + 1, f"SO-{i}", prio, due, NOW - i, needs, (unit,))
        for i, (needs, prio, due) in enumerate(raw)
    ]
    plan = Plan(plant, orders)
    entered = OrderSpec(-1, "", 0, None, NOW, {1: 1}, (unit,))
    for p in [*plan.promises.values(), plan.what_if(entered)]:
        if p.ship_on is None:
            continue
        assert p.ship_on >= today + timedelta(days=lead)
        binding = p.material.binding if p.material else None
        if binding is not None and binding.receipt is not None:
            assert p.ship_on >= max(binding.receipt.day, today)


# -- quality checks ---------------------------------------------------------------------

LIMIT = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
VALUE = st.one_of(
    st.floats(),
    st.integers(-(2**80), 2**80),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.sampled_from(["nan", "inf", "-1e400", "1e9", "0.6", " 0.6 "]),
)


@FAST
@given(VALUE)
def test_usable_is_a_finite_number_within_bounds_or_none(value: object) -> None:
    out = qc.usable(value)
    assert out is None or (math.isfinite(out) and abs(out) <= qc.MAX_VALUE)


@FAST
@given(LIMIT, LIMIT, VALUE, st.integers(0, 3))
def test_a_typed_measurement_is_accepted_iff_it_is_within_its_limits(
    lower: float | None, upper: float | None, value: object, failed: int
) -> None:
    spec = CheckSpec(4, "GAP", "measure", "Door gap", lower=lower, upper=upper, unit="mm")
    state = replace(STATE, checks=(CheckStatus(spec, failed=failed),))
    decision = decide(state, CheckInput("GAP", value=value), Facts(now=datetime.now(UTC)))  # type: ignore[arg-type]
    number = qc.usable(value)
    within = (
        number is not None
        and (lower is None or lower <= number)
        and (upper is None or number <= upper)
    )
    assert decision.accepted == within
    if number is None:
        assert decision.code == "value_needed"


@FAST
@given(st.lists(st.floats(allow_nan=False), max_size=30), LIMIT, LIMIT)
def test_a_control_chart_never_raises(
    values: list[float], lower: float | None, upper: float | None
) -> None:
    chart = qc.control_chart(values, lower, upper)
    assert (chart is None) == (len(values) < 2)
