"""Helpers for the ingest tests (their fixtures are in ``tests/ingest/conftest.py``):
``broker_conf`` (deploy/mosquitto.conf's tuning lines for a private Mosquitto),
``AmqttBroker``, ``screw_step`` (a step in progress that takes many screw scans),
``Station`` (a station-side MQTT client), ``IngestProcess`` (``taktline ingest`` as a
real process) and ``counts`` (what the database holds)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from server.db import get_engine, write_session
from server.models import OrderLine, Part, Unit, UnitOperation, WorkOrder
from station import service
from station.workflow import SignIn, StartNext
from tests.support.mosquitto import free_port

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "taktline/PLT1/PC1/KIT-1"
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto.conf"


def broker_conf() -> str:
    """The tuning lines of deploy/mosquitto.conf (queues, inflight), without its
    listeners, logins and paths, which the private test broker sets itself."""
    keep = (
        "max_inflight_messages",
        "max_queued_messages",
        "max_queued_bytes",
        "persistent_client_expiration",
    )
    lines = [line for line in MOSQUITTO_CONF.read_text().splitlines() if line.split(" ")[0] in keep]
    assert lines, "deploy/mosquitto.conf lost its tuning lines"
    return "\n".join(lines)


class AmqttBroker:
    """amqtt (MQTT 3.1.1 only), as ``taktline serve`` embeds it when no mosquitto exists."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> AmqttBroker:
        from amqtt.broker import Broker

        self._thread.start()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

        async def make() -> Any:
            broker = Broker(config, loop=self._loop)
            await broker.start()
            return broker

        self._broker = asyncio.run_coroutine_threadsafe(make(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            await self._broker.shutdown()
            await asyncio.sleep(0.2)  # let the closed connections' transports finish

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def screw_step(engine: Engine, *, qty: int, station: str = "KIT-1") -> None:
    """A unit whose kitting step needs ``qty`` screw bags (SCR-M3, 200 in stock), started
    at ``station`` by Alice: every "SCRM3" scan is one accepted pick, up to ``qty``."""
    with write_session(engine) as session:
        screws = session.exec(select(Part).where(Part.sku == "SCR-M3")).one()
        line = session.exec(select(OrderLine)).first()
        assert line is not None
        wo = WorkOrder(
            number=f"WO-SCREWS-{uuid.uuid4().hex[:6]}", order_line_id=line.id, quantity=1
        )
        session.add(wo)
        session.flush()
        unit = Unit(
            serial=f"PC-S{uuid.uuid4().hex[:6]}", work_order_id=wo.id, product_id=1, status="queued"
        )
        session.add(unit)
        session.flush()
        from server.models import Operation

        kit = session.exec(select(Operation).where(Operation.code == "KIT")).one()
        session.add(
            UnitOperation(
                unit_id=unit.id,
                operation_id=kit.id,
                sequence=10,
                station_kind="kitting",
                status="ready",
                picks=[{"part_id": screws.id, "sku": "SCR-M3", "qty": qty}],
            )
        )
    for event in (SignIn("OP1001"), StartNext()):
        with write_session(engine) as session:
            outcome = service.handle(session, station_code=station, event=event)
            assert outcome.accepted, outcome.message


class Station:
    """The station side: publishes events QoS 1 and records feedback and state."""

    def __init__(self, url_port: int, *, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.feedback: dict[str, list[dict[str, Any]]] = {}
        self.states: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-station-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.max_inflight_messages_set(100)
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()
        assert self._ready.wait(5), "station client did not subscribe"

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(
            [
                (f"{self.prefix.rsplit('/', 1)[0]}/+/cmd/feedback", 1),
                (f"{self.prefix.rsplit('/', 1)[0]}/+/state", 1),
            ]
        )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = json.loads(msg.payload)
        with self._cond:
            if msg.topic.endswith("/state"):
                self.states.append(payload)
            else:
                self.feedback.setdefault(str(payload.get("ref")), []).append(payload)
            self._cond.notify_all()

    def publish(
        self, payload: dict[str, Any] | bytes, kind: str = "evt/scan", prefix: str | None = None
    ) -> mqtt.MQTTMessageInfo:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.client.publish(f"{prefix or self.prefix}/{kind}", raw, qos=1)

    def scan(self, data: str, *, seq: int = 1, msg_id: str | None = None) -> str:
        msg_id = msg_id or str(uuid.uuid4())
        self.publish(
            {
                "msg_id": msg_id,
                "ts": "2026-03-02T08:00:00.000Z",
                "seq": seq,
                "source": "scanner1",
                "data": data,
            }
        )
        return msg_id

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out; feedback so far: {list(self.feedback.items())[-3:]}"
                self._cond.wait(left)

    def answer(self, msg_id: str, count: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        self.wait(lambda: len(self.feedback.get(msg_id, [])) >= count, timeout)
        return self.feedback[msg_id][count - 1]

    def wait_for_ingest(self, timeout: float = 30.0) -> None:
        """Ping (a device ``hello``, which changes no stock) until the ingest answers."""
        deadline = time.monotonic() + timeout
        while True:
            msg_id = f"ping-{uuid.uuid4()}"
            self.publish(
                {"msg_id": msg_id, "source": "board1", "kind": "hello", "firmware": "test"},
                kind="evt/device",
            )
            try:
                self.answer(msg_id, timeout=0.5)
                return
            except AssertionError:
                assert time.monotonic() < deadline, "the ingest never answered"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def scans_in_one_batch(
    engine: Engine, queue: Any, station: Station, msg_ids: list[str | None]
) -> list[str]:
    """Screw scans (``SCRM3``, seq 1..n, with these ``msg_ids`` where not None) that an
    in-process ingest takes as one batch: SQLite's write lock is held while they queue
    up behind a device ping the worker is already holding, then let go. Their msg_ids.
    Which batch a scan lands in does not change what a test may observe."""
    ids: list[str] = []
    with engine.connect() as conn:
        lock = conn.execution_options(sqlite_begin="IMMEDIATE").begin()
        station.publish(
            {"msg_id": "ping-lock", "source": "board1", "kind": "hello"}, kind="evt/device"
        )
        for i, msg_id in enumerate(msg_ids):
            ids.append(station.scan("SCRM3", seq=i + 1, msg_id=msg_id))
        deadline = time.monotonic() + 5
        while queue.qsize() < len(msg_ids) and time.monotonic() < deadline:
            time.sleep(0.05)
        lock.rollback()
    return ids


class IngestProcess:
    """``taktline ingest`` as its own process, as production runs it."""

    def __init__(
        self, workdir: Path, db_url: str, mqtt_url: str, client_id: str, shared: bool = True
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "TAKTLINE_DATABASE_URL": db_url,
            "TAKTLINE_MQTT_URL": mqtt_url,
            "TAKTLINE_INGEST_CLIENT_ID": client_id,
            "TAKTLINE_INGEST_SHARED": "true" if shared else "false",
            "TAKTLINE_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> IngestProcess:
        log = open(self.workdir / "ingest.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "taktline"), "ingest"],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return (self.workdir / "ingest.log").read_text(errors="replace")


def counts(db_url: str) -> dict[str, int]:
    """What the database holds: consumptions, their ledger lines, screw stock, events."""
    from sqlmodel import func

    from server.models import Consumption, Event, StockLot, StockMovement

    engine = get_engine(db_url)
    with Session(engine) as session:
        screws = session.exec(select(Part).where(Part.sku == "SCR-M3")).one()
        result = {
            "consumptions": session.exec(select(func.count()).select_from(Consumption)).one(),
            "ledger": session.exec(
                select(func.count())
                .select_from(StockMovement)
                .where(StockMovement.kind == "consumption")
            ).one(),
            "on_hand": session.exec(
                select(func.sum(StockLot.on_hand)).where(StockLot.part_id == screws.id)
            ).one(),
            "scan_events": session.exec(
                select(func.count()).select_from(Event).where(Event.kind == "scan")
            ).one(),
        }
    return {k: int(v or 0) for k, v in result.items()}
