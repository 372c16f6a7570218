"""The pure planner: FEFO then FIFO lots, substitutes, ATP lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from server.orders.atp import LotInfo, LotTake, Need, atp, fefo_key, plan, take_lots

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 2, 1, tzinfo=UTC)


def lot(
    id_: int,
    part: int,
    on_hand: int,
    reserved: int = 0,
    expires: date | None = None,
    received: datetime = T0,
    lineside: bool = True,
    expired: bool = False,
) -> LotInfo:
    return LotInfo(id_, part, on_hand, reserved, expires, received, lineside, expired)


def test_first_expiring_first_then_first_in_and_undated_last() -> None:
    lots = [
        lot(1, 7, 5),
        lot(2, 7, 5, expires=date(2027, 1, 1)),
        lot(3, 7, 5, expires=date(2026, 6, 1)),
        lot(4, 7, 5, received=T1),
        lot(5, 7, 5, received=T0, lineside=False),
    ]
    assert [x.id for x in sorted(lots, key=fefo_key)] == [3, 2, 1, 5, 4]
    assert take_lots(lots, 12, {}) == [LotTake(3, 5), LotTake(2, 5), LotTake(1, 2)]


def test_reserved_stock_and_earlier_takes_are_not_taken_again() -> None:
    lots = [lot(1, 7, 5, reserved=4), lot(2, 7, 3)]
    assert take_lots(lots, 3, {2: 1}) == [LotTake(1, 1), LotTake(2, 2)]


def test_plan_uses_a_substitute_only_when_the_primary_cannot_cover_a_unit() -> None:
    lots = {7: [lot(1, 7, 3)], 8: [lot(2, 8, 10)]}
    result = plan([[Need(7, 2)]] * 3, lots, {7: [8]})
    assert [(a.reserved_part_id, a.takes) for [a] in result.units] == [
        (7, [LotTake(1, 2)]),
        (8, [LotTake(2, 2)]),
        (8, [LotTake(2, 2)]),
    ]
    assert result.shortages == {}


def test_shortage_reports_what_nothing_covers() -> None:
    result = plan([[Need(7, 2), Need(9, 1)]] * 2, {7: [lot(1, 7, 3)], 9: [lot(5, 9, 9)]})
    assert result.shortages == {7: 1}
    assert result.units[1][0].takes == [LotTake(1, 1)]  # what is there, for an override


def test_atp_lines_per_part() -> None:
    lots = {7: [lot(1, 7, 5, reserved=3)], 8: [lot(2, 8, 4)], 9: [lot(3, 9, 10, reserved=1)]}
    lines = atp([[Need(7, 1), Need(9, 2)]] * 3, lots, {7: "MEM", 8: "MEM-B", 9: "SCR"}, {7: [8]})
    by_sku = {line.sku: line for line in lines}
    assert by_sku["MEM"].required == 3 and by_sku["MEM"].on_hand == 5
    assert by_sku["MEM"].reserved_by_others == 3 and by_sku["MEM"].available == 2
    assert by_sku["MEM"].short == 0 and by_sku["MEM"].substituted == 1
    assert by_sku["MEM"].substitutes == ("MEM-B",)
    assert (by_sku["SCR"].required, by_sku["SCR"].available, by_sku["SCR"].short) == (6, 9, 0)
    short = atp([[Need(7, 3)]], {7: [lot(1, 7, 5, reserved=3)]}, {7: "MEM"})
    assert short[0].short == 1


def test_an_expired_lot_is_never_taken_nor_promised() -> None:
    old = lot(1, 7, 5, expires=date(2026, 1, 31), expired=True)  # first to expire
    good = lot(2, 7, 3, expires=date(2027, 1, 31))
    assert old.available == 0
    assert take_lots([old, good], 2, {}) == [LotTake(2, 2)]
    result = plan([[Need(7, 2)]] * 2, {7: [old, good]})
    assert [a.takes for [a] in result.units] == [[LotTake(2, 2)], [LotTake(2, 1)]]
    assert result.shortages == {7: 1}
    # Expired stock is on hand but not promised: counted apart from on hand.
    [line] = atp([[Need(7, 2)]], {7: [old, replace(good, reserved=1)]}, {7: "TP-1"})
    assert (line.on_hand, line.reserved_by_others, line.available, line.expired) == (3, 1, 2, 5)
    assert line.short == 0
    # A substitute covers the unit when the primary has only expired stock.
    subs = plan([[Need(7, 1)]], {7: [old], 8: [lot(3, 8, 1)]}, {7: [8]})
    assert subs.units[0][0].reserved_part_id == 8 and subs.shortages == {}
