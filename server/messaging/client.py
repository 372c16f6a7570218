"""MQTT for the server processes: broker URLs, topics, and one publisher per process.

``connect_client(url, client_id=..., clean=...)`` makes a paho 2.x client (callback API
v2, MQTT 3.1.1 so it works with amqtt and Mosquitto alike) from a
``mqtt://user:password@host:port`` or ``mqtts://`` URL. ``Publisher`` is the process's
outgoing connection (feedback, retained station state): ``init_app`` registers it,
``runtime`` starts it with the broker URL, and ``publisher(app)`` hands it out (``None``
when the process runs without a broker, e.g. in tests).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from flask import Flask

from server import settings

log = logging.getLogger(__name__)
EXTENSION = "taktline.mqtt"


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_url(url: str) -> BrokerUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"MQTT URL {url!r}: expected mqtt://host[:port] or mqtts://...")
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerUrl(
        parts.hostname or "127.0.0.1",
        parts.port or (8883 if tls else 1883),
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        tls,
    )


def make_client(url: str, *, client_id: str, clean: bool = True) -> tuple[mqtt.Client, BrokerUrl]:
    """A configured, not yet connected client. ``clean=False``: a persistent session, so
    QoS 1 messages that arrive while the client is away wait for it at the broker."""
    broker = parse_url(url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean,
        protocol=mqtt.MQTTv311,
    )
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.max_queued_messages_set(0)
    return client, broker


def default_client_id(role: str) -> str:
    return f"taktline-{role}-{socket.gethostname()}-{os.getpid()}"


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class Publisher:
    """The process's outgoing MQTT connection; publishing never blocks the caller."""

    def __init__(self, url: str, *, client_id: str | None = None) -> None:
        self.url = url
        self.client, self.broker = make_client(
            url, client_id=client_id or f"taktline-pub-{uuid.uuid4().hex[:12]}"
        )
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def start(self) -> Publisher:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(
        self, topic: str, payload: dict[str, Any], *, retain: bool = False, qos: int = 1
    ) -> None:
        """Queue a message (paho sends it, and resends QoS 1 after a reconnect)."""
        info = self.client.publish(topic, dumps(payload), qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error(
                "MQTT publisher: broker %s refused the connection: %s",
                settings.mask(self.url),
                reason,
            )
            return
        self.connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connected.clear()


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = None


def start_publisher(app: Flask, url: str) -> Publisher:
    publisher = Publisher(url).start()
    app.extensions[EXTENSION] = publisher
    return publisher


def publisher(app: Flask) -> Publisher | None:
    found: Publisher | None = app.extensions.get(EXTENSION)
    return found
