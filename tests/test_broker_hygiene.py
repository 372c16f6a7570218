"""Process hygiene of `taktline serve` (issue 13, item 5), as real processes.

- ``kill -9`` of `taktline serve` takes its embedded Mosquitto down too
  (PR_SET_PDEATHSIG), and the next `taktline serve` starts, with one broker;
- a stale broker of the instance folder (left by an older version, with or without
  its pid file) is found at start and replaced; one that a running `taktline serve`
  owns is not touched: the second start is refused;
- no password or token reaches a log line or the start-up echo.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import settings
from server.messaging.broker import PID_FILE, mosquitto_conf
from server.messaging.credentials import mosquitto_hash
from tests.support.mosquitto import Mosquitto, free_port, wait_port

TAKTLINE = Path(sys.executable).with_name("taktline")


class Serve:
    """`taktline serve` in ``folder`` (its instance folder is ``folder/instance``)."""

    def __init__(self, folder: Path, db_url: str, broker_port: int, **env: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.broker_port = broker_port
        self.env = {
            **os.environ,
            "TAKTLINE_DATABASE_URL": db_url,
            "TAKTLINE_EMBEDDED_BROKER_PORT": str(broker_port),
            "TAKTLINE_SECRET_KEY": "hygiene-" + "k" * 32,
            "TAKTLINE_LOG_LEVEL": "WARNING",
            **env,
        }
        if "TAKTLINE_MQTT_URL" not in env:
            self.env.pop("TAKTLINE_MQTT_URL", None)
        self.log = folder / f"serve-{self.port}.log"
        out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [str(TAKTLINE), "serve", "--port", str(self.port)],
            cwd=folder,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()

    @property
    def conf(self) -> Path:
        return self.folder / "instance" / "broker" / "mosquitto.conf"

    def wait_serving(self) -> None:
        wait_port(self.port, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=10) as r:
            assert r.status == 200

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def brokers(conf: Path) -> list[int]:
    """The live mosquitto processes running ``conf``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(conf).encode() in argv and argv[0].endswith(b"mosquitto"):
            found.append(int(entry.name))
    return found


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ""
        if stat and stat.rsplit(")", 1)[1].split()[0] == "Z":
            return  # exited; its parent has not reaped it yet
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


@pytest.fixture
def started() -> Iterator[list[Serve]]:
    serves: list[Serve] = []
    yield serves
    for serve in serves:
        serve.stop()
        for pid in brokers(serve.conf):  # never leave a broker behind, whatever failed
            os.kill(pid, signal.SIGKILL)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl"),
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto"),
]


def test_kill_9_then_serve_again_starts_with_one_broker(
    demo_db_url: str, tmp_path: Path, started: list[Serve]
) -> None:
    broker_port = free_port()
    first = Serve(tmp_path, demo_db_url, broker_port)
    started.append(first)
    first.wait_serving()
    [old] = brokers(first.conf)
    assert (first.conf.parent / PID_FILE).read_text().split() == [str(old), str(first.proc.pid)]

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    wait_gone(old)  # the broker died with its parent: nothing holds the port

    second = Serve(tmp_path, demo_db_url, broker_port)
    started.append(second)
    second.wait_serving()
    [new] = brokers(second.conf)
    assert new != old
    wait_port(broker_port, timeout=5)
    assert second.stop() == 0, second.output()[-2000:]
    wait_gone(new)
    assert brokers(second.conf) == []
    assert not (second.conf.parent / PID_FILE).exists()


@pytest.mark.parametrize("pid_file", [False, True], ids=["no-pid-file", "pid-file"])
def test_a_stale_broker_is_replaced_at_start(
    demo_db_url: str, tmp_path: Path, started: list[Serve], pid_file: bool
) -> None:
    """A broker whose parent died without taking it along (an older taktline, which
    wrote no pid file, or one killed before its child set PR_SET_PDEATHSIG)."""
    broker_port = free_port()
    workdir = tmp_path / "instance" / "broker"
    workdir.mkdir(parents=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_conf(broker_port, workdir))
    binary = shutil.which("mosquitto")
    shell = subprocess.Popen(  # the broker outlives this shell: it is orphaned at once
        ["sh", "-c", f"{binary} -c {conf} >/dev/null 2>&1 & echo $!"], stdout=subprocess.PIPE
    )
    out, _ = shell.communicate(timeout=10)
    stale = int(out)
    wait_port(broker_port)
    if pid_file:
        (workdir / PID_FILE).write_text(f"{stale} {shell.pid}\n")

    serve = Serve(tmp_path, demo_db_url, broker_port)
    started.append(serve)
    serve.wait_serving()
    wait_gone(stale)
    [new] = brokers(conf)
    assert new != stale
    assert "stopping a stale embedded broker" in serve.output()
    assert serve.stop() == 0


