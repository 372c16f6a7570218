"""The ingest against a real broker: feedback, retained state, duplicates, garbage."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from server.db import get_engine, write_session
from server.ingest.worker import Ingest
from station import service
from station.workflow import SignOut
from tests.support.ingest import AmqttBroker, Station, counts, scans_in_one_batch


def test_scan_gets_feedback_and_state(ingest: Ingest, station_client: Station, plant: str) -> None:
    msg_id = station_client.scan("SCRM3")
    answer = station_client.answer(msg_id)
    assert answer == {
        "ref": msg_id,
        "result": "accepted",
        "code": "picked",
        "reason": "SCR-M3 picked (1 of 150).",
        "source": "scanner1",
    }
    station_client.wait(lambda: any(s["picks"][0]["done"] == 1 for s in station_client.states))
    wrong = station_client.scan("9506000001036")
    assert station_client.answer(wrong)["reason"].startswith(
        "Wrong part: this is 16 GB memory (2x8 GB DDR5), step needs "
    )
    assert counts(plant)["consumptions"] == 1


def test_same_message_twice_is_recorded_once(
    ingest: Ingest, station_client: Station, plant: str
) -> None:
    msg_id = str(uuid.uuid4())
    station_client.scan("SCRM3", msg_id=msg_id)
    assert station_client.answer(msg_id)["result"] == "accepted"
    station_client.scan("SCRM3", msg_id=msg_id)
    second = station_client.answer(msg_id, count=2)
    assert second["result"] == "duplicate" and second["original"] == "accepted"
    assert counts(plant)["consumptions"] == 1 and counts(plant)["ledger"] == 1


BIG = "x" * 1_000_000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "Message refused: payload is not JSON"),
        (
            b'{"msg_id": "m-types", "seq": "seven", "data": "SCRM3"}',
            "Message refused: seq must be a non-negative integer.",
        ),
        (
            b'{"msg_id": "m-missing", "ts": "2026-03-02T08:00:00Z"}',
            "Message refused: data is missing or not a string.",
        ),
        (
            json.dumps({"msg_id": "m-big", "data": BIG}).encode(),
            "Message refused: payload of 1000031 bytes, at most 65536 allowed.",
        ),
        (
            b'{"msg_id": "m-utf8", "data": "\xff\xfeSCR"}',
            "Message refused: payload is not UTF-8 (byte 30).",
        ),
        (b"[1, 2, 3]", "Message refused: payload must be a JSON object."),
        (
            b'{"msg_id": "m-error", "data": "SC\\\\x00R", "error": "binary noise: 1 control '
            b'byte(s), first 0x00"}',
            "Scan not readable (binary noise: 1 control byte(s), first 0x00): scan again.",
        ),
    ],
)
def test_malformed_payloads_are_rejected_and_ingest_keeps_serving(
    ingest: Ingest, station_client: Station, plant: str, raw: bytes, reason: str
) -> None:
    before = counts(plant)
    station_client.publish(raw)
    # The msg_id is answered to whenever it can be read, even in a broken payload.
    sniffed = re.match(rb'\{"msg_id": "(m-[a-z0-9]+)"', raw)
    answer = station_client.answer(sniffed.group(1).decode() if sniffed else "None")
    assert answer["result"] == "rejected"
    assert answer["reason"].startswith(reason)
    # Still serving, nothing else changed.
    ok = station_client.scan("SCRM3")
    assert station_client.answer(ok)["result"] == "accepted"
    assert counts(plant)["consumptions"] == before["consumptions"] + 1


def test_unknown_station_is_rejected(ingest: Ingest, station_client: Station, plant: str) -> None:
    msg_id = str(uuid.uuid4())
    station_client.publish(
        {"msg_id": msg_id, "seq": 1, "source": "s", "data": "SCRM3"},
        prefix="taktline/PLT1/PC1/NOPE-9",
    )
    station_client.wait(lambda: msg_id in station_client.feedback)
    # Answered on the unknown station's own feedback topic (the station client listens to
    # every station of the line).
    assert station_client.feedback[msg_id][0]["reason"] == "Unknown station NOPE-9."


def test_device_events(ingest: Ingest, station_client: Station) -> None:
    msg_id = str(uuid.uuid4())
    station_client.publish(
        {
            "msg_id": msg_id,
            "seq": 1,
            "source": "board1",
            "kind": "torque",
            "value": 5.2,
            "unit": "Nm",
            "ok": False,
        },
        kind="evt/device",
    )
    assert station_client.answer(msg_id)["reason"] == "Torque 5.2 Nm not OK: tighten again."


def test_embedded_amqtt_broker(plant: str) -> None:
    """amqtt speaks MQTT 3.1.1 only and has no shared subscriptions: `taktline serve`
    with the embedded amqtt runs one ingest with a plain subscription."""
    with AmqttBroker() as amqtt_broker:
        worker = Ingest(
            engine=get_engine(plant),
            url=amqtt_broker.url,
            client_id="test-ingest-amqtt",
            shared=False,
        ).start()
        station = Station(amqtt_broker.port)
        try:
            assert worker.subscribed.wait(5)
            msg_id = station.scan("SCRM3")
            assert station.answer(msg_id)["result"] == "accepted"
            station.scan("SCRM3", msg_id=msg_id)
            assert station.answer(msg_id, count=2)["result"] == "duplicate"
        finally:
            station.close()
            worker.stop()
    assert counts(plant)["consumptions"] == 1


def test_a_scan_the_database_refuses_does_not_sink_its_batch(
    ingest: Ingest, station_client: Station, plant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch is written without a savepoint per scan; when the database refuses one
    scan (here a trigger standing in for a concurrent writer), the whole batch is rolled
    back and retried scan by scan: the others are applied once, the refused one is
    answered ``conflict`` and leaves nothing but its event."""
    engine = get_engine(plant)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER test_refuse BEFORE INSERT ON consumption WHEN "
            "(SELECT msg_id FROM event WHERE id = NEW.event_id) = 'refuse-me' "
            "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
        )
    station_client.wait_for_ingest()
    before = counts(plant)
    ids = scans_in_one_batch(
        engine, ingest.queue, station_client, [None, None, "refuse-me", None, None, None]
    )
    with caplog.at_level("WARNING", logger="server.ingest.worker"):
        answers = [station_client.answer(i, timeout=30) for i in ids]
    assert [a["result"] for a in answers] == ["accepted"] * 2 + ["rejected"] + ["accepted"] * 3
    assert answers[2]["code"] == "conflict"
    assert "retrying event by event" in caplog.text
    after = counts(plant)
    assert after["consumptions"] == before["consumptions"] + 5
    assert after["ledger"] == before["ledger"] + 5
    assert after["scan_events"] == before["scan_events"] + 6
    with engine.connect() as conn:
        assert (
            conn.exec_driver_sql(
                "SELECT result, reason FROM event WHERE msg_id = 'refuse-me'"
            ).one()[0]
            == "rejected"
        )


def test_a_change_by_another_writer_between_batches_is_seen(
    ingest: Ingest, station_client: Station, plant: str
) -> None:
    """The ingest keeps a station's state from one batch to the next only while nothing
    else writes: a sign-out at the tablet (another writer, maybe on the same pooled
    connection) between two scans is seen by the second scan."""
    first = station_client.scan("SCRM3", seq=1)
    assert station_client.answer(first)["result"] == "accepted"
    with write_session(get_engine(plant)) as session:
        signed_out = service.handle(session, station_code="KIT-1", event=SignOut())
    assert signed_out.accepted
    second = station_client.scan("SCRM3", seq=2)
    answer = station_client.answer(second)
    assert answer["result"] == "rejected"
    assert counts(plant)["consumptions"] == 1
    station_client.wait(lambda: station_client.states[-1]["operator"] is None)
