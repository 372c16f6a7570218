"""The bridge in-process, against a private Mosquitto and real pseudo-terminals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from firmware_bridge import config as bridge_config
from firmware_bridge import topics
from firmware_bridge.bridge import Bridge
from firmware_bridge.simulate import PtyPort
from tests.support.bridge import publish, wait_opened, write_config
from tests.support.mosquitto import Mosquitto, free_port

GS = b"\x1d"


@pytest.fixture
def bridge(
    tmp_path: Path, broker: Mosquitto, station: dict[str, str], ports: dict[str, PtyPort]
) -> Iterator[Bridge]:
    cfg = bridge_config.load(write_config(tmp_path, station, broker.url))
    running = Bridge(cfg)
    running.start()
    wait_opened(*ports.values())
    yield running
    running.stop()


def topic(station: dict[str, str], kind: str) -> str:
    return topics.build(station["site"], station["line"], station["station"], kind)


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
def test_scan_arrives_with_the_exact_bytes_read(
    bridge: Bridge, ports: dict[str, PtyPort], station: dict[str, str], subscribe, terminator
):
    sub = subscribe(topic(station, "evt/scan"))
    scan = b"]d2010703835411019210LOT42" + GS + b"21SN0001" + GS + b"17270131"
    # A serial read may stop anywhere: send the scan in two pieces.
    ports["scanner1"].type(scan[:9])
    time.sleep(0.05)
    ports["scanner1"].type(scan[9:] + terminator + b"]C1PLAIN-42" + terminator)

    first, second = sub.wait_for(2)
    assert first["data"].encode() == scan
    assert first["gs1"] == {
        "gtin": "07038354110192",
        "lot": "LOT42",
        "serial": "SN0001",
        "expiry": "2027-01-31",
        "ais": {"01": "07038354110192", "10": "LOT42", "21": "SN0001", "17": "270131"},
    }
    assert first["source"] == "scanner1" and "error" not in first
    assert len(first["msg_id"]) <= 64 and first["ts"].endswith("Z")
    assert second["data"] == "]C1PLAIN-42" and "gs1" not in second
    assert second["seq"] == first["seq"] + 1


def test_status_is_retained_online_then_offline(
    tmp_path: Path, broker: Mosquitto, station: dict[str, str], ports, subscribe
):
    cfg = bridge_config.load(write_config(tmp_path, station, broker.url))
    running = Bridge(cfg)
    running.start()
    online = subscribe(topic(station, "status"))  # subscribes after: sees the retained value
    assert online.wait_for(1, where=lambda t, p: p == b"online")
    running.stop()
    assert online.wait_for(1, where=lambda t, p: p == b"offline")


def test_garbage_is_reported_and_reading_goes_on(
    bridge: Bridge, ports: dict[str, PtyPort], station: dict[str, str], subscribe
):
    sub = subscribe(topic(station, "evt/scan"))
    scanner = ports["scanner1"]
    scanner.type(b"\x00\x01\x02\x03noise\r\n")
    scanner.type(b"BAD\xc3\x28UTF8\r\n")
    scanner.type(b"X" * 5000 + b"\r\n")
    scanner.type(b"GOOD-1\r\n")

    noise, bad_utf8, too_long, good = sub.wait_for(4)
    assert noise["error"] == "binary noise: 4 control byte(s), first 0x00"
    assert noise["data"] == "\\x00\\x01\\x02\\x03noise"
    assert (bad_utf8["data"], bad_utf8["error"]) == ("BAD\\xc3(UTF8", "invalid UTF-8 at byte 3")
    assert too_long["error"] == "line longer than 4096 bytes"
    assert too_long["data"] == "X" * 4096
    assert good["data"] == "GOOD-1" and "error" not in good


def test_line_device_events_and_unknown_lines(
    bridge: Bridge, ports: dict[str, PtyPort], station: dict[str, str], subscribe
):
    sub = subscribe(topic(station, "evt/device"))
    ports["board1"].type(b"BTN 1\nTORQUE 5.2 OK\r\n# debug chatter\nWEIGHT 132.5 g\nFOO 9\n")

    events = sub.wait_for(4)
    kinds = [{k: v for k, v in e.items() if k not in ("msg_id", "ts", "seq")} for e in events]
    assert kinds == [
        {"source": "board1", "kind": "button", "button": 1},
        {"source": "board1", "kind": "torque", "value": 5.2, "unit": "Nm", "ok": True},
        {"source": "board1", "kind": "weight", "value": 132.5, "unit": "g"},
        {
            "source": "board1",
            "kind": "unknown",
            "data": "FOO 9",
            "error": "unknown device line 'FOO'",
        },
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]


def test_feedback_reaches_the_device_that_sent_the_event(
    bridge: Bridge, ports: dict[str, PtyPort], station: dict[str, str], broker: Mosquitto, subscribe
):
    scans = subscribe(topic(station, "evt/scan"))
    devices = subscribe(topic(station, "evt/device"))
    ports["scanner1"].type(b"A-1\r\nA-2\r\n")
    ports["board1"].type(b"BTN 2\n")
    first, second = scans.wait_for(2)
    (button,) = devices.wait_for(1)
    feedback = topic(station, "cmd/feedback")

    publish(
        broker.port,
        feedback,
        {"ref": first["msg_id"], "result": "rejected", "reason": "not in the BOM"},
    )
    assert ports["scanner1"].read(2, until=b"BAD\x07") == b"\x1bBAD\x07"
    publish(broker.port, feedback, {"ref": second["msg_id"], "result": "accepted"})
    assert ports["scanner1"].read(2, until=b"\x07") == b"\x07"
    publish(broker.port, feedback, {"ref": button["msg_id"], "result": "accepted"})
    assert ports["board1"].read(2, until=b"\n") == b"LIGHT 1 GREEN\n"
    publish(broker.port, feedback, {"ref": "unknown", "source": "board1", "result": "rejected"})
    assert ports["board1"].read(2, until=b"BEEP 300\n") == b"LIGHT 1 RED\nBEEP 300\n"
    publish(broker.port, feedback, {"ref": second["msg_id"], "result": "duplicate"})
    assert ports["scanner1"].read(0.5) == b""


def test_unplugged_port_is_reopened_at_its_stable_path(
    bridge: Bridge, ports: dict[str, PtyPort], station: dict[str, str], subscribe
):
    sub = subscribe(topic(station, "evt/scan"))
    scanner = ports["scanner1"]
    scanner.type(b"BEFORE\r\n")
    sub.wait_for(1)

    scanner.unplug()
    time.sleep(0.5)  # the bridge notices, closes and starts retrying
    scanner.replug()
    wait_opened(scanner)
    scanner.type(b"AFTER\r\n")

    assert [e["data"] for e in sub.wait_for(2)] == ["BEFORE", "AFTER"]


def test_port_is_opened_exclusively(bridge: Bridge, ports: dict[str, PtyPort]):
    with pytest.raises(serial.SerialException, match="exclusively lock"):
        serial.Serial(str(ports["scanner1"].link), 9600, exclusive=True)


def test_full_outbox_refuses_the_scan_and_signals_bad_read(
    tmp_path: Path,
    station: dict[str, str],
    ports: dict[str, PtyPort],
    caplog: pytest.LogCaptureFixture,
):
    nowhere = f"mqtt://127.0.0.1:{free_port()}"  # no broker: everything stays in the outbox
    cfg = bridge_config.load(write_config(tmp_path, station, nowhere, "max_messages = 2"))
    running = Bridge(cfg)
    running.start()
    try:
        wait_opened(ports["scanner1"])
        ports["scanner1"].type(b"ONE\r\nTWO\r\n")
        assert ports["scanner1"].read(0.5) == b""
        ports["scanner1"].type(b"THREE\r\n")
        assert ports["scanner1"].read(2, until=b"BAD\x07") == b"\x1bBAD\x07"
        assert "outbox full (2 messages): refusing new event" in caplog.text
    finally:
        running.stop()
