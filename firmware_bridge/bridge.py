"""The station bridge: device readers -> outbox -> MQTT, and feedback back to devices.

Threads: one ``PortReader`` per device, the outbox publisher (``Link``), paho's
network thread and the feedback writer. Every event is on disk (with ``msg_id``,
``ts``, ``seq`` and ``source``) before anything is published.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from typing import Any

import uuid6

from firmware_bridge.config import BridgeConfig
from firmware_bridge.devices import Device, Event, PortReader, make_device
from firmware_bridge.feedback import FeedbackWorker, show
from firmware_bridge.link import Link, RecentRefs
from firmware_bridge.outbox import Outbox, OutboxFull

log = logging.getLogger(__name__)


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Bridge:
    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.outbox = Outbox(
            config.outbox.path,
            max_messages=config.outbox.max_messages,
            when_full=config.outbox.when_full,
        )
        self.devices: dict[str, Device] = {d.name: make_device(d) for d in config.devices}
        refs = RecentRefs()
        self.feedback = FeedbackWorker(self.devices, refs)
        self.link = Link(config, self.outbox, refs, self.feedback.submit)
        self._stop = threading.Event()
        self.readers = [PortReader(d, self._on_event, self._stop) for d in self.devices.values()]

    def start(self) -> None:
        pending = len(self.outbox)
        if pending:
            log.info("outbox holds %d unsent messages; replaying them first", pending)
        self.feedback.start()
        self.link.start()
        for reader in self.readers:
            reader.start()

    def stop(self) -> None:
        log.info("stopping bridge")
        self._stop.set()
        for reader in self.readers:
            reader.join(5)
        self.link.stop()
        self.feedback.stop()
        self.outbox.close()

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly."""
        stopping = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            log.info("received %s", signal.Signals(signum).name)
            stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.start()
        try:
            while not stopping.wait(1.0):
                pass
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _on_event(self, device: Device, event: Event) -> None:
        def build(seq: int) -> dict[str, Any]:
            return {
                "msg_id": str(uuid6.uuid7()),
                "ts": now_rfc3339(),
                "seq": seq,
                "source": device.name,
                **event.fields,
            }

        try:
            self.outbox.append(self.config.topic(event.kind), device.name, build)
        except OutboxFull:
            show(device, "rejected")  # the operator must know this scan did not count
            return
        self.link.notify()
