"""Unit labels: ZPL for a Zebra-compatible printer, sent over raw TCP (port 9100).

A label carries the unit's serial as a Code 128 barcode (with its text), the product
and the options. ``zpl`` builds it purely (no I/O); ``send`` writes it to a printer
with a timeout and reports a failure as text (logged, never raised). Printers are
configured per station (``LABEL_PRINTERS``: station code -> host:port).

Two ways a label is printed:

- at unit start: after the commit of an event whose answer is ``step_started`` at a
  station with a printer, a listener of ``station.publish`` (every path: tablet, API,
  MQTT ingest) queues the unit; a background thread checks that this was the unit's
  first step, builds the label and sends it. The ingest never waits for a printer.
- on demand: the unit page's "Print label" button (supervisor), which waits for the
  printer (at most ``TIMEOUT`` seconds) and says whether it took the label.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, col, select

from server.models import Product, StepRecord, Unit
from station import publish

log = logging.getLogger(__name__)
TIMEOUT = 5.0  # seconds to connect to a printer and to hand it one label
QUEUE_MAX = 1000  # labels waiting for their printer; more are dropped (logged)
EXTENSION = "taktline.labels"


# -- the label, purely ---------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    serial: str
    product: str
    product_name: str = ""
    options: tuple[str, ...] = ()


def field_data(text: str) -> str:
    """``text`` for a ``^FH_^FD`` field: ``^``, ``~``, ``_``, control and non-ASCII
    characters as ``_XX`` (hex of each UTF-8 byte, ``^CI28``), so outside data never
    becomes a ZPL command."""
    out = []
    for ch in text:
        if " " <= ch <= "~" and ch not in "^~_\\":
            out.append(ch)
        else:
            out.extend(f"_{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def _text(x: int, y: int, height: int, text: str) -> str:
    return f"^FO{x},{y}^A0N,{height},{height}^FH_^FD{field_data(text)}^FS"


def zpl(label: Label) -> str:
    """The ZPL II of one unit label (about 4 x 2 inches at 203 dpi)."""
    product = f"{label.product} {label.product_name}".strip()
    options = ", ".join(label.options)
    lines = [
        "^XA",
        "^CI28",  # field data is UTF-8
        "^PW812",
        "^LH0,0",
        _text(40, 30, 36, product[:60]),
        # Code 128 of the serial, 100 dots high, its text printed below it.
        f"^FO40,85^BY2,3,100^BCN,100,Y,N,N^FH_^FD{field_data(label.serial)}^FS",
    ]
    if options:
        lines.append(f"^FO40,235^A0N,26,26^FB740,3,4,L,0^FH_^FD{field_data(options[:300])}^FS")
    lines.append("^PQ1")
    lines.append("^XZ")
    return "\n".join(lines) + "\n"


# -- the printer, over raw TCP -------------------------------------------------------


def send(host: str, port: int, data: str, *, timeout: float = TIMEOUT) -> str | None:
    """Write ``data`` to the printer at ``host:port``; None when it took it, else why
    not (logged at WARNING). Never raises."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(data.encode("utf-8"))
            conn.shutdown(socket.SHUT_WR)
    except OSError as exc:
        reason = f"printer {host}:{port}: {exc.strerror or exc}"
        log.warning("label not printed: %s", reason)
        return reason
    log.info("label sent to printer %s:%s (%d bytes)", host, port, len(data))
    return None


# -- from the database ----------------------------------------------------------------


def label_for(db: Session, serial: str) -> Label | None:
    row = db.exec(
        select(Unit.serial, Product.code, Product.name, Unit.options)  # type: ignore[call-overload]
        .join(Product, col(Product.id) == Unit.product_id)
        .where(Unit.serial == serial)
    ).first()
    if row is None:
        return None
    unit_serial, code, name, options = row
    return Label(serial=unit_serial, product=code, product_name=name, options=tuple(options or ()))


def _first_step(db: Session, serial: str) -> bool:
    """The unit has exactly one step record: the step that just started is its first."""
    steps = db.exec(
        select(sa.func.count())  # type: ignore[call-overload]
        .select_from(StepRecord)
        .join(Unit, col(Unit.id) == StepRecord.unit_id)
        .where(Unit.serial == serial)
    ).one()
    return int(steps) == 1


# -- per process: the printers and the unit-start queue -------------------------------


@dataclass
class Labels:
    """The configured printers of one app and its background printing thread."""

    engine: sa.Engine
    printers: dict[str, tuple[str, int]]
    timeout: float = TIMEOUT
    jobs: queue.Queue[tuple[str, str] | None] = field(
        default_factory=lambda: queue.Queue(QUEUE_MAX)
    )
    sent: list[tuple[str, str, str | None]] = field(default_factory=list)  # last few results
    _thread: threading.Thread | None = None
    _remove: Any = None

    def print_unit(self, station: str, serial: str) -> str | None:
        """Print ``serial``'s label at ``station``'s printer now; None on success, else
        why not."""
        where = self.printers.get(station)
        if where is None:
            return f"no label printer for station {station}"
        with Session(self.engine) as db:
            label = label_for(db, serial)
        if label is None:
            return f"no unit {serial}"
        result = send(*where, zpl(label), timeout=self.timeout)
        self.sent = [*self.sent[-49:], (station, serial, result)]
        return result

    def heard(self, answer: publish.Answer) -> None:
        """A ``station.publish`` listener: queue the label of a unit whose step started
        at a station with a printer. Returns at once."""
        fb = answer.feedback
        if (
            fb is None
            or fb.get("code") != "step_started"
            or fb.get("result") != "accepted"
            or answer.station not in self.printers
            or answer.state is None
            or answer.state.unit is None
        ):
            return
        try:
            self.jobs.put_nowait((answer.station, answer.state.unit.serial))
        except queue.Full:
            log.error(
                "label queue full: label of %s at %s dropped",
                answer.state.unit.serial,
                answer.station,
            )

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                station, serial = job
                try:
                    with Session(self.engine) as db:
                        first = _first_step(db, serial)
                    if first:
                        self.print_unit(station, serial)
                except Exception:  # the thread outlives any one label
                    log.exception("label of %s at %s failed", serial, station)
            finally:
                self.jobs.task_done()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="taktline-labels", daemon=True)
            self._thread.start()
            self._remove = publish.add_listener(self.heard)

    def stop(self) -> None:
        """Stop listening, let the queued labels go out, end the thread."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        if self._thread is not None:
            self.jobs.put(None)
            self._thread.join(timeout=self.timeout * 2)
            self._thread = None


def labels(app: Flask) -> Labels:
    service: Labels = app.extensions[EXTENSION]
    return service


def init_app(app: Flask) -> None:
    """The app's printers; with any, unit-start labels are printed by this process."""
    service = Labels(
        engine=app.extensions["taktline.engine"], printers=app.config["LABEL_PRINTERS"]
    )
    app.extensions[EXTENSION] = service
    if service.printers:
        service.start()
