"""Start a private Mosquitto on a free loopback port for tests that stop or restart it.

Tests never touch the machine's shared broker on 1883 when they need to kill one.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from server.messaging.broker import mosquitto_conf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Mosquitto:
    """A mosquitto process with its own config, port and persistence directory.

    ``stop()`` / ``start()`` keep the port and the persistence file, so a restart looks
    to clients like the production broker coming back. ``listen=False``: ``extra_conf``
    brings the listeners (one of them on ``port``, which ``start`` waits for).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        extra_conf: str = "",
        persistence: bool = True,
        listen: bool = True,
    ) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed: apt-get install mosquitto")
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.workdir / "mosquitto.conf"
        self.conf.write_text(
            mosquitto_conf(
                self.port, self.workdir, persistence=persistence, extra=extra_conf, listen=listen
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def credentials_broker(workdir: Path, out: Path, *, port: int, legacy: bool = False) -> Mosquitto:
    """A Mosquitto set up with what ``taktline mqtt-credentials --out out`` wrote.

    Default: its ``listeners.conf`` (``include_dir out``), whose server listener is on
    ``port``. ``legacy``: one listener on ``port`` with ``passwd`` and ``acl``, the
    layout before ``listeners.conf`` (no client id bound to a login). Connections are
    logged (``mosquitto.log``: "New client connected ... as <client id> ... u'<login>'").
    """
    log = "log_type notice\nconnection_messages true\n"
    if legacy:
        extra = (
            f"{log}allow_anonymous false\npassword_file {out / 'passwd'}\nacl_file {out / 'acl'}"
        )
        return Mosquitto(workdir, port=port, persistence=False, extra_conf=extra)
    return Mosquitto(
        workdir, port=port, persistence=False, listen=False, extra_conf=f"{log}include_dir {out}"
    )
