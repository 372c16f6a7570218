"""`taktline mqtt-credentials` against a real Mosquitto started with its files.

Station A's bridge login cannot publish a scan as station B: with MQTT 5 the broker
answers PUBACK "not authorized", and nothing reaches the server's subscription, while
A's own scans do. Checked with both broker layouts it writes: ``listeners.conf`` (a
server and a station listener, each with its own logins) and the one-listener
``passwd`` + ``acl`` of existing deployments. tests/test_mqtt_client_ids.py checks
what the station listener adds: a station's client id is always its login.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlmodel import Session, select

from firmware_bridge import topics
from server.messaging import credentials as mc
from server.models import Line, Site, Station
from tests.support.apps import CliRunner, make_app
from tests.support.mosquitto import credentials_broker, free_port

NOT_AUTHORIZED = 135
SECRET = "mqtt-acl-test-secret"


class Client:
    """A paho MQTT 5 client that records what it receives and each PUBACK's reason."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.acks: dict[int, int] = {}
        self.subacks: queue.Queue[list[int]] = queue.Queue()
        self.connected = threading.Event()
        self.connect_reason: int | None = None
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=mqtt.MQTTv5
        )
        self.paho.username_pw_set(user, password)
        self.paho.on_connect = self._on_connect
        self.paho.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, msg.payload))
        self.paho.on_publish = self._on_publish
        self.paho.on_subscribe = lambda _c, _u, _mid, codes, _p: self.subacks.put(
            [c.value for c in codes]
        )
        self.paho.connect("127.0.0.1", port)
        self.paho.loop_start()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connect_reason = reason.value
        self.connected.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self.acks[mid] = reason.value

    def publish(self, topic: str, payload: str) -> int:
        info = self.paho.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=5)
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> list[int]:
        self.paho.subscribe(topic, qos=1)
        return self.subacks.get(timeout=5)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


