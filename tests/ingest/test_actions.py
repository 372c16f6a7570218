"""Station actions over MQTT (``evt/action``): the same verdicts as the tablet and the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.db import get_engine
from server.ingest.worker import Ingest
from tests.support.ingest import Station, counts
from tests.support.mosquitto import Mosquitto


@pytest.fixture
def ingest(broker: Mosquitto, plant: str) -> Iterator[Ingest]:
    worker = Ingest(engine=get_engine(plant), url=broker.url, client_id="test-ingest-actions")
    worker.start()
    assert worker.subscribed.wait(5)
    yield worker
    worker.stop()


def act(station: Station, msg_id: str, **body: object) -> dict[str, object]:
    station.publish({"msg_id": msg_id, "source": "buttons", **body}, kind="evt/action")
    return station.answer(msg_id)


def test_actions_over_mqtt(ingest: Ingest, station_client: Station, plant: str) -> None:
    assert act(station_client, "a-1", action="pause") == {
        "ref": "a-1",
        "result": "accepted",
        "code": "paused",
        "reason": "Step paused.",
        "source": "buttons",
    }
    station_client.wait(
        lambda: any(s["step"] and s["step"]["paused"] for s in station_client.states)
    )
    assert act(station_client, "a-2", action="pause")["code"] == "already_paused"
    assert act(station_client, "a-3", action="resume")["code"] == "resumed"
    handed = act(station_client, "a-4", action="sign_in", badge="OP1003")
    assert (handed["result"], handed["code"]) == ("accepted", "signed_in")
    station_client.wait(lambda: station_client.states[-1]["operator"]["badge"] == "OP1003")
    refused = act(station_client, "a-5", action="fly")
    assert refused["result"] == "rejected" and refused["code"] == "bad_payload"
    assert refused["reason"].startswith("Message refused: action must be one of sign_in,")
    station_client.publish({"msg_id": "a-1", "action": "pause"}, kind="evt/action")
    assert station_client.answer("a-1", count=2)["result"] == "duplicate"
    assert counts(plant)["consumptions"] == 0
