"""The ``taktline`` command line, built on Flask's click CLI.

Commands: ``serve``, ``demo``, ``seed-demo``, ``db upgrade``, ``import``,
``mqtt-credentials``, ``tokens create|list|revoke``, ``tablets bind``; the station
bridge adds ``bridge`` and ``simulate`` (firmware_bridge.cli).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlmodel import Session

from firmware_bridge import cli as bridge_cli
from server import create_app, settings
from server.catalog import importer
from server.db import migrate, write_session
from server.ingest import ingest_command
from server.ingest.deadletters import dead_letters_command
from server.integration.deliver import deliver_command
from server.operations import startup
from server.promise.cli import promise_group
from server.tools.generate import generate_command
from server.tools.simulation.cli import shift_command
from server.trace.b2mml import export_group
from server.web import web_command

log = logging.getLogger(__name__)


def _make_app() -> Flask:
    app = create_app()
    settings.mask_logs(app.config)  # no password or token in a log line of any command
    return app


@click.group(
    cls=FlaskGroup, create_app=_make_app, add_default_commands=False, add_version_option=False
)
def cli() -> None:
    """Taktline: assembly execution for assemble-to-order lines."""


@cli.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema to the newest revision."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"Database at {revision}: {_safe_url(current_app.config['DATABASE_URL'])}")


@cli.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Load the demo PC plant into an empty database."""
    from server.tools.demo import seed

    migrate.upgrade(current_app.config["DATABASE_URL"])
    engine = current_app.extensions["taktline.engine"]
    if not seed.is_empty(engine):
        raise click.ClickException(
            "The database already holds a plant; seed-demo only fills an empty one."
        )
    report = seed.seed(engine)
    click.echo("Demo plant loaded: " + ", ".join(f"{n} {k}" for k, n in report.counts.items()))
    click.echo(
        "Desktop sign-in: supervisor / supervisor, admin / admin. "
        "Station badges: OP1001, OP1002 (PIN 4321), OP1003."
    )


@cli.command("import")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@with_appcontext
def import_command(files: tuple[Path, ...]) -> None:
    """Import plant, catalog, operators and stock from YAML or CSV files.

    Each file is imported whole or not at all; problems are listed with their line.
    """
    engine = current_app.extensions["taktline.engine"]
    for path in files:
        doc = _load_or_exit(path)
        sections = [s for s in importer.SECTIONS if s in doc]
        with click.progressbar(length=len(sections), label=f"Importing {path.name}") as bar:
            try:
                with write_session(engine) as session:
                    report = importer.import_document(
                        session,
                        doc,
                        source=str(path),
                        by="cli-import",
                        progress=lambda _section: bar.update(1),
                    )
                    _audit_import(session, path, report.counts)
            except importer.ImportError_ as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(f"{path}: " + ", ".join(f"{n} {k}" for k, n in report.counts.items()))


def _audit_import(session: Session, path: Path, counts: dict[str, int]) -> None:
    """Plant, catalog, people and stock changed: say who ran it, on which machine."""
    import getpass
    import socket

    from server import audit

    audit.record(
        session,
        actor=f"cli:{getpass.getuser()}",
        action="catalog.import",
        entity="import",
        entity_id=path.name[:64],
        address=socket.gethostname()[:64],
        detail={"file": str(path), "counts": dict(counts)},
    )


def _load_or_exit(path: Path) -> dict[str, Any]:
    try:
        return importer.load_file(path)
    except importer.ImportError_ as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command("serve")
@click.option("--host", default=None, help="Overrides TAKTLINE_HOST.")
@click.option("--port", default=None, type=int, help="Overrides TAKTLINE_PORT.")
@with_appcontext
def serve(host: str | None, port: int | None) -> None:
    """Run the web server, the ingest worker and (without MQTT_URL) an embedded broker."""
    _serve(current_app._get_current_object(), host, port)  # type: ignore[attr-defined]


