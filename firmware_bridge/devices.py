"""Devices behind one small base class, and the reader thread that keeps one alive.

``Device`` is ``open / read / write / close`` plus what a line means
(``interpret``) and what a server verdict looks like on the device (``feedback``).
``SerialScanner`` and ``LineProtocolDevice`` talk to real ports through pyserial;
the simulators in ``firmware_bridge.simulate`` are pseudo-terminals, so the same
code runs in the demo, the tests and on the line.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from firmware_bridge import gs1, lineproto
from firmware_bridge.config import DeviceConfig
from firmware_bridge.framing import Frame, LineFramer, check_line, render

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2
FIRST_RETRY_S = 0.2


class DeviceClosed(OSError):
    """A write to a device whose port is not open (unplugged, reopening)."""


@dataclass(frozen=True)
class Event:
    """What a device saw, before the bridge adds ``msg_id``, ``ts``, ``seq`` and ``source``."""

    kind: str  # topic kind: "evt/scan", "evt/device" or "evt/action"
    fields: dict[str, Any]

    @property
    def error(self) -> str | None:
        return self.fields.get("error")


class Device(ABC):
    """One physical device. ``read`` returns ``b""`` when nothing came in time and
    raises ``OSError`` (pyserial's ``SerialException`` is one) when the port is gone."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self.name = config.name

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self) -> bytes: ...

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def interpret(self, frame: Frame) -> Event | None:
        """The event for one framed line, or ``None`` for a line to ignore."""

    @abstractmethod
    def feedback(self, result: str) -> bytes:
        """Bytes that show a server verdict (``accepted`` / ``rejected``) on the device."""


class SerialDevice(Device):
    """A device on a serial port, opened exclusively so no other program steals reads."""

    def __init__(self, config: DeviceConfig) -> None:
        super().__init__(config)
        self._port: serial.Serial | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        port = serial.Serial(
            self.config.port,
            self.config.baudrate,
            timeout=READ_TIMEOUT_S,
            write_timeout=1.0,
            exclusive=True,
        )
        with self._lock:
            self._port = port

    def read(self) -> bytes:
        port = self._port
        if port is None:
            raise DeviceClosed(f"{self.name}: port is not open")
        return bytes(port.read(max(1, min(port.in_waiting, 4096))))

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._port is None:
                raise DeviceClosed(f"{self.name}: port {self.config.port} is not open")
            self._port.write(data)
            self._port.flush()

    def close(self) -> None:
        with self._lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except OSError as exc:  # closing a port that vanished can fail; it is closed
                log.debug("%s: close: %s", self.name, exc)


class SerialScanner(SerialDevice):
    """A barcode scanner: each line is one scan, published exactly as read."""

    def interpret(self, frame: Frame) -> Event:
        text, error = check_line(frame.data)
        if frame.error:
            text, error = render(frame.data), frame.error
        fields: dict[str, Any] = {"data": text}
        if error:
            fields["error"] = error
        elif (parsed := gs1.parse(text)) is not None:
            fields["gs1"] = parsed
        return Event("evt/scan", fields)

    def feedback(self, result: str) -> bytes:
        return {"accepted": self.config.good_read, "rejected": self.config.bad_read}.get(
            result, b""
        )


class LineProtocolDevice(SerialDevice):
    """A firmware board speaking the line protocol (buttons, lights, torque, scale)."""

    def interpret(self, frame: Frame) -> Event | None:
        text, error = check_line(frame.data)
        if frame.error:
            text, error = render(frame.data), frame.error
        if error is None:
            try:
                fields = lineproto.parse(text)
            except lineproto.LineError as exc:
                error = str(exc)
            else:
                if fields is None:
                    log.debug("%s: %s", self.name, text)
                    return None
                action = (
                    self.config.buttons.get(fields.get("button", -1))
                    if (fields["kind"] == "button")
                    else None
                )
                if action is not None:  # a button box: this button is a station action
                    return Event("evt/action", {"action": action})
                return Event("evt/device", fields)
        return Event("evt/device", {"kind": "unknown", "data": text, "error": error})

    def feedback(self, result: str) -> bytes:
        lines = {"accepted": self.config.on_accepted, "rejected": self.config.on_rejected}
        return b"".join(lineproto.command(line) for line in lines.get(result, ()))


def make_device(config: DeviceConfig) -> Device:
    return SerialScanner(config) if config.type == "scanner" else LineProtocolDevice(config)


class PortReader(threading.Thread):
    """One thread per device: open, frame, report; on unplug or error close and reopen.

    Ports are named by stable paths (``/dev/serial/by-id/...``), so a device that is
    plugged back in, perhaps as another ttyUSB number, is found again at the same path.
    Reopen attempts back off from 0.2 s to ``reopen_max_s``.
    """

    def __init__(
        self, device: Device, on_event: Callable[[Device, Event], None], stop: threading.Event
    ) -> None:
        super().__init__(name=f"reader-{device.name}", daemon=True)
        self.device = device
        self.on_event = on_event
        self.stop = stop

    def run(self) -> None:
        delay = FIRST_RETRY_S
        failures = 0
        while not self.stop.is_set():
            try:
                self.device.open()
            except OSError as exc:
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(
                    level,
                    "%s: cannot open %s (%s); retrying every <= %.0f s",
                    self.device.name,
                    self.device.config.port,
                    exc,
                    self.device.config.reopen_max_s,
                )
                self.stop.wait(delay)
                delay = min(delay * 2, self.device.config.reopen_max_s)
                continue
            # The documented signal that this device is read (docs/bridge.md, "Started").
            log.info(
                "port %s opened (%s, %s)",
                self.device.config.port,
                self.device.name,
                self.device.config.type,
            )
            delay, failures = FIRST_RETRY_S, 0
            try:
                self._pump()
            except OSError as exc:
                log.warning(
                    "%s: lost %s (%s); reopening", self.device.name, self.device.config.port, exc
                )
            except Exception:  # a bug must not silence the device for months: log, reopen
                log.exception("%s: reader failed; reopening in %.1f s", self.device.name, delay)
                self.stop.wait(delay)
            finally:
                self.device.close()

    def _pump(self) -> None:
        framer = LineFramer(self.device.config.terminator)
        while not self.stop.is_set():
            for frame in framer.feed(self.device.read()):
                event = self.device.interpret(frame)
                if event is None:
                    continue
                if event.error:
                    log.warning(
                        "%s: bad input (%s): %.200s",
                        self.device.name,
                        event.error,
                        event.fields.get("data", ""),
                    )
                self.on_event(self.device, event)
