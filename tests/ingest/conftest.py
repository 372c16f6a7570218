"""Fixtures for the ingest: a private Mosquitto (or amqtt), the demo plant with a step
in progress at KIT-1 that takes many screw scans, a station-side MQTT client, and
``taktline ingest`` as a real process. The helpers they use are in
``tests/support/ingest.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.db import dispose_engine, get_engine
from server.ingest.worker import Ingest
from tests.support.ingest import IngestProcess, Station, broker_conf, screw_step
from tests.support.mosquitto import Mosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    # Started as root, mosquitto drops to the `mosquitto` user, which cannot write its
    # persistence file in our temporary folder: a restart would then lose the sessions.
    run_as = "user root\n" if os.geteuid() == 0 else ""
    with Mosquitto(tmp_path / "mosquitto", extra_conf=run_as + broker_conf()) as m:
        yield m


@pytest.fixture
def plant(demo_db_url: str) -> Iterator[str]:
    """The demo database with a 150-screw step in progress at KIT-1."""
    screw_step(get_engine(demo_db_url), qty=150)
    dispose_engine(demo_db_url)
    yield demo_db_url


@pytest.fixture
def station_client(broker: Mosquitto) -> Iterator[Station]:
    station = Station(broker.port)
    yield station
    station.close()


@pytest.fixture
def ingest_processes(tmp_path: Path) -> Iterator[list[IngestProcess]]:
    started: list[IngestProcess] = []
    yield started
    for proc in started:
        proc.stop()


@pytest.fixture
def ingest(broker: Mosquitto, plant: str) -> Iterator[Ingest]:
    """The ingest in this process, subscribed to the private broker (a test file may
    define its own)."""
    worker = Ingest(
        engine=get_engine(plant), url=broker.url, client_id="test-ingest", shared=True
    ).start()
    assert worker.subscribed.wait(5)
    yield worker
    worker.stop()
