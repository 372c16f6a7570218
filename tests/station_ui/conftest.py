"""End-to-end fixtures: the real server (`taktline serve` in a subprocess: waitress,
ingest, live hub) on a free port, a private Mosquitto, the demo plant with order
SO-1001 released, and headless Debian Chromium driven by Playwright.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlmodel import select

from firmware_bridge import topics
from server.db import dispose_engine, get_engine, write_session
from server.models import CustomerOrder, Station
from server.orders import service as orders
from server.security import auth
from tests.support.mosquitto import Mosquitto, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]


@dataclass
class LiveServer:
    url: str
    db_url: str
    mqtt_port: int
    workdir: Path
    proc: subprocess.Popen[bytes]

    def device_link(self, station: str) -> str:
        """A binding link for ``station``, as the admin page hands it out."""
        with write_session(get_engine(self.db_url)) as db:
            row = db.exec(select(Station).where(Station.code == station)).one()
            token = auth.issue_device_token(db, station=row, by=None, label="e2e tablet")
        return f"{self.url}/station/bind?token={token}"

    def publish_scan(self, station: str, data: str) -> str:
        """A scan from a serial scanner, as the station bridge publishes it."""
        msg_id = str(uuid.uuid4())
        payload = {"msg_id": msg_id, "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                   "seq": 1, "source": "scanner1", "data": data}
        topic = topics.build("PLT1", "PC1", station, "evt/scan")
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"e2e-{msg_id[:8]}")
        client.connect("127.0.0.1", self.mqtt_port)
        client.loop_start()
        try:
            client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()
        return msg_id


@pytest.fixture(scope="package")
def live_server(_sqlite_templates: dict[str, Path],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("station-e2e")
    broker = Mosquitto(workdir / "broker").start()
    db_file = workdir / "taktline.db"
    shutil.copy(_sqlite_templates["demo"], db_file)
    db_url = f"sqlite:///{db_file}"
    with write_session(get_engine(db_url)) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="e2e setup")
    port = free_port()
    env = {**os.environ, "TAKTLINE_DATABASE_URL": db_url, "TAKTLINE_MQTT_URL": broker.url,
           "TAKTLINE_PORT": str(port), "TAKTLINE_SECRET_KEY": "e2e-" + uuid.uuid4().hex,
           "TAKTLINE_WEB_THREADS": "16", "TAKTLINE_STATION_HEARTBEAT_SECONDS": "2",
           "TAKTLINE_INGEST_SHARED": "false", "TAKTLINE_LOG_LEVEL": "INFO"}
    log = (workdir / "server.log").open("wb")
    taktline = str(Path(sys.executable).with_name("taktline"))
    proc = subprocess.Popen([taktline, "serve"], cwd=workdir,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(url, db_url, broker.port, workdir, proc)
    try:
        _wait_http(url + "/healthz", proc, workdir / "server.log")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        broker.stop()
        dispose_engine(db_url)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"taktline serve exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer: {log.read_text()[-3000:]}")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def tablet(browser: Any, request: pytest.FixtureRequest, artifacts_dir: Path) -> Iterator[Any]:
    """A fresh 1280x800 touch tablet (its own cookies); a screenshot when the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, has_touch=True,
                                  device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    if request.node.stash.get(_FAILED, False):
        (artifacts_dir / "station").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts_dir / "station" / f"FAILED-{request.node.name}.png"))
    context.close()


@pytest.fixture
def shots(artifacts_dir: Path) -> Path:
    path = artifacts_dir / "station"
    path.mkdir(parents=True, exist_ok=True)
    return path
