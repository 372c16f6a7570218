"""PostgreSQL: an ingest process stopped (not dead) in the middle of a batch holds the
row locks of the stations and lots that batch took; the server ends that transaction
after ``TAKTLINE_INGEST_STALL_SECONDS``, so the stations' tablets go on, and the
ingest, resumed, runs the batch again: each scan is applied once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.db import dispose_engine, get_engine, write_session
from station import service
from station.workflow import Pause
from tests.support.ingest import IngestProcess, Station, counts, screw_step
from tests.support.mosquitto import Mosquitto

# The ingest's backend waiting for a row lock: the screw lots the test holds.
_WAITING = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


@pytest.fixture
def pg_plant(any_demo_db_url: str) -> Iterator[str]:
    if any_demo_db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's idle_in_transaction_session_timeout ends a stalled batch")
    screw_step(get_engine(any_demo_db_url), qty=150)
    yield any_demo_db_url
    dispose_engine(any_demo_db_url)


def test_a_stalled_ingest_gives_its_station_back_and_applies_the_scan_once(
    pg_plant: str,
    broker: Mosquitto,
    station_client: Station,
    tmp_path: Path,
    ingest_processes: list[IngestProcess],
) -> None:
    engine = get_engine(pg_plant)
    ingest = IngestProcess(tmp_path / "ingest", pg_plant, broker.url, "ingest-st", shared=False)
    ingest.env["TAKTLINE_INGEST_STALL_SECONDS"] = "1"
    ingest.start()
    ingest_processes.append(ingest)
    station_client.wait_for_ingest()
    assert ingest.proc is not None
    pid = ingest.proc.pid
    before = counts(pg_plant)
    # Hold the screw lots: the batch takes KIT-1, then waits for them.
    with engine.connect() as other:
        held = other.begin()
        other.exec_driver_sql(
            "SELECT l.id FROM stocklot l JOIN part p ON p.id = l.part_id "
            "WHERE p.sku = 'SCR-M3' FOR UPDATE OF l"
        ).all()
        msg_id = station_client.scan("SCRM3", seq=1)
        deadline = time.monotonic() + 15
        with engine.connect() as probe:
            while not probe.execute(_WAITING).scalar():
                assert time.monotonic() < deadline, ingest.log()[-2000:]
                time.sleep(0.05)
        os.kill(pid, signal.SIGSTOP)  # the batch's backend now waits for a stopped client
        held.rollback()
    paused: list[service.Outcome] = []
    done = threading.Event()

    def pause() -> None:
        with write_session(engine) as session:
            paused.append(service.handle(session, station_code="KIT-1", event=Pause()))
        done.set()

    tablet = threading.Thread(target=pause, daemon=True)
    tablet.start()
    try:
        assert done.wait(20), "the tablet still waits for the stopped ingest's batch"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert paused[0].code == "paused"
    answer = station_client.answer(msg_id, timeout=30)
    after = counts(pg_plant)
    # Decided again after the pause (refused at a paused step) or before it: once.
    applied = 1 if answer["result"] == "accepted" else 0
    assert after["consumptions"] == before["consumptions"] + applied, answer
    assert after["ledger"] == before["ledger"] + applied
    assert after["scan_events"] == before["scan_events"] + 1
