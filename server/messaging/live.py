"""Live station updates inside one web process, for SSE (tablets, the line board).

Every web process keeps its own, non-shared MQTT subscription to
``{prefix}/+/+/+/state`` (the retained station snapshots the ingest publishes), so
any number of web processes stay in step whichever one, or whichever ingest,
handled an event. Messages fan out to in-process listener queues.

API::

    from server.messaging import live

    sub = live.subscribe("BRD-1")       # one station; live.subscribe() for all stations
    try:
        snapshot = sub.get(timeout=15)  # dict (station.service.snapshot) or None on timeout
        ...
    finally:
        sub.close()                     # or: with live.subscribe("BRD-1") as sub: ...

    live.publish_station("BRD-1", snapshot)   # after a commit in this process (HTTP path)
    live.latest("BRD-1")                       # last snapshot seen, or None

``publish_station`` delivers to this process's listeners at once (so the HTTP path
works without a broker) and publishes the retained ``state`` topic when the process
has a broker (``server.messaging.client.publisher``), which updates every other process. A
snapshot equal to the last one delivered for its station is not delivered again,
so the echo of our own publish costs nothing. A listener that falls 100 snapshots
behind loses the oldest: snapshots are whole states, only the newest matters.

Started by ``taktline serve`` / ``taktline web`` through ``server.runtime.start``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from flask import Flask, current_app, has_app_context

from firmware_bridge import topics
from server.messaging import client as server_mqtt

log = logging.getLogger(__name__)
QUEUE_SIZE = 100


class Subscription:
    def __init__(self, hub: Hub, station: str | None) -> None:
        self.hub = hub
        self.station = station
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=QUEUE_SIZE)

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def put(self, snapshot: dict[str, Any]) -> None:
        while True:
            try:
                self.queue.put_nowait(snapshot)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.queue.get_nowait()

    def close(self) -> None:
        self.hub.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self._latest: dict[str, dict[str, Any]] = {}

    def subscribe(self, station: str | None = None) -> Subscription:
        sub = Subscription(self, station)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def latest(self, station: str) -> dict[str, Any] | None:
        with self._lock:
            return self._latest.get(station)

    def deliver(self, station: str, snapshot: dict[str, Any]) -> None:
        with self._lock:
            if self._latest.get(station) == snapshot:
                return
            self._latest[station] = snapshot
            targets = [s for s in self._subs if s.station in (None, station)]
        for sub in targets:
            sub.put(snapshot)


HUB = Hub()


def subscribe(station: str | None = None) -> Subscription:
    return HUB.subscribe(station)


def latest(station: str) -> dict[str, Any] | None:
    return HUB.latest(station)


def publish_station(code: str, snapshot: dict[str, Any], *, app: Flask | None = None) -> None:
    HUB.deliver(code, snapshot)
    app = app or (
        current_app._get_current_object()  # type: ignore[attr-defined]
        if has_app_context()
        else None
    )
    publisher = server_mqtt.publisher(app) if app is not None else None
    if publisher is None:
        return
    try:
        topic = topics.build(
            snapshot["site"],
            snapshot["line"],
            code,
            "state",
            prefix=app.config["MQTT_PREFIX"] if app else "taktline",
        )
    except (KeyError, ValueError) as exc:
        log.warning("no state topic for station %s: %s", code, exc)
        return
    publisher.publish(topic, snapshot, retain=True)


class WebSink:
    """Where a web process publishes what an event changed (``station.publish.Sink``):
    the feedback on the broker when this process has one, the snapshot to the live hub
    and the retained ``state`` topic (``publish_station``)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def feedback(self, site: str, line: str, station: str, payload: dict[str, Any]) -> None:
        publisher = server_mqtt.publisher(self.app)
        if publisher is None:
            return
        try:
            topic = topics.build(
                site, line, station, "cmd/feedback", prefix=self.app.config["MQTT_PREFIX"]
            )
        except ValueError as exc:
            log.warning("no feedback topic for station %s: %s", station, exc)
            return
        publisher.publish(topic, payload)

    def state(self, site: str, line: str, station: str, snapshot: dict[str, Any]) -> None:
        publish_station(station, snapshot, app=self.app)


def sink() -> WebSink:
    """The sink of the current app (inside a request or app context)."""
    return WebSink(current_app._get_current_object())  # type: ignore[attr-defined]


class StateListener:
    """The process's non-shared subscription to every station's retained state."""

    def __init__(self, url: str, prefix: str, hub: Hub = HUB) -> None:
        self.prefix = prefix
        self.hub = hub
        self.client, self.broker = server_mqtt.make_client(
            url, client_id=f"taktline-live-{uuid.uuid4().hex[:12]}", clean=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def start(self) -> StateListener:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if not reason.is_failure:  # subscribe here so a reconnect resubscribes
            client.subscribe(topics.subscription("state", prefix=self.prefix), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            station = topics.parse(msg.topic, prefix=self.prefix).station
            snapshot = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("ignoring state message on %s: %s", msg.topic, exc)
            return
        if isinstance(snapshot, dict):
            self.hub.deliver(station, snapshot)  # non-blocking: queue puts only


def start(app: Flask, mqtt_url: str) -> Callable[[], None]:
    """Runtime starter: the publisher and the state subscription of this process."""
    publisher = server_mqtt.start_publisher(app, mqtt_url)
    listener = StateListener(mqtt_url, app.config["MQTT_PREFIX"]).start()

    def stop() -> None:
        listener.stop()
        publisher.stop()
        app.extensions[server_mqtt.EXTENSION] = None

    return stop


def init_app(app: Flask) -> None:
    server_mqtt.init_app(app)