def test_a_broker_owned_by_a_running_serve_is_left_alone(
    demo_db_url: str, tmp_path: Path, started: list[Serve]
) -> None:
    broker_port = free_port()
    first = Serve(tmp_path, demo_db_url, broker_port)
    started.append(first)
    first.wait_serving()
    [broker] = brokers(first.conf)

    second = Serve(tmp_path, demo_db_url, broker_port)
    started.append(second)
    assert second.proc.wait(60) != 0
    assert "is taktline serve already running here?" in second.output()
    assert brokers(first.conf) == [broker]
    first.wait_serving()


def test_passwords_are_masked_in_the_log_and_the_start_up_line(
    demo_db_url: str, tmp_path: Path, started: list[Serve]
) -> None:
    """The broker refuses the password: the publisher logs the URL it tried, masked."""
    passwd = tmp_path / "passwd"
    passwd.write_text(f"someone-else:{mosquitto_hash('x')}\n")
    secret = "Sup3r-Secret-Pw"
    with Mosquitto(
        tmp_path / "broker", extra_conf=f"allow_anonymous false\npassword_file {passwd}"
    ) as broker:
        serve = Serve(
            tmp_path,
            demo_db_url,
            free_port(),
            TAKTLINE_MQTT_URL=f"mqtt://taktline-web:{secret}@127.0.0.1:{broker.port}",
            TAKTLINE_LOG_LEVEL="INFO",
        )
        started.append(serve)
        serve.wait_serving()
        deadline = time.monotonic() + 15
        while "refused the connection" not in serve.output():
            assert time.monotonic() < deadline, serve.output()[-2000:]
            time.sleep(0.1)
        assert serve.stop() == 0
    text = serve.output()
    masked = f"mqtt://taktline-web:***@127.0.0.1:{broker.port}"
    assert f"(MQTT {masked})" in text  # the start-up line
    assert f"MQTT publisher: broker {masked} refused" in text  # a log line
    assert secret not in text and "hygiene-kkkk" not in text


def test_mask_hides_urls_tokens_and_secret_settings() -> None:
    settings.mask_logs(
        {
            "DATABASE_URL": "postgresql+psycopg://taktline:pg-Pass%40word@db/taktline",
            "MQTT_URL": "mqtt://taktline-ingest-1:mq-pass-123@broker:1883",
            "SECRET_KEY": "the-secret-key-0123456789",
            "PORT": 8000,
        }
    )
    assert settings.mask("mqtt://u:p4ss@host:1883 and http://127.0.0.1:8000/x") == (
        "mqtt://u:***@host:1883 and http://127.0.0.1:8000/x"
    )
    assert settings.mask("GET /station/bind?token=tld_abcdefghijklmnop HTTP/1.1") == (
        "GET /station/bind?token=*** HTTP/1.1"
    )
    assert settings.mask("Authorization: Bearer tla_abcdefghijklmnopqrstuvw") == (
        "Authorization: Bearer ***"
    )
    assert settings.mask("issued tla_abcdefghijklmnopqrstuvw") == "issued tla_***"
    assert settings.mask("password pg-Pass@word, key the-secret-key-0123456789") == (
        "password ***, key ***"
    )
    # Every log record of the process, whichever logger: message, arguments, traceback.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.hygiene")
    logger.addHandler(handler)
    try:
        logger.warning("connecting to %s", "mqtt://taktline-ingest-1:mq-pass-123@broker:1883")
        try:
            raise ValueError("bad key the-secret-key-0123456789")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "mqtt://taktline-ingest-1:***@broker:1883" in text and "ValueError: bad key ***" in text
    assert "mq-pass-123" not in text and "the-secret-key" not in text
