"""A batch's picks written together (``service.handle(defer=True)``, ``service.flush``):
the verdicts and rows are those of one transaction per scan, on SQLite (one writer)
and PostgreSQL (the batch row-locks its stations and the lots it reads)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from server.db import get_engine, write_session
from server.ingest.worker import Ingest
from server.integration import outbox
from server.inventory import ledger
from server.models import (
    Consumption,
    OutboxEvent,
    Part,
    Station,
    StockLot,
    StockMovement,
    Unit,
)
from station import service
from station.cache import Cache
from station.workflow import Pause, Scan, SignIn, StartNext, StationEvent
from tests.support.ingest import Station as Device
from tests.support.ingest import counts, scans_in_one_batch
from tests.support.units import release

KIT_OPTIONS = ["i7", "mem32", "ssd1t", "mt"]
CASE_MT = "9506000001104"


def psu(n: int) -> str:
    return f"(01)09506000001128(21)P45X{n:05d}"


def _both_kitting_stations_start(engine: sa.Engine) -> None:
    """Alice at KIT-1 and Chen at KIT-2 each start the next unit."""
    for station, event in (
        ("KIT-1", SignIn("OP1001")),
        ("KIT-1", StartNext()),
        ("KIT-2", SignIn("OP1003")),
        ("KIT-2", StartNext()),
    ):
        with write_session(engine) as session:
            outcome = service.handle(session, station_code=station, event=event)
            assert outcome.accepted, outcome.message


def _second_kitting_station(engine: sa.Engine) -> None:
    with write_session(engine) as session:
        kit = session.exec(select(Station).where(Station.code == "KIT-1")).one()
        session.add(Station(code="KIT-2", name="Kitting 2", kind="kitting", line_id=kit.line_id))


def in_batch(
    session: Session, cache: Cache, msg_id: str, station: str, event: StationEvent
) -> service.Outcome:
    """One event of an ingest batch, as the ingest decides it (no savepoint, the picks'
    rows kept back for ``service.flush``)."""
    return service.handle(
        session,
        station_code=station,
        event=event,
        msg_id=msg_id,
        channel="mqtt",
        source="scanner1",
        cache=cache,
        savepoint=False,
        defer=True,
    )


def test_one_batch_builds_a_serial_into_one_unit_only(any_demo_app: Flask) -> None:
    """Two stations, two units, one batch: the serial scanned for the second unit after
    the first unit took it (its rows not yet written) is refused ``serial_used``; the
    first pick and the others are applied once, rows and outbox events in order."""
    engine = any_demo_app.extensions["taktline.engine"]
    # Not reserved: nothing but the consumption tells the second scan the serial is gone.
    release(engine, options=KIT_OPTIONS, serial="PC-T1", reserve=False)
    release(engine, options=KIT_OPTIONS, serial="PC-T2", reserve=False)
    _second_kitting_station(engine)
    _both_kitting_stations_start(engine)
    with write_session(engine) as session:  # a scan recorded by an earlier batch
        seen = service.handle(session, station_code="KIT-1", event=Scan("?"), msg_id="seen-1")
    batch: list[tuple[str, str, StationEvent]] = [
        ("m1", "KIT-1", Scan(CASE_MT)),
        ("m2", "KIT-2", Scan(CASE_MT)),
        ("seen-1", "KIT-1", Scan(CASE_MT)),  # delivered again: changes nothing
        ("m3", "KIT-1", Scan(psu(1))),
        ("m4", "KIT-2", Scan(psu(1))),  # the serial KIT-1 has just built into PC-T1
        ("m5", "KIT-2", Scan(psu(2))),
    ]
    with write_session(engine) as session:
        cache = Cache(locking=True)  # as the ingest's batches on PostgreSQL
        service.expect(session, cache, [m for m, _s, _e in batch])
        outcomes = [
            in_batch(session, cache, msg_id, station, event) for msg_id, station, event in batch
        ]
        service.flush(session, cache)
    answers = [o.feedback() for o in outcomes]
    assert [(a["ref"], a["result"], a["code"]) for a in answers] == [
        ("m1", "accepted", "picked"),
        ("m2", "accepted", "picked"),
        ("seen-1", "duplicate", "duplicate"),
        ("m3", "accepted", "picked"),
        ("m4", "rejected", "serial_used"),
        ("m5", "accepted", "picked"),
    ]
    assert answers[2]["original"] == seen.result
    assert "PC-T1" in answers[4]["reason"]
    with Session(engine) as session:
        units = {u.id: u.serial for u in session.exec(select(Unit))}
        built = session.exec(
            select(Consumption.unit_id).where(Consumption.serial == "P45X00001")
        ).all()
        assert [units[u] for u in built] == ["PC-T1"]
        assert session.exec(select(sa.func.count()).select_from(Consumption)).one() == 4
        lot = session.exec(select(StockLot).where(StockLot.serial == "P45X00001")).one()
        assert lot.id is not None
        assert (lot.on_hand, lot.reserved) == (0, 0)
        assert ledger.on_hand_from_ledger(session, lot.id) == (0, 0)
        lines = session.exec(
            select(StockMovement.event_id).where(StockMovement.kind == "consumption")
        ).all()
        accepted_ids = [o.event_id for o in outcomes if o.accepted]
        assert sorted(lines) == sorted(accepted_ids)
        # Each answer's event is the row with its msg_id and verdict, ids in order.
        rows = session.execute(
            sa.text("SELECT id, msg_id, code FROM event WHERE msg_id LIKE 'm_' ORDER BY id")
        ).all()
        assert [tuple(r) for r in rows] == [
            (o.event_id, o.msg_id, o.code) for o in outcomes if o.msg_id != "seen-1"
        ]
        # Sign-ins and starts, seen-1, the batch's five.
        assert session.execute(sa.text("SELECT count(*) FROM event")).scalar() == 4 + 1 + 5
        consumed = session.exec(
            select(OutboxEvent)
            .where(OutboxEvent.type == outbox.TYPE_PREFIX + outbox.COMPONENT_CONSUMED)
            .order_by(OutboxEvent.id)  # type: ignore[arg-type]
        ).all()
    events = [outbox.envelope(row, source="test") for row in consumed]
    assert [(e.get_data()["unit"], e.get_data()["part"]) for e in events] == [  # type: ignore[index]
        ("PC-T1", "CASE-MT"),
        ("PC-T2", "CASE-MT"),
        ("PC-T1", "PSU-450"),
        ("PC-T2", "PSU-450"),
    ]
    assert [e.get_data()["serial"] for e in events][2:] == ["P45X00001", "P45X00002"]  # type: ignore[index]
    by_order: dict[str, list[int]] = {}
    for row in consumed:
        by_order.setdefault(row.subject, []).append(row.order_seq)
    for seqs in by_order.values():  # each order's sequence goes up, one by one
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert [r.event_id for r in consumed] == sorted(r.event_id for r in consumed)


def _leave_screws(engine: sa.Engine, n: int) -> None:
    """Adjust the SCR-M3 stock down to ``n`` bags, all in one lot."""
    with write_session(engine) as session:
        part = session.exec(select(Part).where(Part.sku == "SCR-M3")).one()
        left = n
        for lot in session.exec(select(StockLot).where(StockLot.part_id == part.id)).all():
            keep = min(lot.on_hand - lot.reserved, left)
            left -= keep
            if lot.on_hand != keep:
                ledger.post(
                    session,
                    lot=lot,
                    kind="adjustment",
                    quantity=keep - lot.on_hand,
                    by="test",
                    reason="test: little stock left",
                )


def test_stock_running_out_in_the_middle_of_a_batch(
    ingest: Ingest, station_client: Device, plant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Three screw bags left, six scans in one batch: three picked, three refused by
    the workflow (nothing left), the lot at zero; no retry event by event needed."""
    engine = get_engine(plant)
    _leave_screws(engine, 3)
    station_client.wait_for_ingest()
    before = counts(plant)
    assert before["on_hand"] == 3
    ids = scans_in_one_batch(engine, ingest.queue, station_client, [None] * 6)
    with caplog.at_level("WARNING", logger="server.ingest.worker"):
        answers = [station_client.answer(i, timeout=30) for i in ids]
    assert [a["result"] for a in answers] == ["accepted"] * 3 + ["rejected"] * 3
    assert len({a["code"] for a in answers[3:]}) == 1 and answers[3]["code"] != "conflict"
    assert "retrying" not in caplog.text  # decided in one batch, not one by one
    after = counts(plant)
    assert after["on_hand"] == 0
    assert after["consumptions"] == before["consumptions"] + 3
    assert after["ledger"] == before["ledger"] + 3
    assert after["scan_events"] == before["scan_events"] + 6
    with Session(engine) as session:
        for lot in session.exec(select(StockLot).where(StockLot.on_hand != 0)).all():
            assert lot.id is not None
            assert ledger.on_hand_from_ledger(session, lot.id) == (lot.on_hand, lot.reserved)


