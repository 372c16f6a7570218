"""MQTT ingest: station events from the broker through the station workflow.

- ``payload``: validation of MQTT contract v1 event payloads (shared with the HTTP path);
- ``worker``: ``Ingest``, the paho client (persistent session, manual ack), the queue
  and the worker thread;
- ``start(app, url)``: started by ``server.runtime.start`` (``taktline serve``);
- ``ingest_command``: ``taktline ingest``, the ingest alone; several split the plant
  by line (``--lines``, ``--partition i/n``: ``partition``), or share one subscription
  (``$share/taktline-ingest/...`` on Mosquitto).

See docs/mqtt.md for the contract and docs/deploy.md for production.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from server.ingest.partition import Partition
from server.ingest.worker import Ingest
from server.messaging.client import parse_url
from server.messaging.credentials import INGEST_USER_PREFIX
from server.operations import startup

log = logging.getLogger(__name__)
EXTENSION = "taktline.ingest"


def default_client_id(app: Flask, role: str, url: str = "") -> str:
    """INGEST_CLIENT_ID; else an ingest login of ``taktline mqtt-credentials``
    (``taktline-ingest-<n>`` in the URL) is the client id; else ``taktline-<role>-<host>``."""
    if app.config["INGEST_CLIENT_ID"]:
        return str(app.config["INGEST_CLIENT_ID"])
    login = parse_url(url).username if url else None
    if login and login.startswith(INGEST_USER_PREFIX):
        return login
    return f"taktline-{role}-{socket.gethostname()}"


def partition_client_id(app: Flask, url: str, owned: Partition) -> str:
    """A partitioned ingest's client id, the same on any machine (so the partition can
    move): INGEST_CLIENT_ID, else an ingest login, else one named after the partition."""
    found = default_client_id(app, "ingest", url)
    if app.config["INGEST_CLIENT_ID"] or found.startswith(INGEST_USER_PREFIX):
        return found
    return f"taktline-ingest-{owned.slug()}"


def options(app: Flask) -> dict[str, Any]:
    """The ingest's settings (docs/configuration.md)."""
    return {
        "garbage_rate": app.config["INGEST_GARBAGE_RATE"],
        "garbage_burst": app.config["INGEST_GARBAGE_BURST"],
        "stall_seconds": app.config["INGEST_STALL_SECONDS"],
        "dead_letter_max": app.config["DEAD_LETTER_MAX"],
    }


def start(app: Flask, mqtt_url: str) -> Callable[[], None]:
    """The ingest worker inside ``taktline serve``; returns its stop function. It is
    ``app.extensions["taktline.ingest"]`` meanwhile, for ``/healthz``."""
    if not app.config["RUN_INGEST"]:
        return lambda: None
    # The embedded broker may be amqtt (no shared subscriptions); one ingest runs here.
    shared = bool(app.config["MQTT_URL"]) and bool(app.config["INGEST_SHARED"])
    ingest = Ingest(
        engine=app.extensions["taktline.engine"],
        url=mqtt_url,
        client_id=default_client_id(app, "serve", mqtt_url),
        prefix=app.config["MQTT_PREFIX"],
        shared=shared,
        **options(app),
    ).start()
    app.extensions[EXTENSION] = ingest

    def stop() -> None:
        app.extensions.pop(EXTENSION, None)
        ingest.stop()

    return stop


@click.command("ingest")
@click.option(
    "--client-id",
    default=None,
    help="Stable MQTT client id (one per ingest process); overrides TAKTLINE_INGEST_CLIENT_ID. "
    "Default: the login when it is taktline-ingest-<n> (taktline mqtt-credentials).",
)
@click.option(
    "--shared/--no-shared",
    default=None,
    help="Share the load with other ingest processes ($share/taktline-ingest/, "
    "Mosquitto). Default: TAKTLINE_INGEST_SHARED.",
)
@click.option(
    "--lines",
    default=None,
    metavar="L1,L2",
    help="Take only these lines' events (line codes, any site), with this process's own "
    "session. Give every ingest its own lines (docs/deploy.md).",
)
@click.option(
    "--partition",
    default=None,
    metavar="I/N",
    help="Take only the lines of partition I of N (1-based; a stable hash of site/line, "
    "docs/deploy.md). Run one ingest per partition, each with its own login.",
)
@with_appcontext
def ingest_command(
    client_id: str | None, shared: bool | None, lines: str | None, partition: str | None
) -> None:
    """Run the MQTT ingest alone (needs TAKTLINE_MQTT_URL)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    url = app.config["MQTT_URL"]
    if not url:
        raise click.ClickException(
            "Set TAKTLINE_MQTT_URL to the broker, e.g. mqtt://ingest:secret@broker:1883."
        )
    try:
        owned = Partition.parse(lines=lines, partition=partition)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if owned is not None and shared:
        raise click.BadParameter("--shared with --lines/--partition: a partition is not shared")
    ingest = Ingest(
        engine=app.extensions["taktline.engine"],
        url=url,
        client_id=client_id
        or (
            default_client_id(app, "ingest", url)
            if owned is None
            else partition_client_id(app, url, owned)
        ),
        prefix=app.config["MQTT_PREFIX"],
        # A partition has its own subscription, whatever TAKTLINE_INGEST_SHARED says.
        shared=False
        if owned is not None
        else (app.config["INGEST_SHARED"] if shared is None else shared),
        partition=owned,
        **options(app),
    )
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("ingest: signal %s, stopping", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    startup.freeze()
    ingest.start()
    click.echo(f"Ingest on {ingest.topic_filter} ({ingest.broker.host}:{ingest.broker.port})")
    while not done.wait(1.0):
        if not ingest.alive():
            # A service manager restarts us; the broker kept every unacked message.
            log.critical("ingest: the worker is dead; exiting for a restart")
            ingest.stop(timeout=2)
            raise SystemExit(3)
    ingest.stop()
