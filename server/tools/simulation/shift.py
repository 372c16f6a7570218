"""A whole shift, end to end: set up, run with operators and faults, drain, reconcile.

``run_shift(config, say=...)`` brings up (or reuses, for ``taktline demo --simulate``)
the broker, the ingest, the web server and one bridge per station; prepares stations,
operators and released orders; runs the operators and the fault schedule for
``minutes`` of simulated time; lets every operator finish the step in hand; waits for
the bridges' outboxes to empty and every published event to be recorded; stops
everything; and reconciles the database (``server.trace.reconcile``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server.db import get_engine
from server.models import Event, Unit, UnitOperation, UnitOperationStatus, UnitStatus
from server.tools.simulation import floor, processes
from server.tools.simulation.faults import FaultInjector, FaultLog
from server.tools.simulation.monitor import Monitor
from server.tools.simulation.operators import SimOperator
from server.tools.simulation.plan import Behaviour, Fault, OperatorDice, fault_schedule
from server.trace.reconcile import ReconcileReport, reconcile

log = logging.getLogger(__name__)


@dataclass
class ShiftConfig:
    database_url: str
    workdir: Path
    secret_key: str
    stations: int = 5
    orders: int = 6
    minutes: float = 30.0
    speed: float = 30.0
    faults: bool = False
    seed: int = 1
    behaviour: Behaviour = field(default_factory=Behaviour)
    prefix: str = "taktline"
    # Reuse a running plant (``taktline demo --simulate``): its broker and web server;
    # its own ingest runs inside it.
    mqtt_url: str | None = None
    web_url: str | None = None
    top_up: bool = False  # release another order whenever the line runs dry
    drain_timeout: float = 180.0


@dataclass
class ShiftResult:
    report: ReconcileReport
    faults: FaultLog
    schedule: list[Fault]
    operators: Counter[str]
    published: int
    scans_recorded: int
    real_seconds: float
    units_completed: int
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.report.clean and not self.errors

    @property
    def scans_per_second(self) -> float:
        return self.scans_recorded / self.real_seconds if self.real_seconds else 0.0

    def summary(self) -> list[str]:
        ops = self.operators
        lines = [
            f"shift: {self.real_seconds:.0f} s real, {self.units_completed} unit(s) completed, "
            f"{ops['steps_completed']} step(s) completed",
            f"scans: {self.scans_recorded} recorded ({self.scans_per_second:.1f}/s held), "
            f"{self.published} published over MQTT, {ops['pick_wedge']} picks by wedge, "
            f"{ops['pick_serial']} by serial scanner",
            f"operators: {ops['wrong_part_serial'] + ops['wrong_part_wedge']} wrong part(s) "
            f"scanned, {ops['wrong_part_rejected']} rejected; {ops['pause']} pause(s), "
            f"{ops['defect']} defect(s), {ops['hold']} unit(s) held, {ops['andon']} andon "
            f"call(s); {ops['scan_timeouts']} scan(s) never seen",
        ]
        unexpected = {k: v for k, v in ops.items() if "_unexpected_" in k}
        if unexpected:
            lines.append(f"unexpected answers: {unexpected}")
        if self.schedule:
            lines.append(
                "faults: "
                + ", ".join(
                    f"{k} {self.faults.count(k, ok=True)}/{self.faults.count(k)}"
                    for k in dict.fromkeys(f.kind for f in self.schedule)
                )
            )
        lines += self.report.lines()
        lines += [f"ERROR: {e}" for e in self.errors]
        lines.append("RECONCILED CLEAN" if self.clean else "MISMATCH: see above")
        return lines


class _Clock:
    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        """Simulated seconds since the shift started."""
        return (time.monotonic() - self.t0) * self.speed

    def label(self) -> str:
        minute, second = divmod(int(self()), 60)
        return f"{minute:3d}:{second:02d}"


def run_shift(
    config: ShiftConfig,
    *,
    say: Callable[[str], None] = log.info,
    stop: threading.Event | None = None,
) -> ShiftResult:
    stop = stop or threading.Event()
    workdir = config.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    engine = get_engine(config.database_url)
    rng = random.Random(config.seed)
    abort = threading.Event()
    stop_new_work = threading.Event()
    broker = ingest = web = None
    monitor: Monitor | None = None
    rigs: dict[str, processes.StationRig] = {}
    operators: list[SimOperator] = []
    injector: FaultInjector | None = None
    errors: list[str] = []
    run_id = uuid.uuid4().hex[:8]
    try:
        mqtt_url = config.mqtt_url
        if mqtt_url is None:
            broker = processes.Broker(workdir / "broker").start()
            mqtt_url = broker.url
            say(f"broker: private Mosquitto on {mqtt_url}")
        # On someone else's broker (the demo's) leave no session behind to fill up.
        monitor = Monitor(
            mqtt_url,
            client_id=f"taktline-sim-monitor-{run_id}",
            prefix=config.prefix,
            persistent=config.mqtt_url is None,
        ).start()
        env = processes.base_env(
            database_url=config.database_url, mqtt_url=mqtt_url, secret_key=config.secret_key
        )
        if config.mqtt_url is None:
            ingest = processes.ingest_service(workdir, env, f"taktline-sim-ingest-{run_id}")
            ingest.launch()
        web_url = config.web_url
        if web_url is None:
            port = processes.free_port()
            web = processes.web_service(workdir, env, port).launch()
            web_url = f"http://127.0.0.1:{port}"
        if ingest is not None:
            ingest.wait_ready()
            time.sleep(1.0)  # its persistent subscription is in place from here on
        if web is not None:
            web.wait_ready()
        processes.wait_http(web_url + "/station/")
        say(f"web: {web_url}")
        stations = floor.prepare_stations(engine, n=config.stations)
        say("stations: " + ", ".join(f"{s.code} ({s.kind}, {s.badge})" for s in stations))
        numbers = floor.release_orders(engine, count=config.orders, rng=rng)
        say(f"orders released: {len(numbers)} ({_units_open(engine)} unit(s) to build)")
        for s in stations:
            rigs[s.code] = processes.StationRig(
                workdir=workdir,
                site=s.site,
                line=s.line,
                station=s.code,
                mqtt_url=mqtt_url,
                prefix=config.prefix,
            )
        for rig in rigs.values():
            rig.bridge.launch()
        for rig in rigs.values():
            rig.wait_started()
        schedule = (
            fault_schedule(
                minutes=config.minutes, stations=list(rigs), rng=random.Random(config.seed + 1)
            )
            if config.faults
            else []
        )
        if schedule:
            say(f"fault schedule (simulated mm:ss, speed x{config.speed:g}):")
            for fault in schedule:
                say("  " + fault.describe())
        clock = _Clock(config.speed)
        for i, s in enumerate(stations):
            dice = OperatorDice(
                random.Random(config.seed * 1000 + i), config.behaviour, config.speed
            )
            operators.append(
                SimOperator(
                    info=s,
                    rig=rigs[s.code],
                    web_url=web_url,
                    engine=engine,
                    dice=dice,
                    stop_new_work=stop_new_work,
                    abort=abort,
                )
            )
        if schedule:
            injector = FaultInjector(
                schedule=schedule,
                speed=config.speed,
                broker=broker,
                ingest=ingest,
                rigs=rigs,
                monitor=monitor,
                abort=abort,
                clock=clock,
                say=lambda text: say(f"{clock.label()} {text}"),
            )
        started = time.monotonic()
        started_at = _now(engine)
        for op in operators:
            op.start()
        if injector is not None:
            injector.start()
        end = config.minutes * 60.0
        last = 0.0
        while clock() < end and not stop.is_set():
            stop.wait(0.5)
            for op in operators:
                if op.error is not None and not op.is_alive():
                    errors.append(f"operator at {op.info.code}: {op.error!r}")
                    operators.remove(op)
            if config.top_up and _units_open(engine) < len(stations):
                floor.release_orders(engine, count=1, rng=rng, prefix=f"SIM{run_id[:3]}")
            if time.monotonic() - last >= 5:
                last = time.monotonic()
                say(_progress(engine, clock, monitor, started, started_at))
        if stop.is_set():  # stopped from outside (the demo is shutting down): leave now
            say(f"{clock.label()} simulation stopped")
            abort.set()
        else:
            say(f"{clock.label()} shift over: operators finish the step in hand")
        stop_new_work.set()
        if injector is not None:
            injector.join()
        for op in operators:
            op.join(timeout=max(600.0 / config.speed * 10, 120.0))
            if op.is_alive():
                errors.append(f"operator at {op.info.code} did not finish its step")
        abort.set()
        real_seconds = time.monotonic() - started
        _drain(rigs, monitor, engine, config.drain_timeout, say)
        published = monitor.msg_ids()
        scans = _scans_since(engine, started_at)
        counts: Counter[str] = Counter()
        for op in operators:
            counts.update(op.stats.counts)
            if op.error is not None:
                errors.append(f"operator at {op.info.code}: {op.error!r}")
    finally:
        abort.set()
        stop_new_work.set()
        services = [r.bridge for r in rigs.values()] + [s for s in (ingest, web) if s]
        for service in services:
            service.terminate()  # side by side: each takes a second or two to stop
        for rig in rigs.values():
            rig.stop()
        for service in services:
            service.stop()
        if monitor is not None:
            monitor.stop()
        if broker is not None:
            broker.stop()
    report = reconcile(engine, published=published)
    with Session(engine) as session:
        completed = session.exec(
            select(sa.func.count())
            .select_from(Unit)
            .where(  # type: ignore[call-overload]
                Unit.status == UnitStatus.COMPLETED, col(Unit.completed_at) >= started_at
            )
        ).one()
    return ShiftResult(
        report=report,
        faults=injector.log if injector else FaultLog(),
        schedule=schedule,
        operators=counts,
        published=len(published),
        scans_recorded=scans,
        real_seconds=real_seconds,
        units_completed=int(completed),
        errors=errors,
    )


def _now(engine: sa.Engine) -> object:
    from server.models.types import utcnow

    return utcnow()


def _units_open(engine: sa.Engine) -> int:
    with Session(engine) as session:
        return int(
            session.exec(
                select(sa.func.count(sa.distinct(col(UnitOperation.unit_id)))).where(  # type: ignore[call-overload]
                    col(UnitOperation.status).in_(
                        (UnitOperationStatus.READY, UnitOperationStatus.ACTIVE)
                    )
                )
            ).one()
        )


def _scans_since(engine: sa.Engine, since: object) -> int:
    with Session(engine) as session:
        return int(
            session.exec(
                select(sa.func.count())
                .select_from(Event)
                .where(  # type: ignore[call-overload]
                    Event.kind == "scan", col(Event.received_at) >= since
                )
            ).one()
        )


def _progress(
    engine: sa.Engine, clock: _Clock, monitor: Monitor, started: float, started_at: object
) -> str:
    with Session(engine) as session:
        done = session.exec(
            select(sa.func.count())
            .select_from(Unit)
            .where(  # type: ignore[call-overload]
                Unit.status == UnitStatus.COMPLETED, col(Unit.completed_at) >= started_at
            )
        ).one()
    scans = _scans_since(engine, started_at)
    real = time.monotonic() - started
    return (
        f"{clock.label()} units completed {done}, scans {scans} "
        f"({scans / real if real else 0:.1f}/s), published {monitor.count()}"
    )


def _drain(
    rigs: dict[str, processes.StationRig],
    monitor: Monitor,
    engine: sa.Engine,
    timeout: float,
    say: Callable[[str], None],
) -> None:
    """Wait until no bridge holds an unsent event and every published one is recorded."""
    deadline = time.monotonic() + timeout
    missing: set[str] = set()
    pending = 0
    while time.monotonic() < deadline:
        for rig in rigs.values():
            if not rig.bridge.running:
                rig.start()  # a fault's comeback may still be due: bring it back now
        pending = sum(r.outbox_pending() for r in rigs.values())
        published = monitor.msg_ids()
        with Session(engine) as session:
            recorded = (
                set(
                    session.exec(select(Event.msg_id).where(col(Event.msg_id).in_(published))).all()
                )
                if published
                else set()
            )
        missing = published - recorded
        if not pending and not missing:
            say(f"drained: {len(published)} published events all recorded")
            return
        time.sleep(0.5)
    say(
        f"drain timed out: {pending} event(s) in outboxes, {len(missing)} published but "
        "not recorded"
    )