def test_a_reservation_given_back_mid_batch_frees_the_lot_for_the_next_scan(
    any_demo_app: Flask,
) -> None:
    """PC-T1 holds the last two fans of FN-2605 and takes one from another lot: its
    reservation on FN-2605 is given back, and PC-T2's scan of FN-2605 in the same batch
    finds that fan free (a lot this batch had not read: its line is not kept back)."""
    engine = any_demo_app.extensions["taktline.engine"]
    release(engine, options=KIT_OPTIONS, serial="PC-T1")
    release(engine, options=KIT_OPTIONS, serial="PC-T2", reserve=False)
    _second_kitting_station(engine)
    with write_session(engine) as session:
        fan = session.exec(select(Part).where(Part.sku == "FAN-120")).one()
        lot = session.exec(select(StockLot).where(StockLot.lot_code == "FN-2605")).one()
        assert lot.reserved == 2
        ledger.post(session, lot=lot, kind="adjustment", quantity=2 - lot.on_hand, by="test")
        ledger.receive(
            session,
            part=fan,
            location_id=lot.location_id,
            quantity=5,
            by="test",
            lot_code="FN-9999",
        )
    _both_kitting_stations_start(engine)
    batch: list[tuple[str, StationEvent]] = [
        ("KIT-1", Scan(CASE_MT)),
        ("KIT-2", Scan(CASE_MT)),
        ("KIT-1", Scan("(01)09506000001210(10)FN-9999")),
        ("KIT-2", Scan("(01)09506000001210(10)FN-2605")),
    ]
    with write_session(engine) as session:
        cache = Cache(locking=True)  # as the ingest's batches on PostgreSQL
        service.expect(session, cache, [f"r{i}" for i in range(len(batch))])
        outcomes = [
            in_batch(session, cache, f"r{i}", station, event)
            for i, (station, event) in enumerate(batch)
        ]
        service.flush(session, cache)
    assert [o.code for o in outcomes] == ["picked"] * 4
    with Session(engine) as session:
        for code, balances in (("FN-2605", (1, 1)), ("FN-9999", (4, 0))):
            lot = session.exec(select(StockLot).where(StockLot.lot_code == code)).one()
            assert lot.id is not None
            assert (lot.on_hand, lot.reserved) == balances
            assert ledger.on_hand_from_ledger(session, lot.id) == balances


