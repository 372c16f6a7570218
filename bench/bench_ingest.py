"""Scan-to-feedback latency and sustained accepted scans per second through the ingest.

    .venv/bin/python bench/bench_ingest.py [--stations 50] [--rate 2] [--seconds 20]
                                           [--flood 6000] [--nagle]
                                           [--noise-garbage 5000 --noise-duplicates 10000]

Builds a fresh SQLite plant (N stations, each with a step in progress that needs a
million bolts), starts a private Mosquitto (deploy/mosquitto.conf tuning) and
``taktline ingest`` as its own process, then measures, in the same run:

1. floor: a bare MQTT QoS 1 round trip on the same broker (publish, receive back);
2. floor: a bare SQLite commit (one INSERT + COMMIT, WAL, synchronous=NORMAL);
   and the cost of one SQLAlchemy Core statement inside a batch transaction;
3. latency: N stations each scanning ``rate`` times a second; scan publish -> its
   ``cmd/feedback`` received, p50 / p99;
4. a noisy station (with ``--noise-garbage`` / ``--noise-duplicates``): station 0
   publishes that much garbage and that many copies of one scan as fast as it can
   while the other stations scan at the steady rate; their p99 beside the unflooded
   p99 of step 3, and every noisy message answered (never silence);
5. throughput: ``flood`` scans published as fast as possible from all stations;
   accepted scans per second from the first publish to the last feedback.

Every scan is checked: accepted count == consumptions == ledger lines in the database.
At the end, ``/api/v1/metrics`` of an app on the same database and metrics folder
(``TAKTLINE_METRICS_DIR``, shared with the ingest) is scraped with a ``metrics:read``
token: the ingest's answer counters and the database's scan counters beside ours.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstat import CpuMeter  # noqa: E402
from server.db import dispose_engine, get_engine, migrate, write_session  # noqa: E402
from server.inventory import ledger  # noqa: E402
from server.models import (  # noqa: E402
    Consumption,
    CustomerOrder,
    Line,
    Location,
    Operation,
    Operator,
    OrderLine,
    Part,
    PartIdentifier,
    Product,
    Site,
    Station,
    StockMovement,
    Unit,
    UnitOperation,
    WorkOrder,
)
from station import service  # noqa: E402
from station.workflow import SignIn, StartNext  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402

# What an accepted pick of a carried station needs at least (docs: bench/README.md):
# the event INSERT with its verdict, the consumption INSERT, the ledger INSERT, and the
# read of the lots when the batch has not seen the part yet.
SCAN_STATEMENTS = 3


def _no_delay(client: mqtt.Client, userdata: object, sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ``--profile DIR``: each ingest's worker thread (and paho's network thread) under
# cProfile, the stats written to DIR/<client id>-{worker,network}.prof when it stops.
PROFILED_INGEST = """
import cProfile, sys
import paho.mqtt.client as mqtt
from server.ingest import worker
from server.cli import main

out = sys.argv.pop(1)

def profiled(run, name):
    def wrapper(*args, **kwargs):
        prof = cProfile.Profile()
        prof.enable()
        try:
            return run(*args, **kwargs)
        finally:
            prof.disable()
            prof.dump_stats(f"{out}-{name}.prof")
    return wrapper

worker.Ingest._run = profiled(worker.Ingest._run, "worker")
mqtt.Client._thread_main = profiled(mqtt.Client._thread_main, "network")
sys.argv[0] = "taktline"
sys.exit(main())
"""

NOISY_LINE = "LN"  # with --noisy-apart, station 0's line, taken by an ingest of its own


def line_of(i: int, noisy_apart: bool = False, ingests: int = 1) -> str:
    """Station ``i``'s line: L1; with ``ingests`` > 1, L1..Lk in turn (one ingest each)."""
    if noisy_apart and i == 0:
        return NOISY_LINE
    return f"L{i % ingests + 1}"


