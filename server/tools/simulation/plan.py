"""The shift's plan, decided up front from a seeded RNG: no database, no MQTT, no clock.

- ``random_options``: a valid configuration of a product (the same rules the order
  form enforces, checked with ``server.catalog.configure.validate``);
- ``fault_schedule``: which faults happen when, in simulated seconds, printed at start;
- ``Behaviour`` / ``OperatorDice``: how long a step takes around its standard time and
  how often an operator pauses, scans a wrong part, reports a defect or calls andon;
- ``gs1_scan``: the GS1 element string a supplier label carries for a part.

Simulated time runs ``speed`` times faster than the wall clock: a step of 420
simulated seconds at ``--speed 30`` takes 14 real seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from server.catalog.configure import ProductSpec, validate

GS = "\x1d"

FAULT_KINDS = (
    "broker_restart",
    "ingest_kill",
    "bridge_offline",
    "port_unplug",
    "duplicate",
    "garbage",
)


def random_options(spec: ProductSpec, rng: random.Random, *, tries: int = 200) -> list[str]:
    """A valid option set of ``spec``: one option per single-choice group (optional
    groups left empty now and then), one or two of a multiple-choice group."""
    for _ in range(tries):
        chosen: list[str] = []
        for group in spec.groups:
            codes = [o.code for o in group.options]
            if not codes or (not group.required and rng.random() < 0.5):
                continue
            n = rng.choice((1, 1, 2)) if group.multiple else 1
            chosen += rng.sample(codes, min(n, len(codes)))
        if not validate(spec, chosen):
            return chosen
    raise ValueError(f"no valid configuration of {spec.code} found in {tries} tries")


@dataclass(frozen=True)
class Fault:
    at: float  # simulated seconds after the shift starts
    kind: str  # one of FAULT_KINDS
    station: str = ""  # for the station faults
    duration: float = 0.0  # simulated seconds the component stays down

    def describe(self) -> str:
        where = f" at {self.station}" if self.station else ""
        lasting = f" for {self.duration:.0f} s" if self.duration else ""
        minute, second = divmod(int(self.at), 60)
        return f"{minute:3d}:{second:02d}  {self.kind}{where}{lasting}"


def fault_schedule(*, minutes: float, stations: list[str], rng: random.Random) -> list[Fault]:
    """Every kind of fault at least once, spread over the middle of the shift (10%-75%,
    so the line has filled and there is time to recover before the end). Longer
    shifts get more rounds, one per 20 simulated minutes."""
    total = minutes * 60.0
    rounds = max(1, int(minutes // 20))
    kinds = [k for _ in range(rounds) for k in FAULT_KINDS]
    slots = sorted(rng.uniform(0.10, 0.75) * total for _ in kinds)
    rng.shuffle(kinds)
    faults = []
    for at, kind in zip(slots, kinds, strict=True):
        station = (
            rng.choice(stations)
            if kind in ("bridge_offline", "port_unplug", "duplicate", "garbage")
            else ""
        )
        duration = {
            "bridge_offline": 60.0,
            "port_unplug": 20.0,
            "ingest_kill": 15.0,
            "broker_restart": 5.0,
        }.get(kind, 0.0)
        faults.append(Fault(round(at, 1), kind, station, duration))
    # Two outages of the same station must not overlap: move the later one on.
    busy: dict[str, float] = {}
    spaced = []
    for f in faults:
        key = f.station or f.kind
        start = max(f.at, busy.get(key, 0.0))
        busy[key] = start + f.duration + 5.0
        spaced.append(Fault(start, f.kind, f.station, f.duration))
    return sorted(spaced, key=lambda f: f.at)


@dataclass(frozen=True)
class Behaviour:
    """Probabilities per step (pause, defect, andon) or per pick (wrong part, wedge)."""

    wrong_part: float = 0.06  # a wrong part scanned before the right one
    wedge: float = 0.3  # the pick scanned with the tablet's wedge scanner (HTTP)
    pause: float = 0.12
    defect: float = 0.05  # a defect noted for rework; the step goes on
    hold: float = 0.01  # a defect that puts the unit on hold (closes the step)
    andon: float = 0.05
    bad_screw: float = 0.03  # a screw that never reaches its torque: the check's NCR
    jitter: float = 0.25  # step time drawn from standard x [1 - jitter, 1 + jitter]


QUIET = Behaviour(
    wrong_part=0.03, wedge=0.3, pause=0.05, defect=0.02, hold=0.0, andon=0.02, bad_screw=0.0
)


@dataclass
class OperatorDice:
    """One operator's draws; its own seeded RNG keeps runs repeatable per station."""

    rng: random.Random
    behaviour: Behaviour
    speed: float

    def step_seconds(self, standard_seconds: int) -> float:
        """Real seconds this step should take (pauses excluded)."""
        j = self.behaviour.jitter
        return max(standard_seconds, 30) * self.rng.uniform(1 - j, 1 + j) / self.speed

    def chance(self, what: str) -> bool:
        return self.rng.random() < float(getattr(self.behaviour, what))

    def pause_seconds(self) -> float:
        return self.rng.uniform(20, 90) / self.speed

    def pick(self, items: list[str]) -> str:
        return self.rng.choice(items)

    def measure(self, nominal: float, lower: float | None, upper: float | None) -> float:
        """A realistic reading: sigma a sixth of the tolerance (Cpk about 1, a few
        in a thousand out of limits)."""
        width = (upper - lower) if lower is not None and upper is not None else nominal * 0.1
        return round(self.rng.gauss(nominal, width / 6), 3)


def gs1_scan(gtin: str, *, lot: str = "", serial: str = "", symbology: str = "]d2") -> str:
    """``]d2`` + (01) GTIN-14, then (10) lot or (21) serial; GS ends a variable-length
    element that is not last, as a scanner transmits a DataMatrix."""
    text = symbology + "01" + gtin.zfill(14)
    elements = [("10", lot), ("21", serial)]
    present = [(ai, value) for ai, value in elements if value]
    for i, (ai, value) in enumerate(present):
        text += ai + value + (GS if i < len(present) - 1 else "")
    return text


def duration_real(simulated_seconds: float, speed: float) -> float:
    return simulated_seconds / speed
