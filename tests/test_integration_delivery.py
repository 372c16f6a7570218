"""Outbound events delivered to a real HTTP receiver: at least once, in order per
order, signed; a receiver down for a while gets everything once it is back (two
deliverers running, on SQLite and PostgreSQL); one that
answers 500 forever ends in the dead-letter state and is replayed from the page.

The retry schedule is shrunk (``WEBHOOK_RETRY_*``): the receiver is down for several
retries spanning a few seconds instead of 60 s, the same shape in less time.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, col, select

from server import dispatch
from server.db import write_session
from server.integration import deliver, subscriptions
from server.models import CustomerOrder, Delivery, OutboxEvent, Station, WebhookSubscription
from server.orders import service
from tests.support.apps import login, make_app
from tests.support.databases import DB_KINDS, fresh_db

FAST = {
    "WEBHOOK_RETRY_BASE_SECONDS": 0.1,
    "WEBHOOK_RETRY_MAX_SECONDS": 0.4,
    "WEBHOOK_TIMEOUT_SECONDS": 2.0,
    "DELIVER_POLL_SECONDS": 0.02,
    "ERP_MQTT": False,
}


class Receiver:
    """A small webhook receiver on 127.0.0.1 that can be taken down and brought back
    on the same port (connection refused meanwhile), or made to answer ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.status
                if status == 200:
                    with receiver.lock:
                        receiver.received.append((dict(self.headers.items()), body))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802  (where a followed redirect lands)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().up()
    yield r
    r.down()


@pytest.fixture(params=DB_KINDS)
def fast_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    for url in fresh_db(request.param, request, tmp_path, demo=True):
        yield make_app(url, tmp_path, **FAST)


def _engine(app: Flask) -> sa.Engine:
    engine: sa.Engine = app.extensions["taktline.engine"]
    return engine


def _subscribe(app: Flask, url: str, types: list[str] | None = None) -> tuple[int, str]:
    with write_session(_engine(app)) as s:
        sub = subscriptions.create(s, name="erp", url=url, event_types=types or [], by="test")
        return sub.id or 0, sub.secret


def _release(app: Flask, *numbers: str) -> None:
    for number in numbers:
        with write_session(_engine(app)) as s:
            order = s.exec(select(CustomerOrder).where(CustomerOrder.number == number)).one()
            service.release(s, order=order, by="test")


def _work_the_line(app: Flask, *, pause: float = 0.0) -> int:
    """Every station takes and completes its steps, one step per transaction (a stream
    of unit.started / unit.completed / order.completed); then the orders ship."""
    steps = 0
    progress = True
    while progress:
        progress = False
        for code in ("KIT-1", "BRD-1", "BRD-2", "FIN-1", "TST-1"):
            with write_session(_engine(app)) as s:
                station = s.exec(select(Station).where(Station.code == code)).first()
                if station is None:
                    continue
                op = dispatch.claim_next(s, station=station)
                if op is None:
                    continue
                dispatch.complete_operation(s, unit_operation=op)
                steps += 1
                progress = True
            time.sleep(pause)
    with write_session(_engine(app)) as s:
        for order in s.exec(select(CustomerOrder).where(CustomerOrder.status == "completed")):
            service.ship(s, order=order, by="test")
    return steps


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _statuses(app: Flask) -> dict[str, int]:
    with Session(_engine(app)) as s:
        rows = s.exec(
            select(Delivery.status, sa.func.count()).group_by(col(Delivery.status))  # type: ignore[call-overload]
        ).all()
    return {status: n for status, n in rows}


def _all_delivered(app: Flask) -> bool:
    with Session(_engine(app)) as s:
        events = s.exec(select(sa.func.count()).select_from(OutboxEvent)).one()  # type: ignore[call-overload]
    statuses = _statuses(app)
    return events > 0 and statuses == {"delivered": events}


def test_a_receiver_down_during_a_stream_gets_every_event_once_in_order(
    fast_app: Flask, receiver: Receiver
) -> None:
    app = fast_app
    _sub_id, secret = _subscribe(app, receiver.url)
    # Two deliverers at once (several processes on PostgreSQL): none sends an event twice.
    workers = [deliver.deliverer(app).start() for _ in range(2)]
    try:
        _release(app, "SO-1001", "SO-1002", "SO-1003")
        _wait(lambda: len(receiver.received) >= 3, 10)  # the releases went out
        receiver.down()
        down_at = time.monotonic()
        line = threading.Thread(target=_work_the_line, args=(app,), kwargs={"pause": 0.01})
        line.start()
        # Down for several retries (0.1 s, doubling, capped at 0.4 s: ~8 tries in 3 s).
        time.sleep(3.0)
        with Session(_engine(app)) as s:
            tried = s.exec(select(sa.func.max(Delivery.attempts))).one()  # type: ignore[call-overload]
        assert tried >= 4, "the deliverer kept retrying while the receiver was down"
        receiver.up()
        line.join(timeout=30)
        assert not line.is_alive()
        _wait(lambda: _all_delivered(app), 15)
        assert time.monotonic() - down_at < 20
    finally:
        for worker in workers:
            worker.stop()

    with Session(_engine(app)) as s:
        events = s.exec(select(OutboxEvent).order_by(col(OutboxEvent.id))).all()
    bodies = [json.loads(body) for _headers, body in receiver.received]
    ids = [b["id"] for b in bodies]
    assert len(ids) == len(set(ids)), "no event delivered twice"
    assert set(ids) == {e.event_id for e in events}, "every event delivered"
    per_order: dict[str, list[int]] = defaultdict(list)
    for b in bodies:
        assert b["specversion"] == "1.0" and b["type"].startswith("com.taktline.")
        per_order[b["subject"]].append(int(b["sequence"]))
    for order, seqs in per_order.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"{order} in order, no gap: {seqs}"
    for headers, body in receiver.received:
        assert deliver.verify(secret, headers[deliver.SIGNATURE_HEADER], body)
        assert not deliver.verify("another secret", headers[deliver.SIGNATURE_HEADER], body)
    types = {b["type"].removeprefix("com.taktline.") for b in bodies}
    assert {"order.released", "unit.started", "unit.completed", "order.completed"} <= types
    assert "order.shipped" in types
    completed = [b for b in bodies if b["type"] == "com.taktline.unit.completed"]
    assert all(b["data"]["unit"] and "genealogy" in b["data"] for b in completed)