def layout(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """The ingest processes: (name, client id, ``taktline ingest`` arguments)."""
    if args.noisy_apart:
        return [
            ("ingest (L1)", "bench-ingest", ["--lines", "L1"]),
            (f"ingest ({NOISY_LINE})", "bench-noisy", ["--lines", NOISY_LINE]),
        ]
    if args.ingests > 1:
        return [
            (f"ingest (L{k})", f"bench-ingest-{k}", ["--lines", f"L{k}"])
            for k in range(1, args.ingests + 1)
        ]
    return [("ingest", "bench-ingest", [])]


def fresh_database(url: str) -> str:
    """Drop and create the database named in a PostgreSQL ``url``; returns the url."""
    parsed = sa.engine.make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    admin.dispose()
    return url


def build_plant(
    url: str,
    stations: int,
    noisy_apart: bool = False,
    lines: Callable[[int], str] | None = None,
    part_per_line: bool = False,
) -> None:
    """N stations ``ST00``.. on line L1 (or ``lines(i)``), each signed in with a unit
    started whose one step needs a million bolts: every "BOLT" scan is an accepted pick.
    ``part_per_line``: each line's stations pick their own part, ``BOLT-<line>`` (its
    own lot), for an order of its own, as lines building different things do (a pick's
    outbound event takes its order's lock until the commit)."""
    lines = lines or (lambda i: line_of(i, noisy_apart))
    assert lines is not None

    def kind(i: int) -> str:
        return f"bench-{lines(i)}" if part_per_line else "bench"

    migrate.upgrade(url)
    engine = get_engine(url)
    from datetime import date

    with write_session(engine) as s:
        site = Site(code="B", name="Bench")
        s.add(site)
        s.flush()
        codes = sorted({lines(i) for i in range(stations)} | {"L1"})
        by_code = {code: Line(site_id=site.id, code=code, name=f"Bench {code}") for code in codes}
        s.add_all(by_code.values())
        s.flush()
        line = by_code["L1"]
        for i in range(stations):
            s.add(
                Station(
                    line_id=by_code[lines(i)].id,
                    code=f"ST{i:02d}",
                    name=f"Station {i}",
                    kind=kind(i),
                    position=i,
                )
            )
        loc = Location(code="LS", name="Line side", kind="lineside")
        s.add(loc)
        parts = {}
        for sku in sorted({part_sku(lines(i), part_per_line) for i in range(stations)}):
            parts[sku] = Part(sku=sku, description="Bolt M4", tracking="none")
            s.add(parts[sku])
            s.flush()
            s.add(PartIdentifier(part_id=parts[sku].id, kind="code", value=sku))
            ledger.receive(s, part=parts[sku], location_id=loc.id, quantity=10_000_000, by="bench")
        product = Product(code="BX", name="Bench box", line_id=line.id)
        s.add(product)
        s.flush()
        ops = {}
        for k in sorted({kind(i) for i in range(stations)}):
            ops[k] = Operation(
                product_id=product.id,
                code=f"ASM-{k}",
                sequence=10,
                name="Assemble",
                station_kind=k,
            )
            s.add(ops[k])
        s.add(Operator(name="Bench Operator", badge="B1"))
        work_orders: dict[str, WorkOrder] = {}
        for key in sorted({lines(i) if part_per_line else "" for i in range(stations)}):
            order = CustomerOrder(number=f"SO-B{key}", customer="Bench", due_date=date.today())
            s.add(order)
            s.flush()
            ol = OrderLine(order_id=order.id, line_no=1, product_id=product.id, quantity=stations)
            s.add(ol)
            s.flush()
            work_orders[key] = WorkOrder(
                number=f"WO-B{key}", order_line_id=ol.id, quantity=stations
            )
            s.add(work_orders[key])
        s.flush()
        for i in range(stations):
            wo = work_orders[lines(i) if part_per_line else ""]
            unit = Unit(serial=f"BX-{i:04d}", work_order_id=wo.id, product_id=product.id)
            s.add(unit)
            s.flush()
            part = parts[part_sku(lines(i), part_per_line)]
            s.add(
                UnitOperation(
                    unit_id=unit.id,
                    operation_id=ops[kind(i)].id,
                    sequence=10,
                    station_kind=kind(i),
                    status="ready",
                    picks=[{"part_id": part.id, "sku": part.sku, "qty": 1_000_000}],
                )
            )
    for i in range(stations):
        for event in (SignIn("B1"), StartNext()):
            with write_session(engine) as s:
                outcome = service.handle(s, station_code=f"ST{i:02d}", event=event)
                assert outcome.accepted, outcome.message


def part_sku(line: str, part_per_line: bool) -> str:
    return f"BOLT-{line}" if part_per_line else "BOLT"


class Stations:
    """One MQTT client per station; records publish and feedback times per msg_id."""

    def __init__(
        self, port: int, n: int, line: Callable[[int], str] = line_of, part_per_line: bool = False
    ) -> None:
        self.port = port
        self.bases = [f"taktline/B/{line(i)}/ST{i:02d}" for i in range(n)]
        self.data = [part_sku(line(i), part_per_line) for i in range(n)]
        self.sent: dict[str, float] = {}
        self.answered: dict[str, tuple[float, str]] = {}
        self.answers: dict[str, int] = {}  # feedbacks received per ref (duplicates too)
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)
        self.clients = []
        ready = threading.Barrier(n + 1)
        for i in range(n):
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-st{i}")
            c.max_inflight_messages_set(1000)
            c.max_queued_messages_set(0)
            c.on_socket_open = _no_delay
            topic = f"{self.bases[i]}/cmd/feedback"
            c.on_connect = lambda cl, *a, t=topic: cl.subscribe(t, 1)
            c.on_subscribe = lambda *a: ready.wait()
            c.on_message = self._on_feedback
            c.connect("127.0.0.1", port)
            c.loop_start()
            self.clients.append(c)
        ready.wait(30)
        self.seq = [0] * n

    def _on_feedback(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        fb = json.loads(msg.payload)
        with self.lock:
            self.answered.setdefault(fb["ref"], (now, fb["result"]))  # the first answer
            self.answers[fb["ref"]] = self.answers.get(fb["ref"], 0) + 1
            self.done.notify_all()

    def scan(self, i: int) -> str:
        self.seq[i] += 1
        msg_id = str(uuid.uuid4())
        payload = json.dumps(
            {
                "msg_id": msg_id,
                "ts": "2026-03-02T08:00:00.000Z",
                "seq": self.seq[i],
                "source": "scanner1",
                "data": self.data[i],
            }
        )
        with self.lock:
            self.sent[msg_id] = time.perf_counter()
        self.clients[i].publish(f"{self.bases[i]}/evt/scan", payload, qos=1)
        return msg_id

    def raw(self, i: int, payload: bytes) -> None:
        """Publish any payload on station ``i``'s scan topic (the noisy station)."""
        self.clients[i].publish(f"{self.bases[i]}/evt/scan", payload, qos=1)

    def wait(self, ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(i in self.answered for i in ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sum(1 for i in ids if i not in self.answered)
                    raise SystemExit(f"{missing} scans got no feedback in {timeout} s")
                self.done.wait(left)

    def close(self) -> None:
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


def mqtt_throughput_floor(port: int, n: int = 10_000) -> float:
    """Messages per second one paho client gets acknowledged by the broker at QoS 1
    (publish -> PUBACK, nobody subscribed): the most any ingest could take in."""
    acked = threading.Semaphore(0)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-floor-rate")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.on_socket_open = _no_delay
    c.on_publish = lambda *a: acked.release()
    c.connect("127.0.0.1", port)
    c.loop_start()
    payload = json.dumps({"msg_id": str(uuid.uuid4()), "seq": 1, "data": "BOLT"})
    t0 = time.perf_counter()
    for _ in range(n):
        c.publish("bench/rate", payload, qos=1)
    for _ in range(n):
        acked.acquire(timeout=60)
    rate = n / (time.perf_counter() - t0)
    c.disconnect()
    c.loop_stop()
    return rate


def mqtt_floor(port: int, n: int = 500) -> list[float]:
    got: dict[str, float] = {}
    cond = threading.Condition()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-floor")
    c.on_socket_open = _no_delay
    sub = threading.Event()
    c.on_connect = lambda cl, *a: cl.subscribe("bench/echo", 1)
    c.on_subscribe = lambda *a: sub.set()

    def on_message(cl: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with cond:
            got[msg.payload.decode()] = time.perf_counter()
            cond.notify_all()

    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    sub.wait(10)
    out = []
    for i in range(n):
        key = str(i)
        t0 = time.perf_counter()
        c.publish("bench/echo", key, qos=1)
        with cond:
            cond.wait_for(lambda k=key: k in got, 5)
        out.append(got[key] - t0)
    c.disconnect()
    c.loop_stop()
    return out


def sqlite_floor(path: Path, n: int = 1000) -> list[float]:
    url = f"sqlite:///{path}"
    engine = get_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    out = []
    with engine.connect() as conn:
        for i in range(n):
            t0 = time.perf_counter()
            conn.execute(sa.text("INSERT INTO t (v) VALUES (:v)"), {"v": str(i)})
            conn.commit()
            out.append(time.perf_counter() - t0)
    dispose_engine(url)
    return out


def statement_floor(path: Path, n: int = 4000, batch: int = 200) -> float:
    """Seconds per SQLAlchemy Core INSERT (compiled cache hit) inside a batch transaction:
    the cost of one of the statements an accepted scan cannot do without."""
    url = f"sqlite:///{path}"
    engine = get_engine(url)
    table = sa.Table(
        "s", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.String)
    )
    table.metadata.create_all(engine)
    stmt = sa.insert(table)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        for i in range(0, n, batch):
            for k in range(batch):
                conn.execute(stmt, {"v": str(i + k)})
            conn.commit()
    per = (time.perf_counter() - t0) / n
    dispose_engine(url)
    return per


def scrape_metrics(url: str, work: Path, accepted: int) -> dict[str, float]:
    """``/api/v1/metrics`` of an app on the bench's database and metrics folder, once the
    ingest has counted ``accepted`` answers (it counts a batch just after its feedback)."""
    from prometheus_client.parser import text_string_to_metric_families

    from server import create_app
    from server.security import auth

    app = create_app(
        {
            "DATABASE_URL": url,
            "METRICS_DIR": str(work / "metrics"),
            "RUN_INGEST": False,
            "LOG_LEVEL": "WARNING",
        },
        instance_path=str(work / "web"),
    )
    with write_session(app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="bench", scopes=["metrics:read"], by=None)
    client = app.test_client()
    deadline = time.monotonic() + 10
    while True:
        response = client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.status_code
        got: dict[str, float] = {"batch_p99": float("inf")}
        buckets: list[tuple[float, float]] = []
        for family in text_string_to_metric_families(response.get_data(as_text=True)):
            for sample in family.samples:
                labels, v = sample.labels, sample.value
                if sample.name == "taktline_ingest_messages_total":
                    key = f"answered_{labels['result']}"
                    got[key] = got.get(key, 0.0) + v
                elif sample.name == "taktline_events_total" and labels["kind"] == "scan":
                    key = f"events_{labels['result']}"
                    got[key] = got.get(key, 0.0) + v
                elif sample.name == "taktline_ingest_batch_seconds_count":
                    got["batches"] = v
                elif sample.name == "taktline_ingest_batch_seconds_bucket":
                    buckets.append((float(labels["le"]), v))
        for le, count in sorted(buckets):
            if count >= 0.99 * got.get("batches", 0.0):
                got["batch_p99"] = le
                break
        for key in ("answered_accepted", "answered_rejected", "answered_duplicate"):
            got.setdefault(key, 0.0)
        got.setdefault("events_accepted", 0.0)
        got.setdefault("events_rejected", 0.0)
        if got["answered_accepted"] >= accepted or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--rate", type=float, default=2.0, help="scans per second per station")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--flood", type=int, default=6000)
    ap.add_argument(
        "--inflight", type=int, default=None, help="override max_inflight_messages (0: none)"
    )
    ap.add_argument("--noise-garbage", type=int, default=0, help="garbage from station 0")
    ap.add_argument("--noise-duplicates", type=int, default=0, help="copies of one scan")
    ap.add_argument(
        "--nagle",
        action="store_true",
        help="leave the broker's set_tcp_nodelay off (Mosquitto's default)",
    )
    ap.add_argument(
        "--noise-client",
        choices=["c", "python"],
        default="c",
        help="the noisy device: mosquitto_pub -l (C) or a paho client in its own process",
    )
    ap.add_argument(
        "--autosave",
        type=int,
        default=1800,
        help="the broker's autosave_interval in seconds (Mosquitto's default: 1800)",
    )
    ap.add_argument(
        "--pg",
        default="",
        metavar="URL",
        help="the plant on PostgreSQL: a database URL whose database is dropped and created",
    )
    ap.add_argument(
        "--ingests",
        type=int,
        default=1,
        help="partitioned ingest: stations on lines L1..Lk in turn, one taktline ingest "
        "--lines Lk each",
    )
    ap.add_argument(
        "--part-per-line",
        action="store_true",
        help="each line's stations pick their own part and lot (BOLT-<line>)",
    )
    ap.add_argument(
        "--noisy-apart",
        action="store_true",
        help="station 0 on a line of its own, taken by a second ingest (taktline ingest "
        "--lines): partitioned ingest (docs/deploy.md)",
    )
    ap.add_argument(
        "--profile",
        default="",
        metavar="DIR",
        help="run each ingest's worker and network threads under cProfile; stats in DIR",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    url = fresh_database(args.pg) if args.pg else f"sqlite:///{work / 'taktline.db'}"
    line = functools.partial(line_of, noisy_apart=args.noisy_apart, ingests=args.ingests)
    build_plant(url, args.stations, lines=line, part_per_line=args.part_per_line)
    dispose_engine(url)
    tuning = "\n".join(
        line
        for line in (ROOT / "deploy/mosquitto.conf").read_text().splitlines()
        if line.startswith(("max_inflight", "max_queued"))
        and not (args.inflight is not None and line.startswith("max_inflight"))
    )
    if args.inflight is not None:
        tuning += f"\nmax_inflight_messages {args.inflight}"
    run_as = "user root\n" if os.geteuid() == 0 else ""
    # Without TCP_NODELAY the broker holds each small packet for the peer's delayed ACK:
    # +40 ms per scan (measured). Recommended for deploy/mosquitto.conf too.
    nodelay = "" if args.nagle else "\nset_tcp_nodelay true"
    # Mosquitto's default autosave (deploy/mosquitto.conf), not the test brokers' 1 s:
    # each save writes every queued message while the broker serves no one; with a
    # flood queued that stalled every station for ~0.5 s (--autosave 1 shows it).
    autosave = f"\nautosave_interval {args.autosave}"
    with Mosquitto(work / "mosquitto", extra_conf=run_as + tuning + nodelay + autosave) as broker:
        floor_mqtt = mqtt_floor(broker.port)
        floor_rate = mqtt_throughput_floor(broker.port)
        floor_db = sqlite_floor(work / "floor.db")
        floor_stmt = statement_floor(work / "floor-stmt.db")
        env = {
            **os.environ,
            "TAKTLINE_DATABASE_URL": url,
            "TAKTLINE_MQTT_URL": broker.url,
            "TAKTLINE_INGEST_CLIENT_ID": "bench-ingest",
            "TAKTLINE_LOG_LEVEL": "WARNING",
            "TAKTLINE_METRICS_DIR": str(work / "metrics"),
        }
        log = open(work / "ingest.log", "wb")  # noqa: SIM115
        taktline = str(Path(sys.executable).parent / "taktline")
        ingest_args = [(client_id, extra) for _n, client_id, extra in layout(args)]
        ingest_names = [name for name, _c, _e in layout(args)]

        def command(client_id: str) -> list[str]:
            if not args.profile:
                return [taktline]
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            out = str(Path(args.profile).resolve() / client_id)
            return [sys.executable, "-c", PROFILED_INGEST, out]

        ingests = [
            subprocess.Popen(
                [*command(client_id), "ingest", *extra],
                cwd=work,
                env={**env, "TAKTLINE_INGEST_CLIENT_ID": client_id},
                stdout=log,
                stderr=log,
            )
            for client_id, extra in ingest_args
        ]
        stations = Stations(broker.port, args.stations, line, args.part_per_line)
        try:
            deadline = time.monotonic() + 60
            probes = list(range(len(ingest_args)))  # station k is on ingest k's line
            first = [stations.scan(i) for i in probes]
            # Every ingest up and subscribed: a scan of each of its stations answered.
            while not all(
                any(f in stations.answered for f in first[p :: len(probes)])
                for p in range(len(probes))
            ):
                if time.monotonic() > deadline:
                    raise SystemExit("the ingest never answered; see " + str(work))
                time.sleep(0.5)
                first += [stations.scan(i) for i in probes]
            warm = [i for i in first if i in stations.answered]
            warm += [stations.scan(i) for i in range(args.stations)]
            stations.wait(warm, 60)
            # Latency at a steady rate: stations scan in turn, evenly spread.
            interval = 1.0 / (args.stations * args.rate)
            total = int(args.stations * args.rate * args.seconds)
            ids = []
            start = time.perf_counter()
            for k in range(total):
                target = start + k * interval
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                ids.append(stations.scan(k % args.stations))
            stations.wait(ids, 900)
            lat = [stations.answered[i][0] - stations.sent[i] for i in ids]
            noisy_lat: list[float] = []
            noise_answered = (0, 0)
            cpu = ""
            if args.noise_garbage or args.noise_duplicates:
                pids = {"broker": broker.proc.pid if broker.proc else 0, "bench": os.getpid()}
                pids |= {name: p.pid for name, p in zip(ingest_names, ingests, strict=True)}
                noisy_lat, noise_answered, cpu = noisy_station(
                    stations, args, interval, total, pids, work
                )
            # Throughput: everything at once.
            flood_meter = CpuMeter(
                {"broker": broker.proc.pid if broker.proc else 0, "bench": os.getpid()}
                | {name: p.pid for name, p in zip(ingest_names, ingests, strict=True)}
            )
            flood_meter.start()
            t0 = time.perf_counter()
            flood = [stations.scan(k % args.stations) for k in range(args.flood)]
            stations.wait(flood, 900)
            t1 = max(stations.answered[i][0] for i in flood)
            flood_meter.stop()
            flood_cpu = flood_meter.line(time.perf_counter() - t0)
            accepted_flood = sum(1 for i in flood if stations.answered[i][1] == "accepted")
            # Scraped while the ingest runs: an app started on a folder no live process
            # uses empties it first.
            with stations.lock:
                bench_accepted = sum(1 for _t, r in stations.answered.values() if r == "accepted")
            scraped = scrape_metrics(url, work, bench_accepted)
        finally:
            stations.close()
            for ingest in ingests:
                ingest.terminate()
            for ingest in ingests:
                ingest.wait(30)
            log.close()
    engine = get_engine(url)
    with engine.connect() as conn:
        cons = conn.execute(sa.select(sa.func.count()).select_from(Consumption)).scalar()
        moves = conn.execute(
            sa.select(sa.func.count())
            .select_from(StockMovement)
            .where(StockMovement.kind == "consumption")
        ).scalar()
    # Every answered scan, readiness pings included (some are answered late).
    accepted = sum(1 for _t, result in stations.answered.values() if result == "accepted")
    ms = 1000.0
    print(
        f"stations={args.stations} rate={args.rate}/s each seconds={args.seconds} "
        f"flood={args.flood} ({'PostgreSQL' if args.pg else 'SQLite'}, Mosquitto, "
        "taktline ingest as its own process"
        f"{'; station 0 on its own line and ingest' if args.noisy_apart else ''}"
        f"{f'; {args.ingests} ingests, one line each' if args.ingests > 1 else ''})"
    )
    print(
        f"floor  MQTT QoS1 round trip    p50 {statistics.median(floor_mqtt) * ms:6.2f} ms"
        f"  p99 {pct(floor_mqtt, 99) * ms:6.2f} ms"
    )
    print(
        f"floor  MQTT QoS1 publish->PUBACK {floor_rate:6.0f} msgs/s (one paho client, "
        "nobody subscribed)"
    )
    print(
        f"floor  SQLite INSERT+COMMIT    p50 {statistics.median(floor_db) * ms:6.2f} ms"
        f"  p99 {pct(floor_db, 99) * ms:6.2f} ms  ({len(floor_db) / sum(floor_db):.0f}/s)"
    )
    print(
        f"floor  Core INSERT in a batch  {floor_stmt * 1e6:6.0f} us per statement; "
        f"x{SCAN_STATEMENTS} statements per scan = {1 / (SCAN_STATEMENTS * floor_stmt):.0f} "
        f"scans/s at best (one core)"
    )
    print(
        f"ingest scan -> feedback        p50 {statistics.median(lat) * ms:6.2f} ms"
        f"  p90 {pct(lat, 90) * ms:6.2f} ms  p99 {pct(lat, 99) * ms:6.2f} ms"
        f"  max {max(lat) * ms:6.2f} ms  ({len(lat)} scans at "
        f"{args.stations * args.rate:.0f}/s)"
    )
    if noisy_lat:
        print(
            f"noisy  other stations' p99     {pct(noisy_lat, 99) * ms:6.2f} ms while station 0 "
            f"sends {args.noise_garbage} garbage + {args.noise_duplicates} duplicates "
            f"(unflooded p99 {pct(lat, 99) * ms:6.2f} ms; "
            f"p50 {statistics.median(noisy_lat) * ms:.2f} ms; {len(noisy_lat)} scans)"
        )
        print(f"noisy  CPU used                {cpu}")
        print(
            f"noisy  answers sent            {noise_answered[0]} for {args.noise_garbage} garbage, "
            f"{noise_answered[1]} for {args.noise_duplicates} duplicates (once per station or "
            f"msg_id and batch); all taken before a later scan of that station"
        )
    sustained = accepted_flood / (t1 - t0)
    print(
        f"ingest sustained               {sustained:6.0f} accepted scans/s"
        f"  ({accepted_flood} in {t1 - t0:.2f} s; {sustained / floor_rate:.0%} of the "
        f"MQTT floor; aim min(2000, 30% of floor) = {min(2000.0, 0.3 * floor_rate):.0f}/s)"
    )
    print(f"flood  CPU used                {flood_cpu}")
    print(f"check  accepted={accepted} consumptions={cons} ledger={moves}")
    print(
        f"metrics /api/v1/metrics        ingest answers accepted={scraped['answered_accepted']:.0f}"
        f" rejected={scraped['answered_rejected']:.0f}"
        f" duplicate={scraped['answered_duplicate']:.0f};"
        f" database scans accepted={scraped['events_accepted']:.0f}"
        f" rejected={scraped['events_rejected']:.0f};"
        f" batches={scraped['batches']:.0f}, batch p99 <= {scraped['batch_p99'] * ms:.0f} ms"
    )
    if scraped["answered_accepted"] != accepted:
        raise SystemExit("MISMATCH between the scraped ingest counters and the bench's count")
    if not (accepted == cons == moves):
        raise SystemExit("MISMATCH between accepted scans and the database")


def flood_station(port: int, topic: str, garbage_ids: list[str], dup: str, copies: int) -> None:
    """Station 0's noisy device: publish the garbage, then the copies, QoS 1."""
    os.nice(int(os.environ.get("BENCH_NOISE_NICE", "0")))
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-noise")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    last = None
    for msg_id in garbage_ids:
        last = c.publish(topic, json.dumps({"msg_id": msg_id, "data": 5}), 1)
    for _ in range(copies):
        last = c.publish(topic, dup, 1)
    if last is not None:
        last.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def noisy_station(
    stations: Stations,
    args: argparse.Namespace,
    interval: float,
    total: int,
    pids: dict[str, int],
    work: Path,
) -> tuple[list[float], tuple[int, int], str]:
    """Station 0 floods garbage and duplicates while the others scan at the steady rate."""
    dup_id = f"dup-{uuid.uuid4()}"
    dup = json.dumps({"msg_id": dup_id, "seq": 1, "source": "scanner1", "data": stations.data[0]})
    garbage_ids = [f"junk-{uuid.uuid4()}" for _ in range(args.noise_garbage)]

    # The noisy station is a device of its own: its own process and connection, so its
    # publishing loop does not slow the bench's other stations (one GIL) and the figure
    # is the ingest's, not the bench's.
    topic = f"{stations.bases[0]}/evt/scan"
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    noise: multiprocessing.process.BaseProcess | subprocess.Popen[bytes]
    if args.noise_client == "c":
        # A device elsewhere costs this machine nothing; mosquitto_pub (C) costs little.
        lines = work / "noise.txt"
        lines.write_text(
            "".join(json.dumps({"msg_id": m, "data": 5}) + "\n" for m in garbage_ids)
            + (dup + "\n") * args.noise_duplicates
        )
        noise = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(stations.port), "-q", "1"]
            + ["-i", "bench-noise", "-l", "-t", topic],
            stdin=lines.open("rb"),
        )
    else:
        noise = multiprocessing.get_context("spawn").Process(
            target=flood_station,
            args=(stations.port, topic, garbage_ids, dup, args.noise_duplicates),
        )
        noise.start()
    meter = CpuMeter(pids)
    meter.start()
    started = time.monotonic()
    ids = []
    others = args.stations - 1
    start = time.perf_counter()
    for k in range(total):
        target = start + k * interval
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ids.append(stations.scan(1 + k % others))
    if isinstance(noise, subprocess.Popen):
        noise.wait()
    else:
        noise.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the device, reaped just now
    stations.wait(ids, 900)
    # Station 0's events are handled in order: once a scan sent after the flood is
    # answered, the whole flood was taken (answered once per batch, every copy acked).
    marker = stations.scan(0)
    stations.wait([marker], 300)
    with stations.lock:
        got = (
            sum(1 for i in garbage_ids if i in stations.answered),
            stations.answers.get(dup_id, 0),
        )
    (work / "noisy-latency.tsv").write_text(
        "".join(
            f"{stations.sent[i] - start:.3f}\t{stations.answered[i][0] - stations.sent[i]:.4f}\n"
            for i in ids
        )
    )
    meter.stop()
    meter.used["noisy device"] = (after.ru_utime + after.ru_stime) - (
        reaped.ru_utime + reaped.ru_stime
    )
    return (
        [stations.answered[i][0] - stations.sent[i] for i in ids],
        got,
        meter.line(time.monotonic() - started),
    )


if __name__ == "__main__":
    main()
