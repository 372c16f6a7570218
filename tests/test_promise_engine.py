"""Promise dates as specifications: the pure projection, calendar and schedule
(server.promise.projection / calendar / schedule / engine), no database, no Flask."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.promise.calendar import Shift, WorkAxis, always, subtract, working_intervals
from server.promise.engine import OrderSpec, Plan, Plant, broken
from server.promise.projection import PartSupply, Projection, Receipt, projected
from server.promise.schedule import StationSpec, Step

MONDAY = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # a Monday, 08:00
NOW = MONDAY.timestamp()
TODAY = MONDAY.date()
HOUR = 3600.0
BAT, CASE = 1, 2


def axis_24_7(days: int = 60) -> WorkAxis:
    return WorkAxis(always(NOW - 86400, NOW + days * 86400))


def stations(*kinds: str, axis: WorkAxis | None = None) -> list[StationSpec]:
    ax = axis or axis_24_7()
    return [StationSpec(f"{k.upper()}-{n}", k, ax) for n, k in enumerate(kinds, start=1)]


def order(
    oid: int,
    *,
    needs: dict[int, int] | None = None,
    units: int = 1,
    steps: tuple[Step, ...] = (Step("build", HOUR, "Final assembly"),),
    priority: int = 0,
    due: date | None = None,
) -> OrderSpec:
    return OrderSpec(
        oid,
        f"SO-{oid}",
        priority,
        due or TODAY + timedelta(days=30),
        NOW - 1000 + oid,
        needs or {},
        tuple(steps for _ in range(units)),
    )


def plant(parts: dict[int, PartSupply], st: list[StationSpec], lead: int = 0) -> Plant:
    return Plant(now=NOW, zone=UTC, parts=parts, stations=st, lead_days=lead)


def completion_of(plan: Plan, oid: int) -> datetime:
    c = plan.promises[oid].completion
    assert c is not None
    return c


# -- the three specifications of the issue ---------------------------------------------


def test_a_part_arriving_in_three_days_promises_that_day_plus_assembly() -> None:
    arrival = TODAY + timedelta(days=3)
    parts = {
        BAT: PartSupply(BAT, "BAT-L", free=0, receipts=[Receipt(7, BAT, arrival, 2, "PO-77")]),
        CASE: PartSupply(CASE, "CASE", free=10),
    }
    steps = (Step("kit", 0.5 * HOUR, "Kitting"), Step("final", 2 * HOUR, "Final assembly"))
    plan = Plan(
        plant(parts, stations("kit", "final"), lead=1),
        [order(1, needs={BAT: 2, CASE: 1}, steps=steps)],
    )
    p = plan.promises[1]
    start_of_arrival = datetime(arrival.year, arrival.month, arrival.day, tzinfo=UTC)
    assert p.completion is not None and p.completion >= start_of_arrival + timedelta(hours=2.5)
    assert p.material_on == arrival
    assert p.ship_on == arrival + timedelta(days=1)  # the shipping lead
    assert p.reason.kind == "part"
    assert p.reason.text == f"BAT-L: 2 arrive on {arrival.isoformat()}"


def test_parts_on_hand_but_the_station_kind_booked_promises_after_the_booked_work() -> None:
    parts = {CASE: PartSupply(CASE, "CASE", free=10)}
    booked = [
        order(n, steps=(Step("final", 8 * HOUR, "Final assembly"),), priority=5) for n in (1, 2)
    ]
    new = order(3, needs={CASE: 1}, steps=(Step("final", HOUR, "Final assembly"),))
    plan = Plan(plant(parts, stations("final")), [*booked, new])
    booked_until = max(completion_of(plan, 1), completion_of(plan, 2))
    assert booked_until == MONDAY + timedelta(hours=16)
    assert completion_of(plan, 3) == booked_until + timedelta(hours=1)
    reason = plan.promises[3].reason
    assert reason.kind == "capacity"
    assert reason.text == "Final assembly is full until Tuesday 00:00"
    # The same order entered now (what_if) gets the same answer, and changes nothing.
    again = plan.what_if(order(4, needs={CASE: 1}, steps=(Step("final", HOUR, "Final assembly"),)))
    assert again.completion == booked_until + timedelta(hours=2)
    assert completion_of(plan, 3) == booked_until + timedelta(hours=1)


def test_a_slipped_receipt_flags_exactly_the_orders_it_breaks() -> None:
    r_day = TODAY + timedelta(days=2)
    parts = {
        BAT: PartSupply(BAT, "BAT-L", free=1, receipts=[Receipt(9, BAT, r_day, 3, "PO-9")]),
        CASE: PartSupply(CASE, "CASE", free=50),
    }
    orders = [
        order(1, needs={BAT: 1}, priority=9),  # covered by stock on hand
        order(2, needs={BAT: 2}, priority=8),  # waits for PO-9
        order(3, needs={CASE: 1}, priority=7),  # no battery at all
        order(4, needs={BAT: 1}, priority=6),  # waits for PO-9 too
    ]
    plan = Plan(plant(parts, stations("build", "build")), orders)
    booked = {o: p.ship_on for o, p in plan.promises.items() if p.ship_on is not None}
    assert set(booked) == {1, 2, 3, 4}
    assert not broken(booked, plan.promises)
    slipped = {
        **parts,
        BAT: PartSupply(
            BAT, "BAT-L", free=1, receipts=[Receipt(9, BAT, r_day + timedelta(days=4), 3, "PO-9")]
        ),
    }
    changed = plan.replan(parts=slipped)
    flags = broken(booked, plan.promises)
    assert set(flags) == {2, 4} and set(changed) == {2, 4}
    assert flags[2].ship_on == r_day + timedelta(days=4)
    assert flags[2].reason.text == f"BAT-L: 2 arrive on {(r_day + timedelta(days=4)).isoformat()}"
    # The same answer as planning from scratch.
    fresh = Plan(plant(slipped, stations("build", "build")), orders)
    assert {o: p.completion for o, p in fresh.promises.items()} == {
        o: p.completion for o, p in plan.promises.items()
    }


# -- projection ------------------------------------------------------------------------


def test_projection_gives_supply_to_orders_in_priority_order() -> None:
    parts = {
        BAT: PartSupply(
            BAT, "BAT-L", free=2, receipts=[Receipt(1, BAT, TODAY + timedelta(days=5), 4)]
        )
    }
    proj = Projection(TODAY, parts)
    first, second, third = proj.take({BAT: 2}), proj.take({BAT: 3}), proj.take({BAT: 2})
    assert first.day == TODAY and second.day == TODAY + timedelta(days=5)
    assert third.day is None and third.takes == []  # not covered: takes nothing
    assert third.binding is not None and third.binding.short == 1
    rows = projected(TODAY, parts[BAT], [*first.takes, *second.takes])
    assert [(r.day, r.receipts, r.demand, r.available) for r in rows] == [
        (TODAY, 0, 2, 0),
        (TODAY + timedelta(days=5), 4, 3, 1),
    ]


def test_a_late_receipt_counts_from_today_and_a_substitute_covers_sooner() -> None:
    late = Receipt(1, BAT, TODAY - timedelta(days=2), 5, "PO-late")
    alt = 3
    parts = {
        BAT: PartSupply(
            BAT, "BAT-L", free=0, receipts=[Receipt(2, BAT, TODAY + timedelta(days=9), 5)]
        ),
        alt: PartSupply(alt, "BAT-L2", free=0, receipts=[late]),
    }
    result = Projection(TODAY, parts, {BAT: [alt]}).take({BAT: 2})
    assert result.day == TODAY and result.parts[0].part_id == alt


# -- calendar --------------------------------------------------------------------------


def test_shifts_breaks_and_closed_days_make_the_working_time() -> None:
    zone = ZoneInfo("Europe/Paris")
    day_shift = Shift(frozenset(range(5)), 6 * 60, 14 * 60, ((10 * 60, 10 * 60 + 15),))
    closed = [TODAY + timedelta(days=1)]  # Tuesday
    intervals = working_intervals([day_shift], zone=zone, first_day=TODAY, days=7, closed=closed)
    days = sorted({datetime.fromtimestamp(a, zone).date() for a, _ in intervals})
    assert days == [TODAY + timedelta(days=n) for n in (0, 2, 3, 4)]  # no Tuesday, no weekend
    assert sum(b - a for a, b in intervals) == 4 * (8 * HOUR - 15 * 60)
    first = datetime.fromtimestamp(intervals[0][0], zone)
    assert (first.hour, first.minute) == (6, 0)
    axis = WorkAxis(intervals)
    # 06:00 + 4 h is 10:00, the break: 4 h 05 min of work ends at 10:20.
    end = datetime.fromtimestamp(axis.to_wall(4 * HOUR + 5 * 60), zone)
    assert (end.date(), end.hour, end.minute) == (TODAY, 10, 20)
    # Work that does not fit Monday goes on Wednesday morning.
    end = datetime.fromtimestamp(axis.to_wall(8 * HOUR), zone)
    assert (end.date(), end.hour, end.minute) == (TODAY + timedelta(days=2), 6, 15)


def test_a_night_shift_runs_past_midnight_and_downtime_is_taken_out() -> None:
    night = Shift(frozenset({0}), 22 * 60, 6 * 60)
    intervals = working_intervals([night], zone=UTC, first_day=TODAY, days=1)
    assert intervals == [(NOW + 14 * HOUR, NOW + 22 * HOUR)]
    assert subtract(intervals, [(NOW + 15 * HOUR, NOW + 16 * HOUR)]) == [
        (NOW + 14 * HOUR, NOW + 15 * HOUR),
        (NOW + 16 * HOUR, NOW + 22 * HOUR),
    ]
    with pytest.raises(AssertionError):
        assert Shift(frozenset({9}), 0, 60).problems() == []


# -- schedule --------------------------------------------------------------------------


def test_a_late_order_leaves_the_station_to_ready_work_below_it() -> None:
    parts = {
        BAT: PartSupply(
            BAT, "BAT-L", free=0, receipts=[Receipt(1, BAT, TODAY + timedelta(days=2), 1)]
        )
    }
    urgent_but_waiting = order(1, needs={BAT: 1}, priority=9, steps=(Step("final", 4 * HOUR),))
    ready_now = order(2, priority=0, steps=(Step("final", 4 * HOUR),))
    plan = Plan(plant(parts, stations("final")), [urgent_but_waiting, ready_now])
    assert completion_of(plan, 2) == MONDAY + timedelta(hours=4)
    assert plan.promises[2].reason.kind == "assembly"


def test_a_station_down_and_a_kind_nobody_does() -> None:
    ax = axis_24_7()
    down = WorkAxis(subtract(ax.intervals, [(NOW, NOW + 5 * HOUR)]))
    plan = Plant(now=NOW, zone=UTC, parts={}, stations=[StationSpec("FIN-1", "final", down)])
    p = Plan(
        plan,
        [
            order(1, steps=(Step("final", HOUR, "Final assembly"),)),
            order(2, steps=(Step("paint", HOUR),)),
        ],
    )
    assert completion_of(p, 1) == MONDAY + timedelta(hours=6)
    assert p.promises[1].reason.kind == "calendar"
    assert (
        p.promises[2].ship_on is None and p.promises[2].reason.text == "No station does paint work"
    )


def test_a_rush_order_jumps_the_queue_and_replan_moves_those_behind() -> None:
    orders = [order(n, steps=(Step("final", 2 * HOUR),)) for n in (1, 2, 3)]
    plan = Plan(plant({}, stations("final")), orders)
    assert completion_of(plan, 1) == MONDAY + timedelta(hours=2)
    rush = order(9, priority=10, steps=(Step("final", 2 * HOUR),))
    changed = plan.replan(orders=[*orders, rush])
    assert completion_of(plan, 9) == MONDAY + timedelta(hours=2)
    assert set(changed) == {1, 2, 3, 9}
    assert completion_of(plan, 3) == MONDAY + timedelta(hours=8)