class Tablet(threading.Thread):
    """A tablet's event at ``station`` in a transaction of its own, on a thread: it may
    have to wait for a batch that holds what it needs."""

    def __init__(self, engine: sa.Engine, station: str, event: StationEvent) -> None:
        super().__init__()
        self.engine, self.station, self.event = engine, station, event
        self.outcome: service.Outcome | None = None
        self.done = threading.Event()

    def run(self) -> None:
        with write_session(self.engine) as session:
            self.outcome = service.handle(session, station_code=self.station, event=self.event)
        self.done.set()

    def answered(self, timeout: float = 30) -> service.Outcome:
        assert self.done.wait(timeout)
        self.join()
        assert self.outcome is not None
        return self.outcome


def stock_matches_ledger(engine: sa.Engine) -> None:
    with Session(engine) as session:
        for lot in session.exec(select(StockLot)).all():
            assert lot.id is not None
            assert ledger.on_hand_from_ledger(session, lot.id) == (lot.on_hand, lot.reserved)


def test_a_tablet_event_waits_for_the_batch_holding_its_station(any_demo_app: Flask) -> None:
    """A batch carries KIT-1's state from one scan to the next; the operator's pause on
    the tablet meanwhile waits for the batch's commit (PostgreSQL: the station's row
    lock, taken by every event; SQLite: its one writer), then pauses the step the batch
    left. No pick is decided on a state that a pause had changed."""
    engine = any_demo_app.extensions["taktline.engine"]
    release(engine, options=KIT_OPTIONS, serial="PC-T1")
    for event in (SignIn("OP1001"), StartNext()):
        with write_session(engine) as session:
            assert service.handle(session, station_code="KIT-1", event=event).accepted
    tablet = Tablet(engine, "KIT-1", Pause())
    with write_session(engine) as session:
        cache = Cache(locking=True)  # as the ingest's batches on PostgreSQL
        service.expect(session, cache, ["w1", "w2"])
        picks = [in_batch(session, cache, "w1", "KIT-1", Scan(CASE_MT))]
        tablet.start()
        assert not tablet.done.wait(0.5), "the pause went through while the batch held KIT-1"
        picks.append(in_batch(session, cache, "w2", "KIT-1", Scan("SCRM3")))
        service.flush(session, cache)
    assert tablet.answered().code == "paused"
    assert [p.code for p in picks] == ["picked", "picked"]
    with Session(engine) as session:
        state = service.load_state(session, station_code="KIT-1")
        assert state.paused
        assert sum(1 for p in state.picks if p.done) == 2


