"""Andon escalation (station.escalation): a call nobody acknowledged within
ANDON_ESCALATE_MINUTES is published once on .../andon/escalated, through a real
Mosquitto; acknowledged or cancelled calls never are."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from sqlmodel import Session, select

from server.db import write_session
from server.messaging.client import Publisher
from server.models import AndonCall, Station
from server.models.types import utcnow
from station import escalation
from station.escalation import Escalator
from tests.support.mosquitto import Mosquitto


def raise_call(app: Flask, station: str, *, minutes_ago: int, acknowledged: bool = False) -> int:
    with write_session(app.extensions["taktline.engine"]) as db:
        row = db.exec(select(Station).where(Station.code == station)).one()
        assert row.id is not None
        call = AndonCall(
            station_id=row.id,
            reason="material",
            raised_at=utcnow() - timedelta(minutes=minutes_ago),
            acknowledged_at=utcnow() if acknowledged else None,
        )
        db.add(call)
        db.flush()
        assert call.id is not None
        return call.id


def test_only_calls_left_unacknowledged_too_long_are_escalated_once(any_demo_app: Flask) -> None:
    app = any_demo_app
    late = raise_call(app, "KIT-1", minutes_ago=12)
    raise_call(app, "BRD-1", minutes_ago=3)  # not yet
    raise_call(app, "FIN-1", minutes_ago=30, acknowledged=True)  # someone is on it
    engine = app.extensions["taktline.engine"]
    with Session(engine) as db:
        found = escalation.due(db, now=utcnow(), minutes=10)
        db.commit()
    assert [e.topic for e in found] == ["taktline/PLT1/PC1/KIT-1/andon/escalated"]
    assert found[0].payload["call"] == late and found[0].payload["reason"] == "material"
    assert found[0].payload["minutes"] == 12
    with Session(engine) as db:
        assert escalation.due(db, now=utcnow(), minutes=10) == []  # once
        assert escalation.due(db, now=utcnow() + timedelta(hours=1), minutes=0) == []  # off


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


def test_the_escalation_goes_out_on_mqtt(demo_app: Flask, broker: Mosquitto) -> None:
    received: queue.Queue[tuple[str, dict[str, object]]] = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pager")
    sub.on_message = lambda _c, _u, m: received.put((m.topic, json.loads(m.payload)))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("taktline/+/+/+/andon/escalated", qos=1)
    sub.loop_start()
    publisher = Publisher(broker.url).start()
    try:
        call = raise_call(demo_app, "KIT-1", minutes_ago=11)
        escalator = Escalator(
            demo_app.extensions["taktline.engine"], publisher.publish, minutes=10, prefix="taktline"
        )
        assert escalator.run_once() == 1
        topic, payload = received.get(timeout=10)
        assert topic == "taktline/PLT1/PC1/KIT-1/andon/escalated"
        assert (payload["call"], payload["station"], payload["reason"]) == (
            call,
            "KIT-1",
            "material",
        )
        assert escalator.run_once() == 0
    finally:
        publisher.stop()
        sub.loop_stop()
        sub.disconnect()
