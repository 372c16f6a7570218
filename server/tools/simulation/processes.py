"""The real moving parts of a simulated shift, each one a process we can stop or kill.

- ``Broker``: a private Mosquitto (``server.messaging.broker.EmbeddedBroker``) on a free port,
  persistence on; ``restart()`` keeps the port and the persisted sessions;
- ``Service``: a ``taktline`` subprocess (``serve`` with the ingest off, ``ingest``
  with a stable client id, ``bridge``) with its own log file, stopped with SIGTERM or
  killed with SIGKILL and started again with the same command;
- ``StationRig``: one station's bridge and its scanner on a pseudo-terminal
  (``firmware_bridge.simulate.PtyPort``) behind a stable symlink, its own outbox.

Nothing here touches the shared broker on 1883: ports are chosen free.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from firmware_bridge.simulate import PtyPort, is_open_elsewhere
from server import children
from server.messaging.broker import EmbeddedBroker

log = logging.getLogger(__name__)
SETTLE_SECONDS = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def taktline_argv() -> list[str]:
    """How to run ``taktline`` from this interpreter's environment."""
    script = Path(sys.executable).parent / "taktline"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from server.cli import main; main()"]


class Broker:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.embedded = EmbeddedBroker(workdir, port or free_port())
        self.restarts = 0

    @property
    def url(self) -> str:
        return self.embedded.url

    def start(self) -> Broker:
        self.embedded.start()
        if self.embedded.kind != "mosquitto":
            self.embedded.stop()
            raise RuntimeError(
                "the shift simulator needs mosquitto on PATH (persistent "
                "sessions survive a restart only there)"
            )
        return self

    def stop(self) -> None:
        self.embedded.stop()

    def restart(self, down_seconds: float = 0.5) -> None:
        """SIGTERM (Mosquitto writes its persistence file), wait, start on the same port."""
        self.embedded.stop()
        time.sleep(down_seconds)
        self.embedded.start()
        self.restarts += 1


@dataclass
class Service:
    """One ``taktline ...`` subprocess that can be stopped, killed and started again."""

    name: str
    args: list[str]
    env: Mapping[str, str]
    workdir: Path
    ready_line: str = ""  # wait for this text in the log after a start
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    _log_offset: int = field(default=0, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, timeout: float = 60.0) -> Service:
        self.launch()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.ready_line:
            self.wait_for(self.ready_line, timeout)

    def launch(self) -> Service:
        """Start the process without waiting for it (start several side by side)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self.proc = children.spawn(
                taktline_argv() + self.args,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, **self.env},
                stdout=out,
            )
        self.starts += 1
        return self

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as fh:
                fh.seek(self._log_offset)
                if text.encode() in fh.read():
                    return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
                )
            time.sleep(0.1)
        raise TimeoutError(
            f"{self.name} did not print {text!r} within {timeout} s; see {self.log_path}"
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM without waiting (stop several side by side, then ``stop`` each)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %s s; killing it", self.name, timeout)
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last word (what a crash or the OOM killer does)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.kills += 1
        self.proc = None


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def base_env(*, database_url: str, mqtt_url: str, secret_key: str) -> dict[str, str]:
    return {
        "TAKTLINE_DATABASE_URL": database_url,
        "TAKTLINE_MQTT_URL": mqtt_url,
        "TAKTLINE_SECRET_KEY": secret_key,
        "TAKTLINE_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def web_service(workdir: Path, env: Mapping[str, str], port: int) -> Service:
    """``taktline serve`` with the ingest off: the tablets' HTTP server."""
    return Service(
        "web",
        ["serve", "--host", "127.0.0.1", "--port", str(port)],
        {**env, "TAKTLINE_RUN_INGEST": "false", "TAKTLINE_WEB_THREADS": "32"},
        workdir,
        ready_line="Taktline on http",
    )


def ingest_service(workdir: Path, env: Mapping[str, str], client_id: str) -> Service:
    """``taktline ingest`` with a stable client id and its own (not shared)
    subscription, so what arrives while it is dead waits at the broker for it."""
    return Service(
        "ingest",
        ["ingest", "--client-id", client_id, "--no-shared"],
        env,
        workdir,
        ready_line="Ingest on",
    )


