"""The embedded MQTT broker of ``taktline serve`` when no ``TAKTLINE_MQTT_URL`` is set.

A ``mosquitto`` found on PATH is preferred (MQTT 5, shared subscriptions, the broker
production runs); otherwise amqtt, pure Python, which speaks MQTT 3.1.1 only.
Either listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"mqtt://127.0.0.1:{port}"
        self.kind = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None

    def start(self) -> EmbeddedBroker:
        if _listening(self.port):
            raise RuntimeError(
                f"port {self.port} on 127.0.0.1 is taken: set TAKTLINE_EMBEDDED_BROKER_PORT "
                "to a free port, or TAKTLINE_MQTT_URL to use the broker already there"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if binary:
            self._start_mosquitto(binary)
        else:
            self._start_amqtt()
        _wait_listening(self.port)
        log.info("embedded %s broker listening on %s", self.kind, self.url)
        return self

    def _start_mosquitto(self, binary: str) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(self.port, self.workdir))
        log_file = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - child owns it
        self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log_file, stderr=log_file)
        log_file.close()
        self.kind = "mosquitto"

    def _start_amqtt(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                "amqtt.plugins.sys.broker.BrokerSysPlugin": {"sys_interval": 0},
            },
        }
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(10)
        self.kind = "amqtt"

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._loop is not None and self._broker is not None:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            fut.result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._loop.close()
            self._loop = None


def mosquitto_conf(
    port: int, workdir: Path, *, persistence: bool = True, extra: str = "", listen: bool = True
) -> str:
    """A Mosquitto config for a broker on 127.0.0.1 that keeps its state in ``workdir``.

    Shared by the embedded broker and the test brokers, so both restart the same way.
    ``listen=False``: no listener here; ``extra`` brings them (``taktline
    mqtt-credentials``'s listeners.conf through ``include_dir``).
    """
    lines = [
        # Started as root, mosquitto drops to the `mosquitto` user, which cannot write the
        # persistence file in our folder: a restart would then lose every session and the
        # QoS 1 messages queued for it (found by `taktline simulate shift --faults`).
        "user root" if os.geteuid() == 0 and "\nuser " not in f"\n{extra}" else "",
        f"listener {port} 127.0.0.1" if listen else "",
        "allow_anonymous true" if listen and "password_file" not in extra else "",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {workdir}/",
        "autosave_interval 1",
        "max_queued_messages 100000",
        # Nagle's algorithm held each scan's feedback ~40 ms (bench/bench_ingest.py).
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        extra,
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the embedded broker did not start listening on port {port}")
