"""Working time, pure: a line's shifts, breaks and non-working days as intervals, and
the working-time axis the schedule runs on.

Times are epoch seconds (UTC) as floats, so the schedule does arithmetic on numbers
and converts to ``datetime`` only at its edges. A line's calendar is a set of shifts
(the weekdays they run, a start and an end in local minutes from midnight, an end at
or before the start crossing midnight) and breaks inside them, in the plant's time
zone; non-working days take whole local days out. ``working_intervals`` turns that
into sorted, disjoint intervals over a horizon; ``subtract`` takes a station's
downtime out of its line's intervals. ``WorkAxis`` maps wall time to "working seconds
since the start of the horizon" and back, so an operation of ``d`` seconds placed at
working time ``w`` ends at ``w + d`` whatever breaks or nights lie in between.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

Interval = tuple[float, float]
DAY_MINUTES = 24 * 60


def parse_hhmm(text: str) -> int:
    """Minutes from midnight of ``HH:MM`` (``24:00`` allowed); ``ValueError`` otherwise."""
    hours, sep, minutes = str(text).strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"{text!r} is not a time HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > DAY_MINUTES:
        raise ValueError(f"{text!r} is not a time between 00:00 and 24:00")
    return value


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Shift:
    """A shift on ``weekdays`` (0 Monday .. 6 Sunday) from ``start`` to ``end`` (local
    minutes from midnight; ``end <= start`` runs past midnight), minus ``breaks``
    (pairs of local minutes, each inside the shift)."""

    weekdays: frozenset[int]
    start: int
    end: int
    breaks: tuple[tuple[int, int], ...] = ()
    name: str = ""

    @property
    def length(self) -> int:
        """Minutes from start to end (a shift across midnight included)."""
        return (self.end - self.start) % DAY_MINUTES or DAY_MINUTES

    def worked_minutes(self) -> int:
        return self.length - sum(_span(self.start, b) for b in self.breaks)

    def problems(self) -> list[str]:
        found = []
        if not self.weekdays or not self.weekdays <= set(range(7)):
            found.append("weekdays must be among 0 (Monday) .. 6 (Sunday)")
        for b in self.breaks:
            rel_start = (b[0] - self.start) % DAY_MINUTES
            if rel_start + _span(self.start, b) > self.length or _span(self.start, b) <= 0:
                found.append(
                    f"break {hhmm(b[0])}-{hhmm(b[1] % DAY_MINUTES)} is not inside the shift"
                )
        return found


def _span(shift_start: int, b: tuple[int, int]) -> int:
    return (b[1] - b[0]) % DAY_MINUTES


def _local(day: date, minutes: int, zone: tzinfo) -> float:
    moment = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minutes)
    # Wall-clock arithmetic in the zone: rebuild so a DST change lands on local time.
    naive = moment.replace(tzinfo=None)
    return naive.replace(tzinfo=zone).timestamp()


def working_intervals(
    shifts: Iterable[Shift],
    *,
    zone: tzinfo,
    first_day: date,
    days: int,
    closed: Iterable[date] = (),
) -> list[Interval]:
    """The working intervals of a calendar from local midnight of ``first_day`` for
    ``days`` days: each shift on its weekdays, breaks taken out, ``closed`` days (a
    shift belongs to the day it starts) left out; sorted, overlaps merged."""
    closed_days = set(closed)
    out: list[Interval] = []
    shift_list = list(shifts)
    for n in range(days):
        try:
            day = first_day + timedelta(days=n)
        except OverflowError:
            break  # past year 9999 nothing works
        if day in closed_days:
            continue
        wd = day.weekday()
        for shift in shift_list:
            if wd not in shift.weekdays:
                continue
            start = shift.start
            end = start + shift.length
            pieces = [(start, end)]
            for b in shift.breaks:
                b_start = start + (b[0] - start) % DAY_MINUTES
                b_end = b_start + _span(start, b)
                pieces = [
                    q
                    for p in pieces
                    for q in ((p[0], min(p[1], b_start)), (max(p[0], b_end), p[1]))
                    if q[1] > q[0]
                ]
            try:
                out += [(_local(day, a, zone), _local(day, b, zone)) for a, b in pieces]
            except OverflowError:
                continue  # a shift ending after 9999-12-31
    return merge(out)


def always(first: float, last: float) -> list[Interval]:
    """A calendar that works around the clock (a line without shifts)."""
    return [(first, last)]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    result: list[Interval] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if result and a <= result[-1][1]:
            if b > result[-1][1]:
                result[-1] = (result[-1][0], b)
        else:
            result.append((a, b))
    return result


def subtract(intervals: Sequence[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """``intervals`` with ``holes`` (downtime) taken out."""
    cut = merge(holes)
    if not cut:
        return list(intervals)
    result: list[Interval] = []
    for a, b in intervals:
        pieces = [(a, b)]
        for ha, hb in cut:
            if hb <= a or ha >= b:
                continue
            pieces = [
                q
                for p in pieces
                for q in ((p[0], min(p[1], ha)), (max(p[0], hb), p[1]))
                if q[1] > q[0]
            ]
        result += pieces
    return result


@dataclass
class WorkAxis:
    """Working seconds counted along a calendar's intervals.

    ``to_work(t)``: working seconds before wall time ``t`` (a ``t`` in non-working time
    maps to the start of the next working interval). ``to_wall(w)``: the wall time at
    which ``w`` working seconds have passed, the end of an interval rather than the
    start of the next when ``w`` falls exactly between them (an operation that ends at
    a break ends before the break). Beyond the last interval: ``math.inf``.
    """

    intervals: Sequence[Interval]
    starts: list[float] = field(init=False)
    ends: list[float] = field(init=False)
    cum: list[float] = field(init=False)  # working seconds before each interval

    def __post_init__(self) -> None:
        self.starts = [a for a, _ in self.intervals]
        self.ends = [b for _, b in self.intervals]
        self.cum = []
        total = 0.0
        for a, b in self.intervals:
            self.cum.append(total)
            total += b - a
        self.total = total

    def to_work(self, t: float) -> float:
        i = bisect_right(self.ends, t)
        if i >= len(self.starts):
            return self.total
        start = self.starts[i]
        return self.cum[i] + (t - start if t > start else 0.0)

    def to_wall(self, w: float) -> float:
        if w > self.total or not self.starts:
            return float("inf")
        i = bisect_left(self.cum, w) - 1
        if i < 0:
            return self.starts[0]
        return self.starts[i] + (w - self.cum[i])

    def next_working(self, t: float) -> float:
        """The first working instant at or after ``t`` (``inf`` past the horizon)."""
        i = bisect_right(self.ends, t)
        if i >= len(self.starts):
            return float("inf")
        return max(t, self.starts[i])
