"""Turn ``cmd/feedback`` verdicts into what a device can show.

``accepted`` / ``rejected`` go to the device that sent the referenced event: the
configured good-read / bad-read bytes for a scanner, the configured command lines
(``LIGHT 1 GREEN``) for a line-protocol device. ``duplicate`` answers a redelivery
the operator already got a verdict for, so it shows nothing. The device is found
by the bridge's memory of recent ``msg_id``s, else by a ``source`` member in the
feedback, else the feedback is logged and dropped.
"""

from __future__ import annotations

import json
import logging
import queue
import threading

from firmware_bridge.devices import Device
from firmware_bridge.link import RecentRefs

log = logging.getLogger(__name__)

RESULTS = ("accepted", "rejected", "duplicate")


class FeedbackWorker(threading.Thread):
    """Writes to devices off the MQTT thread: a serial write may take a while."""

    def __init__(self, devices: dict[str, Device], refs: RecentRefs) -> None:
        super().__init__(name="feedback", daemon=True)
        self.devices = devices
        self.refs = refs
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=1000)

    def submit(self, payload: bytes) -> None:
        """Called from the paho thread; drops (and logs) rather than block."""
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            log.error("feedback queue full; dropping feedback %.200r", payload)

    def stop(self) -> None:
        self._queue.put(None)
        self.join(5)

    def run(self) -> None:
        while (payload := self._queue.get()) is not None:
            try:
                self.handle(payload)
            except Exception:  # one bad message must not end feedback for the station
                log.exception("feedback %.200r failed", payload)

    def handle(self, payload: bytes) -> None:
        try:
            msg = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("feedback is not JSON (%s): %.200r", exc, payload)
            return
        if not isinstance(msg, dict) or msg.get("result") not in RESULTS:
            log.warning("feedback without a known result: %.200r", payload)
            return
        ref, result = msg.get("ref"), msg["result"]
        source = self.refs.get(ref) if isinstance(ref, str) else None
        source = source or msg.get("source")
        device = self.devices.get(source) if isinstance(source, str) else None
        if device is None:
            # The station's events from the tablet or the API are answered on this topic
            # too (their source is no device here): nothing to show, nothing wrong.
            log.debug(
                "feedback %s for ref %r from source %r: not one of our devices", result, ref, source
            )
            return
        log.info("feedback %s for %s from %s: %s", result, ref, device.name, msg.get("reason", ""))
        show(device, result)


def show(device: Device, result: str) -> None:
    """Write the device's signal for ``result``; a missing port is logged, not fatal."""
    data = device.feedback(result)
    if not data:
        return
    try:
        device.write(data)
    except OSError as exc:
        log.warning("%s: cannot show %s: %s", device.name, result, exc)
