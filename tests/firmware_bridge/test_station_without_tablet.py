"""A station with a serial scanner and a button box and no tablet at all: the operator
signs in with the badge, starts the unit with a button, scans every part and completes
the step with another button; the bridge on real pseudo-terminals, a private Mosquitto,
the ingest and the demo plant's database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, func, select

from firmware_bridge import config as bridge_config
from firmware_bridge.bridge import Bridge
from firmware_bridge.simulate import PtyPort
from server.db import dispose_engine, get_engine, write_session
from server.ingest.worker import Ingest
from server.models import (
    Consumption,
    CustomerOrder,
    Event,
    Operator,
    Station,
    StepRecord,
    UnitOperation,
)
from server.orders import service as orders
from tests.support.bridge import wait_opened
from tests.support.mosquitto import Mosquitto

KIT_SCANS = [
    b"9506000001104",
    b"(01)09506000001128(21)P45X00001",
    b"SCRM3",
    b"(01)09506000001210(10)FN-2605",
    b"(01)09506000001210(10)FN-2605",
]


def config_text(tmp_path: Path, broker_url: str) -> str:
    return f"""
[station]
site = "PLT1"
line = "PC1"
station = "KIT-1"

[mqtt]
url = "{broker_url}"
client_id = "bridge-KIT-1-{tmp_path.name}"
keepalive = 5
reconnect_max_s = 1

[[devices]]
name = "scanner1"
type = "scanner"
port = "{tmp_path / "scanner1"}"
good_read = "\\u0007"
bad_read = "\\u001bBAD\\u0007"

[[devices]]
name = "buttons"
type = "line"
port = "{tmp_path / "buttons"}"
on_accepted = ["LIGHT 1 GREEN"]
on_rejected = ["LIGHT 1 RED"]

[devices.buttons]
1 = "start"
2 = "complete"
3 = "andon"
"""


@pytest.fixture
def floor(tmp_path: Path, broker: Mosquitto, demo_db_url: str) -> Iterator[dict[str, Any]]:
    engine = get_engine(demo_db_url)
    with write_session(engine) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="test")
    ingest = Ingest(engine=engine, url=broker.url, client_id=f"ingest-{tmp_path.name}").start()
    assert ingest.subscribed.wait(10)
    ports = {name: PtyPort(tmp_path / name) for name in ("scanner1", "buttons")}
    path = tmp_path / "station.toml"
    path.write_text(config_text(tmp_path, broker.url))
    bridge = Bridge(bridge_config.load(path))
    bridge.start()
    wait_opened(*ports.values())
    yield {"engine": engine, "ports": ports}
    bridge.stop()
    ingest.stop()
    for port in ports.values():
        port.close()
    dispose_engine(demo_db_url)


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def last_event(engine: Any, count: int) -> tuple[str, str, str]:
    """The ``count``-th event recorded at KIT-1 once it is there: (kind, result, code)."""
    with Session(engine) as db:
        rows = db.exec(select(Event.kind, Event.result, Event.code).order_by(col(Event.id))).all()
    return tuple(rows[count - 1]) if len(rows) >= count else ()  # type: ignore[return-value]


def test_a_unit_from_sign_in_to_complete_with_scanner_and_buttons(floor: dict[str, Any]) -> None:
    engine = floor["engine"]
    scanner, buttons = floor["ports"]["scanner1"], floor["ports"]["buttons"]
    n = 0

    def event(device: PtyPort, line: bytes, feedback: bytes) -> tuple[str, str, str]:
        nonlocal n
        n += 1
        device.type(line)
        got = until(lambda: last_event(engine, n))
        assert feedback in device.read(5.0, until=feedback), got
        return got

    # Nobody signed in: a part is not a badge. Then the badge signs Alice in.
    assert event(scanner, b"9506000001104\r", b"BAD") == ("scan", "rejected", "unknown_badge")
    assert event(scanner, b"OP1001\r", b"\x07") == ("scan", "accepted", "signed_in")
    with Session(engine) as db:
        signed = db.exec(
            select(Operator.badge)
            .join(Station, col(Station.operator_id) == Operator.id)
            .where(Station.code == "KIT-1")
        ).one()
    assert signed == "OP1001"
    assert event(buttons, b"BTN 2\n", b"LIGHT 1 RED") == ("complete", "rejected", "no_unit")
    assert event(buttons, b"BTN 1\n", b"LIGHT 1 GREEN") == ("start", "accepted", "step_started")
    assert event(buttons, b"BTN 2\n", b"LIGHT 1 RED") == ("complete", "rejected", "picks_missing")
    for scan in KIT_SCANS:
        assert event(scanner, scan + b"\r", b"\x07")[1:] == ("accepted", "picked")
    assert event(buttons, b"BTN 2\n", b"LIGHT 1 GREEN") == ("complete", "accepted", "step_complete")
    with Session(engine) as db:
        step = db.exec(select(StepRecord)).one()
        assert step.ended_at is not None and step.operator_id is not None
        assert db.exec(select(func.count()).select_from(Consumption)).one() == 5
        kit = db.exec(select(UnitOperation).where(UnitOperation.id == step.unit_operation_id)).one()
        assert kit.status == "done"
        channels = set(db.exec(select(Event.channel)).all())
    assert channels == {"mqtt"}
    # A button with no action mapped stays a device event (judged with no unit here).
    assert event(buttons, b"BTN 7\n", b"LIGHT 1 RED") == ("device", "rejected", "no_unit")


@pytest.mark.parametrize(
    ("devices", "key", "reason"),
    [
        (
            {"type": "line", "buttons": {"1": "launch"}},
            "devices[0].buttons.1",
            "must be one of start, complete, pause, resume, andon, sign_out",
        ),
        (
            {"type": "line", "buttons": {"one": "start"}},
            "devices[0].buttons.one",
            "must be a button number (BTN n)",
        ),
        (
            {"type": "scanner", "buttons": {"1": "start"}},
            "devices[0].buttons",
            "only a line-protocol device has buttons",
        ),
    ],
)
def test_a_bad_button_map_is_refused_at_start(
    tmp_path: Path, devices: dict[str, Any], key: str, reason: str
) -> None:
    raw = {
        "station": {"site": "S", "line": "L", "station": "X"},
        "mqtt": {"url": "mqtt://127.0.0.1"},
        "devices": [{"name": "d", "port": "/dev/null", **devices}],
    }
    with pytest.raises(bridge_config.ConfigError) as refused:
        bridge_config.from_dict(raw, base=tmp_path)
    assert (refused.value.key, refused.value.reason) == (key, reason)
