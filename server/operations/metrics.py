"""The process's Prometheus instruments, multi-process safe (docs/operations.md).

prometheus_client's multiprocess mode: each process writes its values to its own
memory-mapped files in one folder (``METRICS_DIR``, exported as
``PROMETHEUS_MULTIPROC_DIR``), and a scrape of any web process adds up every file of
the folder: the gunicorn workers', and the ingest's when ``taktline ingest`` runs with
the same folder on the same machine.

``setup(folder)`` (called by ``create_app``, so before gunicorn forks its workers)
points the instruments at the folder and clears what no running process uses any more
(``prepare``). The instruments are made on first use after it, never at import, so
their values always land in the folder of the process's app. Everything here is
cheap (a dict lookup and a locked write to an mmap) and never raises into its caller.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import mark_process_dead

log = logging.getLogger(__name__)
ENV = "PROMETHEUS_MULTIPROC_DIR"
_FILE = re.compile(r"^.+_(\d+)\.db$")
# Seconds: batches take milliseconds; a scan reaches the database in well under a second
# unless the ingest lags (a backlog, a station offline for hours: its ts is old).
_BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)

_lock = threading.Lock()
_folder: Path | None = None
_made: _Instruments | None = None


class _Instruments:
    """Made once per folder (a test process makes several apps, each its own folder)."""

    def __init__(self) -> None:
        self.ingest_messages = Counter(
            "taktline_ingest_messages",
            "Messages the ingest answered, by station and result (accepted, rejected, "
            "duplicate); rate_limited and internal_error answers count as rejected.",
            ["station", "result"],
            registry=None,
        )
        self.queue_depth = Gauge(
            "taktline_ingest_queue_depth",
            "Messages received by the ingest and not yet taken into a batch.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.heartbeat = Gauge(
            "taktline_ingest_heartbeat_timestamp_seconds",
            "When an ingest worker last went round its loop (at least every 0.2 s while "
            "it lives), the latest of every ingest process: stale means no ingest works.",
            registry=None,
            multiprocess_mode="max",
        )
        self.batch_seconds = Histogram(
            "taktline_ingest_batch_seconds",
            "Time from taking a batch off the queue to its commit and acknowledgement.",
            registry=None,
            buckets=_BATCH_BUCKETS,
        )
        self.batch_size = Histogram(
            "taktline_ingest_batch_size",
            "Messages per ingest batch.",
            registry=None,
            buckets=_SIZE_BUCKETS,
        )
        self.scan_to_commit = Histogram(
            "taktline_scan_to_commit_seconds",
            "From the event's ts (the station's clock, when the scan was read) to the "
            "commit of its verdict; events without ts are not counted.",
            registry=None,
            buckets=_LATENCY_BUCKETS,
        )
        self.arrival_to_commit = Histogram(
            "taktline_ingest_arrival_to_commit_seconds",
            "From the message's arrival at the ingest to the commit of its verdict.",
            registry=None,
            buckets=_LATENCY_BUCKETS,
        )
        self.sse = Gauge(
            "taktline_sse_connections",
            "Open live streams (SSE), by stream: station (tablets) or board.",
            ["stream"],
            registry=None,
            multiprocess_mode="livesum",
        )


def setup(folder: Path) -> None:
    """Use ``folder`` for this process's values (made if missing, cleared by ``prepare``)."""
    global _folder, _made
    folder = folder.resolve()
    with _lock:
        if folder == _folder:
            return
        prepare(folder)
        os.environ[ENV] = str(folder)
        # prometheus_client picks its value class when first imported, from the
        # environment; whatever imported it before us, the values made from now on
        # are multiprocess ones (each remembers its file: a new folder, new instruments).
        values.ValueClass = values.MultiProcessValue()
        _folder, _made = folder, None


def folder() -> Path | None:
    return _folder


def prepare(folder: Path) -> None:
    """Make the folder; when no process that wrote to it still runs, empty it (a fresh
    start: counters begin at 0); else drop only the live gauges of the processes that
    are gone. Counters and histograms of a process that is gone stay, so that the
    totals never go backwards while others run."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [f for f in folder.glob("*.db") if _FILE.match(f.name)]
    pids = {int(_FILE.match(f.name).group(1)) for f in files}  # type: ignore[union-attr]
    running = {pid for pid in pids if pid == os.getpid() or _running(pid)}
    if not running:
        for f in files:
            with contextlib.suppress(OSError):
                f.unlink()
        return
    for pid in pids - running:
        mark_process_dead(pid, str(folder))


def process_exited(pid: int) -> None:
    """gunicorn's ``worker_exit``: that worker's live gauges stop counting."""
    if _folder is not None:
        mark_process_dead(pid, str(_folder))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _instruments() -> _Instruments:
    global _made
    made = _made
    if made is None:
        with _lock:
            if _made is None:
                _made = _Instruments()
            made = _made
    return made


# -- what the processes call ---------------------------------------------------------


def ingest_loop(*, queue_depth: int) -> None:
    """Each round of the ingest worker: its queue and its heartbeat."""
    with _quiet():
        made = _instruments()
        made.queue_depth.set(queue_depth)
        made.heartbeat.set(time.time())


def ingest_batch(
    *,
    seconds: float,
    size: int,
    answers: Iterable[tuple[str, str]],
    committed: Iterable[tuple[datetime | None, float]],
    commit_wall: float,
    commit_monotonic: float,
) -> None:
    """One batch: its duration and size, each answer's (station, result), and for each
    event decided in it (its ts or None, its arrival on the monotonic clock)."""
    with _quiet():
        made = _instruments()
        made.batch_seconds.observe(seconds)
        made.batch_size.observe(size)
        for ts, arrived in committed:
            made.arrival_to_commit.observe(max(0.0, commit_monotonic - arrived))
            if ts is not None:
                stamp = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
                made.scan_to_commit.observe(max(0.0, commit_wall - stamp.timestamp()))
        # Last: a scrape that sees a batch's answers counted sees the rest of it too.
        for station, result in answers:
            made.ingest_messages.labels(station=station, result=result).inc()


def sse_opened(stream: str) -> None:
    """An SSE stream (``station`` or ``board``) opened; ``sse_closed`` in its finally."""
    with _quiet():
        _instruments().sse.labels(stream=stream).inc()


def sse_closed(stream: str) -> None:
    with _quiet():
        _instruments().sse.labels(stream=stream).dec()


@contextlib.contextmanager
def _quiet() -> Any:
    """A metric must never break a scan or a stream: log and go on."""
    try:
        yield
    except Exception:  # noqa: BLE001 - monitoring is not worth a failed request
        log.warning("metrics: could not record a value", exc_info=True)
