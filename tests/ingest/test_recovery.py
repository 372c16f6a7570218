"""Nothing lost, nothing twice: broker restarts, a SIGKILLed ingest, two ingests sharing
the load. Every scan published is applied exactly once (consumptions and ledger)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from tests.support.ingest import IngestProcess, Station, counts
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.slow
SCREWS_IN_STOCK = 200


def publish_stream(
    station: Station,
    n: int,
    *,
    every: float,
    events: dict[int, threading.Event] | None = None,
    waits: dict[int, threading.Event] | None = None,
) -> list[str]:
    ids = []
    for i in range(1, n + 1):
        if waits and i in waits:
            assert waits[i].wait(60), f"stream stuck before scan {i}"
        ids.append(station.scan("SCRM3", seq=i))
        if events and i in events:
            events[i].set()
        time.sleep(every)
    return ids


def wait_all_answered(station: Station, ids: list[str], timeout: float = 60) -> None:
    station.wait(lambda: all(station.feedback.get(i) for i in ids), timeout)
    results = {fb["result"] for i in ids for fb in station.feedback[i]}
    assert results <= {"accepted", "duplicate"}, results


def test_broker_restart_and_ingest_sigkill_lose_nothing(
    broker: Mosquitto,
    station_client: Station,
    plant: str,
    tmp_path: Path,
    ingest_processes: list[IngestProcess],
) -> None:
    # One ingest, plain subscription: Mosquitto 2.0 drops what is published for an offline
    # *shared* subscriber between its own restart and that client's return (docs/deploy.md).
    ingest = IngestProcess(tmp_path / "ingest", plant, broker.url, "ingest-a", shared=False).start()
    ingest_processes.append(ingest)
    station_client.wait_for_ingest()

    n = 120
    at_40, at_80 = threading.Event(), threading.Event()
    restarted, killed = threading.Event(), threading.Event()
    ids: list[str] = []
    stream = threading.Thread(
        target=lambda: ids.extend(
            publish_stream(
                station_client,
                n,
                every=0.01,
                events={40: at_40, 80: at_80},
                waits={41: restarted, 81: killed},
            )
        )
    )
    stream.start()
    assert at_40.wait(30)
    broker.stop()  # mid-stream; scans wait in the station's client, then at the broker
    time.sleep(0.5)
    broker.start()
    restarted.set()
    assert at_80.wait(30)
    ingest.kill()  # SIGKILL: whatever it had not committed and acked comes back
    killed.set()
    time.sleep(0.5)
    ingest.start()
    stream.join(60)
    try:
        wait_all_answered(station_client, ids, timeout=60)
    except AssertionError:
        print(counts(plant), ingest.log()[-3000:])
        raise

    got = counts(plant)
    assert got["consumptions"] == n, ingest.log()[-2000:]
    assert got["ledger"] == n
    assert got["on_hand"] == SCREWS_IN_STOCK - n
    assert got["scan_events"] == n  # one row per msg_id, however often it came


def test_two_ingests_share_the_load_and_apply_each_scan_once(
    broker: Mosquitto,
    station_client: Station,
    plant: str,
    tmp_path: Path,
    ingest_processes: list[IngestProcess],
) -> None:
    procs = [
        IngestProcess(tmp_path / name, plant, broker.url, f"ingest-{name}", shared=True)
        for name in ("a", "b")
    ]
    for proc in procs:
        proc.env["TAKTLINE_LOG_LEVEL"] = "INFO"
        ingest_processes.append(proc.start())
    deadline = time.monotonic() + 30
    while not all("Ingest on $share/taktline-ingest/" in p.log() for p in procs):
        assert time.monotonic() < deadline, [p.log()[-500:] for p in procs]
        time.sleep(0.1)
    station_client.wait_for_ingest()
    time.sleep(1)  # and the other one
    ids = publish_stream(station_client, 100, every=0.002)
    wait_all_answered(station_client, ids)
    for proc in procs:
        proc.stop()
    handled = [
        int(m.group(1))
        for p in procs
        for m in re.finditer(r"stopped after (\d+) messages", p.log())
    ]
    assert len(handled) == 2 and all(h > 0 for h in handled), handled
    assert sum(handled) >= 100
    got = counts(plant)
    assert got["consumptions"] == 100 and got["ledger"] == 100
    assert got["on_hand"] == SCREWS_IN_STOCK - 100
