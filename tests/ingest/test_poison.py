"""Hostile and broken messages never stop the ingest (issue 13): each is answered,
kept as a dead letter and acknowledged; a valid scan right after is answered; a flood of
garbage or duplicates from one station does not pile up work; a dead worker shows."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, col, func, select

from server.db import get_engine, write_session
from server.ingest import EXTENSION
from server.ingest.worker import Ingest
from server.models import Consumption, DeadLetter, Event
from server.models.types import EventResult
from station import service
from tests.support.apps import make_app
from tests.support.hostile import HOSTILE
from tests.support.ingest import Station, counts
from tests.support.mosquitto import Mosquitto


def make_ingest(broker: Mosquitto, plant: str, **kw: Any) -> Ingest:
    worker = Ingest(engine=get_engine(plant), url=broker.url, client_id="poison-ingest", **kw)
    worker.start()
    assert worker.subscribed.wait(10)
    return worker


@pytest.fixture
def ingest(broker: Mosquitto, plant: str) -> Iterator[Ingest]:
    worker = make_ingest(broker, plant)
    yield worker
    worker.stop()


def dead_letters(plant: str) -> list[DeadLetter]:
    with Session(get_engine(plant)) as session:
        return list(session.exec(select(DeadLetter).order_by(col(DeadLetter.id))))


def valid_scan_is_answered(station: Station) -> None:
    msg_id = station.scan("SCRM3", seq=1)
    assert station.answer(msg_id, timeout=10)["result"] == "accepted"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_message_is_answered_kept_and_the_next_scan_goes_through(
    ingest: Ingest, station_client: Station, plant: str, name: str
) -> None:
    raw = HOSTILE[name]
    ref = json.loads(raw[:40].split(b",")[0] + b"}")["msg_id"] if name != "deep" else "deep-1"
    station_client.publish(raw)
    answer = station_client.answer(ref, timeout=15)
    assert answer["result"] == "rejected" and answer["code"] in ("bad_payload", "internal_error")
    assert answer["reason"]
    valid_scan_is_answered(station_client)
    letters = dead_letters(plant)
    assert [(d.msg_id, d.size) for d in letters] == [(ref, len(raw))]
    assert letters[0].payload == raw[: 64 * 1024] and letters[0].error
    assert letters[0].topic.endswith("/KIT-1/evt/scan") and letters[0].station == "KIT-1"
    assert ingest.alive()


def test_hostile_messages_queued_while_the_ingest_is_down_do_not_block_its_restart(
    broker: Mosquitto, station_client: Station, plant: str
) -> None:
    first = make_ingest(broker, plant)
    first.stop()
    for raw in HOSTILE.values():
        station_client.publish(raw)
    good = station_client.scan("SCRM3", seq=1)
    second = make_ingest(broker, plant)
    try:
        assert station_client.answer(good, timeout=20)["result"] == "accepted"
        station_client.wait(lambda: len(dead_letters(plant)) == len(HOSTILE), timeout=20)
        assert second.alive()
    finally:
        second.stop()
    # Acknowledged: a third start gets nothing back to choke on.
    third = make_ingest(broker, plant)
    try:
        valid_scan_is_answered(station_client)
        assert len(dead_letters(plant)) == len(HOSTILE)
    finally:
        third.stop()


def test_a_garbage_flood_is_rate_limited_and_never_silent(
    broker: Mosquitto, station_client: Station, plant: str
) -> None:
    worker = make_ingest(broker, plant, garbage_rate=1.0, garbage_burst=10)
    try:
        ids = [f"junk-{i}" for i in range(60)]
        for msg_id in ids:
            station_client.publish(b'{"msg_id": "%s", "data": 5}' % msg_id.encode())
        station_client.wait(lambda: worker.processed >= 60, timeout=20)  # all acknowledged
        station_client.wait(lambda: sum(1 for i in ids if station_client.feedback.get(i)) >= 11)
        time.sleep(0.5)  # the last answers in flight
        answers = [station_client.feedback[i][0] for i in ids if station_client.feedback.get(i)]
        codes = [a["code"] for a in answers]
        # Within the burst each is answered; beyond it the station is told once per batch
        # (answering each copy of a flood would crowd out the other stations' feedback).
        assert set(codes) == {"bad_payload", "rate_limited"}
        assert 10 <= codes.count("bad_payload") <= 15
        limited = next(a for a in answers if a["code"] == "rate_limited")
        assert limited["result"] == "rejected" and "too fast" in limited["reason"]
        # Only what was let through was written.
        assert len(dead_letters(plant)) == codes.count("bad_payload")
        valid_scan_is_answered(station_client)
    finally:
        worker.stop()


def test_two_thousand_copies_of_one_message_count_once(
    ingest: Ingest, station_client: Station, plant: str
) -> None:
    msg_id = str(uuid.uuid4())
    body = {"msg_id": msg_id, "seq": 1, "source": "scanner1", "data": "SCRM3"}
    before = ingest.processed
    for _ in range(2000):
        station_client.publish(body)
    station_client.wait(lambda: ingest.processed >= before + 2000, timeout=60)
    # One accepted; the copies are answered duplicate, once per batch they arrive in.
    station_client.answer(msg_id, count=2, timeout=10)
    results = [a["result"] for a in station_client.feedback[msg_id]]
    assert results[0] == "accepted" and set(results[1:]) == {"duplicate"}
    assert all(a.get("original", "accepted") == "accepted" for a in station_client.feedback[msg_id])
    assert counts(plant)["consumptions"] == 1
    with Session(get_engine(plant)) as session:
        events = select(func.count()).select_from(Event).where(Event.msg_id == msg_id)
        assert session.exec(events).one() == 1
        assert session.exec(select(func.count()).select_from(Consumption)).one() == 1


def test_a_dead_worker_shows_on_healthz(
    broker: Mosquitto, plant: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Flask = make_app(plant, tmp_path)
    worker = make_ingest(broker, plant)
    app.extensions[EXTENSION] = worker
    client = app.test_client()
    try:
        ok = client.get("/healthz")
        assert ok.status_code == 200 and ok.json["ingest"]["alive"] is True

        # Fault injection: something no handler catches ends the worker thread.
        def die(_: Any, timeout: float) -> Any:
            raise SystemExit("injected")

        monkeypatch.setattr(worker.queue, "take", lambda *a, **k: die(*a, **k))
        deadline = time.monotonic() + 10
        while worker.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        down = client.get("/healthz")
        assert down.status_code == 503
        assert down.json["status"] == "ingest down" and down.json["ingest"]["alive"] is False
    finally:
        worker.stop(timeout=1)


def test_a_burst_of_garbage_is_answered_and_kept_bounded(
    broker: Mosquitto, station_client: Station, plant: str
) -> None:
    """Garbage within the burst: each answered and its event kept; the dead-letter table
    never keeps more than ``dead_letter_max``, the newest."""
    worker = make_ingest(broker, plant, garbage_rate=1000.0, garbage_burst=1000, dead_letter_max=7)
    try:
        ids = [f"junk-{i:03d}" for i in range(40)]
        for msg_id in ids:
            station_client.publish(b'{"msg_id": "%s", "data": 5}' % msg_id.encode())
        for msg_id in ids:
            answer = station_client.answer(msg_id, timeout=15)
            assert answer["result"] == "rejected" and answer["code"] == "bad_payload"
        valid_scan_is_answered(station_client)
        assert [d.msg_id for d in dead_letters(plant)] == ids[-7:]
        with Session(get_engine(plant)) as session:
            rejected = select(Event.msg_id).where(col(Event.msg_id).in_(ids))
            assert sorted(session.exec(rejected)) == ids
    finally:
        worker.stop()


def test_garbage_reusing_a_recorded_msg_id_is_a_duplicate_and_not_kept(
    broker: Mosquitto, station_client: Station, plant: str
) -> None:
    first = make_ingest(broker, plant)
    try:
        msg_id = station_client.scan("SCRM3", seq=1)
        assert station_client.answer(msg_id, timeout=10)["result"] == "accepted"
    finally:
        first.stop()
    # A new process: the msg_id is known to the database only.
    second = make_ingest(broker, plant)
    try:
        station_client.publish(b'{"msg_id": "%s", "data": 5}' % msg_id.encode())
        fresh = "junk-new"
        station_client.publish(b'{"msg_id": "%s", "data": 5}' % fresh.encode())
        assert station_client.answer(fresh, timeout=10)["code"] == "bad_payload"
        assert station_client.answer(msg_id, count=2, timeout=10)["result"] == "duplicate"
        assert [d.msg_id for d in dead_letters(plant)] == [fresh]
        assert counts(plant)["consumptions"] == 1
    finally:
        second.stop()


def test_refused_payloads_are_recorded_in_one_statement_each_msg_id_once(
    any_demo_db_url: str,
) -> None:
    """``record_events``: the msg_ids inserted; a known one is left as it was."""
    rows = [
        service.event_row(
            msg_id=f"bad-{i}",
            station_id=None,
            channel="mqtt",
            kind="scan",
            result=EventResult.REJECTED,
            code="bad_payload",
            params={"detail": "no data"},
        )
        for i in range(3)
    ]
    engine = get_engine(any_demo_db_url)
    with write_session(engine) as session:
        assert service.record_events(session, rows[:2]) == {"bad-0", "bad-1"}
    with write_session(engine) as session:
        assert service.record_events(session, rows[1:]) == {"bad-2"}
        assert service.record_events(session, []) == set()
    with Session(engine) as session:
        events = session.exec(select(Event).where(col(Event.msg_id).like("bad-%"))).all()
        assert sorted(e.msg_id for e in events) == ["bad-0", "bad-1", "bad-2"]
        assert all(e.result == "rejected" and e.code == "bad_payload" for e in events)
