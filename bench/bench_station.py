"""Server time per station partial (p50, p99) and the bytes of a full station page.

The demo plant on a fresh SQLite file, orders SO-1001..SO-1005 released, a tablet
bound to KIT-1 by its binding link, Alice signed in with a unit started and two picks
scanned (the busiest screen: unit, routing, picks with lots/serials, timer). Each
partial is requested as htmx requests it (``HX-Request``) through Flask's test client,
so the time is the server's (routing, session, queries, rendering), not the network's.

    .venv/bin/python bench/bench_station.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
import time
from pathlib import Path

from sqlmodel import select

from server import create_app
from server.db import dispose_engine, get_engine, migrate, write_session
from server.models import CustomerOrder, Station
from server.orders import service as orders
from server.security import auth
from server.tools.demo import seed
from station.views import PARTIALS

HX = {"HX-Request": "true"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
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

    print(f"Station partials, {args.rounds} requests each (server time, in-process):")
    print(f"{'partial':<10} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>7}")
    for name in sorted(PARTIALS):
        times = []
        size = 0
        for _ in range(args.rounds):
            start = time.perf_counter()
            response = client.get(f"/station/KIT-1/{name}", headers=HX)
            times.append((time.perf_counter() - start) * 1000)
            size = len(response.data)
            assert response.status_code == 200
        print(f"{name:<10} {percentile(times, 0.5):8.2f} {percentile(times, 0.99):8.2f} {size:7}")
    page = client.get("/station/KIT-1")
    body = page.data
    print(
        f"full page /station/KIT-1: {len(body)} bytes ({len(gzip.compress(body))} gzipped); "
        f"p50 of {args.rounds // 3} loads: "
        f"{statistics.median(_times(client, '/station/KIT-1', args.rounds // 3)):.2f} ms"
    )
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
    print(f"static assets (first load, then cached): {static} bytes")
    dispose_engine(url)


def _times(client: object, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        client.get(path)  # type: ignore[attr-defined]
        out.append((time.perf_counter() - start) * 1000)
    return out


if __name__ == "__main__":
    main()
