"""``/api/v1/metrics``: a real ``taktline ingest`` process and a web app sharing the
database and the metrics folder; the scrape's counters match what the station received.
Also: who may scrape, the SSE gauge, and the folder's clearing at start."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from server.db import dispose_engine, get_engine, write_session
from server.models import CustomerOrder, Delivery, OutboxEvent
from server.models.types import utcnow
from server.operations import metrics
from server.security import auth
from tests.support.apps import login, make_app
from tests.support.ingest import IngestProcess, Station, broker_conf, screw_step
from tests.support.mosquitto import Mosquitto

KIT = "KIT-1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    run_as = "user root\n" if os.geteuid() == 0 else ""
    with Mosquitto(tmp_path / "mosquitto", extra_conf=run_as + broker_conf()) as m:
        yield m


@pytest.fixture
def plant(demo_db_url: str) -> Iterator[str]:
    screw_step(get_engine(demo_db_url), qty=150)
    dispose_engine(demo_db_url)
    yield demo_db_url


def _tokens(app: Flask) -> dict[str, str]:
    with write_session(app.extensions["taktline.engine"]) as db:
        return {
            "metrics": auth.issue_api_token(
                db, name="prometheus", scopes=["metrics:read"], by=None
            ),
            "orders": auth.issue_api_token(db, name="erp", scopes=["orders:read"], by=None),
        }


def scrape(app: Flask, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the scrape: (name, sorted labels) -> value."""
    response = app.test_client().get(
        "/api/v1/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def settled(app: Flask, token: str, received: Counter[str]) -> dict[Any, float]:
    """A scrape once the ingest counted every answer the station received (the station
    may see its feedback a moment before the ingest counts the batch)."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(app, token)
        answered = {
            r: value(samples, "taktline_ingest_messages_total", station=KIT, result=r)
            for r in received
        }
        if answered == dict(received) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def test_only_a_metrics_token_or_an_admin_may_scrape(demo_app: Flask) -> None:
    tokens = _tokens(demo_app)
    client = demo_app.test_client()
    assert client.get("/api/v1/metrics").status_code == 401
    wrong = client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {tokens['orders']}"})
    assert wrong.status_code == 403 and "metrics:read" in wrong.json["error"]
    bogus = client.get("/api/v1/metrics", headers={"Authorization": "Bearer tla_nope-nope-nope"})
    assert bogus.status_code == 401
    assert scrape(demo_app, tokens["metrics"]) is not None
    login(client, "supervisor")
    assert client.get("/api/v1/metrics").status_code == 403
    login(client, "admin")
    assert client.get("/api/v1/metrics").status_code == 200


def test_the_board_stream_is_counted_while_open(demo_app: Flask) -> None:
    token = _tokens(demo_app)["metrics"]
    name = "taktline_sse_connections"
    before = value(scrape(demo_app, token), name, stream="board")
    client = demo_app.test_client()
    login(client, "supervisor")
    response = client.get("/board/events", buffered=False)
    chunks = iter(response.response)
    assert "event: board" in next(chunks).decode()  # type: ignore[union-attr]
    assert value(scrape(demo_app, token), name, stream="board") == before + 1
    response.close()
    assert value(scrape(demo_app, token), name, stream="board") == before


def test_the_outbox_backlog_and_failures_are_read_from_the_database(any_demo_app: Flask) -> None:
    token = _tokens(any_demo_app)["metrics"]
    now = utcnow()
    with write_session(any_demo_app.extensions["taktline.engine"]) as db:
        order = db.exec(select(CustomerOrder)).first()
        assert order is not None and order.id is not None
        events = [
            OutboxEvent(
                event_id=str(uuid.uuid4()),
                type="com.taktline.test",
                order_id=order.id,
                order_seq=9000 + n,
                subject=order.number,
                time=now,
                data="{}",
                fanned_out=n < 3,
            )
            for n in range(4)
        ]
        db.add_all(events)
        db.flush()
        for event, (channel, status, attempts, age) in zip(
            events[:3],
            [("mqtt", "pending", 0, 30), ("mqtt", "pending", 2, 600), ("webhook:1", "dead", 9, 9)],
            strict=True,
        ):
            assert event.id is not None
            db.add(
                Delivery(
                    channel=channel,
                    outbox_id=event.id,
                    order_id=order.id,
                    order_seq=event.order_seq,
                    status=status,
                    attempts=attempts,
                    created_at=now - timedelta(seconds=age),
                )
            )
    got = scrape(any_demo_app, token)
    assert value(got, "taktline_outbox_events_waiting") == 1
    assert value(got, "taktline_outbox_backlog", channel="mqtt") == 2
    assert value(got, "taktline_outbox_failing", channel="mqtt") == 1
    assert 600 <= value(got, "taktline_outbox_oldest_pending_seconds", channel="mqtt") < 700
    assert value(got, "taktline_outbox_dead", channel="webhook:1") == 1
    assert ("taktline_outbox_backlog", (("channel", "webhook:1"),)) not in got


def test_gunicorn_drops_the_live_gauges_of_a_worker_that_ended(demo_app: Flask) -> None:
    from types import SimpleNamespace

    from server import web

    folder = metrics.folder()
    assert folder is not None and folder == demo_app.extensions["taktline.metrics_dir"].resolve()
    gone = 2**22 + 54321
    for name in (f"gauge_livesum_{gone}.db", f"counter_{gone}.db"):
        (folder / name).write_bytes(b"")
    hooks = web.options(demo_app, bind="127.0.0.1:0", workers=2, threads=4)
    hooks["child_exit"](None, SimpleNamespace(pid=gone))  # in the master, crash or not
    assert not (folder / f"gauge_livesum_{gone}.db").exists()
    assert (folder / f"counter_{gone}.db").exists()  # its counts stay in the totals


def test_the_folder_is_emptied_only_when_no_writer_runs(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    gone = 2**22 + 12345  # above any pid_max: not running
    for name in (f"counter_{gone}.db", f"gauge_livesum_{gone}.db"):
        (folder / name).write_bytes(b"")
    metrics.prepare(folder)
    assert list(folder.iterdir()) == []  # nobody runs: a fresh start
    for name in (f"counter_{gone}.db", f"gauge_livesum_{gone}.db", f"counter_{os.getpid()}.db"):
        (folder / name).write_bytes(b"")
    metrics.prepare(folder)
    # Someone runs: the totals of the process that is gone stay, its live gauges go.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"counter_{gone}.db", f"counter_{os.getpid()}.db"]
    )


@pytest.mark.slow
def test_a_scrape_shows_what_the_ingest_process_did(
    broker: Mosquitto, plant: str, tmp_path: Path
) -> None:
    folder = tmp_path / "metrics"
    app = make_app(plant, tmp_path, METRICS_DIR=str(folder))
    tokens = _tokens(app)
    ingest = IngestProcess(tmp_path / "ingest", plant, broker.url, "ingest-metrics", shared=False)
    ingest.env["TAKTLINE_METRICS_DIR"] = str(folder)
    station = Station(broker.port)
    try:
        ingest.start()
        station.wait_for_ingest()
        received_before = Counter(
            fb["result"] for answers in station.feedback.values() for fb in answers
        )
        before = settled(app, tokens["metrics"], received_before)

        accepted_n, rejected_n = 30, 12
        ids = [station.scan("SCRM3", seq=i) for i in range(1, accepted_n + 1)]
        ids += [
            station.scan(f"NOPE-{uuid.uuid4().hex[:6]}", seq=100 + i) for i in range(rejected_n)
        ]
        station.publish(b"this is not JSON")  # a dead letter, answered rejected
        station.wait(
            lambda: all(station.feedback.get(i) for i in ids) and "None" in station.feedback
        )
        station.scan("SCRM3", seq=1, msg_id=ids[0])  # the bridge's retry: a duplicate
        station.answer(ids[0], count=2)

        scans = Counter(station.feedback[i][0]["result"] for i in ids)
        assert scans == {"accepted": accepted_n, "rejected": rejected_n}
        received = Counter(fb["result"] for answers in station.feedback.values() for fb in answers)
        assert received - received_before == {
            "accepted": accepted_n,
            "rejected": rejected_n + 1,
            "duplicate": 1,
        }

        def delta(after: dict[Any, float], name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        # The ingest's own counters (from 0: the folder was emptied at the start) reach the
        # web process through the shared folder: every answer the station received, the
        # pings of wait_for_ingest included.
        after = settled(app, tokens["metrics"], received)
        answered = {
            r: value(after, "taktline_ingest_messages_total", station=KIT, result=r)
            for r in received
        }
        assert answered == dict(received), ingest.log()[-2000:]

        # Read from the database: right whichever process wrote (duplicates are not events).
        for result, n in (("accepted", accepted_n), ("rejected", rejected_n)):
            got = delta(after, "taktline_events_total", station=KIT, kind="scan", result=result)
            assert got == n, result
        assert delta(after, "taktline_dead_letters", kind="bad_payload") == 1
        assert delta(after, "taktline_dead_letters_recorded_total") == 1
        # Every decided event (not the garbage, not the duplicate) had its latency measured.
        assert (
            delta(after, "taktline_ingest_arrival_to_commit_seconds_count")
            == accepted_n + rejected_n
        )
        assert delta(after, "taktline_scan_to_commit_seconds_count") == accepted_n + rejected_n
        assert delta(after, "taktline_ingest_batch_size_sum") == accepted_n + rejected_n + 2
        assert value(after, "taktline_ingest_batch_seconds_count") >= 1
        assert ("taktline_ingest_queue_depth", ()) in after
        assert time.time() - value(after, "taktline_ingest_heartbeat_timestamp_seconds") < 5
        pids = {p.name.rsplit("_", 1)[1] for p in folder.glob("*.db")}
        assert f"{ingest.proc.pid}.db" in pids  # type: ignore[union-attr]
    finally:
        station.close()
        ingest.stop()
