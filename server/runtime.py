"""Background services that ``taktline serve`` runs beside the web app.

``start(app)`` brings up, in this order: the embedded broker (when no MQTT_URL is
set), this process's live updates (the MQTT publisher and the retained-state
subscription, ``server.messaging.live``), the ingest worker (``server.ingest``,
unless RUN_INGEST is off) and the outbound event deliverer
(``server.integration.deliver``, unless RUN_DELIVER is off). ``Services.stop()``
takes them down in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from server import ingest, settings
from server.integration import deliver
from server.messaging import client as server_mqtt
from server.messaging import live
from server.messaging.broker import EmbeddedBroker
from station.escalation import Escalator

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


def _escalate_andons(app: Flask) -> Callable[[], None]:
    """Unacknowledged andon calls escalated on MQTT after ANDON_ESCALATE_MINUTES."""
    publisher = server_mqtt.publisher(app)
    if publisher is None:
        return lambda: None
    escalator = Escalator(
        app.extensions["taktline.engine"],
        lambda topic, payload: publisher.publish(topic, payload),
        minutes=int(app.config["ANDON_ESCALATE_MINUTES"]),
        prefix=app.config["MQTT_PREFIX"],
    ).start()
    return escalator.stop


def start(app: Flask) -> Services:
    settings.mask_logs(app.config)  # before anything logs a URL
    url = app.config["MQTT_URL"]
    services = Services(mqtt_url=url)
    if not url:
        broker = EmbeddedBroker(
            Path(app.instance_path) / "broker", app.config["EMBEDDED_BROKER_PORT"]
        ).start()
        services.stoppers.append(broker.stop)
        services.mqtt_url = broker.url
        app.config["MQTT_URL_EFFECTIVE"] = broker.url
    else:
        app.config["MQTT_URL_EFFECTIVE"] = url
    services.stoppers.append(live.start(app, services.mqtt_url))  # the publisher first
    services.stoppers.append(_escalate_andons(app))
    services.stoppers.append(ingest.start(app, services.mqtt_url))
    services.stoppers.append(deliver.start(app, services.mqtt_url))  # outbound events
    return services