@cli.command("demo")
@click.option("--host", default=None)
@click.option("--port", default=None, type=int)
@click.option(
    "--simulate",
    is_flag=True,
    default=False,
    help="Run a slow simulated shift beside it (docs/simulation.md).",
)
@with_appcontext
def demo(host: str | None, port: int | None, simulate: bool) -> None:
    """Migrate, seed the demo plant if the database is empty, then serve."""
    from server.tools.demo import seed

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    migrate.upgrade(app.config["DATABASE_URL"])
    if seed.is_empty(app.extensions["taktline.engine"]):
        seed.seed(app.extensions["taktline.engine"])
        click.echo("Demo plant loaded.")
    click.echo(
        "Desktop sign-in: supervisor / supervisor, admin / admin. "
        "Station badges: OP1001, OP1002 (PIN 4321), OP1003."
    )
    on_ready = None
    if simulate:
        from server.tools.simulation.cli import start_beside_demo

        def on_ready(web_url: str, mqtt_url: str) -> Callable[[], None]:
            click.echo("Simulated operators are working the line (docs/simulation.md).")
            return start_beside_demo(app, web_url=web_url, mqtt_url=mqtt_url)

    _serve(app, host, port, on_ready=on_ready)


@cli.command("reconcile")
@click.option(
    "--closed-steps/--open-steps-ok",
    default=False,
    show_default=True,
    help="Also require every step record to have an end (true after a shift; "
    "on a running line, steps in progress are open).",
)
@with_appcontext
def reconcile_command(closed_steps: bool) -> None:
    """Check the plant's invariants from the rows; exit 1 on any mismatch."""
    from server.trace.reconcile import reconcile

    report = reconcile(current_app.extensions["taktline.engine"], allow_open_steps=not closed_steps)
    for line in report.lines():
        click.echo(line)
    if not report.clean:
        raise SystemExit(1)


def _serve(
    app: Flask,
    host: str | None,
    port: int | None,
    *,
    on_ready: Callable[[str, str], Callable[[], None]] | None = None,
) -> None:
    from waitress import create_server

    from server import runtime
    from server.messaging.broker import BrokerError

    host = host or app.config["HOST"]
    port = port or app.config["PORT"]
    try:
        services = runtime.start(app)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    server = create_server(
        app, host=host, port=port, threads=app.config["WEB_THREADS"], channel_timeout=300
    )

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s: shutting down", signum)
        raise KeyboardInterrupt  # leaves server.run(); services stop in the finally below

    signal.signal(signal.SIGTERM, on_signal)
    click.echo(f"Taktline on http://{host}:{port}/ (MQTT {settings.mask(services.mqtt_url)})")
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    stop_extra = on_ready(f"http://{local}:{port}", services.mqtt_url) if on_ready else None
    startup.freeze()  # as `taktline ingest` does: no 100-400 ms collector passes
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if stop_extra is not None:
            stop_extra()
        server.close()
        services.stop()


