"""The README's demo command, as a user runs it: a fresh folder, a real process, real HTTP."""

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

from tests.support.mosquitto import free_port, wait_port


@pytest.mark.slow
def test_taktline_demo_seeds_and_serves(tmp_path: Path) -> None:
    port, broker_port = free_port(), free_port()
    env = {
        **os.environ,
        "TAKTLINE_EMBEDDED_BROKER_PORT": str(broker_port),
        "TAKTLINE_LOG_LEVEL": "INFO",
    }
    env.pop("TAKTLINE_DATABASE_URL", None)
    env.pop("TAKTLINE_MQTT_URL", None)
    taktline = Path(sys.executable).with_name("taktline")
    proc = subprocess.Popen(
        [str(taktline), "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            html = response.read().decode()
            assert response.status == 200
        assert "KIT-1" in html and "TST-1" in html
        wait_port(broker_port, timeout=5)  # the embedded broker is up beside the web server
        assert (tmp_path / "instance" / "taktline.db").exists()
        assert (tmp_path / "instance" / "secret_key").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    text = out.decode()
    assert "Demo plant loaded." in text
    # What start-up made is out of the collector's full passes (server.operations.startup).
    frozen = re.search(r"start-up: (\d+) objects kept out of the garbage collector", text)
    assert frozen and int(frozen.group(1)) > 10_000, text[-2000:]
    assert proc.returncode == 0, text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the embedded broker went down with the server
        try:
            wait_port(broker_port, timeout=0.2)
        except TimeoutError:
            break
    else:
        pytest.fail("the embedded broker outlived `taktline demo`")
