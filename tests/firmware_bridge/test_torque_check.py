"""Issue 15's must-show on real parts: a torque driver speaking the line protocol on a
pseudo-terminal, the bridge, a private Mosquitto, the ingest and the demo plant's
database. Four ``TORQUE`` lines fill the board's four-count check; a fifth, out of
limits, is refused with its value and the limits; the step completes only then."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from firmware_bridge import config as bridge_config
from firmware_bridge.bridge import Bridge
from firmware_bridge.simulate import PtyPort
from server.db import dispose_engine, get_engine
from server.ingest.worker import Ingest
from server.models import CheckResult, Event, UnitOperation
from station.workflow import CompleteStep, Scan, SignIn, StartUnit
from tests.support.bridge import Subscriber, wait_opened
from tests.support.building import act, build_step, place_and_release, scans_for
from tests.support.mosquitto import Mosquitto


def config_text(tmp_path: Path, broker_url: str) -> str:
    return f"""
[station]
site = "PLT1"
line = "PC1"
station = "BRD-1"

[mqtt]
url = "{broker_url}"
client_id = "bridge-BRD-1-{tmp_path.name}"
keepalive = 5
reconnect_max_s = 1

[[devices]]
name = "torque1"
type = "line"
port = "{tmp_path / "torque1"}"
on_accepted = ["LIGHT 1 GREEN"]
on_rejected = ["LIGHT 1 RED"]
"""


@pytest.fixture
def board(tmp_path: Path, broker: Mosquitto, demo_db_url: str) -> Iterator[dict[str, Any]]:
    engine = get_engine(demo_db_url)
    [serial] = place_and_release(
        engine, number="SO-Q15", product="PC", quantity=1, options=["i5", "mem16", "ssd512", "mt"]
    )
    build_step(engine, "KIT-1", serial, badge="OP1001")
    ingest = Ingest(engine=engine, url=broker.url, client_id=f"ingest-{tmp_path.name}").start()
    assert ingest.subscribed.wait(10)
    port = PtyPort(tmp_path / "torque1")
    path = tmp_path / "station.toml"
    path.write_text(config_text(tmp_path, broker.url))
    bridge = Bridge(bridge_config.load(path))
    bridge.start()
    wait_opened(port)
    feedback = Subscriber(broker.port, "taktline/PLT1/PC1/BRD-1/cmd/feedback")
    yield {"engine": engine, "port": port, "serial": serial, "feedback": feedback}
    feedback.close()
    bridge.stop()
    ingest.stop()
    port.close()
    dispose_engine(demo_db_url)


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def device_events(engine: Any) -> list[tuple[str, str]]:
    with Session(engine) as db:
        rows = db.exec(
            select(Event.result, Event.code).where(Event.kind == "device").order_by(col(Event.id))
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_four_torque_lines_fill_the_check_a_fifth_out_of_limits_is_refused(
    board: dict[str, Any],
) -> None:
    engine, port, serial = board["engine"], board["port"], board["serial"]
    assert act(engine, "BRD-1", SignIn("OP1001")).accepted
    started = act(engine, "BRD-1", StartUnit(serial))
    assert started.accepted and started.state is not None and started.state.unit is not None
    [check] = started.state.checks
    assert (check.spec.code, check.spec.needed, check.passed) == ("TQ-MB", 4, 0)
    for pick in started.state.picks:
        for data in scans_for(
            engine,
            unit_id=started.state.unit.id,
            part_id=pick.part_id,
            substitutes=pick.substitutes,
            qty=pick.remaining,
        ):
            assert act(engine, "BRD-1", Scan(data)).accepted
    early = act(engine, "BRD-1", CompleteStep())
    assert (early.accepted, early.code) == (False, "checks_missing")
    assert "Motherboard screw torque (0 of 4)" in early.message

    for n, value in enumerate(("0.61", "0.58", "0.64", "0.60"), start=1):
        port.type(f"TORQUE {value} OK Nm\n".encode())
        assert b"LIGHT 1 GREEN" in port.read(5.0, until=b"LIGHT 1 GREEN")
        assert until(lambda n=n: len(device_events(engine)) >= n)
    assert device_events(engine) == [("accepted", "measured")] * 4
    port.type(b"TORQUE 0.95 NOK Nm\n")
    assert b"LIGHT 1 RED" in port.read(5.0, until=b"LIGHT 1 RED")
    refused = board["feedback"].wait_for(
        1, 10, where=lambda t, p: json.loads(p).get("result") == "rejected"
    )[0]
    assert refused["code"] == "out_of_limits_done"
    assert "0.95 Nm is out of limits (0.5–0.7 Nm)" in refused["reason"]
    accepted = board["feedback"].wait_for(
        4, 10, where=lambda t, p: json.loads(p).get("code") == "measured"
    )
    assert accepted[-1]["reason"] == "Motherboard screw torque 0.6 Nm OK (4 of 4)."

    with Session(engine) as db:
        results = db.exec(select(CheckResult).order_by(col(CheckResult.id))).all()
        assert [(r.value, r.passed, r.tool, r.lower, r.upper) for r in results] == [
            (0.61, True, "torque1", 0.5, 0.7),
            (0.58, True, "torque1", 0.5, 0.7),
            (0.64, True, "torque1", 0.5, 0.7),
            (0.60, True, "torque1", 0.5, 0.7),
        ]
    done = act(engine, "BRD-1", CompleteStep())
    assert done.accepted, done.message
    with Session(engine) as db:
        op = db.get(UnitOperation, started.state.operation.unit_operation_id)  # type: ignore[union-attr]
        assert op is not None and op.status == "done"
