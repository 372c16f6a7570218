"""Promise dates, pure: components (``projection``) and capacity (``schedule``) together.

Open orders are taken in dispatch priority order (``server.dispatch.policy``: priority,
then due date, then release or receipt time, then id). For each: the components it
still needs come from the projection, which gives the day they are all there; its
units' remaining steps are then placed on the stations from that moment (from now
for work already released: its components are reserved). The order completes when
its last step ends; it ships ``lead_days`` later. The promise names what binds it, in
words: the component it waits for, the station kind that is full, the calendar, or
nothing but its own assembly time.

``Plan`` keeps the allocation and the schedule, so ``what_if`` (an order being entered:
only orders ahead of it matter) and ``replan`` (a receipt slipped, a station went down:
the material pass again, the schedule again from the first order that moved) cost
less than planning from scratch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from server.promise.projection import MaterialResult, PartSupply, Projection
from server.promise.schedule import INF, JobResult, Scheduler, StationSpec, Step

NOTABLE_WAIT = 1800.0  # seconds: a shorter wait for a station or a shift is not named
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Reason:
    """What binds a promise, as data (``kind``, ``params``) and as English words."""

    kind: str  # part | short | capacity | calendar | assembly | no_station | horizon
    params: Mapping[str, Any]
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": dict(self.params), "text": self.text}


def _when(moment: float, now: float, zone: tzinfo) -> tuple[str, dict[str, Any]]:
    local = datetime.fromtimestamp(moment, zone)
    soon = 0 <= (local.date() - datetime.fromtimestamp(now, zone).date()).days <= 6
    words = f"{WEEKDAYS[local.weekday()]} {local:%H:%M}" if soon else f"{local:%Y-%m-%d %H:%M}"
    return words, {"at": local.isoformat(timespec="minutes"), "soon": soon}


@dataclass(frozen=True)
class OrderSpec:
    """An open order as the planner sees it.

    ``needs``: components still to find (BOM part -> quantity): a received order's
    whole BOM, a scrapped unit's rebuild; empty for released work (reserved).
    ``units``: each unit's remaining steps in routing order."""

    id: int
    number: str
    priority: int
    due: date | None
    since: float  # released (or received) at, epoch seconds
    needs: Mapping[int, int]
    units: tuple[tuple[Step, ...], ...]

    def sort_key(self) -> tuple[Any, ...]:
        return (-self.priority, self.due is None, self.due or date.max, self.since, self.id)


@dataclass
class Plant:
    now: float  # epoch seconds
    zone: tzinfo
    parts: Mapping[int, PartSupply]
    stations: Sequence[StationSpec]
    substitutes: Mapping[int, Sequence[int]] = field(default_factory=dict)
    lead_days: int = 0
    horizon_days: int = 120

    @property
    def today(self) -> date:
        return datetime.fromtimestamp(self.now, self.zone).date()

    def day_start(self, day: date) -> float:
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp()


@dataclass
class Promise:
    order_id: int
    number: str
    material_on: date | None  # all components there (None: not covered)
    completion: datetime | None  # the last step ends (UTC)
    ship_on: date | None  # completion day + lead, the promise
    reason: Reason
    also: tuple[Reason, ...] = ()
    material: MaterialResult | None = None
    job: JobResult | None = None

    @property
    def promised(self) -> bool:
        return self.ship_on is not None


