"""Assembly-time report: how long steps and whole units take, against standard time.

Durations are worked time, ``ended_at - started_at - paused_seconds`` (pauses never
count). Groups: per product and option set (whole units: the sum of their steps), per
operation and station, per operation and operator. Each group gives n, mean, p50, p90,
min, max, the standard and a histogram (``summarize``, pure).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from server.models import Operation, Operator, Product, Station, StepRecord, Unit

BINS = 10


@dataclass(frozen=True)
class Stats:
    n: int
    mean: float
    p50: float
    p90: float
    minimum: float
    maximum: float
    standard: float
    histogram: tuple[tuple[float, float, int], ...]  # (from, to, count)

    @property
    def versus_standard(self) -> float | None:
        return self.mean / self.standard if self.standard else None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return float(sorted_values[lo])
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo))


def summarize(durations: Sequence[float], standard: float, bins: int = BINS) -> Stats:
    values = sorted(durations)
    if not values:
        return Stats(0, math.nan, math.nan, math.nan, math.nan, math.nan, standard, ())
    lo, hi = values[0], values[-1]
    width = (hi - lo) / bins if hi > lo else 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    histogram = tuple((lo + i * width, lo + (i + 1) * width, c) for i, c in enumerate(counts))
    return Stats(
        len(values),
        sum(values) / len(values),
        percentile(values, 50),
        percentile(values, 90),
        lo,
        hi,
        standard,
        histogram,
    )


@dataclass
class Group:
    key: tuple[str, ...]
    stats: Stats


@dataclass
class TimingReport:
    start: datetime
    end: datetime
    by_configuration: list[Group] = field(default_factory=list)  # (product, options)
    by_station: list[Group] = field(default_factory=list)  # (operation, station)
    by_operator: list[Group] = field(default_factory=list)  # (operation, operator)


@functools.cache
def _steps_query() -> Any:
    return (
        sa.select(
            col(StepRecord.unit_id),
            col(StepRecord.started_at),
            col(StepRecord.ended_at),
            col(StepRecord.paused_seconds),
            col(Operation.code),
            col(Operation.standard_seconds),
            col(Station.code),
            col(Operator.name),
            col(Product.code),
            col(Unit.options),
            col(Unit.completed_at),
        )
        .join(Operation, col(Operation.id) == col(StepRecord.operation_id))
        .join(Station, col(Station.id) == col(StepRecord.station_id))
        .outerjoin(Operator, col(Operator.id) == col(StepRecord.operator_id))
        .join(Unit, col(Unit.id) == col(StepRecord.unit_id))
        .join(Product, col(Product.id) == col(Unit.product_id))
        .where(
            col(StepRecord.ended_at) >= sa.bindparam("start"),
            col(StepRecord.ended_at) < sa.bindparam("end"),
        )
    )


def assembly_time(
    db: Session, *, start: datetime, end: datetime, product: str | None = None
) -> TimingReport:
    """Steps that ended in [start, end); whole units: those completed in that window."""
    rows = db.connection().execute(_steps_query(), {"start": start, "end": end}).all()
    by_station: dict[tuple[str, ...], list[float]] = defaultdict(list)
    by_operator: dict[tuple[str, ...], list[float]] = defaultdict(list)
    standard_of: dict[str, float] = {}
    per_unit: dict[int, list[Any]] = {}
    for (
        unit_id,
        started,
        ended,
        paused,
        op,
        standard,
        station,
        operator,
        prod,
        opts,
        completed,
    ) in rows:
        if product and prod != product:
            continue
        d = max((ended - started).total_seconds() - (paused or 0.0), 0.0)
        by_station[(op, station)].append(d)
        by_operator[(op, operator or "?")].append(d)
        standard_of[op] = standard
        if completed is None or not start <= completed < end:
            continue
        entry = per_unit.setdefault(unit_id, [prod, " ".join(sorted(opts)), 0.0, {}])
        entry[2] += d
        entry[3][op] = standard
    by_config: dict[tuple[str, ...], list[float]] = defaultdict(list)
    config_standard: dict[tuple[str, ...], float] = {}
    for prod, opts, total, ops in per_unit.values():
        by_config[(prod, opts)].append(total)
        config_standard[(prod, opts)] = max(
            config_standard.get((prod, opts), 0.0), float(sum(ops.values()))
        )
    report = TimingReport(start, end)
    report.by_configuration = [
        Group(k, summarize(v, config_standard[k])) for k, v in sorted(by_config.items())
    ]
    report.by_station = [
        Group(k, summarize(v, standard_of[k[0]])) for k, v in sorted(by_station.items())
    ]
    report.by_operator = [
        Group(k, summarize(v, standard_of[k[0]])) for k, v in sorted(by_operator.items())
    ]
    return report


def stats_dict(s: Stats) -> dict[str, Any]:
    def r(x: float) -> float | None:
        return None if math.isnan(x) else round(x, 1)

    return {
        "n": s.n,
        "mean": r(s.mean),
        "p50": r(s.p50),
        "p90": r(s.p90),
        "min": r(s.minimum),
        "max": r(s.maximum),
        "standard": s.standard,
        "versus_standard": (
            round(s.versus_standard, 3) if s.versus_standard is not None and s.n else None
        ),
        "histogram": [
            {"from": round(a, 1), "to": round(b, 1), "count": c} for a, b, c in s.histogram
        ],
    }
