"""Faults on a schedule (``plan.fault_schedule``), done to the real processes.

- ``broker_restart``: Mosquitto stopped and started on the same port (sessions and
  queued QoS 1 messages persist);
- ``ingest_kill``: the ingest SIGKILLed mid-flight, started again after a while with
  the same client id (what arrived meanwhile waits at the broker; what it had committed
  but not acknowledged comes again and is answered ``duplicate``);
- ``bridge_offline``: a station's bridge stopped for a minute (its operator scans
  with the tablet's wedge meanwhile), then started again;
- ``port_unplug``: the scanner's cable pulled (the pty closed) and plugged back;
- ``duplicate``: an accepted scan's exact payload published again, straight to the
  broker; the server must answer ``duplicate`` and record nothing;
- ``garbage``: binary noise typed on a scanner line; the bridge flags it and the
  server must reject it with a reason.

Each fault that can be checked is checked on the spot and the outcome kept in
``FaultLog`` for the summary and the tests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from server.models.types import EventResult
from server.tools.simulation.monitor import Monitor, Published
from server.tools.simulation.plan import Fault
from server.tools.simulation.processes import Broker, Service, StationRig

log = logging.getLogger(__name__)
GARBAGE = b"\x00\x01\xfe\xff\x07NOISE\x00\r\n"


@dataclass
class FaultOutcome:
    fault: Fault
    done: bool = False
    ok: bool = False
    detail: str = ""


@dataclass
class FaultLog:
    outcomes: list[FaultOutcome] = field(default_factory=list)

    def count(self, kind: str, *, ok: bool | None = None) -> int:
        return sum(
            1
            for o in self.outcomes
            if o.fault.kind == kind and o.done and (ok is None or o.ok == ok)
        )


class FaultInjector(threading.Thread):
    def __init__(
        self,
        *,
        schedule: list[Fault],
        speed: float,
        broker: Broker | None,
        ingest: Service | None,
        rigs: dict[str, StationRig],
        monitor: Monitor,
        abort: threading.Event,
        clock: Callable[[], float],
        say: Callable[[str], None],
    ) -> None:
        super().__init__(name="fault-injector", daemon=True)
        self.schedule = schedule
        self.speed = speed
        self.broker = broker
        self.ingest = ingest
        self.rigs = rigs
        self.monitor = monitor
        self.abort = abort
        self.clock = clock  # simulated seconds since the shift started
        self.say = say
        self.log = FaultLog()
        self.pending: list[threading.Thread] = []  # comebacks still to happen

    def run(self) -> None:
        for fault in self.schedule:
            while not self.abort.is_set() and self.clock() < fault.at:
                self.abort.wait(0.1)
            if self.abort.is_set():
                break
            outcome = FaultOutcome(fault)
            self.log.outcomes.append(outcome)
            try:
                getattr(self, f"_{fault.kind}")(outcome)
            except Exception as exc:  # noqa: BLE001 - a failed fault is reported, not fatal
                log.exception("fault %s failed", fault.describe())
                outcome.done, outcome.ok, outcome.detail = True, False, f"error: {exc}"
            self.say(f"fault {fault.describe()}: {outcome.detail}")
        for t in self.pending:
            t.join()

    def finish(self) -> None:
        """Bring back whatever is still down (the shift is ending)."""
        for t in self.pending:
            t.join()

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        def run() -> None:
            self.abort.wait(seconds)
            action()

        t = threading.Thread(target=run, name="fault-comeback", daemon=True)
        t.start()
        self.pending.append(t)

    def _real(self, simulated: float) -> float:
        return max(simulated / self.speed, 1.0)

    # --- the faults ---------------------------------------------------------------------

    def _broker_restart(self, outcome: FaultOutcome) -> None:
        if self.broker is None:
            outcome.done, outcome.detail = True, "skipped: the broker is not ours"
            return
        self.broker.restart(down_seconds=self._real(outcome.fault.duration))
        outcome.done, outcome.ok = True, True
        outcome.detail = f"broker restarted ({self.broker.restarts} so far)"

    def _down_and_back(
        self,
        outcome: FaultOutcome,
        *,
        take_down: Callable[[], object],
        bring_back: Callable[[], object],
        down: str,
        back: str,
    ) -> None:
        """Take something down now and bring it back after the fault's duration."""
        take_down()
        outcome.done, outcome.ok = True, True
        seconds = self._real(outcome.fault.duration)
        outcome.detail = f"{down}; back in {seconds:.1f} s"

        def comeback() -> None:
            bring_back()
            outcome.detail = back.format(seconds=seconds)

        self._later(seconds, comeback)

    def _ingest_kill(self, outcome: FaultOutcome) -> None:
        ingest = self.ingest
        if ingest is None:
            outcome.done, outcome.detail = True, "skipped: the ingest is not ours"
            return
        self._down_and_back(
            outcome,
            take_down=ingest.kill,
            bring_back=ingest.start,
            down="ingest SIGKILLed",
            back="ingest SIGKILLed, restarted after {seconds:.1f} s",
        )

    def _bridge_offline(self, outcome: FaultOutcome) -> None:
        rig = self.rigs[outcome.fault.station]
        self._down_and_back(
            outcome,
            take_down=rig.stop_bridge,
            bring_back=rig.start,
            down="bridge stopped",
            back="bridge offline {seconds:.1f} s, restarted",
        )

    def _port_unplug(self, outcome: FaultOutcome) -> None:
        rig = self.rigs[outcome.fault.station]
        self._down_and_back(
            outcome,
            take_down=rig.unplug,
            bring_back=rig.replug,
            down="scanner unplugged",
            back="scanner unplugged {seconds:.1f} s, reopened by the bridge",
        )

    def _duplicate(self, outcome: FaultOutcome) -> None:
        station = outcome.fault.station
        # This station's last answered scan; any station's when it has none yet.
        candidates = [
            p
            for p in self.monitor.find(station=station, accepted=None)
            if self.monitor.verdicts(p.msg_id)
        ]
        for other in self.rigs:
            if not candidates:
                candidates = [
                    p
                    for p in self.monitor.find(station=other, accepted=None)
                    if self.monitor.verdicts(p.msg_id)
                ]
        if not candidates:
            outcome.done, outcome.detail = True, f"skipped: no scan answered at {station} yet"
            return
        item = candidates[-1]
        before = len(self.monitor.verdicts(item.msg_id))
        self.monitor.republish(item)
        deadline = time.monotonic() + 60
        verdict = None
        while time.monotonic() < deadline and not self.abort.is_set():
            answers = self.monitor.verdicts(item.msg_id)[before:]
            verdict = next((a for a in answers if a.get("result") == EventResult.DUPLICATE), None)
            if verdict is not None or any(
                a.get("result") != EventResult.DUPLICATE for a in answers
            ):
                break
            time.sleep(0.05)
        outcome.done = True
        outcome.ok = verdict is not None
        outcome.detail = (
            f"republished {item.msg_id}: answered duplicate"
            if outcome.ok
            else f"republished {item.msg_id}: NO duplicate answer"
        )

    def _garbage(self, outcome: FaultOutcome) -> None:
        rig = self.rigs[outcome.fault.station]
        deadline = time.monotonic() + 30
        while not rig.scanner_ready and time.monotonic() < deadline:
            time.sleep(0.1)  # the port may be unplugged or the bridge restarting
        seen = self.monitor.count()
        rig.type(GARBAGE)
        deadline = time.monotonic() + 60
        flagged: list[Published] = []
        while time.monotonic() < deadline and not flagged and not self.abort.is_set():
            flagged = self.monitor.find(station=rig.station, has_error=True, newer_than=seen)
            time.sleep(0.05)
        outcome.done = True
        if not flagged:
            outcome.detail = "noise typed; the bridge published nothing flagged"
            return
        verdict = self.monitor.wait_verdict(flagged[0].msg_id, timeout=60)
        outcome.ok = bool(
            verdict and verdict.get("result") == EventResult.REJECTED and verdict.get("reason")
        )
        outcome.detail = (
            f"noise flagged {flagged[0].doc.get('error')!r}, answered "
            f"{(verdict or {}).get('result')}: {(verdict or {}).get('reason')}"
        )
