"""Server time per station partial (p50, p99) and the bytes of a full station page.

The demo plant on a fresh SQLite file, orders SO-1001..SO-1005 released, a tablet
bound to KIT-1 by its binding link, Alice signed in with a unit started and two picks
scanned (the busiest screen: unit, routing, picks with lots/serials, timer). Each
partial is requested as htmx requests it (``HX-Request``) through Flask's test client,
so the time is the server's (routing, session, queries, rendering), not the network's.

    .venv/bin/python bench/bench_station.py [--rounds 300] [--before REV]

``--sse N`` serves the app from a child process (Werkzeug's threaded server: a thread
per connection, as gunicorn's gthread workers) and opens N tablet streams
(``/station/KIT-1/events``), each until its first snapshot, and prints the child's
resident memory before and after, per connection.

``--before REV`` also runs the same measurement on the code of commit ``REV``
(extracted with ``git archive`` into a temporary folder, imported from there), then
on this working tree, and prints both side by side, each with the machine's load
average when it ran; ``--repeat K`` alternates K runs of each and prints the medians.
``--profile PARTIAL`` prints where one partial's time goes (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import json
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HX = {"HX-Request": "true"}
ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tablet() -> tuple[Any, Any, str]:
    """The app with the demo plant and the busiest screen at KIT-1, a client bound to
    it, and the binding token (the device cookie's value)."""
    from sqlmodel import select

    from server import create_app
    from server.db import get_engine, migrate, write_session
    from server.models import CustomerOrder, Station
    from server.orders import service as orders
    from server.security import auth
    from server.tools.demo import seed

    tmp = Path(tempfile.mkdtemp(prefix="bench-station-"))
    url = f"sqlite:///{tmp / 'taktline.db'}"
    migrate.upgrade(url)
    seed.seed(get_engine(url))
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "RUN_INGEST": False,
            "TESTING": True,
            "LOG_LEVEL": "WARNING",
        },
        instance_path=str(tmp),
    )
    engine = app.extensions["taktline.engine"]
    with write_session(engine) as db:
        for order in db.exec(select(CustomerOrder).order_by(CustomerOrder.number)).all():
            try:
                orders.release(db, order=order, by="bench")
            except orders.Shortage:
                continue
        kit = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        token = auth.issue_device_token(db, station=kit, by=None)
    client = app.test_client()
    assert client.get(f"/station/bind?token={token}").status_code == 303
    for path, data in (
        ("/station/KIT-1/scan", {"data": "OP1001"}),
        ("/station/KIT-1/start", {}),
        ("/station/KIT-1/scan", {"data": "9506000001104"}),
        ("/station/KIT-1/scan", {"data": "(01)09506000001210(10)FN-2605"}),
    ):
        assert client.post(path, data=data, headers=HX).status_code == 200
    return app, client, token


def _times(client: Any, path: str, n: int, headers: dict[str, str] | None = None) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path, headers=headers or {})
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, path
    return out


