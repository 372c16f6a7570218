"""Client ids bound to logins, on a real Mosquitto set up by `taktline mqtt-credentials`.

The attack of issue 13 (item 2): the ingest is down, 50 scans wait in its persistent
session, and station KIT-1's login connects with the ingest's client id and a clean
session. On the one-listener layout (``passwd`` + ``acl``) that deletes the ingest's
session and its queue: none of the 50 scans is ever applied (the control run). With
``listeners.conf`` the station login is refused on the server listener, and on the
station listener its client id is its login whatever it sends; the ingest's queue is
intact and all 50 scans are applied. The web processes' one login keeps several
connections (publisher and state subscription of each process) side by side.
"""

from __future__ import annotations

import queue
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from flask import Flask

from server.db import dispose_engine, get_engine
from server.messaging import client as server_mqtt
from server.messaging import live
from tests.support.apps import make_app
from tests.support.credentials import Bridge, credentials, password
from tests.support.ingest import PREFIX, IngestProcess, counts, screw_step
from tests.support.mosquitto import credentials_broker

SCANS = 50
NOT_AUTHORIZED = 135  # CONNACK 5 of MQTT 3.1.1, as paho reports it
INGEST = "taktline-ingest-1"


@pytest.fixture
def plant(demo_db_url: str) -> str:
    """The demo database with a 150-screw step in progress at KIT-1."""
    screw_step(get_engine(demo_db_url), qty=150)
    dispose_engine(demo_db_url)
    return demo_db_url


def _connect_as_ingest(port: int, password: str) -> int:
    """Station KIT-1's login connects with the ingest's client id and a clean session
    (what deletes a persistent session); returns the CONNACK reason (0: accepted)."""
    answer: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=INGEST, clean_session=True)
    client.username_pw_set("station-KIT-1", password)
    client.on_connect = lambda _c, _u, _f, reason, _p: answer.put(reason.value)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        reason = answer.get(timeout=5)
        time.sleep(1.0)  # stay a moment, as the attacker of the issue did
        return reason
    finally:
        client.disconnect()
        client.loop_stop()


def _connections(broker_log: str) -> list[tuple[str, str]]:
    """(client id, login) of every connection the broker accepted."""
    return re.findall(r"New client connected from \S+ as (\S+) \([^)]*u'([^']*)'\)", broker_log)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layout", "applied"), [("listeners", SCANS), ("one-listener", 0)], ids=["listeners", "control"]
)
def test_station_login_cannot_take_over_the_ingest_session(
    plant: str, tmp_path: Path, layout: str, applied: int
) -> None:
    out, server_port, station_port = credentials(plant, tmp_path)
    legacy = layout == "one-listener"
    if legacy:
        station_port = server_port
    station_password = password(out, "station-KIT-1")
    url = f"mqtt://{INGEST}:{password(out, INGEST)}@127.0.0.1:{server_port}"
    with credentials_broker(tmp_path / "broker", out, port=server_port, legacy=legacy) as broker:
        # No --client-id: an ingest login of mqtt-credentials is its own client id.
        ingest = IngestProcess(tmp_path / "ingest", plant, url, client_id="", shared=False)
        bridge = Bridge(station_port, station_password)
        try:
            ingest.start()
            bridge.ping()
            ingest.stop()  # SIGTERM: its persistent session stays at the broker
            infos = [
                bridge.publish(
                    "evt/scan",
                    {"msg_id": str(uuid.uuid4()), "seq": n, "source": "scanner1", "data": "SCRM3"},
                )
                for n in range(1, SCANS + 1)
            ]
            for info in infos:
                info.wait_for_publish(timeout=10)  # the broker holds every scan for the ingest
            bridge.close()

            refused = _connect_as_ingest(server_port, station_password)
            assert refused == (0 if legacy else NOT_AUTHORIZED)  # on the server listener
            if not legacy:  # on the station listener it is let in, as station-KIT-1
                assert _connect_as_ingest(station_port, station_password) == 0

            bridge = Bridge(station_port, station_password)
            ingest.start()
            bridge.ping()
            if not legacy:  # and while the ingest runs (it would take over its connection)
                bridge.close()  # one login, one connection: it would be kicked off
                assert _connect_as_ingest(station_port, station_password) == 0
                bridge = Bridge(station_port, station_password)
                bridge.ping()
            assert counts(plant)["scan_events"] == applied, ingest.log()[-2000:]
        finally:
            bridge.close()
            ingest.stop()
        seen = _connections((broker.workdir / "mosquitto.log").read_text())
    ingest_sessions = [login for client_id, login in seen if client_id == INGEST]
    if legacy:  # the station's login took the ingest's client id
        assert "station-KIT-1" in ingest_sessions
        return
    assert ingest_sessions == [INGEST, INGEST]  # the ingest's two starts, nobody else
    # Whatever client id it sent, the station's login only ever had its own.
    assert {cid for cid, login in seen if login == "station-KIT-1"} == {"station-KIT-1"}
    assert counts(plant)["consumptions"] == SCANS


@pytest.fixture
def web_apps(plant: str, tmp_path: Path) -> Iterator[tuple[list[Flask], Path, int]]:
    out, server_port, _ = credentials(plant, tmp_path)
    url = f"mqtt://taktline-web:{password(out, 'taktline-web')}@127.0.0.1:{server_port}"
    apps = [make_app(plant, tmp_path / f"web{n}", MQTT_URL=url) for n in (1, 2)]
    with credentials_broker(tmp_path / "broker", out, port=server_port) as broker:
        stoppers = [live.start(app, url) for app in apps]
        try:
            yield apps, broker.workdir / "mosquitto.log", server_port
        finally:
            for stop in stoppers:
                stop()


def test_web_processes_share_one_login_without_kicking_each_other(
    web_apps: tuple[list[Flask], Path, int],
) -> None:
    apps, broker_log, _ = web_apps
    publishers = [server_mqtt.publisher(app) for app in apps]
    for publisher in publishers:
        assert publisher is not None and publisher.connected.wait(5)
    deadline = time.monotonic() + 5
    while len(_connections(broker_log.read_text())) < 4:  # 2 processes x (publisher, live)
        assert time.monotonic() < deadline, broker_log.read_text()[-2000:]
        time.sleep(0.1)
    # One process's publisher to the broker, back through the state subscriptions.
    snapshot = {"site": "PLT1", "line": "PC1", "station": "KIT-1", "probe": uuid.uuid4().hex}
    assert publishers[0] is not None
    publishers[0].publish(f"{PREFIX}/state", snapshot, retain=True)
    while live.latest("KIT-1") != snapshot:
        assert time.monotonic() < deadline + 5, "the state never came back"
        time.sleep(0.05)
    time.sleep(1.0)  # nobody is disconnected a moment later either
    assert all(p is not None and p.connected.is_set() for p in publishers)
    seen = _connections(broker_log.read_text())
    assert len(seen) == 4 and {login for _, login in seen} == {"taktline-web"}
    assert len({client_id for client_id, _ in seen}) == 4
