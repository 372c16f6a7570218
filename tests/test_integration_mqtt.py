"""Outbound events on MQTT: ``taktline/{site}/erp/{type}`` at QoS 1, the CloudEvent as
the payload, each order's events in order, including across a broker restart; and two
deliverers at once never send an event twice. Needs mosquitto (tests/support)."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from sqlmodel import Session, select

from server.integration import deliver
from server.models import Delivery, OutboxEvent
from tests.support.apps import make_app
from tests.support.mosquitto import Mosquitto
from tests.test_integration_delivery import FAST, _release, _wait, _work_the_line


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    try:
        b = Mosquitto(tmp_path / "broker").start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield b
    b.stop()


def _subscriber(url_port: int, got: list[tuple[str, bytes]]) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id="erp-integrator-test",
        clean_session=False,  # what is published while it is away waits at the broker
        protocol=mqtt.MQTTv311,
    )
    ready = threading.Event()

    def on_connect(c: mqtt.Client, *_a: Any) -> None:
        c.subscribe("taktline/+/erp/#", qos=1)
        ready.set()

    client.on_connect = on_connect
    client.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    assert ready.wait(5)
    time.sleep(0.2)  # the SUBACK
    return client


def test_events_on_mqtt_in_order_across_a_broker_restart(
    demo_db_url: str, tmp_path: Path, broker: Mosquitto
) -> None:
    app: Flask = make_app(demo_db_url, tmp_path, **{**FAST, "ERP_MQTT": True})
    engine = app.extensions["taktline.engine"]
    got: list[tuple[str, bytes]] = []
    sub = _subscriber(broker.port, got)
    worker = deliver.deliverer(app, broker.url).start()
    try:
        _release(app, "SO-1001", "SO-1002")
        _wait(lambda: len(got) >= 2, 10)
        broker.stop()
        _work_the_line(app)
        time.sleep(1.0)  # a few failed tries while the broker is away
        broker.start()

        def all_done() -> bool:
            with Session(engine) as s:
                rows = s.exec(select(Delivery.status)).all()
                events = len(s.exec(select(OutboxEvent.id)).all())
            return len(rows) == events and set(rows) == {"delivered"}

        _wait(all_done, 20)
        with Session(engine) as s:
            events = s.exec(select(OutboxEvent)).all()
        _wait(lambda: len({json.loads(p)["id"] for _t, p in got}) >= len(events), 10)
    finally:
        worker.stop()
        sub.loop_stop()
        sub.disconnect()
    bodies = [(t, json.loads(p)) for t, p in got]
    assert {b["id"] for _t, b in bodies} == {e.event_id for e in events}
    per_order: dict[str, list[int]] = defaultdict(list)
    for topic, b in bodies:
        assert topic == f"taktline/PLT1/erp/{b['type'].removeprefix('com.taktline.')}"
        per_order[b["subject"]].append(int(b["sequence"]))
    for order, seqs in per_order.items():
        # QoS 1 may deliver a message twice across a restart; never out of order.
        deduped = [s for i, s in enumerate(seqs) if s not in seqs[:i]]
        assert deduped == sorted(deduped) == list(range(1, len(deduped) + 1)), (order, seqs)
