"""``taktline simulate shift``: a whole shift through the real paths, then reconciled.

Registered on the ``simulate`` group of ``firmware_bridge.cli`` by ``server.cli`` (the
bridge package must not import the server).
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from server.db import migrate
from server.tools.simulation.plan import QUIET
from server.tools.simulation.shift import ShiftConfig, run_shift

log = logging.getLogger(__name__)


def _ensure_plant(app: Flask) -> None:
    from server.tools.demo import seed

    migrate.upgrade(app.config["DATABASE_URL"])
    if seed.is_empty(app.extensions["taktline.engine"]):
        seed.seed(app.extensions["taktline.engine"])
        click.echo("The database was empty: demo plant loaded.")


@click.command("shift")
@click.option(
    "--stations",
    default=5,
    show_default=True,
    type=click.IntRange(1, 50),
    help="Stations to run; parallel ones are added beyond the plant's.",
)
@click.option(
    "--orders",
    default=6,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Orders of random valid configurations to create and release.",
)
@click.option(
    "--minutes",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.5),
    help="Simulated minutes of shift.",
)
@click.option(
    "--speed",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 1000),
    help="Simulated seconds per real second.",
)
@click.option(
    "--faults/--no-faults",
    default=False,
    show_default=True,
    help="Inject broker restarts, ingest kills, bridge and port outages, "
    "duplicates and garbage on a printed schedule.",
)
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed.")
@click.option(
    "--workdir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where broker, bridges and logs live (default: a new temporary folder).",
)
@with_appcontext
def shift_command(
    stations: int,
    orders: int,
    minutes: float,
    speed: float,
    faults: bool,
    seed: int,
    workdir: Path | None,
) -> None:
    """Simulate a shift with operators at every station; exit 1 on any mismatch."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    _ensure_plant(app)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="taktline-shift-"))
    click.echo(
        f"shift: {stations} station(s), {orders} order(s), {minutes:g} simulated "
        f"minute(s) at x{speed:g} (about {minutes * 60 / speed:.0f} s real), faults "
        f"{'on' if faults else 'off'}; work folder {workdir}"
    )
    config = ShiftConfig(
        database_url=app.config["DATABASE_URL"],
        workdir=workdir,
        secret_key=app.config["SECRET_KEY"],
        stations=stations,
        orders=orders,
        minutes=minutes,
        speed=speed,
        faults=faults,
        seed=seed,
        prefix=app.config["MQTT_PREFIX"],
    )

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds run_shift: bridges, ingest, web, broker stop

    signal.signal(signal.SIGTERM, on_term)
    result = run_shift(config, say=click.echo)
    for line in result.summary():
        click.echo(line)
    if not result.clean:
        raise SystemExit(1)


def start_beside_demo(
    app: Flask, *, web_url: str, mqtt_url: str, speed: float = 5.0, stations: int = 5
) -> Callable[[], None]:
    """``taktline demo --simulate``: a slow, endless, fault-free shift on the demo's own
    broker and web server, in a background thread. Call the returned function to stop
    it (operators leave at once, the bridges are stopped)."""
    stop = threading.Event()
    config = ShiftConfig(
        database_url=app.config["DATABASE_URL"],
        workdir=Path(app.instance_path) / "simulation",
        secret_key=app.config["SECRET_KEY"],
        stations=stations,
        orders=3,
        minutes=7 * 24 * 60,
        speed=speed,
        faults=False,
        behaviour=QUIET,
        prefix=app.config["MQTT_PREFIX"],
        mqtt_url=mqtt_url,
        web_url=web_url,
        top_up=True,
        drain_timeout=10,
    )

    def run() -> None:
        try:
            result = run_shift(config, say=lambda text: log.info("simulation: %s", text), stop=stop)
            for line in result.summary():
                log.info("simulation: %s", line)
        except Exception:
            log.exception("the demo simulation stopped")

    thread = threading.Thread(target=run, name="demo-simulation", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=30)

    return halt
