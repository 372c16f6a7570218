"""Fixtures for the bridge: a private broker, pty devices, a subscriber, a config.
The helpers they use are in ``tests/support/bridge.py``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_bridge.simulate import PtyPort
from tests.support.bridge import Subscriber
from tests.support.mosquitto import Mosquitto


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as m:
        yield m


@pytest.fixture
def subscribe(broker: Mosquitto) -> Iterator[Callable[[str], Subscriber]]:
    subs: list[Subscriber] = []

    def make(topic: str) -> Subscriber:
        subs.append(Subscriber(broker.port, topic))
        return subs[-1]

    yield make
    for sub in subs:
        sub.close()


@pytest.fixture
def station() -> dict[str, str]:
    """Codes unique to the test, so retained messages never leak between tests."""
    return {"site": "S1", "line": "L1", "station": f"ST{uuid.uuid4().hex[:8]}"}


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[dict[str, PtyPort]]:
    made = {"scanner1": PtyPort(tmp_path / "scanner1"), "board1": PtyPort(tmp_path / "board1")}
    yield made
    for port in made.values():
        port.close()
