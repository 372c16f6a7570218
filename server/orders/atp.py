"""Available-to-promise and lot allocation: pure functions over snapshots of stock.

One planner serves both questions, so the order list and the release never disagree:
``plan`` walks the units of an order and, for each BOM part of each unit, takes lots
first-expiring first (``expires_on``, lots without a date last), then first-in first
(``received_at``), line-side before warehouse, then by id. An expired lot
(``LotInfo.expired``, see ``server.inventory.expiry``) is never taken: nothing of it is
available. When the primary part cannot cover a unit's quantity, approved substitutes
are tried by priority; a unit's BOM line is always covered by one part, never a mix.
``atp`` sums the plan per part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class LotInfo:
    id: int
    part_id: int
    on_hand: int
    reserved: int
    expires_on: date | None
    received_at: datetime
    lineside: bool = True
    expired: bool = False  # past its expiry date: on hand, but never to be taken

    @property
    def available(self) -> int:
        return 0 if self.expired else self.on_hand - self.reserved


@dataclass(frozen=True)
class Need:
    """``qty`` of BOM part ``part_id`` for one unit."""

    part_id: int
    qty: int


@dataclass(frozen=True)
class LotTake:
    lot_id: int
    qty: int


@dataclass
class Allocation:
    """How one unit's need of one BOM part is covered."""

    part_id: int
    reserved_part_id: int
    qty: int
    takes: list[LotTake] = field(default_factory=list)
    short: int = 0


@dataclass
class Plan:
    units: list[list[Allocation]]

    @property
    def shortages(self) -> dict[int, int]:
        """BOM part id -> quantity that no lot of it or its substitutes can cover."""
        short: dict[int, int] = {}
        for unit in self.units:
            for a in unit:
                if a.short:
                    short[a.part_id] = short.get(a.part_id, 0) + a.short
        return short


@dataclass(frozen=True)
class AtpLine:
    part_id: int
    sku: str
    required: int
    on_hand: int
    reserved_by_others: int
    available: int
    short: int
    substituted: int = 0
    substitutes: tuple[str, ...] = ()
    expired: int = 0  # on hand in expired lots, left out of on_hand and available


def fefo_key(lot: LotInfo) -> tuple[object, ...]:
    return (
        lot.expires_on is None,
        lot.expires_on or date.max,
        lot.received_at,
        not lot.lineside,
        lot.id,
    )


def take_lots(lots: Iterable[LotInfo], qty: int, used: Mapping[int, int]) -> list[LotTake]:
    """Lots covering as much of ``qty`` as they can, FEFO then FIFO; ``used`` holds what
    this plan already took from each lot."""
    takes: list[LotTake] = []
    left = qty
    for lot in sorted(lots, key=fefo_key):
        if left <= 0:
            break
        free = lot.available - used.get(lot.id, 0)
        if free > 0:
            n = min(free, left)
            takes.append(LotTake(lot.id, n))
            left -= n
    return takes


def _free(lots: Iterable[LotInfo], used: Mapping[int, int]) -> int:
    return sum(max(0, lot.available - used.get(lot.id, 0)) for lot in lots)


def allocate_need(
    need: Need,
    lots_by_part: Mapping[int, Sequence[LotInfo]],
    substitutes: Mapping[int, Sequence[int]],
    used: dict[int, int],
) -> Allocation:
    """Cover one unit's need: the primary part in full, else the first substitute that
    covers it in full, else as much of the primary as there is (``short`` > 0).
    ``used`` is updated with what was taken."""
    candidates = [need.part_id, *substitutes.get(need.part_id, ())]
    chosen = next(
        (p for p in candidates if _free(lots_by_part.get(p, ()), used) >= need.qty), need.part_id
    )
    takes = take_lots(lots_by_part.get(chosen, ()), need.qty, used)
    for t in takes:
        used[t.lot_id] = used.get(t.lot_id, 0) + t.qty
    got = sum(t.qty for t in takes)
    return Allocation(need.part_id, chosen, need.qty, takes, need.qty - got)


def plan(
    units: Sequence[Sequence[Need]],
    lots_by_part: Mapping[int, Sequence[LotInfo]],
    substitutes: Mapping[int, Sequence[int]] | None = None,
) -> Plan:
    used: dict[int, int] = {}
    subs = substitutes or {}
    return Plan([[allocate_need(n, lots_by_part, subs, used) for n in unit] for unit in units])


def atp(
    units: Sequence[Sequence[Need]],
    lots_by_part: Mapping[int, Sequence[LotInfo]],
    skus: Mapping[int, str],
    substitutes: Mapping[int, Sequence[int]] | None = None,
) -> list[AtpLine]:
    """Per BOM part of an order: required, on hand, reserved by others, available, short.

    On hand and reserved count unexpired lots only; expired stock is ``expired``.
    For an order that already holds reservations, pass lots whose ``reserved`` leaves
    out the order's own, so they count as available to it and not as reserved by others.
    """
    subs = substitutes or {}
    result = plan(units, lots_by_part, subs)
    required: dict[int, int] = {}
    substituted: dict[int, int] = {}
    for unit in result.units:
        for a in unit:
            required[a.part_id] = required.get(a.part_id, 0) + a.qty
            if a.reserved_part_id != a.part_id:
                substituted[a.part_id] = substituted.get(a.part_id, 0) + a.qty
    shortages = result.shortages
    lines = []
    for part_id, req in required.items():
        lots = [lot for lot in lots_by_part.get(part_id, ()) if not lot.expired]
        on_hand = sum(lot.on_hand for lot in lots)
        reserved_others = sum(lot.reserved for lot in lots)
        expired = sum(lot.on_hand for lot in lots_by_part.get(part_id, ()) if lot.expired)
        lines.append(
            AtpLine(
                part_id=part_id,
                sku=skus.get(part_id, str(part_id)),
                required=req,
                on_hand=on_hand,
                reserved_by_others=reserved_others,
                available=on_hand - reserved_others,
                short=shortages.get(part_id, 0),
                substituted=substituted.get(part_id, 0),
                substitutes=tuple(skus.get(s, str(s)) for s in subs.get(part_id, ())),
                expired=expired,
            )
        )
    return sorted(lines, key=lambda line: (line.short == 0, line.sku))