class Plan:
    """Promises of all open orders; see the module text."""

    def __init__(self, plant: Plant, orders: Sequence[OrderSpec]) -> None:
        self.plant = plant
        self.orders = sorted(orders, key=OrderSpec.sort_key)
        self.promises: dict[int, Promise] = {}
        self._material: list[MaterialResult] = []
        self._jobs: list[JobResult] = []
        self.scheduler = Scheduler(plant.stations, now=plant.now)
        self._material = self._material_pass(self.orders)
        self._schedule_from(0)

    # -- passes ----------------------------------------------------------------------
    def _projection(self) -> Projection:
        return Projection(self.plant.today, self.plant.parts, self.plant.substitutes)

    def _material_pass(self, orders: Sequence[OrderSpec]) -> list[MaterialResult]:
        projection = self._projection()
        return [projection.take(o.needs) for o in orders]

    def _ready(self, material: MaterialResult) -> float:
        if material.day is None:
            return INF
        if material.day <= self.plant.today:
            return self.plant.now
        return max(self.plant.now, self.plant.day_start(material.day))

    def _schedule_from(self, k: int) -> None:
        self.scheduler.remove_from(k)
        del self._jobs[k:]
        for pos in range(k, len(self.orders)):
            order, material = self.orders[pos], self._material[pos]
            ready = self._ready(material)
            if ready == INF:
                job = JobResult(order.id, INF, INF)
            else:
                job = self.scheduler.place(order.id, order.units, ready, pos)
            self._jobs.append(job)
            self.promises[order.id] = self._promise(order, material, job)

    # -- changes ---------------------------------------------------------------------
    def replan(
        self,
        *,
        parts: Mapping[int, PartSupply] | None = None,
        stations: Sequence[StationSpec] | None = None,
        orders: Sequence[OrderSpec] | None = None,
    ) -> list[int]:
        """Plan again after a change of supply (``parts``), capacity (``stations``) or
        open orders; only orders from the first one whose components or position moved
        are scheduled again. Returns the ids of orders whose promise changed."""
        before = {k: (p.ship_on, p.completion) for k, p in self.promises.items()}
        before_parts = self.plant.parts
        if parts is not None:
            self.plant = replace(self.plant, parts=parts)
        new_orders = sorted(orders, key=OrderSpec.sort_key) if orders is not None else self.orders
        material = None
        if orders is None and parts is not None:
            material = self._material_partial(before_parts, parts)
        if material is None:
            material = self._material_pass(new_orders)
        if stations is not None:
            self.plant = replace(self.plant, stations=stations)
            self.scheduler = Scheduler(stations, now=self.plant.now)
            k = 0
        else:
            k = next(
                (
                    i
                    for i in range(min(len(new_orders), len(self.orders)))
                    if new_orders[i] is not self.orders[i]
                    or material[i].day != self._material[i].day
                ),
                min(len(new_orders), len(self.orders)),
            )
        gone = {o.id for o in self.orders} - {o.id for o in new_orders}
        for order_id in gone:
            self.promises.pop(order_id, None)
        previous, self.orders, self._material = self._material, list(new_orders), material
        # Same material day, other lots: the promise's words may change, not its date.
        for i in range(k):
            if material[i] is not previous[i]:
                self.promises[self.orders[i].id] = self._promise(
                    self.orders[i], material[i], self._jobs[i]
                )
        self._schedule_from(k)
        return [
            k2 for k2, p in self.promises.items() if before.get(k2) != (p.ship_on, p.completion)
        ]

    def _material_partial(
        self, old: Mapping[int, PartSupply], new: Mapping[int, PartSupply]
    ) -> list[MaterialResult] | None:
        """The material pass again for the parts whose supply changed only, when that
        can be done: no substitute links them to other parts, and no order changes
        between covered and not covered (else the caller runs the whole pass)."""
        changed = {p for p in set(old) | set(new) if old.get(p) is not new.get(p)}
        if not changed:
            return list(self._material)
        subs = self.plant.substitutes
        linked = {p for p, alts in subs.items() for a in alts for p2 in (p, a) if p2 in changed}
        if linked:
            return None
        projection = self._projection()
        result: list[MaterialResult] = []
        for order, previous in zip(self.orders, self._material, strict=True):
            touched = {p: q for p, q in order.needs.items() if p in changed and q > 0}
            if not touched:
                result.append(previous)
                continue
            kept = [pd for pd in previous.parts if pd.for_part not in touched]
            if previous.day is None:
                if any(pd.day is None for pd in kept):
                    result.append(previous)  # still short of an unchanged part
                    continue
                if any(projection.buckets(p).earliest(q)[0] is None for p, q in touched.items()):
                    result.append(previous)
                    continue
                return None
            again = projection.take(touched)
            if again.day is None:
                return None
            parts = [*kept, *again.parts]
            takes = [t for t in previous.takes if t.part_id not in touched] + again.takes
            day = max((pd.day for pd in parts if pd.day is not None), default=self.plant.today)
            result.append(MaterialResult(day, parts, takes))
        return result

    def what_if(self, order: OrderSpec) -> Promise:
        """The promise ``order`` would get now (it is not added): planned after every
        open order ahead of it in dispatch order, which alone can delay it."""
        key = order.sort_key()
        ahead = [o for o in self.orders if o.sort_key() < key and o.id != order.id]
        k = len(ahead)
        if ahead == self.orders[:k]:
            projection = self._projection()
            for o in ahead:
                projection.take(o.needs)
            material = projection.take(order.needs)
            saved = self.scheduler.save()
            self.scheduler.remove_from(k)
            try:
                ready = self._ready(material)
                job = (
                    JobResult(order.id, INF, INF)
                    if ready == INF
                    else self.scheduler.place(order.id, order.units, ready, k)
                )
            finally:
                self.scheduler.restore(saved)
            return self._promise(order, material, job)
        return Plan(self.plant, [*ahead, order]).promises[order.id]

    # -- words -----------------------------------------------------------------------
    def _promise(self, order: OrderSpec, material: MaterialResult, job: JobResult) -> Promise:
        plant = self.plant
        reasons = self._reasons(order, material, job)
        if job.end == INF or material.day is None:
            return Promise(
                order.id,
                order.number,
                material.day,
                None,
                None,
                reasons[0],
                tuple(reasons[1:]),
                material,
                job,
            )
        completion = datetime.fromtimestamp(job.end, UTC)
        ship = completion.astimezone(plant.zone).date() + timedelta(days=plant.lead_days)
        return Promise(
            order.id,
            order.number,
            material.day,
            completion,
            ship,
            reasons[0],
            tuple(reasons[1:]),
            material,
            job,
        )

    def _reasons(self, order: OrderSpec, material: MaterialResult, job: JobResult) -> list[Reason]:
        plant, sku = self.plant, self._sku
        binding = material.binding
        if material.day is None and binding is not None:
            return [
                Reason(
                    "short",
                    {"sku": sku(binding.part_id), "qty": binding.short},
                    f"{sku(binding.part_id)}: {binding.short} short, no receipt scheduled",
                )
            ]
        if job.missing_kind is not None:
            return [
                Reason(
                    "no_station",
                    {"kind": job.missing_kind},
                    f"No station does {job.missing_kind} work",
                )
            ]
        if job.end == INF:
            return [
                Reason(
                    "horizon",
                    {"days": plant.horizon_days},
                    f"Not within the next {plant.horizon_days} days of the line calendar",
                )
            ]
        found: list[tuple[float, Reason]] = []
        if binding is not None and binding.receipt is not None and material.day is not None:
            wait = job.ready - plant.now
            r = binding.receipt
            day = max(r.day, plant.today)
            found.append(
                (
                    wait,
                    Reason(
                        "part",
                        {
                            "sku": sku(binding.part_id),
                            "qty": binding.qty,
                            "day": day.isoformat(),
                            "receipt": r.ref,
                        },
                        f"{sku(binding.part_id)}: {binding.qty} arrive on {day.isoformat()}",
                    ),
                )
            )
        waited = max(job.placements, key=lambda p: p.busy_wait, default=None)
        if (
            waited is not None
            and waited.start - waited.ready >= NOTABLE_WAIT
            and waited.busy_wait > 0
        ):
            words, when = _when(waited.start, plant.now, plant.zone)
            name = waited.name or waited.kind
            found.append(
                (
                    waited.start - waited.ready,
                    Reason(
                        "capacity",
                        {"name": name, "kind": waited.kind, **when},
                        f"{name} is full until {words}",
                    ),
                )
            )
        first = min(job.placements, key=lambda p: p.start, default=None)
        if first is not None and first.start - first.ready >= NOTABLE_WAIT and first.busy_wait == 0:
            words, when = _when(first.start, plant.now, plant.zone)
            found.append(
                (
                    first.start - first.ready,
                    Reason("calendar", when, f"The line does not work until {words}"),
                )
            )
        found.sort(key=lambda x: -x[0])
        minutes = math.ceil(job.work_seconds / 60)
        assembly = Reason(
            "assembly",
            {"minutes": minutes},
            f"Components on hand or reserved; {minutes} min of assembly",
        )
        return [r for _, r in found] + [assembly] if found else [assembly]

    def _sku(self, part_id: int) -> str:
        supply = self.plant.parts.get(part_id)
        return supply.sku if supply else str(part_id)

    # -- reading ---------------------------------------------------------------------
    def takes_of(self, part_id: int) -> list[Any]:
        return [t for m in self._material for t in m.takes if t.part_id == part_id]

    def position(self, order_id: int) -> int:
        return next(i for i, o in enumerate(self.orders) if o.id == order_id)


def broken(
    booked: Mapping[int, date],
    promises: Mapping[int, Promise],
    *,
    only: Callable[[int], bool] = lambda _: True,
) -> dict[int, Promise]:
    """Orders whose booked promise no longer holds: the plan ships them later, or
    cannot give a date any more."""
    out = {}
    for order_id, day in booked.items():
        p = promises.get(order_id)
        if p is None or not only(order_id):
            continue
        if p.ship_on is None or p.ship_on > day:
            out[order_id] = p
    return out