def test_a_batch_takes_its_stations_first_and_never_deadlocks_with_a_tablet(
    any_demo_app: Flask,
) -> None:
    """A batch picks screws at KIT-1 (it now holds the screw lot) and is about to pick at
    KIT-2 when KIT-2's tablet sends a screw scan of its own. Had the tablet taken KIT-2
    first, each would wait for the other (PostgreSQL breaks that by failing one); the
    batch took both stations before reading anything (``service.lock_stations``, as the
    ingest does), so the tablet waits for its commit, then picks."""
    engine = any_demo_app.extensions["taktline.engine"]
    release(engine, options=KIT_OPTIONS, serial="PC-T1")
    release(engine, options=KIT_OPTIONS, serial="PC-T2", reserve=False)
    _second_kitting_station(engine)
    _both_kitting_stations_start(engine)
    tablet = Tablet(engine, "KIT-2", Scan("SCRM3"))
    with write_session(engine) as session:
        cache = Cache(locking=True)  # as the ingest's batches on PostgreSQL
        service.expect(session, cache, ["d1", "d2"])
        service.lock_stations(session, cache, ["KIT-1", "KIT-2"])
        picks = [in_batch(session, cache, "d1", "KIT-1", Scan("SCRM3"))]
        tablet.start()
        assert not tablet.done.wait(0.5), (
            "the tablet's scan went through while the batch held KIT-2"
        )
        picks.append(in_batch(session, cache, "d2", "KIT-2", Scan("SCRM3")))
        service.flush(session, cache)
    assert tablet.answered().code == "already_picked"  # the batch picked KIT-2's screws first
    assert [p.code for p in picks] == ["picked", "picked"]
    with Session(engine) as session:
        built = session.exec(select(Consumption.unit_id, Consumption.quantity)).all()
        assert sorted(q for _u, q in built) == [1, 1] and len({u for u, _q in built}) == 2
    stock_matches_ledger(engine)


def test_a_pick_elsewhere_from_a_lot_a_batch_holds_waits_for_its_commit(
    any_demo_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch has picked screws at KIT-1 (its rows kept back, the lot's balance
    carried) when KIT-2's tablet picks from the same lot: the tablet waits for the
    batch's commit (PostgreSQL: the lot's row lock, taken when the batch read it;
    SQLite: its one writer), then takes its screws from what the batch left. Nobody
    decided on a balance that had changed under it: no refusal, no retry. (Neither unit
    holds a reservation: the lot is locked for being read, not for being reserved.)"""
    engine = any_demo_app.extensions["taktline.engine"]
    release(engine, options=KIT_OPTIONS, serial="PC-T1", reserve=False)
    release(engine, options=KIT_OPTIONS, serial="PC-T2", reserve=False)
    _second_kitting_station(engine)
    _both_kitting_stations_start(engine)
    screws = select(sa.func.sum(StockLot.on_hand)).join(Part).where(Part.sku == "SCR-M3")
    with Session(engine) as session:
        before = session.exec(screws).one()
    tablet = Tablet(engine, "KIT-2", Scan("SCRM3"))
    with caplog.at_level("WARNING"), write_session(engine) as session:
        cache = Cache(locking=True)  # as the ingest's batches on PostgreSQL
        service.expect(session, cache, ["k1"])
        service.lock_stations(session, cache, ["KIT-1"])
        picked = in_batch(session, cache, "k1", "KIT-1", Scan("SCRM3"))
        tablet.start()
        assert not tablet.done.wait(0.5), "KIT-2 took screws while the batch held the lot"
        service.flush(session, cache)
    assert (picked.code, tablet.answered().code) == ("picked", "picked")
    assert "refused" not in caplog.text and "conflict" not in caplog.text
    with Session(engine) as session:
        assert session.exec(screws).one() == before - 2
    stock_matches_ledger(engine)