def measure(rounds: int) -> dict[str, Any]:
    """p50/p99 and bytes of every partial, and of the full page, on this code."""
    from server.db import dispose_engine
    from station.views import PARTIALS

    app, client, _token = tablet()
    load = load_average()
    partials = {}
    for name in sorted(PARTIALS):
        path = f"/station/KIT-1/{name}"
        _times(client, path, 10, HX)  # warm-up: templates compiled, statements cached
        times = _times(client, path, rounds, HX)
        size = len(client.get(path, headers=HX).data)
        partials[name] = {
            "p50": percentile(times, 0.5),
            "p99": percentile(times, 0.99),
            "bytes": size,
        }
    body = client.get("/station/KIT-1").data
    page = {
        "bytes": len(body),
        "gzipped": len(gzip.compress(body)),
        "p50": statistics.median(_times(client, "/station/KIT-1", max(rounds // 3, 1))),
    }
    static = sum(
        len(client.get(p).data)
        for p in (
            "/static/station.css",
            "/static/station.js",
            "/static/taktline.css",
            "/static/vendor/htmx-2.0.11.min.js",
            "/static/vendor/htmx-ext-sse-2.2.4.min.js",
        )
    )
    dispose_engine(app.config["DATABASE_URL"])
    return {"load": load, "partials": partials, "page": page, "static": static}


def run(code: Path, rounds: int) -> dict[str, Any]:
    """``measure`` in a child process importing the code under ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--rounds", str(rounds), "--json"],
        cwd=code,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def extract(rev: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-station-before-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def report(result: dict[str, Any], rounds: int) -> None:
    print(f"Station partials, {rounds} requests each (server time, in-process):")
    print(f"load average (1, 5, 15 min): {result['load']}")
    print(f"{'partial':<10} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>7}")
    for name, p in result["partials"].items():
        print(f"{name:<10} {p['p50']:8.2f} {p['p99']:8.2f} {p['bytes']:7}")
    page = result["page"]
    print(
        f"full page /station/KIT-1: {page['bytes']} bytes ({page['gzipped']} gzipped); "
        f"p50 of {max(rounds // 3, 1)} loads: {page['p50']:.2f} ms"
    )
    print(f"static assets (first load, then cached): {result['static']} bytes")


def merged(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs of ``measure`` as one: the median of each figure, every load."""
    first = results[0]
    return {
        "load": " / ".join(r["load"] for r in results),
        "partials": {
            name: {
                key: statistics.median(r["partials"][name][key] for r in results)
                for key in ("p50", "p99", "bytes")
            }
            for name in first["partials"]
        },
        "page": {
            key: statistics.median(r["page"][key] for r in results)
            for key in ("p50", "bytes", "gzipped")
        },
        "static": first["static"],
        "runs": len(results),
    }


def compare(rev: str, before: dict[str, Any], after: dict[str, Any], rounds: int) -> None:
    runs = after.get("runs", 1)
    print(f"Station partials, {rounds} requests each (server time, in-process)", end="")
    print(f"; median of {runs} alternated runs per side" if runs > 1 else "")
    print(f"before = {rev}, load average (1, 5, 15 min) {before['load']}")
    print(f"after  = this working tree, load average (1, 5, 15 min) {after['load']}")
    print(
        f"{'partial':<10} {'before p50':>10} {'p99':>8} {'after p50':>10} {'p99':>8} "
        f"{'bytes before/after':>19}"
    )
    for name, a in after["partials"].items():
        b = before["partials"].get(name)
        if b is None:
            continue
        print(
            f"{name:<10} {b['p50']:10.2f} {b['p99']:8.2f} {a['p50']:10.2f} {a['p99']:8.2f} "
            f"{b['bytes']:>10}/{a['bytes']}"
        )
    print(
        f"{'full page':<10} {before['page']['p50']:10.2f} {'':>8} {after['page']['p50']:10.2f}"
        f" {'':>8} {before['page']['bytes']:>10}/{after['page']['bytes']}"
    )


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def serve() -> None:
    """The child of ``--sse``: the app on a free port; prints its port and token. A
    line ``change`` on its stdin bumps the priority of a unit in KIT-1's queue (a
    supervisor's move), which every open stream renders as a new snapshot."""
    from sqlalchemy import update
    from werkzeug.serving import make_server

    from server.db import write_session
    from server.models import UnitOperation

    app, _client, token = tablet()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(json.dumps({"port": server.server_port, "token": token}), flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for line in sys.stdin:
        if line.strip() == "change":
            with write_session(app.extensions["taktline.engine"]) as db:
                db.execute(
                    update(UnitOperation)
                    .where(UnitOperation.station_kind == "kitting")  # type: ignore[arg-type]
                    .values(priority=UnitOperation.priority + 1)
                )
    server.shutdown()


def open_stream(port: int, token: str) -> socket.socket:
    """A tablet's SSE connection, read up to the end of its first snapshot."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(
        (
            "GET /station/KIT-1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Cookie: taktline_device={token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    seen = b""
    while b"\n\n" not in seen[seen.find(b"event: snapshot") :] or b"event: snapshot" not in seen:
        chunk = conn.recv(65536)
        if not chunk:
            raise SystemExit("the stream closed before its first snapshot")
        seen += chunk
    return conn


def sse(n: int, changes: int) -> None:
    from station.views import POLL_SECONDS

    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        port, token = info["port"], info["token"]
        for _ in range(3):  # warm: templates compiled, statements cached, pool filled
            open_stream(port, token).close()
        time.sleep(POLL_SECONDS + 1)
        before = rss_kb(child.pid)
        start = time.perf_counter()
        streams = [open_stream(port, token) for _ in range(n)]
        opened = time.perf_counter() - start
        time.sleep(POLL_SECONDS + 1)  # every stream polled at least once
        after = rss_kb(child.pid)
        assert child.stdin is not None
        for _ in range(changes):  # each one re-rendered by every stream (its next poll)
            child.stdin.write("change\n")
            child.stdin.flush()
            time.sleep(POLL_SECONDS + 0.5)
        later = rss_kb(child.pid)
        print(f"load average (1, 5, 15 min): {load_average()}")
        print(
            f"{n} tablet streams opened in {opened:.2f} s; web process RSS "
            f"{before / 1024:.1f} MB before, {after / 1024:.1f} MB after: "
            f"{(after - before) / 1024 / n:.3f} MB per SSE connection"
        )
        if changes:
            print(
                f"after {changes} changes, each a snapshot on every stream: "
                f"{later / 1024:.1f} MB, {(later - before) / 1024 / n:.3f} MB per SSE connection"
            )
        for stream in streams:
            stream.close()
    finally:
        child.terminate()
        child.wait(timeout=10)


def profile(name: str, rounds: int) -> None:
    _app, client, _token = tablet()
    path = f"/station/KIT-1/{name}"
    _times(client, path, 10, HX)
    profiler = cProfile.Profile()
    profiler.enable()
    _times(client, path, rounds, HX)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--before", metavar="REV", help="also measure commit REV, side by side")
    parser.add_argument("--repeat", type=int, default=1, help="with --before: runs per side")
    parser.add_argument("--profile", metavar="PARTIAL", help="cProfile one partial")
    parser.add_argument("--sse", type=int, metavar="N", help="RSS per tablet SSE connection")
    parser.add_argument("--changes", type=int, default=5, help="with --sse: changes streamed")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
    elif args.sse:
        sse(args.sse, args.changes)
    elif args.profile:
        profile(args.profile, args.rounds)
    elif args.json:
        print(json.dumps(measure(args.rounds)))
    elif args.before:
        # Alternated, so that a busy minute on a shared machine falls on both sides.
        old = extract(args.before)
        befores, afters = [], []
        for _ in range(args.repeat):
            befores.append(run(old, args.rounds))
            afters.append(run(ROOT, args.rounds))
        compare(args.before, merged(befores), merged(afters), args.rounds)
    else:
        report(measure(args.rounds), args.rounds)


if __name__ == "__main__":
    main()
