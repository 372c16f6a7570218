"""Watch the broker like an auditor: every event published, every verdict sent back.

A persistent-session (``clean_session=False``), QoS 1 subscriber of its own (not in
the ingest's share group) on ``evt/#`` and ``cmd/feedback``. What it saw published is
the "published" set the reconciliation checks against the database; it also keeps
the raw payloads, so the duplicate-delivery fault can republish one byte for byte.
It rides out broker restarts like any client with a persistent session.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from firmware_bridge import topics
from server.messaging import client as server_mqtt
from server.models.types import EventResult

log = logging.getLogger(__name__)


@dataclass
class Published:
    msg_id: str
    topic: str
    station: str
    payload: bytes
    doc: dict[str, Any] = field(default_factory=dict)


class Monitor:
    def __init__(
        self, url: str, *, client_id: str, prefix: str = "taktline", persistent: bool = True
    ) -> None:
        self.prefix = prefix
        self.client, self.broker = server_mqtt.make_client(
            url, client_id=client_id, clean=not persistent
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self.published: dict[str, Published] = {}  # msg_id -> first seen
        self.deliveries: dict[str, int] = defaultdict(int)  # msg_id -> times seen
        self.feedback: dict[str, list[dict[str, Any]]] = defaultdict(list)  # ref -> verdicts
        self.unparsed = 0

    def start(self, timeout: float = 15.0) -> Monitor:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(
                f"monitor could not subscribe at {self.broker.host}:{self.broker.port}"
            )
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("monitor: broker refused the connection: %s", reason)
            return
        client.subscribe(
            [
                (topics.subscription("evt/#", prefix=self.prefix), 1),
                (topics.subscription("cmd/feedback", prefix=self.prefix), 1),
            ]
        )

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = topics.parse(msg.topic, prefix=self.prefix)
            doc = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError):
            with self._lock:
                self.unparsed += 1
            log.warning("monitor: unreadable message on %s", msg.topic)
            return
        if not isinstance(doc, dict):
            return
        with self._lock:
            if topic.kind.startswith("evt/") and isinstance(doc.get("msg_id"), str):
                msg_id = doc["msg_id"]
                self.deliveries[msg_id] += 1
                self.published.setdefault(
                    msg_id, Published(msg_id, msg.topic, topic.station, bytes(msg.payload), doc)
                )
            elif topic.kind == "cmd/feedback" and isinstance(doc.get("ref"), str):
                self.feedback[doc["ref"]].append(doc)

    # --- questions the faults and the summary ask -------------------------------------

    def msg_ids(self) -> set[str]:
        with self._lock:
            return set(self.published)

    def find(
        self,
        *,
        station: str,
        accepted: bool | None = None,
        has_error: bool | None = None,
        newer_than: int = 0,
    ) -> list[Published]:
        """Events published at ``station`` (in arrival order), filtered by their first
        verdict (``accepted``) or by whether the bridge flagged them (``has_error``)."""
        with self._lock:
            found = list(self.published.values())[newer_than:]
            verdicts = {k: list(v) for k, v in self.feedback.items()}
        out = []
        for p in found:
            if p.station != station:
                continue
            if has_error is not None and bool(p.doc.get("error")) != has_error:
                continue
            if accepted is not None:
                first = (verdicts.get(p.msg_id) or [{}])[0].get("result")
                if (first == EventResult.ACCEPTED) != accepted or first is None:
                    continue
            out.append(p)
        return out

    def count(self) -> int:
        with self._lock:
            return len(self.published)

    def verdicts(self, ref: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.feedback.get(ref, []))

    def wait_verdict(
        self, ref: str, *, result: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any] | None:
        """The first feedback for ``ref`` (of ``result`` when given), or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for v in self.verdicts(ref):
                if result is None or v.get("result") == result:
                    return v
            time.sleep(0.05)
        return None

    def republish(self, item: Published) -> None:
        """The same bytes on the same topic again: a duplicate delivery."""
        self.client.publish(item.topic, item.payload, qos=1)
