"""Brokers set up like production: what ``taktline mqtt-credentials`` writes (server and
station listeners, one login per station, ingest process and the web), and station
KIT-1's side connecting with its own login."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from flask import Flask

from server.db import dispose_engine
from tests.support.apps import CliRunner, make_app
from tests.support.ingest import PREFIX
from tests.support.mosquitto import free_port


def credentials(db_url: str, tmp_path: Path) -> tuple[Path, int, int]:
    """`taktline mqtt-credentials` for two ingests; returns the folder and the server
    and station listener ports."""
    app: Flask = make_app(db_url, tmp_path, SECRET_KEY="client-id-test-secret")
    out, server_port, station_port = tmp_path / "mqtt", free_port(), free_port()
    result = CliRunner(app).invoke(
        [
            "mqtt-credentials",
            "--out",
            str(out),
            "--ingests",
            "2",
            "--server-listener",
            f"127.0.0.1:{server_port}",
            "--station-listener",
            f"127.0.0.1:{station_port}",
            "--no-station-tls",
        ]
    )
    assert result.exit_code == 0, result.output
    dispose_engine(db_url)
    return out, server_port, station_port


def password(out: Path, login: str) -> str:
    name = f"bridge-{login.removeprefix('station-')}" if login.startswith("station-") else login
    return (out / f"{name}.password").read_text().strip()


class Bridge:
    """Station KIT-1's side, with its login: publishes events, reads its feedback."""

    def __init__(self, port: int, password: str) -> None:
        self.feedback: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ready = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="taktline-bridge-PLT1-PC1-KIT-1"
        )
        self.client.username_pw_set("station-KIT-1", password)
        self.client.max_inflight_messages_set(100)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{PREFIX}/cmd/feedback", qos=1)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = lambda _c, _u, msg: self.feedback.put(json.loads(msg.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(5), "the station login could not subscribe to its feedback"

    def publish(self, kind: str, payload: dict[str, Any] | bytes) -> mqtt.MQTTMessageInfo:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload)
        return self.client.publish(f"{PREFIX}/{kind}", raw, qos=1)

    def ping(self, timeout: float = 30.0) -> None:
        """A device ``hello`` until the ingest answers: it is subscribed, and whatever
        waited in its session before the ping has been decided."""
        deadline = time.monotonic() + timeout
        while True:
            msg_id = f"ping-{uuid.uuid4()}"
            self.publish("evt/device", {"msg_id": msg_id, "source": "board1", "kind": "hello"})
            try:
                while True:
                    if self.feedback.get(timeout=1).get("ref") == msg_id:
                        return
            except queue.Empty:
                assert time.monotonic() < deadline, "the ingest never answered"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
