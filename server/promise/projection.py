"""Time-phased availability, pure: what of each part is there on each day, and which
orders it goes to.

Supply of a part is a list of buckets by day: today's free stock (on hand, less what
is reserved, expired lots left out by the caller) and every scheduled receipt's open
quantity on its expected day (a late receipt counts from today). Demand comes from
open orders in dispatch priority order: each order takes what it needs from the
earliest buckets that are left, so an order higher in priority is never pushed back
by one below it. The day of the last bucket an order takes from is the day its
components are all there; an order whose need no supply covers takes nothing (it
could not be released: release reserves the whole order) and has no date.

``projected(part)`` gives the classic projected-available-by-day table: on hand,
receipts, demand taken each day, and what is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Receipt:
    """An expected delivery: ``qty`` still to come on ``day``."""

    id: int
    part_id: int
    day: date
    qty: int
    ref: str = ""


@dataclass
class PartSupply:
    part_id: int
    sku: str
    free: int  # on hand less reserved, unexpired lots, today
    receipts: list[Receipt] = field(default_factory=list)


@dataclass(frozen=True)
class Take:
    """``qty`` of ``part_id`` from the bucket of ``day`` (``receipt`` None: stock)."""

    part_id: int
    day: date
    qty: int
    receipt: int | None


@dataclass(frozen=True)
class PartDate:
    """When ``qty`` of a need (BOM part ``for_part``, covered by ``part_id``) is there:
    ``day`` None when nothing covers it; ``receipt`` the last receipt it waits for."""

    for_part: int
    part_id: int
    qty: int
    day: date | None
    receipt: Receipt | None = None
    short: int = 0


@dataclass
class MaterialResult:
    day: date | None  # all components there (None: some need is not covered)
    parts: list[PartDate]
    takes: list[Take]

    @property
    def binding(self) -> PartDate | None:
        """The need that sets the day: uncovered first, else the latest."""
        short = [p for p in self.parts if p.day is None]
        if short:
            return max(short, key=lambda p: p.short)
        waiting = [p for p in self.parts if p.receipt is not None]
        return max(waiting, key=lambda p: (p.day, p.qty)) if waiting else None


class _Buckets:
    __slots__ = ("days", "left", "receipts", "first", "total")

    def __init__(self, today: date, supply: PartSupply) -> None:
        items: list[tuple[date, int, Receipt | None]] = [(today, max(supply.free, 0), None)]
        items += [(max(r.day, today), r.qty, r) for r in supply.receipts if r.qty > 0]
        items.sort(key=lambda x: (x[0], x[2] is not None, x[2].id if x[2] else 0))
        self.days = [d for d, _, _ in items]
        self.left = [q for _, q, _ in items]
        self.receipts = [r for _, _, r in items]
        self.first = 0
        self.total = sum(self.left)

    def earliest(self, qty: int) -> tuple[date | None, Receipt | None]:
        """The day ``qty`` would be covered by, and the last receipt it would wait for."""
        if qty > self.total:
            return None, None
        got = 0
        i = self.first
        last_receipt = None
        while True:
            if self.left[i]:
                got += self.left[i]
                if self.receipts[i] is not None:
                    last_receipt = self.receipts[i]
                if got >= qty:
                    return self.days[i], last_receipt
            i += 1

    def take(self, qty: int, part_id: int) -> list[Take]:
        takes = []
        i = self.first
        left = qty
        while left > 0:
            n = min(self.left[i], left)
            if n:
                self.left[i] -= n
                left -= n
                receipt = self.receipts[i]
                takes.append(Take(part_id, self.days[i], n, receipt.id if receipt else None))
            if self.left[i] == 0 and i == self.first:
                self.first += 1
            i += 1
        self.total -= qty
        return takes

    def give_back(self, take: Take) -> None:
        for i, day in enumerate(self.days):
            receipt = self.receipts[i]
            if day == take.day and (receipt.id if receipt else None) == take.receipt:
                self.left[i] += take.qty
                self.total += take.qty
                self.first = min(self.first, i)
                return


class Projection:
    """Allocates supply to orders in the order ``take`` is called (dispatch priority)."""

    def __init__(
        self,
        today: date,
        parts: Mapping[int, PartSupply],
        substitutes: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        self.today = today
        self.parts = parts
        self.substitutes = substitutes or {}
        self._buckets: dict[int, _Buckets] = {}

    def buckets(self, part_id: int) -> _Buckets:
        b = self._buckets.get(part_id)
        if b is None:
            supply = self.parts.get(part_id) or PartSupply(part_id, str(part_id), 0)
            b = self._buckets[part_id] = _Buckets(self.today, supply)
        return b

    def sku(self, part_id: int) -> str:
        supply = self.parts.get(part_id)
        return supply.sku if supply else str(part_id)

    def take(self, needs: Mapping[int, int]) -> MaterialResult:
        """Cover ``needs`` (BOM part -> quantity) from the earliest supply: each need by
        its part, or by the approved substitute that covers it soonest (the part itself
        on a tie). Nothing is taken when any need cannot be covered at all."""
        chosen: list[PartDate] = []
        takes: list[Take] = []
        for part_id, qty in needs.items():
            if qty <= 0:
                continue
            best: PartDate | None = None
            for candidate in (part_id, *self.substitutes.get(part_id, ())):
                day, receipt = self.buckets(candidate).earliest(qty)
                if day is not None and (best is None or best.day is None or day < best.day):
                    best = PartDate(part_id, candidate, qty, day, receipt)
            if best is None:
                best = PartDate(
                    part_id, part_id, qty, None, None, qty - self.buckets(part_id).total
                )
            chosen.append(best)
            if best.day is not None:
                # Taken at once: the substitute chosen may be another need's own part.
                takes += self.buckets(best.part_id).take(qty, best.part_id)
        if any(p.day is None for p in chosen):
            self.give_back(takes)
            return MaterialResult(None, chosen, [])
        day = max((p.day for p in chosen if p.day is not None), default=self.today)
        return MaterialResult(day, chosen, takes)

    def give_back(self, takes: Sequence[Take]) -> None:
        for t in takes:
            self.buckets(t.part_id).give_back(t)


@dataclass(frozen=True)
class DayRow:
    day: date
    receipts: int
    demand: int
    available: int  # projected available at the end of the day


def projected(
    today: date,
    supply: PartSupply,
    takes: Sequence[Take],
    *,
    short: int = 0,
) -> list[DayRow]:
    """Projected available by day for one part: today's free stock, plus receipts, less
    the demand of open orders on the day each takes it (``takes`` of this part), less
    ``short`` (demand nothing covers) on the first day. Only days where something moves."""
    receipts: dict[date, int] = {}
    for r in supply.receipts:
        receipts[max(r.day, today)] = receipts.get(max(r.day, today), 0) + r.qty
    demand: dict[date, int] = {}
    for t in takes:
        demand[t.day] = demand.get(t.day, 0) + t.qty
    days = sorted({today, *receipts, *demand})
    rows = []
    level = supply.free - short
    for day in days:
        level += receipts.get(day, 0) - demand.get(day, 0)
        rows.append(DayRow(day, receipts.get(day, 0), demand.get(day, 0), level))
    return rows
