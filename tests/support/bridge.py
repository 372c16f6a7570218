"""Helpers for the bridge tests (their fixtures are in ``tests/firmware_bridge/conftest.py``):
``Subscriber`` (a persistent QoS 1 subscriber), ``publish``, ``write_config`` (a
station.toml for the bridge) and ``wait_opened`` (until the bridge holds its ports)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge.simulate import PtyPort, is_open_elsewhere


class Subscriber:
    """A persistent QoS 1 subscriber that records (topic, payload) as they arrive."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self._topic = topic
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "subscriber did not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload))
            self._cond.notify_all()

    def wait_for(
        self,
        count: int,
        timeout: float = 5.0,
        where: Callable[[str, bytes], bool] = lambda t, p: True,
    ) -> list[Any]:
        """The JSON payloads of the first ``count`` matching messages (or fail)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [(t, p) for t, p in self.messages if where(t, p)]
                if len(found) >= count or not self._cond.wait(deadline - time.monotonic()):
                    break
        assert len(found) >= count, f"got {len(found)} of {count} messages: {found[-3:]}"
        return [json.loads(p) if p.startswith(b"{") else p for _, p in found]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, topic: str, payload: dict[str, Any]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def write_config(tmp_path: Path, station: dict[str, str], broker_url: str, extra: str = "") -> Path:
    path = tmp_path / "station.toml"
    path.write_text(f"""
[station]
site = "{station["site"]}"
line = "{station["line"]}"
station = "{station["station"]}"

[mqtt]
url = "{broker_url}"
client_id = "bridge-{station["station"]}"
keepalive = 5
reconnect_max_s = 1

[outbox]
path = "outbox.sqlite"
{extra}

[[devices]]
name = "scanner1"
type = "scanner"
port = "{tmp_path / "scanner1"}"
good_read = "\\u0007"
bad_read = "\\u001bBAD\\u0007"
reopen_max_s = 0.5

[[devices]]
name = "board1"
type = "line"
port = "{tmp_path / "board1"}"
on_accepted = ["LIGHT 1 GREEN"]
on_rejected = ["LIGHT 1 RED", "BEEP 300"]
reopen_max_s = 0.5
""")
    return path


def wait_opened(*ports: PtyPort, timeout: float = 5.0) -> None:
    """Until the bridge holds every port, so typed bytes are not lost to the input
    flush that opening a serial port does.

    pyserial takes the exclusive lock a moment before it flushes the input queue,
    so a short settle follows the lock.
    """
    deadline = time.monotonic() + timeout
    while not all(is_open_elsewhere(p.link) for p in ports):
        assert time.monotonic() < deadline, "the bridge did not open its ports"
        time.sleep(0.05)
    time.sleep(0.2)
