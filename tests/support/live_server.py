"""A real server for browser tests: `taktline serve` (waitress, ingest, live hub) in a
subprocess on a free port, with a private Mosquitto and its own copy of a database.

The ``live_server`` fixture (``tests/support/browser.py``) starts one per test module
on a copy of the demo plant; ``serve`` here is what it calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy.engine import Engine
from sqlmodel import select

from firmware_bridge import topics
from server import settings as server_settings
from server.db import dispose_engine, get_engine, write_session
from server.models import Station
from server.security import auth
from tests.support.mosquitto import Mosquitto, free_port

# Settings of every live server, unless a test module asks otherwise: enough threads
# for a few open SSE streams, quick heartbeats (the tablet notices a frozen server in
# seconds), an unshared ingest subscription (nothing else subscribes).
DEFAULT_SETTINGS: dict[str, object] = {
    "WEB_THREADS": 16,
    "STATION_HEARTBEAT_SECONDS": 2,
    "INGEST_SHARED": False,
    "LOG_LEVEL": "INFO",
}
START_TIMEOUT = 30.0  # seconds for `taktline serve` to answer /healthz


@dataclass
class LiveServer:
    url: str
    db_url: str
    mqtt_port: int
    workdir: Path
    proc: subprocess.Popen[bytes]

    @property
    def engine(self) -> Engine:
        """The server's database, for setting up or checking rows from the test."""
        return get_engine(self.db_url)

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    def device_link(self, station: str) -> str:
        """A binding link for ``station``, as the admin page hands it out."""
        with write_session(self.engine) as db:
            row = db.exec(select(Station).where(Station.code == station)).one()
            token = auth.issue_device_token(db, station=row, by=None, label="e2e tablet")
        return f"{self.url}/station/bind?token={token}"

    def publish_scan(self, station: str, data: str) -> str:
        """A scan from a serial scanner, as the station bridge publishes it."""
        msg_id = str(uuid.uuid4())
        payload = {
            "msg_id": msg_id,
            "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "seq": 1,
            "source": "scanner1",
            "data": data,
        }
        topic = topics.build("PLT1", "PC1", station, "evt/scan")
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"e2e-{msg_id[:8]}")
        client.connect("127.0.0.1", self.mqtt_port)
        client.loop_start()
        try:
            client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()
        return msg_id

    def publish_device(self, station: str, kind: str, source: str, **fields: Any) -> str:
        """A device reading (``torque``, ``weight``...) as the station bridge publishes it."""
        msg_id = str(uuid.uuid4())
        payload = {"msg_id": msg_id, "source": source, "kind": kind, **fields}
        topic = topics.build("PLT1", "PC1", station, "evt/device")
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"e2e-{msg_id[:8]}")
        client.connect("127.0.0.1", self.mqtt_port)
        client.loop_start()
        try:
            client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()
        return msg_id


@contextmanager
def serve(
    workdir: Path, database: Path, settings: Mapping[str, object] | None = None
) -> Iterator[LiveServer]:
    """Run `taktline serve` on SQLite file ``database`` until the block ends.

    ``settings`` (names as in ``server.settings``, e.g. ``BOARD_REFRESH_SECONDS``)
    go on top of ``DEFAULT_SETTINGS`` as ``TAKTLINE_*`` environment variables.
    """
    wanted = {**DEFAULT_SETTINGS, **(settings or {})}
    unknown = sorted(set(wanted) - set(server_settings.BY_NAME))
    assert not unknown, f"no such setting: {unknown}"
    workdir.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{database}"
    port = free_port()
    env = {
        **os.environ,
        "TAKTLINE_DATABASE_URL": db_url,
        "TAKTLINE_PORT": str(port),
        "TAKTLINE_SECRET_KEY": "e2e-" + uuid.uuid4().hex,
    }
    env.update({f"TAKTLINE_{name}": _env_value(value) for name, value in wanted.items()})
    with Mosquitto(workdir / "broker") as broker:
        env["TAKTLINE_MQTT_URL"] = broker.url
        log = (workdir / "server.log").open("wb")
        taktline = str(Path(sys.executable).with_name("taktline"))
        proc = subprocess.Popen(
            [taktline, "serve"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        server = LiveServer(f"http://127.0.0.1:{port}", db_url, broker.port, workdir, proc)
        try:
            _wait_http(server.url + "/healthz", proc, server.log)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            dispose_engine(db_url)


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _wait_http(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"taktline serve exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer: {log.read_text()[-3000:]}")