@cli.command("mqtt-credentials")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for listeners.conf, passwd*, acl and the *.password files.",
)
@click.option(
    "--ingests",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Ingest logins to write (taktline-ingest-1 .. -N): one per `taktline ingest` process.",
)
@click.option(
    "--server-listener",
    default="127.0.0.1:1883",
    show_default=True,
    help="[HOST:]PORT of the listener for the web and ingest processes.",
)
@click.option(
    "--station-listener",
    default="8883",
    show_default=True,
    help="[HOST:]PORT of the listener for the stations' bridges (no host: every interface).",
)
@click.option(
    "--station-tls/--no-station-tls",
    default=True,
    show_default=True,
    help="TLS on the station listener, with the three files below.",
)
@click.option("--cafile", default="/etc/mosquitto/certs/ca.pem", show_default=True)
@click.option("--certfile", default="/etc/mosquitto/certs/broker.pem", show_default=True)
@click.option("--keyfile", default="/etc/mosquitto/certs/broker.key", show_default=True)
@with_appcontext
def mqtt_credentials(
    out_dir: Path,
    ingests: int,
    server_listener: str,
    station_listener: str,
    station_tls: bool,
    cafile: str,
    certfile: str,
    keyfile: str,
) -> None:
    """Write Mosquitto's listeners, logins and ACL from the stations in the database.

    Each station, each ingest process and the web processes get their own login; on
    the station listener a connection's client id is always its login (docs/security.md).
    """
    from server.messaging import credentials as mc

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        listeners = mc.listeners_conf(
            out_dir,
            server=mc.Listener.parse(server_listener),
            station=mc.Listener.parse(station_listener),
            tls=mc.Tls(cafile, certfile, keyfile) if station_tls else None,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    with Session(app.extensions["taktline.engine"]) as session:
        creds = mc.build(
            session,
            prefix=app.config["MQTT_PREFIX"],
            secret_key=app.config["SECRET_KEY"],
            mqtt_url=app.config["MQTT_URL"],
            ingests=ingests,
        )
    for path in mc.write(creds, out_dir, listeners=listeners):
        click.echo(f"wrote {path}")
    click.echo(
        f"{len(creds.stations)} station logins (station listener {station_listener}, client "
        f"id = login); server logins {', '.join(creds.servers)} (server listener "
        f"{server_listener}). Include {mc.LISTENERS_FILE} from mosquitto.conf "
        "(docs/deploy.md); send Mosquitto SIGHUP after a re-run, restart it after "
        "changing a listener."
    )


# -- integrations: API tokens and tablet binding (docs/security.md) ---------------


@cli.group("tokens")
def tokens_group() -> None:
    """API tokens for integrations: create (shown once), list, revoke. Audited."""


@tokens_group.command("create")
@click.argument("name")
@click.option(
    "--scopes",
    required=True,
    help="Comma or space separated, e.g. 'stock:read,orders:write' or '*'.",
)
@with_appcontext
def tokens_create(name: str, scopes: str) -> None:
    """Issue an API token NAME; prints the token once (only its hash is stored)."""
    from server.security import auth

    name = name.strip()
    if not name or len(name) > 200:
        raise click.BadParameter("give the integration a name (at most 200 characters)")
    try:
        granted = auth.parse_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from exc
    with write_session(current_app.extensions["taktline.engine"]) as session:
        token = auth.issue_api_token(session, name=name, scopes=granted, by=None)
    log.info("API token %r issued from the command line (scopes %s)", name, granted)
    click.echo(token)
    click.echo(f"API token {name!r} (scopes {' '.join(granted)}): shown once, keep it.", err=True)


@tokens_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked tokens.")
@with_appcontext
def tokens_list(show_all: bool) -> None:
    """List API tokens: id, name, scopes, issued, revoked (never the token)."""
    from sqlmodel import col, select

    from server.models import ApiToken
    from server.models.types import rfc3339

    with Session(current_app.extensions["taktline.engine"]) as session:
        rows = session.exec(select(ApiToken).order_by(col(ApiToken.id))).all()
    for row in rows:
        if row.revoked_at is not None and not show_all:
            continue
        revoked = f"revoked {rfc3339(row.revoked_at)}" if row.revoked_at else "active"
        click.echo(
            f"{row.id}\t{row.name}\t{','.join(row.scopes)}\t"
            f"issued {rfc3339(row.issued_at)}\t{revoked}"
        )


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke the API token with id TOKEN_ID (see `taktline tokens list`)."""
    from server.models import ApiToken
    from server.security import auth

    with write_session(current_app.extensions["taktline.engine"]) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise click.ClickException(f"no API token {token_id}")
        auth.revoke_api_token(session, token=row, by=None)
        name = row.name
    click.echo(f"API token {token_id} ({name}) revoked.")


@cli.group("tablets")
def tablets_group() -> None:
    """Station tablets: bind one to its station (a device token, audited)."""


@tablets_group.command("bind")
@click.argument("station_code")
@click.option("--label", default="", help="Which tablet, e.g. 'KIT-1 left'.")
@click.option(
    "--base-url",
    default="",
    help="The server's address as the tablet sees it, e.g. https://mes.plant1.example; "
    "without it only the path of the binding link is printed.",
)
@with_appcontext
def tablets_bind(station_code: str, label: str, base_url: str) -> None:
    """Issue a binding link for a tablet at STATION_CODE; open it once on the tablet."""
    from urllib.parse import urlencode

    from sqlmodel import select

    from server.models import Station
    from server.security import auth

    with write_session(current_app.extensions["taktline.engine"]) as session:
        station = session.exec(select(Station).where(Station.code == station_code)).first()
        if station is None or not station.active:
            raise click.ClickException(f"no active station {station_code}")
        token = auth.issue_device_token(session, station=station, by=None, label=label[:200])
    click.echo(base_url.rstrip("/") + "/station/bind?" + urlencode({"token": token}))
    click.echo(
        f"Binding link for a tablet at {station_code}: shown once; revoke it at /admin/devices.",
        err=True,
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# Commands that live beside their area, added here by name.
cli.add_command(bridge_cli.bridge_command)
cli.add_command(bridge_cli.simulate_group)
bridge_cli.simulate_group.add_command(shift_command)  # taktline simulate shift
cli.add_command(ingest_command)
cli.add_command(dead_letters_command)
cli.add_command(deliver_command)
cli.add_command(generate_command)
cli.add_command(web_command)
cli.add_command(promise_group)  # taktline promise refresh | show
cli.add_command(export_group)  # taktline export b2mml


def main() -> None:
    cli(prog_name="taktline")


__all__ = ["cli", "main", "Session"]
