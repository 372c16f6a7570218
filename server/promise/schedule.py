"""The finite-capacity forward schedule, pure.

Jobs (one per order: its units, each a chain of steps) are placed one after the other
in dispatch priority order. Each step goes to the station of its kind where it ends
soonest, into the earliest gap of that station's free working time that is long
enough and starts no earlier than the unit is ready for it (its components are
there, its previous step is done). So a job never delays one placed before it, and a
job whose components come late leaves the station free for those below it that are
ready now (work is dispatched only when it is ready; so is the plan).

Time runs on each station's ``WorkAxis`` (its line's calendar, less its downtime): a
step of ``d`` seconds occupies ``d`` working seconds, across breaks and nights.
``remove_from(position)`` takes the placements of the jobs from ``position`` on off
the stations again, so a change re-plans only the jobs below the first one it moves.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from server.promise.calendar import WorkAxis

INF = math.inf


@dataclass(frozen=True)
class Step:
    """One operation still to do on a unit: ``seconds`` of work at a station of
    ``kind``; ``station`` pins it (a step already running there)."""

    kind: str
    seconds: float
    name: str = ""
    station: str | None = None


@dataclass(frozen=True)
class StationSpec:
    code: str
    kind: str
    axis: WorkAxis  # stations sharing a calendar share the object


@dataclass(frozen=True)
class Placement:
    station: str
    kind: str
    name: str
    ready: float  # wall time the unit was ready for this step
    start: float
    end: float
    busy_wait: float  # working seconds it waited for the station (others' work)


@dataclass
class JobResult:
    key: int
    ready: float
    end: float  # INF: past the horizon, or a kind no station does
    placements: list[Placement] = field(default_factory=list)
    missing_kind: str | None = None

    @property
    def start(self) -> float:
        return min((p.start for p in self.placements), default=INF)

    @property
    def work_seconds(self) -> float:
        return sum(p.end - p.start for p in self.placements)


class _Station:
    __slots__ = ("code", "kind", "axis", "origin", "busy", "gstarts", "gends")

    def __init__(self, spec: StationSpec, origin: float) -> None:
        self.code = spec.code
        self.kind = spec.kind
        self.axis = spec.axis
        self.origin = spec.axis.to_work(origin)
        self.busy: list[tuple[float, float, int]] = []  # working seconds, owner position
        self.gstarts = [self.origin]
        self.gends = [INF]

    def find(self, ready_w: float, seconds: float) -> tuple[int, float]:
        """The gap index and working start of the earliest fit at or after ``ready_w``."""
        gstarts, gends = self.gstarts, self.gends
        i = bisect_right(gends, ready_w)
        while True:
            s = gstarts[i] if gstarts[i] > ready_w else ready_w
            if s + seconds <= gends[i]:
                return i, s
            i += 1

    def occupy(self, i: int, s: float, e: float, owner: int) -> None:
        gs, ge = self.gstarts[i], self.gends[i]
        new_s, new_e = [], []
        if s > gs:
            new_s.append(gs)
            new_e.append(s)
        if ge > e:
            new_s.append(e)
            new_e.append(ge)
        self.gstarts[i : i + 1] = new_s
        self.gends[i : i + 1] = new_e
        self.busy.append((s, e, owner))

    def remove_from(self, position: int) -> None:
        kept = sorted(b for b in self.busy if b[2] < position)
        if len(kept) == len(self.busy):
            return
        self.busy = kept
        gstarts, gends = [], []
        cursor = self.origin
        for s, e, _ in kept:
            if s > cursor:
                gstarts.append(cursor)
                gends.append(s)
            cursor = max(cursor, e)
        gstarts.append(cursor)
        gends.append(INF)
        self.gstarts, self.gends = gstarts, gends


class Scheduler:
    def __init__(self, stations: Sequence[StationSpec], *, now: float) -> None:
        self.now = now
        self.stations = [_Station(s, now) for s in stations]
        self.by_code = {s.code: s for s in self.stations}
        self.by_kind: dict[str, list[_Station]] = {}
        for s in self.stations:
            self.by_kind.setdefault(s.kind, []).append(s)

    def kinds(self) -> set[str]:
        return set(self.by_kind)

    def place(
        self, key: int, units: Sequence[Sequence[Step]], ready: float, position: int
    ) -> JobResult:
        """Place every step of every unit of one job (``position`` in the plan: what
        ``remove_from`` undoes). Steps of a kind no station does: ``missing_kind``."""
        result = JobResult(key, ready, ready)
        end = ready
        for steps in units:
            t = max(ready, self.now)
            for step in steps:
                # No known duration (NaN, negative, under a millisecond: lost in the
                # working-time sums) takes no time rather than breaking a gap.
                seconds = step.seconds if step.seconds >= 0.001 else 0.0
                candidates = (
                    [self.by_code[step.station]]
                    if step.station in self.by_code
                    else self.by_kind.get(step.kind)
                )
                if not candidates:
                    result.missing_kind = step.kind
                    result.end = INF
                    return result
                # On one axis (one calendar) the soonest end in working time is the
                # soonest in wall time: compare working ends, convert the best once.
                best: tuple[float, _Station, int, float, float] | None = None
                best_axis: dict[int, tuple[float, _Station, int, float, float]] = {}
                for st in candidates:
                    ax = id(st.axis)
                    seen = best_axis.get(ax)
                    rw = seen[4] if seen is not None else st.axis.to_work(t)
                    i, s = st.find(rw, seconds)
                    if seen is None or s < seen[3]:
                        best_axis[ax] = (s + seconds, st, i, s, rw)
                for e_work, st, i, s, rw in best_axis.values():
                    e_wall = st.axis.to_wall(e_work)
                    if best is None or e_wall < best[0]:
                        best = (e_wall, st, i, s, rw)
                assert best is not None
                e_wall, st, i, s, rw = best
                if e_wall == INF:
                    result.end = INF
                    return result
                st.occupy(i, s, s + seconds, position)
                # A start on a boundary is the beginning of the next working interval.
                start_wall = st.axis.next_working(st.axis.to_wall(s)) if seconds else e_wall
                result.placements.append(
                    Placement(st.code, step.kind, step.name, t, start_wall, e_wall, s - rw)
                )
                t = e_wall
            end = max(end, t)
        result.end = end
        return result

    def remove_from(self, position: int) -> None:
        for st in self.stations:
            st.remove_from(position)

    def save(self) -> list[tuple[list[tuple[float, float, int]], list[float], list[float]]]:
        """The stations' state, to ``restore`` after a trial placement."""
        return [(list(s.busy), list(s.gstarts), list(s.gends)) for s in self.stations]

    def restore(
        self, saved: list[tuple[list[tuple[float, float, int]], list[float], list[float]]]
    ) -> None:
        for st, (busy, gstarts, gends) in zip(self.stations, saved, strict=True):
            st.busy, st.gstarts, st.gends = busy, gstarts, gends