class StationRig:
    """A station PC: the bridge process and its scanner on a pty."""

    def __init__(
        self,
        *,
        workdir: Path,
        site: str,
        line: str,
        station: str,
        mqtt_url: str,
        prefix: str = "taktline",
    ) -> None:
        self.station = station
        self.dir = workdir / "bridges" / station
        self.dir.mkdir(parents=True, exist_ok=True)
        self.link = self.dir / "scanner"
        self.port = PtyPort(self.link)
        # The torque driver and the scale: one line-protocol board (docs/quality.md).
        self.tools_link = self.dir / "tools"
        self.tools = PtyPort(self.tools_link)
        self.outbox = self.dir / "outbox.sqlite"
        config = self.dir / "bridge.toml"
        config.write_text(
            f'[station]\nsite = "{site}"\nline = "{line}"\nstation = "{station}"\n\n'
            f'[mqtt]\nurl = "{mqtt_url}"\nclient_id = "taktline-sim-bridge-{station}"\n'
            f'prefix = "{prefix}"\nkeepalive = 10\nreconnect_max_s = 2\n\n'
            f'[outbox]\npath = "{self.outbox}"\n\n'
            f'[[devices]]\nname = "scanner1"\ntype = "scanner"\nport = "{self.link}"\n'
            'terminator = "auto"\ngood_read = "\\u0007"\nbad_read = "\\u0007\\u0007"\n'
            "reopen_max_s = 1\n\n"
            f'[[devices]]\nname = "tools1"\ntype = "line"\nport = "{self.tools_link}"\n'
            "reopen_max_s = 1\n"
        )
        self.bridge = Service(
            f"bridge-{station}",
            ["bridge", "--config", str(config), "--log-level", "warning"],
            {"PYTHONUNBUFFERED": "1"},
            self.dir,
            ready_line="bridge for",
        )
        self.ready = threading.Event()  # the bridge holds the port and has flushed it
        self.lock = threading.Lock()  # one writer at a time on the pty

    def start(self) -> StationRig:
        self.bridge.start()
        self._settle()
        return self

    def wait_started(self) -> None:
        """After ``bridge.launch()``: wait until it runs and holds the port."""
        self.bridge.wait_ready()
        self._settle()

    def stop_bridge(self) -> None:
        self.ready.clear()
        self.bridge.stop()

    def _settle(self) -> None:
        # pyserial takes the lock, then flushes the input: bytes typed in between are
        # lost. Give it a moment after the lock shows before anyone types.
        if not self.wait_port_open():
            log.warning(
                "%s: the bridge has not opened %s (see %s)",
                self.station,
                self.link,
                self.bridge.log_path,
            )
        time.sleep(SETTLE_SECONDS)
        self.ready.set()

    def wait_port_open(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if is_open_elsewhere(self.link):
                return True
            time.sleep(0.05)
        return False

    @property
    def scanner_ready(self) -> bool:
        """The bridge runs and has settled on the port: a scan typed now will be read."""
        return self.ready.is_set() and self.bridge.running

    def type(self, data: bytes) -> None:
        with self.lock:
            self.port.type(data)

    def tool(self, line: str) -> None:
        """A torque or weight reading from the station's tools board (``TORQUE 0.61 OK
        Nm``), read by the bridge like any line-protocol device."""
        with self.lock:
            self.tools.type(line.encode("ascii") + b"\n")

    def drain(self) -> bytes:
        """Read what the bridge sent the scanner (good/bad-read bytes), so the pty's
        buffer never fills and blocks the bridge."""
        with self.lock:
            if self.port.master is None:
                return b""
            return self.port.read(0.01)

    def unplug(self) -> None:
        self.ready.clear()
        with self.lock:
            self.port.unplug()

    def replug(self) -> None:
        with self.lock:
            self.port.replug()
        self._settle()

    def outbox_pending(self) -> int:
        if not self.outbox.exists():
            return 0
        conn = sqlite3.connect(f"file:{self.outbox}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
        finally:
            conn.close()

    def stop(self) -> None:
        self.stop_bridge()
        self.port.unplug()
        self.tools.unplug()
