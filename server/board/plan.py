"""Plan against actual, per hour of the plant day (pure: numbers and datetimes).

The plan is the line's takt over its working time: ``working`` intervals (epoch
seconds, UTC) planned at one unit per ``takt`` seconds, cut into the plant's local
hours. Where the line has a calendar the intervals are its shifts less breaks (the
whole day's target is then known); without one, the plan runs from the day's first
step to now, so "plan so far" is what the takt asks for the time the line has run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

Interval = tuple[float, float]
CHUNK = 900.0  # split at quarter hours: every zone's hour starts on one


@dataclass
class HourPlan:
    """Planned units per local hour (24), the day's target and the plan so far."""

    hourly: list[float] = field(default_factory=lambda: [0.0] * 24)
    target: float = 0.0
    so_far: float = 0.0
    source: str = "none"  # calendar | takt | none


def hour_plan(
    working: Iterable[Interval],
    *,
    takt_seconds: int,
    zone: tzinfo,
    start: datetime,
    end: datetime,
    now: datetime,
    source: str,
) -> HourPlan:
    """The plan of the plant day ``[start, end)`` for ``working`` time at ``takt_seconds``."""
    plan = HourPlan(source=source if takt_seconds > 0 else "none")
    if takt_seconds <= 0:
        return plan
    lo, hi, t_now = start.timestamp(), end.timestamp(), now.timestamp()
    for a, b in working:
        a, b = max(a, lo), min(b, hi)
        while a < b:
            step = min(b, (a // CHUNK + 1) * CHUNK)
            units = (step - a) / takt_seconds
            plan.hourly[datetime.fromtimestamp(a, zone).hour] += units
            plan.target += units
            if a < t_now:
                plan.so_far += (min(step, t_now) - a) / takt_seconds
            a = step
    return plan


@dataclass(frozen=True)
class HourRow:
    """One hour on the board: its local start, units planned and built, and whether the
    hour is over and fell short."""

    hour: int
    planned: float
    actual: int
    over: bool  # the hour has passed
    behind: bool
    current: bool


def hour_rows(plan: HourPlan, actual: list[int], *, now_hour: int | None) -> list[HourRow]:
    """The hours that had a plan or an output, in order (``now_hour``: the local hour
    now when the day shown is today, else None)."""
    rows = []
    for h in range(24):
        if plan.hourly[h] < 0.05 and not actual[h]:
            continue
        over = now_hour is None or h < now_hour
        rows.append(
            HourRow(
                hour=h,
                planned=plan.hourly[h],
                actual=actual[h],
                over=over,
                behind=over and actual[h] < int(plan.hourly[h] + 1e-9),
                current=h == now_hour,
            )
        )
    return rows
