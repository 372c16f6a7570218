"""The shift simulator's plan: valid configurations, the fault schedule, labels (pure)."""

from __future__ import annotations

import random

import pytest

from server.catalog.configure import GroupSpec, OptionSpec, ProductSpec, RuleSpec, validate
from server.tools.simulation.floor import choose_stations
from server.tools.simulation.plan import (
    FAULT_KINDS,
    GS,
    Behaviour,
    OperatorDice,
    fault_schedule,
    gs1_scan,
    random_options,
)
from station.identify import parse_scan


def _spec() -> ProductSpec:
    def group(
        code: str, options: list[str], *, multiple: bool = False, required: bool = True
    ) -> GroupSpec:
        return GroupSpec(
            code, code, multiple, required, tuple(OptionSpec(o, o, code) for o in options)
        )

    return ProductSpec(
        1,
        "PC",
        "PC",
        "PC-{seq}",
        groups=(
            group("cpu", ["i5", "i7", "i9"]),
            group("case", ["mt", "sff"]),
            group("storage", ["ssd", "hdd"], multiple=True),
            group("gpu", ["g1", "g2"], required=False),
        ),
        rules=(
            RuleSpec("requires", "i9", "mt"),
            RuleSpec("excludes", "g2", "sff"),
            RuleSpec("excludes", "hdd", "sff"),
        ),
    )


def test_random_options_are_always_valid_and_varied() -> None:
    spec, rng = _spec(), random.Random(7)
    seen = set()
    for _ in range(300):
        options = random_options(spec, rng)
        assert validate(spec, options) == []
        seen.add(tuple(sorted(options)))
    assert len(seen) > 20
    assert any("i9" in s for s in seen) and any("g2" in s for s in seen)


def test_random_options_repeat_with_the_same_seed() -> None:
    assert [random_options(_spec(), random.Random(3)) for _ in range(5)] == [
        random_options(_spec(), random.Random(3)) for _ in range(5)
    ]


def test_random_options_refuses_an_unsatisfiable_product() -> None:
    spec = ProductSpec(
        1,
        "X",
        "X",
        "X",
        groups=(GroupSpec("a", "a", False, True, (OptionSpec("a1", "a1", "a"),)),),
        rules=(RuleSpec("requires", "a1", "nothing"),),
    )
    with pytest.raises(ValueError, match="no valid configuration"):
        random_options(spec, random.Random(1), tries=10)


def test_fault_schedule_has_every_kind_inside_the_shift_without_overlaps() -> None:
    schedule = fault_schedule(minutes=30, stations=["A", "B"], rng=random.Random(1))
    assert {f.kind for f in schedule} == set(FAULT_KINDS)
    assert all(0.10 * 1800 <= f.at <= 0.75 * 1800 + 200 for f in schedule)
    assert [f.at for f in schedule] == sorted(f.at for f in schedule)
    station_faults = [f for f in schedule if f.station]
    assert all(f.station in ("A", "B") for f in station_faults)
    for a in schedule:
        for b in schedule:
            if a is not b and (a.station or a.kind) == (b.station or b.kind) and a.at < b.at:
                assert a.at + a.duration < b.at, (a, b)
    assert "bridge_offline at" in next(f for f in schedule if f.kind == "bridge_offline").describe()


def test_longer_shifts_get_more_rounds_of_faults() -> None:
    short = fault_schedule(minutes=10, stations=["A"], rng=random.Random(1))
    long = fault_schedule(minutes=60, stations=["A"], rng=random.Random(1))
    assert len(short) == len(FAULT_KINDS)
    assert len(long) == 3 * len(FAULT_KINDS)


def test_step_time_scales_with_speed_and_stays_in_the_jitter() -> None:
    dice = OperatorDice(random.Random(1), Behaviour(jitter=0.2), speed=30)
    times = [dice.step_seconds(300) for _ in range(200)]
    assert all(8.0 <= t <= 12.0 for t in times)
    assert max(times) - min(times) > 2
    never = OperatorDice(random.Random(1), Behaviour(pause=0.0, wrong_part=1.0), speed=1)
    assert not any(never.chance("pause") for _ in range(50))
    assert all(never.chance("wrong_part") for _ in range(50))


def test_gs1_labels_parse_back_to_the_same_part_lot_and_serial() -> None:
    serial = gs1_scan("9506000001012", serial="I7X00001")
    assert serial == "]d2010950600000101221I7X00001"
    code = parse_scan(serial)
    assert (code.gtin, code.serial, code.error) == ("09506000001012", "I7X00001", None)
    both = gs1_scan("9506000001043", lot="M32-2611A", serial="X1")
    assert GS in both
    code = parse_scan(both)
    assert (code.lot, code.serial, code.error) == ("M32-2611A", "X1", None)
    assert parse_scan(gs1_scan("9506000001104")).gtin == "09506000001104"


def test_choose_stations_covers_every_kind_then_adds_at_the_bottleneck() -> None:
    existing = [
        ("KIT-1", "kitting"),
        ("BRD-1", "board"),
        ("BRD-2", "board"),
        ("FIN-1", "final"),
        ("TST-1", "test"),
    ]
    load = {"kitting": 240, "board": 420, "final": 480, "test": 360}
    assert choose_stations(existing, load, 4) == (["KIT-1", "BRD-1", "FIN-1", "TST-1"], [])
    assert choose_stations(existing, load, 5) == (["KIT-1", "BRD-1", "FIN-1", "TST-1", "BRD-2"], [])
    chosen, added = choose_stations(existing, load, 7)
    assert len(chosen) == 5
    assert added == [("FIN-2", "final"), ("TST-2", "test")]
