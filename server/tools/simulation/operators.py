"""Simulated line workers: one thread per station, using the station as a person would.

Each operator holds a tablet session over real HTTP (bound with a device token, CSRF
token read from the page, as htmx sends it) for sign-in, start, complete, pause,
resume, defect and andon, and for some scans (the keyboard-wedge scanner). The other
scans are typed into the station's serial scanner (a pty read by the real bridge,
published to the broker, decided by the ingest). Between actions the operator looks
at the database the way a worker looks at the screen and the bins: what the step still
needs and which lot or serial was kitted for this unit.

The loop is driven by what the database says, never by what the operator believes it
did: a scan that is late (the broker is restarting) or lost (the port was unplugged
while typing) is simply seen as still needed and scanned again; the workflow refuses
the extra one if the first shows up after all. So the counts reconcile whatever the
faults did.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from server import dispatch
from server.models import (
    Event,
    EventResult,
    Part,
    PartIdentifier,
    Station,
    StockLot,
    StockMovement,
)
from server.tools.simulation.floor import SimStation
from server.tools.simulation.plan import OperatorDice, gs1_scan
from server.tools.simulation.processes import StationRig
from station import service

log = logging.getLogger(__name__)
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
BANNER_RE = re.compile(r'data-testid="banner"\s+data-kind="([a-z]*)"')
# A 1x1 PNG: what the simulated tablet camera sends for a photo check.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c49444154789c633870e0000004840241e18daf270000000049454e44ae426082"
)
SCAN_TIMEOUT = 30.0  # real seconds a serial scan may take to show up, faults included;
# after that the operator looks again and rescans (the workflow refuses an extra one)


class TabletError(RuntimeError):
    pass


class Tablet:
    """A station tablet's HTTP session: device cookie, session cookie, CSRF token."""

    def __init__(self, base_url: str, station: str, abort: threading.Event | None = None) -> None:
        self.abort = abort or threading.Event()
        self.base = base_url.rstrip("/")
        self.station = station
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""
        self.requests = 0

    def bind(self, token: str) -> None:
        html = self._open("GET", f"/station/bind?{urllib.parse.urlencode({'token': token})}")
        found = CSRF_RE.search(html)
        if not found:
            raise TabletError(f"{self.station}: no CSRF token on the station page")
        self.csrf = found.group(1)

    def post(self, action: str, **form: str) -> str:
        """POST an action as htmx does; returns the banner kind (ok, reject, info, '')."""
        html = self._open("POST", f"/station/{self.station}/{action}", form)
        found = BANNER_RE.search(html)
        return found.group(1) if found else ""

    def post_photo(self, check: str) -> str:
        """The tablet's camera: a (tiny) PNG for a photo check, as a multipart form."""
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="check"\r\n\r\n{check}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; '
            'filename="label.png"\r\nContent-Type: image/png\r\n\r\n'
        )
        body = head.encode() + TINY_PNG + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(
            f"{self.base}/station/{self.station}/check",
            data=body,
            method="POST",
            headers={
                "HX-Request": "true",
                "X-CSRFToken": self.csrf,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                self.requests += 1
                html = str(response.read().decode("utf-8", "replace"))
        except OSError as exc:
            log.warning("%s: photo not sent (%s)", self.station, exc)
            return ""
        found = BANNER_RE.search(html)
        return found.group(1) if found else ""

    def _open(
        self, method: str, path: str, form: dict[str, str] | None = None, tries: int = 20
    ) -> str:
        data = urllib.parse.urlencode(form or {}).encode() if method == "POST" else None
        headers = {"HX-Request": "true", "X-CSRFToken": self.csrf} if method == "POST" else {}
        for attempt in range(tries):
            request = urllib.request.Request(
                self.base + path, data=data, method=method, headers=headers
            )
            try:
                with self.opener.open(request, timeout=30) as response:
                    self.requests += 1
                    return str(response.read().decode("utf-8", "replace"))
            except urllib.error.HTTPError as exc:
                body = exc.read().decode("utf-8", "replace")[:300]
                exc.close()
                raise TabletError(f"{self.station}: {method} {path} -> {exc.code}: {body}") from exc
            except OSError as exc:  # the web server is busy or restarting
                if self.abort.is_set():
                    raise TabletError(f"{self.station}: stopped") from exc
                log.warning("%s: %s %s failed (%s), retrying", self.station, method, path, exc)
                self.abort.wait(min(0.2 * (attempt + 1), 2.0))
        raise TabletError(f"{self.station}: {method} {path} failed {tries} times")


@dataclass
class OperatorStats:
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n


@dataclass(frozen=True)
class Needed:
    """One scan the current step still needs: the label to scan and the BOM part."""

    data: str
    part_id: int


class SimOperator(threading.Thread):
    """Works the station until ``stop_new_work`` is set, then finishes the step in hand."""

    def __init__(
        self,
        *,
        info: SimStation,
        rig: StationRig | None,
        web_url: str,
        engine: Engine,
        dice: OperatorDice,
        stop_new_work: threading.Event,
        abort: threading.Event,
    ) -> None:
        super().__init__(name=f"operator-{info.code}", daemon=True)
        self.info = info
        self.rig = rig
        self.engine = engine
        self.dice = dice
        self.tablet = Tablet(web_url, info.code, abort)
        self.stop_new_work = stop_new_work
        self.abort = abort
        self.stats = OperatorStats()
        self.error: BaseException | None = None
        self.station_id = 0
        self.busy = False

    # --- the shift --------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # noqa: BLE001 - reported by the shift, never lost
            if self.abort.is_set() and isinstance(exc, TabletError):
                return  # stopped from outside while talking to the tablet
            log.exception("operator at %s stopped on an error", self.info.code)
            self.error = exc

    def _work(self) -> None:
        with Session(self.engine) as session:
            self.station_id = (
                session.exec(select(Station.id).where(Station.code == self.info.code)).one() or 0
            )
        self.tablet.bind(self.info.token)
        self._expect(self.tablet.post("sign-in", badge=self.info.badge), "ok", "sign_in")
        while not self.stop_new_work.is_set() and not self.abort.is_set():
            if self._open_step() is None:
                if not self._work_waiting():  # the queue on the screen is empty
                    self.abort.wait(min(1.0, 30 / self.dice.speed))
                    continue
                kind = self.tablet.post("start")
                if kind != "ok":
                    self.stats.add("idle")
                    self.abort.wait(min(1.0, 30 / self.dice.speed))
                    continue
                self.stats.add("steps_started")
            self.busy = True
            self._do_step()
            self.busy = False
        if not self.abort.is_set():
            self._expect(self.tablet.post("sign-out"), "ok", "sign_out")

    def _do_step(self) -> None:
        step = self._open_step()
        if step is None:
            return
        standard = step
        budget = self.dice.step_seconds(standard)
        started = time.monotonic()
        if self.dice.chance("andon"):
            self._expect(self.tablet.post("andon", reason="material"), "ok", "andon")
        paused = False
        # The step's time spread evenly over its picks (the worker fitting each part).
        interval = budget / (len(self._needed()) + 1)
        done = 0
        tries: Counter[str] = Counter()
        while not self.abort.is_set():
            needed = self._needed()
            if not needed:
                break
            tries[needed[0].data] += 1
            if tries[needed[0].data] > 3:  # refused every time: a bad label, no stock...
                self.stats.add("pick_given_up")
                log.warning("%s: giving up on %r after 3 tries", self.info.code, needed[0].data)
                break
            if not paused and self.dice.chance("pause"):
                paused = True
                self._expect(self.tablet.post("pause"), "ok", "pause")
                self.abort.wait(self.dice.pause_seconds())
                self._expect(self.tablet.post("resume"), "ok", "resume")
            if self.dice.chance("wrong_part"):
                wrong = self._wrong_part(needed)
                if wrong is not None:
                    self._scan(wrong, expect="reject", what="wrong_part")
            self._scan(needed[0].data, expect="", what="pick")
            done += 1
            self.abort.wait(max(started + interval * done - time.monotonic(), 0))
        if self.abort.is_set():  # stopped from outside: leave the step as it is
            return
        if self.dice.chance("defect"):
            self._expect(
                self.tablet.post(
                    "defect",
                    reason=self.dice.pick(["damaged", "cosmetic", "no_fit"]),
                    disposition="rework",
                ),
                "ok",
                "defect",
            )
        if self.dice.chance("hold"):
            self._expect(
                self.tablet.post("defect", reason="function", disposition="hold"), "ok", "hold"
            )
            return
        if not self._answer_checks():
            return  # a check failed after its retries: the step is blocked, an NCR open
        left = budget - (time.monotonic() - started)
        if left > 0 and self.abort.wait(left):
            return
        for _ in range(5):
            kind = self.tablet.post("complete")
            if kind == "ok":
                self.stats.add("steps_completed")
                return
            # A pick still missing (a late scan refused, a lot now short): look again.
            self.stats.add("complete_refused")
            if tries and max(tries.values()) > 3:
                break
            for item in self._needed():
                self._scan(item.data, expect="", what="pick", wedge=True)
        # Could not complete: put the unit on hold, so the step is closed anyway.
        log.warning("%s: step cannot be completed; holding the unit", self.info.code)
        self._expect(self.tablet.post("defect", reason="missing", disposition="hold"), "ok", "hold")

    # --- quality checks -----------------------------------------------------------------

    def _answer_checks(self) -> bool:
        """Every open check of the step: torque and weight from the tools board through
        the bridge, the rest on the tablet. False when a failed check blocked the step."""
        bad_screw = self.dice.chance("bad_screw")
        for _ in range(60):  # bounded: a check refused every time is given up
            if self.abort.is_set():
                return False
            with Session(self.engine) as session:
                state = service.load_state(session, station_code=self.info.code)
            if state.operation is None:
                self.stats.add("check_blocked_ncr")
                return False
            todo = [c for c in state.checks if not c.done]
            if not todo:
                return True
            spec = todo[0].spec
            self.stats.add(f"check_{spec.kind}")
            if spec.kind in ("measure", "count"):
                nominal = spec.nominal if spec.nominal is not None else (spec.lower or 0.0)
                value = self.dice.measure(nominal, spec.lower, spec.upper)
                if bad_screw and spec.source == "torque":
                    value = round((spec.upper or nominal) * 1.25, 3)
                if spec.source == "typed" or self.rig is None:
                    self.tablet.post("check", check=spec.code, value=str(value))
                elif spec.source == "torque":
                    ok = "OK" if spec.lower <= value <= spec.upper else "NOK"  # type: ignore[operator]
                    self._tool(f"TORQUE {value} {ok} {spec.unit or 'Nm'}")
                else:
                    self._tool(f"WEIGHT {value} {spec.unit or 'kg'}")
            elif spec.kind == "photo":
                self.tablet.post_photo(spec.code)
            else:
                passed = spec.kind == "confirm" or self.dice.rng.random() > 0.02
                self.tablet.post("check", check=spec.code, passed="1" if passed else "0")
        self.stats.add("check_given_up")
        return True

    def _tool(self, line: str) -> None:
        """Type a reading into the tools board and wait until the server recorded it."""
        assert self.rig is not None
        before = self._device_events()
        try:
            self.rig.tool(line)
        except OSError:
            self.stats.add("tool_unplugged")
            return
        deadline = time.monotonic() + SCAN_TIMEOUT
        while time.monotonic() < deadline and not self.abort.is_set():
            if self._device_events() > before:
                return
            time.sleep(0.05)
        self.stats.add("tool_timeouts")

    def _device_events(self) -> int:
        with Session(self.engine) as session:
            return int(
                session.exec(
                    select(sa.func.count()).where(
                        Event.station_id == self.station_id, Event.kind == "device"
                    )
                ).one()
            )

    def _expect(self, kind: str, want: str, what: str) -> None:
        self.stats.add(what)
        if kind != want:
            self.stats.add(f"{what}_unexpected_{kind or 'none'}")
            log.warning("%s: %s answered %r, expected %r", self.info.code, what, kind, want)

    # --- scanning ---------------------------------------------------------------------

    def _scan(self, data: str, *, expect: str, what: str, wedge: bool = False) -> None:
        rig = self.rig
        use_pty = (
            not wedge and rig is not None and not self.dice.chance("wedge") and rig.scanner_ready
        )
        if not use_pty:
            kind = self.tablet.post("scan", data=data)
            self.stats.add(f"{what}_wedge")
            if expect and kind != expect:
                self.stats.add(f"{what}_unexpected_{kind or 'none'}")
            elif expect:
                self.stats.add(f"{what}_rejected")
            return
        assert rig is not None
        before = self._events(data)
        try:
            rig.type(data.encode() + b"\r\n")
        except OSError:  # unplugged between the check and the write
            self.stats.add("typed_into_unplugged_port")
            return
        self.stats.add(f"{what}_serial")
        deadline = time.monotonic() + SCAN_TIMEOUT
        while time.monotonic() < deadline and not self.abort.is_set():
            rig.drain()
            recorded = self._events(data)
            if len(recorded) > len(before):
                if expect == "reject":
                    self.stats.add(
                        f"{what}_rejected"
                        if recorded[-1] == EventResult.REJECTED
                        else f"{what}_unexpected_{recorded[-1]}"
                    )
                return
            time.sleep(0.05)
        self.stats.add("scan_timeouts")
        log.warning("%s: scan %r not recorded within %s s", self.info.code, data, SCAN_TIMEOUT)

    def _events(self, data: str) -> list[str]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(Event.result)
                    .where(Event.station_id == self.station_id, Event.data == data)
                    .order_by(col(Event.id))
                ).all()
            )

    # --- what the screen and the bins say ---------------------------------------------

    def _work_waiting(self) -> bool:
        with Session(self.engine) as session:
            station = session.get(Station, self.station_id)
            return station is not None and bool(dispatch.queue_for(session, station=station))

    def _open_step(self) -> int | None:
        """The standard seconds of the step open at this station, or None."""
        with Session(self.engine) as session:
            state = service.load_state(session, station_code=self.info.code)
        if state.operation is None:
            return None
        return state.operation.standard_seconds

    def _needed(self) -> list[Needed]:
        """One label per piece the step still needs, from the lots kitted for the unit."""
        with Session(self.engine) as session:
            state = service.load_state(session, station_code=self.info.code)
            if state.unit is None or state.paused:
                return []
            reserved = [
                (lot, n)
                for lot, n in session.exec(  # type: ignore[call-overload]
                    select(StockLot, sa.func.sum(StockMovement.reserved_delta))
                    .join(StockLot, col(StockMovement.lot_id) == StockLot.id)
                    .where(StockMovement.unit_id == state.unit.id)
                    .group_by(col(StockLot.id))
                    .order_by(col(StockLot.id))
                )
                if n and n > 0
            ]
            gtins = _gtins(session)
            out: list[Needed] = []
            for pick in state.picks:
                want = pick.remaining
                accepted = (pick.part_id, *pick.substitutes)
                for lot, n in reserved:
                    while want and n and lot.part_id in accepted:
                        out.append(Needed(_label(lot, gtins), pick.part_id))
                        want -= 1
                        n -= 1
                if want:  # nothing kitted (a release with override): take free stock
                    free = session.exec(
                        select(StockLot)
                        .where(
                            col(StockLot.part_id).in_(accepted),
                            StockLot.on_hand - StockLot.reserved > 0,
                        )
                        .order_by(col(StockLot.id))
                    ).first()
                    if free is not None:
                        out += [Needed(_label(free, gtins), pick.part_id)] * (
                            1 if free.serial else want
                        )
        return out

    def _wrong_part(self, needed: list[Needed]) -> str | None:
        with Session(self.engine) as session:
            state = service.load_state(session, station_code=self.info.code)
            right = {p.part_id for p in state.picks} | {
                s for p in state.picks for s in p.substitutes
            }
            gtins = _gtins(session)
        others = sorted(pid for pid in gtins if pid not in right)
        if not others:
            return None
        return gs1_scan(gtins[int(self.dice.pick([str(o) for o in others]))])


def _gtins(session: Session) -> dict[int, str]:
    found: dict[int, str] = {}
    for part_id, value in session.exec(
        select(PartIdentifier.part_id, PartIdentifier.value)
        .join(Part, col(Part.id) == PartIdentifier.part_id)
        .where(PartIdentifier.kind == "gtin")
    ):
        found.setdefault(part_id, value)
    return found


def _label(lot: StockLot, gtins: dict[int, str]) -> str:
    gtin = gtins.get(lot.part_id)
    if gtin is None:
        raise LookupError(f"part {lot.part_id} has no GTIN to print on a label")
    if lot.serial:
        return gs1_scan(gtin, serial=lot.serial)
    return gs1_scan(gtin, lot=lot.lot_code)
