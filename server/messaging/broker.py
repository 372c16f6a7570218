"""The embedded MQTT broker of ``taktline serve`` when no ``TAKTLINE_MQTT_URL`` is set.

A ``mosquitto`` found on PATH is preferred (MQTT 5, shared subscriptions, the broker
production runs); otherwise amqtt, pure Python, which speaks MQTT 3.1.1 only.
Either listens on 127.0.0.1 only.

Mosquitto is a child process that dies with its parent, even a SIGKILLed one
(``PR_SET_PDEATHSIG``, Linux). Its pid and its parent's are kept in
``<workdir>/mosquitto.pid``; a start first looks for a broker of this folder still
running (by that file, else by its command line) and stops it when its parent is gone
(a stale one, e.g. left by an older version), or refuses when a live process owns it
(``taktline serve`` twice on one instance folder).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from server import children

log = logging.getLogger(__name__)
PID_FILE = "mosquitto.pid"


class BrokerError(RuntimeError):
    """The embedded broker cannot start (its port is taken, another process owns it)."""


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
        self.workdir.mkdir(parents=True, exist_ok=True)
        stop_stale_broker(self.workdir)
        if _listening(self.port):
            raise BrokerError(
                f"port {self.port} on 127.0.0.1 is taken: set TAKTLINE_EMBEDDED_BROKER_PORT "
                "to a free port, or TAKTLINE_MQTT_URL to use the broker already there"
            )
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
        try:
            self._proc = children.spawn([binary, "-c", str(conf)], stdout=log_file, stderr=log_file)
        finally:
            log_file.close()
        (self.workdir / PID_FILE).write_text(f"{self._proc.pid} {os.getpid()}\n")
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
            (self.workdir / PID_FILE).unlink(missing_ok=True)
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
        # The ingest's window, as deploy/mosquitto.conf (Mosquitto's default is 20).
        "" if "max_inflight_messages" in extra else "max_inflight_messages 200",
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
    raise BrokerError(f"the embedded broker did not start listening on port {port}")


# -- the broker dies with its parent; a stale one is found and stopped -----------------


def stop_stale_broker(workdir: Path, timeout: float = 10.0) -> None:
    """Stop a Mosquitto of ``workdir`` whose parent is gone; raise ``BrokerError`` when
    a live process still owns it. Linux (``/proc``); elsewhere a no-op."""
    pid_file = workdir / PID_FILE
    if not Path("/proc/self").exists():
        return
    conf = str(workdir / "mosquitto.conf")
    recorded: dict[int, int] = {}
    try:
        pid, parent = (int(x) for x in pid_file.read_text().split()[:2])
        recorded[pid] = parent
    except (OSError, ValueError):
        pass
    candidates = {pid for pid in recorded if _runs_conf(pid, conf)} or set(_brokers_of(conf))
    for pid in sorted(candidates):
        owner = _parent_of(pid)
        if owner is None:  # gone meanwhile
            continue
        owned = owner != 1 and (
            owner == recorded[pid] if pid in recorded else "taktline" in _cmdline(owner)
        )
        if owned:
            raise BrokerError(
                f"the embedded broker of {workdir} (pid {pid}) belongs to a running "
                f"process (pid {owner}): is taktline serve already running here?"
            )
        log.warning("stopping a stale embedded broker (pid %s) whose parent is gone", pid)
        _stop_pid(pid, timeout)
    pid_file.unlink(missing_ok=True)


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _runs_conf(pid: int, conf: str) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return conf.encode() in argv and Path(argv[0].decode(errors="replace")).name == "mosquitto"


def _brokers_of(conf: str) -> list[int]:
    """Every live mosquitto running ``conf`` (when the pid file is missing or wrong)."""
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if _runs_conf(pid, conf)]  # a zombie has no command line


def _parent_of(pid: int) -> int | None:
    """The parent pid of a live (not zombie) process, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
    return None if fields[0] in ("Z", "X") else int(fields[1])


def _stop_pid(pid: int, timeout: float) -> None:
    """SIGTERM (Mosquitto saves its persistence file), then SIGKILL after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _parent_of(pid) is None:
                return
            time.sleep(0.05)
    raise BrokerError(f"the stale embedded broker (pid {pid}) does not stop")
