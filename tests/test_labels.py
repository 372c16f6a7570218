"""Unit labels: ZPL built purely, sent over raw TCP to a Zebra-compatible printer (here a
TCP listener), at unit start on every path and on demand from the unit page; a printer
that is down is reported, never a crash. Reservations per unit on the page and API."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlmodel import select

from server import settings
from server.db import write_session
from server.models import CustomerOrder
from server.orders import service as orders
from server.trace import labels
from tests.support.apps import login, make_app


class FakePrinter:
    """A TCP listener standing in for a Zebra on port 9100: keeps what it receives."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.jobs: list[str] = []
        self.received = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
            self.jobs.append(b"".join(chunks).decode("utf-8"))
            self.received.set()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def printer() -> Iterator[FakePrinter]:
    p = FakePrinter()
    yield p
    p.close()


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


@pytest.fixture
def label_app(demo_db_url: str, tmp_path: Path, printer: FakePrinter) -> Iterator[Flask]:
    app = make_app(
        demo_db_url,
        tmp_path,
        LABEL_PRINTERS=f"KIT-1=127.0.0.1:{printer.port},FIN-1=127.0.0.1:{_closed_port()}",
    )
    with write_session(app.extensions["taktline.engine"]) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="test")
    yield app
    labels.labels(app).stop()


def test_zpl_is_built_purely_and_escapes_outside_data() -> None:
    text = labels.zpl(
        labels.Label("PC-000042", "PC", "Desktop ^XZ~JA", ("i5", "mem16", "_x", "café"))
    )
    assert text.startswith("^XA") and text.rstrip().endswith("^XZ")
    assert "^BCN,100,Y,N,N^FH_^FDPC-000042^FS" in text
    assert "Desktop _5EXZ_7EJA" in text  # no command can hide in a product name
    assert text.count("^XZ") == 1 and "~JA" not in text
    assert "i5, mem16, _5Fx, caf_C3_A9" in text


def test_label_printers_setting() -> None:
    parse = settings.BY_NAME["LABEL_PRINTERS"].parse
    assert parse("") == {}
    assert parse("KIT-1=10.0.4.21:9100, FIN-1=zebra-fin") == {
        "KIT-1": ("10.0.4.21", 9100),
        "FIN-1": ("zebra-fin", 9100),
    }
    assert parse({"TST-1": "[fd00::7]:6101"}) == {"TST-1": ("fd00::7", 6101)}
    for bad in ("KIT-1", "KIT-1=", "KIT-1=host:99999", "KIT-1=user@host"):
        with pytest.raises(ValueError):
            parse(bad)


def test_a_label_prints_when_a_unit_starts(label_app: Flask, printer: FakePrinter) -> None:
    client = label_app.test_client()
    login(client, "supervisor")

    def post(**body: str) -> dict[str, object]:
        post.n += 1  # type: ignore[attr-defined]
        body.setdefault("msg_id", f"lbl-{post.n}")  # type: ignore[attr-defined]
        r = client.post("/api/v1/stations/KIT-1/events", json=body)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()  # type: ignore[no-any-return]

    post.n = 0  # type: ignore[attr-defined]
    post(action="sign_in", badge="OP1001")
    started = post(action="start")
    assert started["code"] == "step_started"
    serial = started["state"]["unit"]["serial"]  # type: ignore[index]
    assert printer.received.wait(10), "the printer got no label"
    job = printer.jobs[0]
    assert job.startswith("^XA") and serial in job and "^BC" in job

    # The unit page: the preview, the reservations, and printing on demand.
    page = client.get(f"/units/{serial}").get_data(as_text=True)
    assert 'data-testid="label-zpl"' in page and f"^FD{serial}^FS" in page
    assert 'data-testid="label-barcode"' in page and "data:image/svg+xml" in page
    assert 'data-testid="reservations"' in page
    printer.received.clear()
    r = client.post(f"/units/{serial}/label", data={"station": "KIT-1"})
    assert r.status_code == 303
    assert printer.received.wait(10) and len(printer.jobs) == 2 and serial in printer.jobs[1]
    assert "Label sent" in client.get(f"/units/{serial}").get_data(as_text=True)


def test_a_printer_that_is_down_is_reported(label_app: Flask, printer: FakePrinter) -> None:
    serial = "PC-0001001-1"
    with write_session(label_app.extensions["taktline.engine"]) as db:
        from server.models import Unit

        serial = db.exec(select(Unit.serial).order_by(Unit.id)).first() or serial
    client = label_app.test_client()
    login(client, "supervisor")
    r = client.post(f"/units/{serial}/label", data={"station": "FIN-1"}, follow_redirects=True)
    assert r.status_code == 200
    assert "The label was not printed" in r.get_data(as_text=True)
    r = client.post(f"/units/{serial}/label", data={"station": "NOPE"}, follow_redirects=True)
    assert "Choose a station with a label printer" in r.get_data(as_text=True)
    assert printer.jobs == []
    assert labels.send("127.0.0.1", _closed_port(), "^XA^XZ", timeout=1) is not None


def test_reservations_of_a_unit_in_its_api(label_app: Flask) -> None:
    with write_session(label_app.extensions["taktline.engine"]) as db:
        from server.models import Unit

        serial = db.exec(select(Unit.serial).order_by(Unit.id)).first()
    client = label_app.test_client()
    login(client, "supervisor")
    body = client.get(f"/api/v1/units/{serial}").get_json()
    assert body["reservations"], body
    first = body["reservations"][0]
    assert {"sku", "lot", "serial", "location", "quantity"} <= set(first)
    assert first["quantity"] > 0
    page = client.get(f"/units/{serial}").get_data(as_text=True)
    assert f'data-sku="{first["sku"]}"' in page


def test_a_slow_printer_never_holds_up_the_station(
    label_app: Flask, printer: FakePrinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unit-start label goes out from a background thread: the event's answer does
    not wait for the printer."""
    slow_done = threading.Event()
    real_send = labels.send

    def slow_send(host: str, port: int, data: str, *, timeout: float = 5.0) -> str | None:
        time.sleep(2)
        result = real_send(host, port, data, timeout=timeout)
        slow_done.set()
        return result

    monkeypatch.setattr(labels, "send", slow_send)
    client = label_app.test_client()
    login(client, "supervisor")
    ok = client.post(
        "/api/v1/stations/KIT-1/events",
        json={"msg_id": "s-1", "action": "sign_in", "badge": "OP1001"},
    )
    assert ok.status_code == 200
    began = time.monotonic()
    started = client.post(
        "/api/v1/stations/KIT-1/events", json={"msg_id": "s-2", "action": "start"}
    )
    assert started.status_code == 200 and started.get_json()["code"] == "step_started"
    assert time.monotonic() - began < 1.5
    assert slow_done.wait(10) and printer.received.wait(5)
