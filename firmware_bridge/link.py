"""The MQTT link: publish the outbox at QoS 1, delete rows on PUBACK, take feedback.

Ordering and "once" (issue 5): a single worker thread hands rows to paho in outbox
order, at most ``WINDOW`` unacknowledged at a time, and deletes a row only when
paho reports the broker's PUBACK for its message id. Rows still unacknowledged when
the connection drops stay in paho's session and paho resends them first after the
reconnect; the worker publishes nothing new until they are acknowledged, so order
holds across outages. After a restart the worker starts from the oldest row on
disk. A row acknowledged by the broker but killed before its delete is sent again
with the same ``msg_id``; the server dedupes on ``msg_id`` (answer ``duplicate``).

paho callbacks only put events on a queue: nothing blocks the network thread.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_bridge.config import BridgeConfig
from firmware_bridge.outbox import Outbox

log = logging.getLogger(__name__)

WINDOW = 100  # unacknowledged QoS 1 messages handed to paho at once


class RecentRefs:
    """Which device sent a recent ``msg_id``, so feedback reaches the right device."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._maxlen = maxlen
        self._lock = threading.Lock()

    def add(self, msg_id: str, source: str) -> None:
        with self._lock:
            self._items[msg_id] = source
            self._items.move_to_end(msg_id)
            while len(self._items) > self._maxlen:
                self._items.popitem(last=False)

    def get(self, msg_id: str) -> str | None:
        with self._lock:
            return self._items.get(msg_id)


class Link:
    def __init__(
        self,
        config: BridgeConfig,
        outbox: Outbox,
        refs: RecentRefs,
        on_feedback: Callable[[bytes], None],
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.refs = refs
        self.on_feedback = on_feedback
        self.status_topic = config.topic("status")
        self.feedback_topic = config.topic("cmd/feedback")
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._client = self._make_client()
        self._worker = threading.Thread(target=self._run, name="mqtt-outbox", daemon=True)

    def _make_client(self) -> mqtt.Client:
        m = self.config.mqtt
        # A persistent session: feedback sent while the bridge is briefly away is kept.
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=m.client_id, clean_session=False
        )
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        if m.username:
            client.username_pw_set(m.username, m.password)
        if m.tls is not None:
            client.tls_set(
                ca_certs=m.tls.ca_file,
                certfile=m.tls.cert_file,
                keyfile=m.tls.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(m.tls.insecure)
        client.reconnect_delay_set(1, max(1, int(m.reconnect_max_s)))
        client.max_inflight_messages_set(WINDOW)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        m = self.config.mqtt
        log.info("connecting to %s:%d as %s", m.host, m.port, m.client_id)
        self._client.connect_async(m.host, m.port, keepalive=m.keepalive)
        self._client.loop_start()
        self._worker.start()

    def notify(self) -> None:
        """A new row is in the outbox."""
        self._events.put(("wake", None))

    def stop(self, drain_s: float = 2.0) -> None:
        """Wait up to ``drain_s`` for in-flight acks, say ``offline``, disconnect."""
        self._events.put(("stop", time.monotonic() + drain_s))
        self._worker.join(drain_s + 5)
        if self._client.is_connected():
            info = self._client.publish(self.status_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except RuntimeError as exc:  # the connection went away meanwhile
                log.warning("could not publish offline status: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks: never block, only queue ----------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        log.info("connected to broker (session present: %s)", flags.session_present)
        client.subscribe(self.feedback_topic, qos=1)
        client.publish(self.status_topic, "online", qos=1, retain=True)
        self._events.put(("connected", None))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        log.warning("disconnected from broker: %s", reason)
        self._events.put(("disconnected", None))

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        self._events.put(("ack", mid))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.on_feedback(bytes(msg.payload))

    # -- the worker ----------------------------------------------------------------

    def _run(self) -> None:
        in_flight: dict[int, int] = {}  # paho mid -> outbox row id
        last_id = 0  # highest row id handed to paho by this process
        connected = False
        held = False  # after a reconnect: paho resends in_flight first
        deadline: float | None = None
        while deadline is None or (in_flight and time.monotonic() < deadline):
            try:
                events = [self._events.get(timeout=0.5)]
            except queue.Empty:
                events = []
            while not self._events.empty():
                events.append(self._events.get_nowait())
            acked: list[int] = []
            for kind, value in events:
                if kind == "connected":
                    connected, held = True, bool(in_flight)
                elif kind == "disconnected":
                    connected = False
                elif kind == "ack":
                    row_id = in_flight.pop(value, None)
                    if row_id is not None:
                        acked.append(row_id)
                elif kind == "stop":
                    deadline = value
            self.outbox.delete(*acked)
            held = held and bool(in_flight)
            if connected and not held and deadline is None:
                last_id = self._publish_more(in_flight, last_id)
        if in_flight:
            log.warning(
                "stopping with %d unacknowledged messages; they stay in the outbox", len(in_flight)
            )

    def _publish_more(self, in_flight: dict[int, int], last_id: int) -> int:
        room = WINDOW - len(in_flight)
        if room <= 0:
            return last_id
        for row in self.outbox.pending(after=last_id, limit=room):
            info = self._client.publish(row.topic, row.payload, qos=1)
            in_flight[info.mid] = row.id
            self.refs.add(row.msg_id, row.source)
            last_id = row.id
        return last_id
