"""A whole plant on one box (issue 19): every part running at once, with faults.

    .venv/bin/python bench/bench_plant.py [--stations 50] [--lines 10] [--pace 3]
        [--seconds 600] [--boards 3] [--faults all|ingest|none] [--db URL] [--smoke]

- Mosquitto with the listeners, per-station logins and ACL of ``taktline
  mqtt-credentials`` (persistence on, Mosquitto's default autosave);
- the database: PostgreSQL (``--db``, default a database ``taktline_plant`` on
  127.0.0.1, dropped and created) or ``--db sqlite`` (a file in the work folder);
- 2 ``taktline web`` (gunicorn, one gthread worker each) and 2 ``taktline ingest
  --partition i/2``, each on its own login, as real processes;
- N stations scanning through real MQTT clients on their own logins, one pick every
  ``--pace`` seconds each (3 s: ten times a real line), staggered;
- one SSE client per station on its tablet stream (bound with a device token, the
  stations spread over the web processes) and ``--boards`` line boards (a supervisor
  signed in through the login form);
- faults mid-run (``all``): ``kill -9`` of ingest 1 at 25 % (restarted 3 s later), of
  web 1 at 50 % (its clients reconnect), and a broker restart at 75 %; ``ingest``: only
  the ingest kill, at 40 %.

Prints scan-to-feedback p50/p99/max, scan-to-tablet SSE p50/p99 and the same after the
feedback, the boards' refresh after a scan, RSS per process and per SSE connection,
errors, and the reconciliation: every published scan recorded once and accepted,
consumptions = accepted scans = ledger lines, every lot's on-hand = its ledger. Exits
non-zero when the reconciliation fails. ``--smoke``: 5 stations on 2 lines, 20 s, one
scan a second each, the ingest kill only (``tests/test_plant_smoke.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ingest import build_plant, fresh_database, pct  # noqa: E402
from bench.procstat import rss_mb  # noqa: E402
from server.db import dispose_engine, get_engine, write_session  # noqa: E402
from server.ingest.partition import owner  # noqa: E402
from server.models import (  # noqa: E402
    Consumption,
    Event,
    Operator,
    Station,
    StockLot,
    StockMovement,  # noqa: E402
)
from server.security import auth  # noqa: E402
from server.security.secrets import hash_secret  # noqa: E402
from tests.support.mosquitto import Mosquitto, free_port, wait_port  # noqa: E402

TAKTLINE = str(Path(sys.executable).parent / "taktline")
SECRET = "bench-plant-" + uuid.uuid4().hex
SUPERVISOR = ("bench-supervisor", "bench-supervisor-password")
INGESTS = 2
WEBS = 2


def line_code(i: int, lines: int) -> str:
    return f"L{i % lines + 1:02d}"


def topic_base(i: int, lines: int) -> str:
    return f"taktline/B/{line_code(i, lines)}/ST{i:02d}"


# --- processes ----------------------------------------------------------------------


class Proc:
    """A ``taktline`` command as its own process group (so ``kill -9`` takes gunicorn's
    worker with its master), logging to ``<name>.log``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], work: Path) -> None:
        self.name, self.args, self.env, self.work = name, args, env, work
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = open(self.work / f"{self.name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [TAKTLINE, *self.args],
            cwd=self.work,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def pids(self) -> list[int]:
        """The process and its children (gunicorn's worker)."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            found += [int(p) for p in children.split()]
        except OSError:
            pass
        return found


# --- the stations' MQTT side ----------------------------------------------------------


@dataclass
class Scans:
    sent: dict[str, tuple[int, float]] = field(default_factory=dict)  # msg_id -> station, t
    answered: dict[str, tuple[float, str]] = field(default_factory=dict)  # first answer
    answers: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class StationClients:
    """One paho client per station, logged in as ``station-<code>`` on the station
    listener (its client id is its login), persistent session like a bridge."""

    def __init__(self, port: int, creds: Path, n: int, lines: int) -> None:
        self.scans = Scans()
        self.lines = lines
        self.seq = [0] * n
        self.clients: list[mqtt.Client] = []
        ready = threading.Barrier(n + 1)
        for i in range(n):
            code = f"ST{i:02d}"
            c = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=f"station-{code}", clean_session=False
            )
            c.username_pw_set(
                f"station-{code}", (creds / f"bridge-{code}.password").read_text().strip()
            )
            c.max_inflight_messages_set(100)
            c.max_queued_messages_set(0)
            c.reconnect_delay_set(1, 2)
            feedback = f"{topic_base(i, lines)}/cmd/feedback"
            c.on_connect = lambda cl, *a, t=feedback: cl.subscribe(t, 1)
            first = threading.Event()

            def subscribed(*_a: Any, once: threading.Event = first) -> None:
                if not once.is_set():
                    once.set()
                    ready.wait(30)

            c.on_subscribe = subscribed
            c.on_message = self._on_feedback
            c.connect("127.0.0.1", port)
            c.loop_start()
            self.clients.append(c)
        ready.wait(60)

    def _on_feedback(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        fb = json.loads(msg.payload)
        ref = fb.get("ref")
        with self.scans.lock:
            self.scans.answered.setdefault(ref, (now, fb.get("result", "")))
            self.scans.answers[ref] = self.scans.answers.get(ref, 0) + 1

    def scan(self, i: int) -> str:
        self.seq[i] += 1
        msg_id = str(uuid.uuid4())
        payload = {
            "msg_id": msg_id,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seq": self.seq[i],
            "source": "scanner1",
            "data": "BOLT",
        }
        with self.scans.lock:
            self.scans.sent[msg_id] = (i, time.monotonic())
        self.clients[i].publish(f"{topic_base(i, self.lines)}/evt/scan", json.dumps(payload), 1)
        return msg_id

    def close(self) -> None:
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


# --- the web side: tablets and boards over SSE ------------------------------------------


@dataclass
class Stream:
    name: str
    port: int
    path: str
    cookie: str
    event: str  # the event name that counts (snapshot, board)
    times: list[float] = field(default_factory=list)
    connects: int = 0
    errors: list[str] = field(default_factory=list)
    conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        conn = self.conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)


def _cookie(response: http.client.HTTPResponse, jar: dict[str, str]) -> None:
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            name, _, rest = value.partition("=")
            jar[name] = rest.split(";", 1)[0]


def _jar(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def bind_tablet(port: int, token: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/station/bind?token={token}")
    response = conn.getresponse()
    response.read()
    jar: dict[str, str] = {}
    _cookie(response, jar)
    conn.close()
    if response.status != 303 or not jar:
        raise SystemExit(f"binding a tablet on :{port} answered {response.status}")
    return _jar(jar)


def sign_in(port: int) -> str:
    jar: dict[str, str] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    _cookie(response, jar)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if found is None:
        raise SystemExit("no csrf_token on /login")
    body = (
        f"csrf_token={found.group(1)}&username={SUPERVISOR[0]}&password={SUPERVISOR[1]}"
    ).encode()
    conn.request(
        "POST",
        "/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": _jar(jar)},
    )
    response = conn.getresponse()
    response.read()
    _cookie(response, jar)
    conn.close()
    if response.status != 303:
        raise SystemExit(f"supervisor sign-in answered {response.status}")
    return _jar(jar)


def follow(stream: Stream, stop: threading.Event) -> None:
    """Read one SSE stream until ``stop``, reconnecting like a browser (1 s)."""
    while not stop.is_set():
        try:
            conn = stream.conn = http.client.HTTPConnection("127.0.0.1", stream.port, timeout=40)
            conn.request(
                "GET", stream.path, headers={"Cookie": stream.cookie, "Accept": "text/event-stream"}
            )
            response = conn.getresponse()
            if response.status != 200:
                stream.errors.append(f"HTTP {response.status}")
                response.read()
                conn.close()
                time.sleep(1)
                continue
            stream.connects += 1
            while not stop.is_set():
                line = response.fp.readline()
                if not line:
                    raise ConnectionError("stream closed")
                if line.startswith(b"event: ") and line[7:].strip().decode() == stream.event:
                    stream.times.append(time.monotonic())
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            if not stop.is_set():
                stream.errors.append(type(exc).__name__)
                time.sleep(1)


# --- the run ----------------------------------------------------------------------------


def prepare(url: str, stations: int, lines: int) -> dict[int, str]:
    """The plant, a supervisor, and a tablet token per station (index -> token)."""
    build_plant(url, stations, lines=lambda i: line_code(i, lines))
    engine = get_engine(url)
    tokens: dict[int, str] = {}
    with write_session(engine) as db:
        db.add(
            Operator(
                name="Bench supervisor",
                badge="BSUP",
                username=SUPERVISOR[0],
                password_hash=hash_secret(SUPERVISOR[1]),
                role="supervisor",
            )
        )
        for i in range(stations):
            station = db.exec(select(Station).where(Station.code == f"ST{i:02d}")).one()
            tokens[i] = auth.issue_device_token(db, station=station, by=None, label="bench")
    dispose_engine(url)
    return tokens


def credentials(env: dict[str, str], work: Path, server: int, station: int) -> Path:
    out = work / "mqtt"
    subprocess.run(
        [TAKTLINE, "mqtt-credentials", "--out", str(out), "--ingests", str(INGESTS)]
        + ["--server-listener", f"127.0.0.1:{server}", "--station-listener"]
        + [f"127.0.0.1:{station}", "--no-station-tls"],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )
    return out


def login_url(out: Path, login: str, port: int) -> str:
    return f"mqtt://{login}:{(out / f'{login}.password').read_text().strip()}@127.0.0.1:{port}"


def reconcile(url: str, scans: Scans, published: list[str]) -> list[str]:
    """Every published scan recorded once and accepted; consumptions = accepted scans =
    ledger lines; every lot's on-hand = the sum of its ledger. A warm-up scan sent
    before its ingest had ever subscribed is dropped by the broker (MQTT keeps messages
    for existing subscriptions only), so only the answered ones count."""
    problems = []
    engine = get_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Event.msg_id, Event.result).where(Event.kind == "scan"))
        recorded: dict[str, list[str]] = {}
        for msg_id, result in rows:
            recorded.setdefault(msg_id, []).append(str(result))
        consumptions = conn.execute(sa.select(sa.func.count()).select_from(Consumption)).scalar()
        ledger = conn.execute(
            sa.select(sa.func.count())
            .select_from(StockMovement)
            .where(StockMovement.kind == "consumption")  # type: ignore[arg-type]
        ).scalar()
        lots = conn.execute(
            sa.select(
                StockLot.id,
                StockLot.on_hand,
                sa.func.coalesce(sa.func.sum(StockMovement.quantity), 0),
            )  # type: ignore[call-overload]
            .outerjoin(StockMovement, StockMovement.lot_id == StockLot.id)
            .group_by(StockLot.id, StockLot.on_hand)
        ).all()
    expected = set(published) | {m for m in scans.sent if m in scans.answered}
    lost = [m for m in expected if m not in recorded]
    twice = [m for m, results in recorded.items() if len(results) > 1]
    refused = [m for m in expected if m in recorded and recorded[m] != ["accepted"]]
    accepted = sum(1 for results in recorded.values() if results == ["accepted"])
    if lost:
        problems.append(f"{len(lost)} published scans never recorded (lost), e.g. {lost[:3]}")
    if twice:
        problems.append(f"{len(twice)} scans recorded twice")
    if refused:
        problems.append(f"{len(refused)} scans not accepted, e.g. {refused[:3]}")
    if not accepted == consumptions == ledger:
        problems.append(f"accepted {accepted} != consumptions {consumptions} != ledger {ledger}")
    for lot_id, on_hand, total in lots:
        if on_hand != total:
            problems.append(f"lot {lot_id}: on hand {on_hand} != ledger {total}")
    dispose_engine(url)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--lines", type=int, default=10)
    ap.add_argument("--pace", type=float, default=3.0, help="seconds between picks, per station")
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--boards", type=int, default=3)
    ap.add_argument("--faults", choices=["all", "ingest", "none"], default="all")
    ap.add_argument(
        "--db",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/taktline_plant",
        help="PostgreSQL URL (its database is dropped and created), or 'sqlite'",
    )
    ap.add_argument(
        "--split",
        choices=["lines", "partition"],
        default="lines",
        help="how the ingests share the lines: --lines dealt in turn, or --partition i/2",
    )
    ap.add_argument("--smoke", action="store_true", help="5 stations, 2 lines, 20 s, 1/s")
    ap.add_argument("--workdir", default="", help="default: a new temporary folder")
    args = ap.parse_args(argv)
    if args.smoke:
        args.stations, args.lines, args.seconds, args.pace, args.boards = 5, 2, 20.0, 1.0, 1
        args.faults = "ingest"
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-plant-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'taktline.db'}" if args.db == "sqlite" else fresh_database(args.db)
    t_setup = time.monotonic()
    tokens = prepare(url, args.stations, args.lines)
    server_port, station_port = free_port(), free_port()
    base_env = {
        **os.environ,
        "TAKTLINE_DATABASE_URL": url,
        "TAKTLINE_SECRET_KEY": SECRET,
        "TAKTLINE_LOG_LEVEL": "WARNING",
        "TAKTLINE_METRICS_DIR": str(work / "metrics"),
    }
    creds = credentials(base_env, work, server_port, station_port)
    broker = Mosquitto(
        work / "mosquitto",
        port=server_port,
        listen=False,
        extra_conf=f"autosave_interval 1800\nmax_queued_messages 200000\ninclude_dir {creds}",
    )
    broker.start()
    wait_port(station_port)
    ingests = [
        Proc(
            f"ingest-{n}",
            ["ingest", *split_args(args, n)],
            {
                **base_env,
                "TAKTLINE_MQTT_URL": login_url(creds, f"taktline-ingest-{n}", server_port),
            },
            work,
        ).start()
        for n in range(1, INGESTS + 1)
    ]
    web_ports = [free_port() for _ in range(WEBS)]
    webs = [
        Proc(
            f"web-{n + 1}",
            ["web", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "128"],
            {**base_env, "TAKTLINE_MQTT_URL": login_url(creds, "taktline-web", server_port)},
            work,
        ).start()
        for n, port in enumerate(web_ports)
    ]
    for port in web_ports:
        wait_port(port, 60)
    stations = StationClients(station_port, creds, args.stations, args.lines)
    stop = threading.Event()
    streams: list[Stream] = []
    threads: list[threading.Thread] = []
    try:
        # Every ingest up: a scan of each station answered (its partition subscribed).
        warm = [stations.scan(i) for i in range(args.stations)]
        deadline = time.monotonic() + 90
        while not all(m in stations.scans.answered for m in warm):
            if time.monotonic() > deadline:
                raise SystemExit(f"the ingests never answered every station; see {work}")
            time.sleep(0.5)
            pending = {stations.scans.sent[m][0] for m in warm if m not in stations.scans.answered}
            warm = [m for m in warm if m in stations.scans.answered]
            warm += [stations.scan(i) for i in pending]
        for port in web_ports:  # the workers up and warm before their memory is read
            sign_in(port)
        rss_before = {w.name: sum(rss_mb(p) for p in w.pids()[1:]) for w in webs}
        for i in range(args.stations):
            port = web_ports[i % WEBS]
            streams.append(
                Stream(
                    f"ST{i:02d}",
                    port,
                    f"/station/ST{i:02d}/events",
                    bind_tablet(port, tokens[i]),
                    "snapshot",
                )
            )
        for b in range(args.boards):
            port = web_ports[b % WEBS]
            streams.append(Stream(f"board-{b + 1}", port, "/board/events", sign_in(port), "board"))
        for stream in streams:
            thread = threading.Thread(target=follow, args=(stream, stop), daemon=True)
            thread.start()
            threads.append(thread)
        deadline = time.monotonic() + 60
        while not all(s.times for s in streams):
            if time.monotonic() > deadline:
                raise SystemExit("not every SSE stream got its first event in 60 s")
            time.sleep(0.2)
        per_stream = [
            (sum(rss_mb(p) for p in w.pids()[1:]) - rss_before[w.name])
            / max(1, sum(1 for s in streams if s.port == port))
            for w, port in zip(webs, web_ports, strict=True)
        ]
        setup = time.monotonic() - t_setup
        faults = schedule(args)
        done: list[str] = []
        struck: list[float] = []  # when each fault began
        started = time.monotonic()
        published: list[str] = []
        k = 0
        interval = args.pace / args.stations
        while True:
            target = started + k * interval
            if target - started >= args.seconds:
                break
            for at, name in faults:
                if name not in done and time.monotonic() - started >= at:
                    done.append(name)
                    struck.append(time.monotonic())
                    threading.Thread(
                        target=inject, args=(name, ingests, webs, broker), daemon=True
                    ).start()
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            published.append(stations.scan(k % args.stations))
            k += 1
        wall = time.monotonic() - started
        deadline = time.monotonic() + 180
        while not all(m in stations.scans.answered for m in published):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(2)  # the last snapshots and board refreshes
        rss = {
            **{"broker": rss_mb(broker.proc.pid) if broker.proc else 0.0},
            **{p.name: sum(rss_mb(x) for x in p.pids()) for p in ingests},
            **{f"{w.name} (master+worker)": sum(rss_mb(x) for x in w.pids()) for w in webs},
        }
        load = os.getloadavg()
    finally:
        stop.set()
        stations.close()
        for stream in streams:
            stream.close()
        # The run is over: gunicorn's graceful stop would wait for open SSE streams.
        for p in [*webs, *ingests]:
            p.stop(timeout=5)
        broker.stop()
    problems = reconcile(url, stations.scans, published)
    report(
        args,
        Run(stations.scans, published, streams, wall, setup, done, rss, per_stream, load, struck),
        problems,
        url,
        work,
    )
    return 1 if problems else 0


def split_args(args: argparse.Namespace, n: int) -> list[str]:
    """Ingest ``n``'s share: ``--partition n/2`` (the hash), or ``--lines`` dealt in
    turn (L01 to ingest 1, L02 to ingest 2, ...: balanced whatever the hash does)."""
    if args.split == "partition":
        return ["--partition", f"{n}/{INGESTS}"]
    return [
        "--lines",
        ",".join(line_code(i, args.lines) for i in range(n - 1, args.lines, INGESTS)),
    ]


def owner_of(args: argparse.Namespace, i: int) -> int:
    if args.split == "partition":
        return owner("B", line_code(i, args.lines), INGESTS)
    return i % args.lines % INGESTS + 1


def schedule(args: argparse.Namespace) -> list[tuple[float, str]]:
    if args.faults == "none":
        return []
    if args.faults == "ingest":
        return [(0.4 * args.seconds, "kill -9 ingest-1")]
    return [
        (0.25 * args.seconds, "kill -9 ingest-1"),
        (0.5 * args.seconds, "kill -9 web-1"),
        (0.75 * args.seconds, "restart broker"),
    ]


def inject(name: str, ingests: list[Proc], webs: list[Proc], broker: Mosquitto) -> None:
    if name == "kill -9 ingest-1":
        ingests[0].kill9()
        time.sleep(3)
        ingests[0].start()
    elif name == "kill -9 web-1":
        webs[0].kill9()
        time.sleep(3)
        webs[0].start()
    elif name == "restart broker":
        broker.stop()
        time.sleep(3)
        broker.start()


@dataclass
class Run:
    scans: Scans
    published: list[str]
    streams: list[Stream]
    wall: float
    setup: float
    faults: list[str]
    rss: dict[str, float]
    per_stream: list[float]
    load: tuple[float, float, float]
    struck: list[float]


def report(args: argparse.Namespace, run: Run, problems: list[str], url: str, work: Path) -> None:
    scans, published, streams, load = run.scans, run.published, run.streams, run.load
    wall, setup, faults, rss = run.wall, run.setup, run.faults, run.rss
    ms = 1000.0
    answered = [m for m in published if m in scans.answered]
    lat = [scans.answered[m][0] - scans.sent[m][1] for m in answered]
    # The tablet: the first snapshot on the station's stream after the scan was sent.
    tablets = {int(s.name[2:]): sorted(s.times) for s in streams if s.event == "snapshot"}
    boards = [sorted(s.times) for s in streams if s.event == "board"]
    to_tablet, after_feedback, to_board = [], [], []
    for m in answered:
        station, sent = scans.sent[m]
        feedback = scans.answered[m][0]
        seen = next((t for t in tablets.get(station, []) if t > sent), None)
        if seen is not None:
            to_tablet.append(seen - sent)
            after_feedback.append(seen - feedback)
        for times in boards:
            shown = next((t for t in times if t > feedback), None)
            if shown is not None:
                to_board.append(shown - feedback)
    db = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    split = [
        sum(1 for i in range(args.stations) if owner_of(args, i) == n)
        for n in range(1, INGESTS + 1)
    ]
    print(
        f"plant  {args.stations} stations on {args.lines} lines, a pick every {args.pace:g} s each "
        f"({args.stations / args.pace:.1f} scans/s), {wall:.0f} s; {db}; {WEBS} taktline web "
        f"(gunicorn, 1 worker) + {INGESTS} taktline ingest --{args.split} (stations "
        f"{'/'.join(map(str, split))}); {len(streams) - len(boards)} tablet + {len(boards)} "
        f"board SSE streams; setup {setup:.0f} s; load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}"
    )
    print(f"faults {', '.join(faults) or 'none'}")

    def line(name: str, values: list[float]) -> None:
        if values:
            print(
                f"{name:<36} p50 {statistics.median(values) * ms:8.1f} ms  p99 "
                f"{pct(values, 99) * ms:8.1f} ms  max {max(values) * ms:8.1f} ms  ({len(values)})"
            )

    line("scan -> feedback", lat)
    # Scans sent more than 1 s before or 30 s after the start of any fault.
    calm = [
        scans.answered[m][0] - scans.sent[m][1]
        for m in answered
        if all(not -1 <= scans.sent[m][1] - t <= 30 for t in run.struck)
    ]
    if run.struck:
        line("scan -> feedback, away from faults", calm)
    line("scan -> tablet SSE snapshot", to_tablet)
    line("feedback -> tablet SSE snapshot", after_feedback)
    line("feedback -> next board event", to_board)
    for b, times in enumerate(boards, 1):
        gaps = [b2 - b1 for b1, b2 in zip(times, times[1:], strict=False)]
        if gaps:
            print(
                f"board  {b}: {len(times)} events, gap p50 {statistics.median(gaps):.1f} s, "
                f"max {max(gaps):.1f} s"
            )
    print(
        "rss    "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items())
        + "; per SSE connection "
        + ", ".join(f"{mb:.2f} MB" for mb in run.per_stream)
    )
    errors = sum(len(s.errors) for s in streams)
    reconnects = sum(max(0, s.connects - 1) for s in streams)
    unanswered = len(published) - len(answered)
    duplicates = sum(1 for m in published if scans.answers.get(m, 0) > 1)
    not_accepted = sum(1 for m in answered if scans.answered[m][1] != "accepted")
    print(
        f"errors scans unanswered {unanswered}, answered other than accepted {not_accepted}, "
        f"answered twice {duplicates}; SSE reconnects {reconnects}, stream errors {errors}"
    )
    print(
        f"check  published {len(published)} (+ warm-up); "
        + (
            "reconciled: every scan applied once, stock = ledger"
            if not problems
            else "MISMATCH: " + "; ".join(problems)
        )
    )
    print(f"work   {work}")


if __name__ == "__main__":
    sys.exit(main())
