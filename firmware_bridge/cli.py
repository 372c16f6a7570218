"""``taktline bridge`` and ``taktline simulate``: click commands the main CLI registers.

``server.cli`` adds them with ``cli.add_command(bridge_command)`` and
``cli.add_command(simulate_group)``; ``python -m firmware_bridge`` runs them alone.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import click

from firmware_bridge import config as bridge_config
from firmware_bridge.simulate import PtyPort

_TERMINATORS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@click.command("bridge")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The station's TOML file.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def bridge_command(config_path: Path, log_level: str) -> None:
    """Run the station bridge: serial devices <-> MQTT, with a disk outbox."""
    from firmware_bridge.bridge import Bridge

    _setup_logging(log_level)
    try:
        cfg = bridge_config.load(config_path)
    except bridge_config.ConfigError as exc:
        raise click.UsageError(f"bad config {config_path}: {exc}") from exc
    click.echo(
        f"bridge for {cfg.site}/{cfg.line}/{cfg.station}: "
        f"{len(cfg.devices)} device(s), broker {cfg.mqtt.host}:{cfg.mqtt.port}"
    )
    Bridge(cfg).run()


@click.group("simulate")
def simulate_group() -> None:
    """Simulated devices on pseudo-terminals, for demos and tests without hardware."""


def _run_pty(link: Path, suffix: bytes, label: str) -> None:
    with PtyPort(link) as port:
        click.echo(
            f"{label} on {port.slave_path}, linked at {link}; type lines, Ctrl-D ends", err=True
        )
        done = threading.Event()

        def echo_back() -> None:
            while not done.is_set():
                data = port.read(0.2)
                if data:
                    click.echo(f"<- {data!r}", err=True)

        watcher = threading.Thread(target=echo_back, daemon=True)
        watcher.start()
        for line in sys.stdin:
            # A typed "\x1d" (four characters) stands for GS, as on a scanner's config sheet.
            text = line.rstrip("\r\n").replace("\\x1d", "\x1d")
            port.type(text.encode() + suffix)
        time.sleep(0.5)  # let the bridge answer the last line
        done.set()
        watcher.join()


@simulate_group.command("scanner")
@click.option(
    "--link",
    required=True,
    type=click.Path(path_type=Path),
    help="Stable path to point at the pty, used as the port in the bridge config.",
)
@click.option(
    "--terminator", default="crlf", show_default=True, type=click.Choice(sorted(_TERMINATORS))
)
def simulate_scanner(link: Path, terminator: str) -> None:
    """A barcode scanner: each stdin line is one scan; prints good/bad-read bytes."""
    _run_pty(link, _TERMINATORS[terminator], "scanner")


@simulate_group.command("device")
@click.option(
    "--link",
    required=True,
    type=click.Path(path_type=Path),
    help="Stable path to point at the pty, used as the port in the bridge config.",
)
def simulate_device(link: Path) -> None:
    """A line-protocol board: type 'BTN 1', 'TORQUE 5.2 OK'...; prints commands it gets."""
    _run_pty(link, b"\n", "device")