def test_a_receiver_answering_500_ends_dead_and_is_replayed_from_the_page(
    demo_db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    app = make_app(demo_db_url, tmp_path, WEBHOOK_DEAD_AFTER_SECONDS=1.0, **FAST)
    sub_id, _secret = _subscribe(app, receiver.url, ["order.released"])
    receiver.status = 500
    worker = deliver.deliverer(app)
    _release(app, "SO-1001", "SO-1002")
    deadline = time.monotonic() + 10
    while _statuses(app).get("dead", 0) < 2 and time.monotonic() < deadline:
        worker.run_once()
        time.sleep(0.05)
    assert _statuses(app) == {"dead": 2}
    assert receiver.received == []
    with Session(_engine(app)) as s:
        dead = s.exec(select(Delivery)).all()
        assert all(d.attempts >= 2 and d.last_status == 500 for d in dead)
    worker.run_once()
    assert _statuses(app) == {"dead": 2}, "a dead delivery is not tried again"

    client = app.test_client()
    login(client, "admin")
    page = client.get("/integration/webhooks")
    assert page.status_code == 200
    assert b"HTTP 500" in page.data and b"Replay" in page.data
    failing = client.get(f"/api/v1/webhooks/{sub_id}").get_json()["failing"]
    assert [(f["status"], f["last_status"]) for f in failing] == [("dead", 500)] * 2
    receiver.status = 200
    one = dead[0].id
    response = client.post(f"/integration/deliveries/{one}/replay", data=_csrf(client))
    assert response.status_code == 303
    worker.run_once()
    assert _statuses(app) == {"dead": 1, "delivered": 1}
    response = client.post(f"/integration/webhooks/{sub_id}/replay", data=_csrf(client))
    assert response.status_code == 303
    worker.run_once()
    assert _statuses(app) == {"delivered": 2}
    assert len({json.loads(b)["id"] for _h, b in receiver.received}) == 2


def _csrf(client: Any) -> dict[str, str]:
    import re

    html = client.get("/integration/webhooks").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return {"csrf_token": match.group(1)} if match else {}


def test_a_redirect_is_a_failure_not_a_delivery(
    demo_db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    app = make_app(demo_db_url, tmp_path, **FAST)
    _subscribe(app, receiver.url, ["order.released"])
    receiver.status = 302  # urllib would repeat the POST as a GET without the body
    _release(app, "SO-1001")
    deliver.deliverer(app).run_once()
    with Session(_engine(app)) as s:
        [d] = s.exec(select(Delivery)).all()
    assert (d.status, d.attempts, d.last_status) == ("pending", 1, 302)


def test_a_paused_subscription_keeps_its_events_until_enabled(
    demo_db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    app = make_app(demo_db_url, tmp_path, **FAST)
    sub_id, _secret = _subscribe(app, receiver.url)
    with write_session(_engine(app)) as s:
        sub = s.get(WebhookSubscription, sub_id)
        assert sub is not None
        subscriptions.set_active(s, subscription=sub, active=False, by="test")
    _release(app, "SO-1001")
    worker = deliver.deliverer(app)
    worker.run_once()
    assert receiver.received == [] and _statuses(app) == {"pending": 1}
    with write_session(_engine(app)) as s:
        sub = s.get(WebhookSubscription, sub_id)
        assert sub is not None
        subscriptions.set_active(s, subscription=sub, active=True, by="test")
    worker.run_once()
    assert len(receiver.received) == 1 and _statuses(app) == {"delivered": 1}


def test_a_deliverer_without_a_broker_leaves_the_mqtt_deliveries_alone(
    demo_db_url: str, tmp_path: Path
) -> None:
    app = make_app(demo_db_url, tmp_path, **{**FAST, "ERP_MQTT": True})
    _release(app, "SO-1001")
    deliver.deliverer(app, "mqtt://127.0.0.1:9").fan_out()  # `serve`, with its broker
    assert _statuses(app) == {"pending": 1}
    deliver.deliverer(app).run_once()  # `taktline deliver` without TAKTLINE_MQTT_URL
    with Session(_engine(app)) as s:
        [d] = s.exec(select(Delivery)).all()
    assert (d.channel, d.status, d.attempts) == ("mqtt", "pending", 0)
