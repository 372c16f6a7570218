"""`taktline web`: gunicorn workers serve the app and follow the stations live over MQTT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto, free_port, wait_port


@pytest.mark.slow
def test_web_workers_serve_and_each_subscribes_to_station_state(
    demo_db_url: str, tmp_path: Path
) -> None:
    with Mosquitto(
        tmp_path / "broker", extra_conf="log_type notice\nconnection_messages true"
    ) as broker:
        port = free_port()
        env = {
            **os.environ,
            "TAKTLINE_DATABASE_URL": demo_db_url,
            "TAKTLINE_MQTT_URL": broker.url,
            "TAKTLINE_SECRET_KEY": "k" * 32,
            "TAKTLINE_LOG_LEVEL": "INFO",
        }
        taktline = Path(sys.executable).with_name("taktline")
        proc = subprocess.Popen(
            [
                str(taktline),
                "web",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_port(port, timeout=30)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                assert r.status == 200 and "BRD-2" in r.read().decode()
            # Each worker has its own publisher and its own state subscription.
            log = tmp_path / "broker" / "mosquitto.log"
            deadline = time.monotonic() + 15
            while log.read_text().count("as taktline-live-") < 2:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out.decode()[-2000:]
        # Each worker kept its start-up objects out of the collector's passes.
        frozen = re.findall(r"start-up: (\d+) objects kept out", out.decode())
        assert len(frozen) == 2 and all(int(n) > 10_000 for n in frozen), out.decode()[-2000:]


def test_web_refuses_to_start_without_a_broker(app: object, runner: object) -> None:
    result = runner.invoke(["web"])  # type: ignore[attr-defined]
    assert result.exit_code != 0
    assert "needs TAKTLINE_MQTT_URL" in result.output