@pytest.fixture(params=["listeners", "one-listener"])
def plant(
    request: pytest.FixtureRequest, demo_db_url: str, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    app: Flask = make_app(
        demo_db_url, tmp_path, MQTT_URL="mqtt://ingest:s3cret@127.0.0.1:1", SECRET_KEY=SECRET
    )
    out = tmp_path / "mqtt"
    server_port, station_port = free_port(), free_port()
    args = [
        "mqtt-credentials",
        "--out",
        str(out),
        "--server-listener",
        f"127.0.0.1:{server_port}",
        "--station-listener",
        f"127.0.0.1:{station_port}",
        "--no-station-tls",
    ]
    result = CliRunner(app).invoke(args)
    assert result.exit_code == 0, result.output
    with Session(app.extensions["taktline.engine"]) as db:
        rows = db.exec(
            select(Station.code, Line.code, Site.code)
            .join(Line, Station.line_id == Line.id)  # type: ignore[arg-type]
            .join(Site, Line.site_id == Site.id)
        ).all()  # type: ignore[arg-type]
    where = {code: (site, line) for code, line, site in rows}
    legacy = request.param == "one-listener"
    broker = credentials_broker(tmp_path / "broker", out, port=server_port, legacy=legacy)
    with broker:
        yield {
            "app": app,
            "args": args,
            "out": out,
            "broker": broker,
            "where": where,
            "listeners": (server_port, station_port),  # as listeners.conf has them
            "server_port": server_port,
            "station_port": server_port if legacy else station_port,
        }


def _topic(plant: dict[str, Any], code: str, kind: str) -> str:
    site, line = plant["where"][code]
    return topics.build(site, line, code, kind)


def _login(plant: dict[str, Any], code: str) -> Client:
    password = (plant["out"] / f"bridge-{code}.password").read_text().strip()
    client = Client(plant["station_port"], mc.station_user(code), password)
    assert client.connected.wait(5) and client.connect_reason == 0
    return client


def test_station_cannot_publish_as_another_station(plant: dict[str, Any]) -> None:
    server = Client(plant["server_port"], "ingest", "s3cret")  # the login from MQTT_URL
    kit = _login(plant, "KIT-1")
    try:
        assert server.connected.wait(5) and server.connect_reason == 0
        assert server.subscribe("$share/taktline-ingest/taktline/+/+/+/evt/#") == [1]
        forged = kit.publish(_topic(plant, "BRD-1", "evt/scan"), '{"data": "forged"}')
        assert forged == NOT_AUTHORIZED
        assert kit.publish(_topic(plant, "KIT-1", "evt/scan"), '{"data": "mine"}') == 0
        topic, payload = server.messages.get(timeout=5)
        assert (topic, payload) == (_topic(plant, "KIT-1", "evt/scan"), b'{"data": "mine"}')
        with pytest.raises(queue.Empty):
            server.messages.get(timeout=0.5)
        # Nor may a station read another's commands (mosquitto 2.0 grants the
        # subscription but never delivers), or write commands itself.
        kit.subscribe(_topic(plant, "BRD-1", "cmd/feedback"))
        assert kit.subscribe(_topic(plant, "KIT-1", "cmd/feedback")) == [1]
        assert kit.publish(_topic(plant, "KIT-1", "cmd/feedback"), "{}") == NOT_AUTHORIZED
        assert server.publish(_topic(plant, "BRD-1", "cmd/feedback"), '{"ref": "b"}') == 0
        assert server.publish(_topic(plant, "KIT-1", "cmd/feedback"), '{"ref": "k"}') == 0
        assert kit.messages.get(timeout=5) == (
            _topic(plant, "KIT-1", "cmd/feedback"),
            b'{"ref": "k"}',
        )
        with pytest.raises(queue.Empty):
            kit.messages.get(timeout=0.5)
    finally:
        kit.close()
        server.close()


def test_wrong_password_and_anonymous_are_refused(plant: dict[str, Any]) -> None:
    for user, password in (("station-KIT-1", "guess"), ("", "")):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if user:
            client.username_pw_set(user, password)
        reasons: queue.Queue[int] = queue.Queue()
        client.on_connect = lambda _c, _u, _f, reason, _p, q=reasons: q.put(reason.value)
        props = Properties(PacketTypes.CONNECT)
        client.connect("127.0.0.1", plant["station_port"], properties=props)
        client.loop_start()
        try:
            # 134 bad user name or password, 135 not authorized
            assert reasons.get(timeout=5) in (134, 135)
        finally:
            client.disconnect()
            client.loop_stop()


def test_files_are_private_and_rerunning_keeps_bridge_passwords(
    plant: dict[str, Any], demo_db_url: str, tmp_path: Path
) -> None:
    out = plant["out"]
    for name in ("passwd", "passwd-server", "passwd-stations", "bridge-KIT-1.password"):
        assert (out / name).stat().st_mode & 0o077 == 0, name
    for login in ("taktline-web", "taktline-ingest-1"):
        assert (out / f"{login}.password").stat().st_mode & 0o077 == 0
    acl = (out / "acl").read_text()
    assert "user station-BRD-2\n" in acl and "topic readwrite taktline/#" in acl
    servers = _logins(out / "passwd-server")
    assert servers == ["taktline-ingest-1", "taktline-web", "ingest"]
    stations = _logins(out / "passwd-stations")
    assert "station-KIT-1" in stations and all(u.startswith("station-") for u in stations)
    assert _logins(out / "passwd") == servers + stations
    before = (out / "bridge-KIT-1.password").read_text()
    with Session(plant["app"].extensions["taktline.engine"]) as db:  # a station is added
        kit = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        db.add(Station(line_id=kit.line_id, code="NEW-1", name="New", kind="kitting"))
        db.commit()
    app = make_app(
        demo_db_url, tmp_path / "again", MQTT_URL="mqtt://ingest:s3cret@h:1", SECRET_KEY=SECRET
    )
    assert CliRunner(app).invoke(plant["args"]).exit_code == 0
    assert (out / "bridge-KIT-1.password").read_text() == before
    plant["broker"].proc.send_signal(signal.SIGHUP)  # Mosquitto rereads passwd and acl
    time.sleep(0.5)
    _login(plant, "KIT-1").close()  # the running broker still accepts that bridge
    _login(plant, "NEW-1").close()  # and now the new one


def _logins(passwd: Path) -> list[str]:
    return [line.split(":", 1)[0] for line in passwd.read_text().splitlines()]


def test_listeners_conf_binds_client_ids_on_the_station_listener_only(
    plant: dict[str, Any],
) -> None:
    conf = (plant["out"] / "listeners.conf").read_text()
    server, station = conf.split("\nlistener ")[1:]
    out = plant["out"].resolve()
    assert conf.startswith("#") and "\nper_listener_settings true\n" in conf
    server_port, station_port = plant["listeners"]
    assert server.startswith(f"{server_port} 127.0.0.1\n")
    assert f"password_file {out / 'passwd-server'}\n" in server
    assert "use_username_as_clientid" not in server
    assert station.startswith(f"{station_port} 127.0.0.1\n")
    assert f"password_file {out / 'passwd-stations'}\n" in station
    assert "use_username_as_clientid true\n" in station and "cafile" not in station
    for both in (server, station):
        assert "allow_anonymous false\n" in both and f"acl_file {out / 'acl'}" in both


def test_hash_matches_mosquitto_passwd_format() -> None:
    value = mc.mosquitto_hash("pw", salt=b"0123456789ab")
    kind, iterations, salt, digest = value.split("$")[1:]
    assert (kind, iterations, salt) == ("7", "101", "MDEyMzQ1Njc4OWFi")
    assert len(digest) == 88  # 64-byte SHA-512 in base64
