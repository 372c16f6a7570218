"""Background services that ``taktline serve`` runs beside the web app.

Each service has start/stop; ``start(app)`` brings up the embedded broker (when no
MQTT_URL is set) and then whatever else the process runs (ingest, live updates),
in that order, and ``Services.stop()`` takes them down in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from server.broker import EmbeddedBroker

log = logging.getLogger(__name__)


@dataclass
class Services:
    mqtt_url: str
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:
                log.exception("error while stopping a background service")
        self.stoppers.clear()


# Hooks other areas register to be started with the server (ingest, SSE hub, ...):
# each takes the app and the broker URL and returns a stop function.
STARTERS: list[Callable[[Flask, str], Callable[[], None]]] = []


def start(app: Flask) -> Services:
    url = app.config["MQTT_URL"]
    services = Services(mqtt_url=url)
    if not url:
        broker = EmbeddedBroker(Path(app.instance_path) / "broker",
                                app.config["EMBEDDED_BROKER_PORT"]).start()
        services.stoppers.append(broker.stop)
        services.mqtt_url = broker.url
        app.config["MQTT_URL_EFFECTIVE"] = broker.url
    else:
        app.config["MQTT_URL_EFFECTIVE"] = url
    for starter in STARTERS:
        services.stoppers.append(starter(app, services.mqtt_url))
    return services
