"""No scan lost, none doubled, order kept: broker outage and bridge SIGKILL (issue 5).

QoS 1 may deliver a message twice and a bridge killed between the broker's PUBACK
and its own delete sends that row again with the same ``msg_id``; the server
dedupes on ``msg_id``. So these tests count distinct ``msg_id``s and check the
order of first occurrence.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_bridge import config as bridge_config
from firmware_bridge import topics
from firmware_bridge.bridge import Bridge
from firmware_bridge.simulate import PtyPort
from tests.support.bridge import Subscriber, wait_opened, write_config
from tests.support.mosquitto import Mosquitto

REPO = Path(__file__).resolve().parents[2]
COUNT = 500


def type_scans(port: PtyPort, count: int) -> list[str]:
    scans = [f"]C1SCAN-{i:04d}" for i in range(count)]
    port.type(b"".join(s.encode() + b"\r\n" for s in scans))
    return scans


def wait_all_read(port: PtyPort, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while port.pending_input():
        assert time.monotonic() < deadline, "the bridge stopped reading its port"
        time.sleep(0.05)


def wait_stored(outbox: Path, count: int, timeout: float = 60.0) -> None:
    """Wait until the bridge has written ``count`` events to its disk outbox.

    Bytes the bridge has read but not yet stored die with a SIGKILL, as they would on a
    real box; a busy machine can take seconds to store 500, so the test waits for the
    disk rather than guessing a delay.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5) as db:
                stored = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            stored = 0
        if stored >= count:
            return
        assert time.monotonic() < deadline, f"only {stored} of {count} events reached the outbox"
        time.sleep(0.05)


def first_seen(sub: Subscriber) -> list[dict]:
    """Payloads in arrival order, each msg_id once."""
    seen: dict[str, dict] = {}
    for _, payload in list(sub.messages):
        event = json.loads(payload)
        seen.setdefault(event["msg_id"], event)
    return list(seen.values())


def wait_distinct(sub: Subscriber, count: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(events := first_seen(sub)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return events


@pytest.fixture
def private_broker(tmp_path: Path):
    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    broker.stop()


@pytest.mark.slow
def test_broker_down_30s_while_500_scans_are_typed(
    tmp_path: Path, private_broker: Mosquitto, station: dict[str, str], ports
):
    scan_topic = topics.build(station["site"], station["line"], station["station"], "evt/scan")
    sub = Subscriber(private_broker.port, scan_topic)  # persistent session: survives the outage
    bridge = Bridge(bridge_config.load(write_config(tmp_path, station, private_broker.url)))
    bridge.start()
    try:
        wait_opened(ports["scanner1"])
        private_broker.stop()
        stopped = time.monotonic()
        typed = type_scans(ports["scanner1"], COUNT)
        wait_all_read(ports["scanner1"])
        wait_stored(tmp_path / "outbox.sqlite", COUNT)
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        private_broker.start()

        events = wait_distinct(sub, COUNT, timeout=60)
        assert [e["data"] for e in events] == typed
        assert [e["seq"] for e in events] == list(range(1, COUNT + 1))
        assert len(sub.messages) - COUNT <= 100  # redeliveries only from the in-flight window
    finally:
        bridge.stop()
        sub.close()


def test_sigkill_mid_replay_then_restart(
    tmp_path: Path, private_broker: Mosquitto, station: dict[str, str], ports
):
    scan_topic = topics.build(station["site"], station["line"], station["station"], "evt/scan")
    config = write_config(tmp_path, station, private_broker.url)
    sub = Subscriber(private_broker.port, scan_topic)
    status = Subscriber(private_broker.port, scan_topic.replace("evt/scan", "status"))
    log = tmp_path / "bridge.log"

    def start_bridge() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "firmware_bridge", "bridge", "--config", str(config)],
                cwd=REPO,
                stdout=out,
                stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    proc = start_bridge()
    try:
        wait_opened(ports["scanner1"], timeout=15)
        # Scans pile up in the outbox while the broker is away ...
        private_broker.stop()
        typed = type_scans(ports["scanner1"], COUNT)
        wait_all_read(ports["scanner1"])
        wait_stored(config.parent / "outbox.sqlite", COUNT)
        private_broker.start()
        # ... and the bridge dies while replaying them.
        while len(first_seen(sub)) < 50:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen_at_kill = len(first_seen(sub))
        assert status.wait_for(1, where=lambda t, p: p == b"offline")  # the last will

        proc = start_bridge()
        events = wait_distinct(sub, COUNT, timeout=60)
        assert seen_at_kill < COUNT, "the kill came after the replay; not a mid-stream test"
        assert [e["data"] for e in events] == typed, log.read_text()[-3000:]
        assert [e["seq"] for e in events] == list(range(1, COUNT + 1))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()[-3000:]
        sub.close()
        status.close()
