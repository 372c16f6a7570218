"""A failed check opens an NCR; rework at the rework station replaces a serialised part;
the removed serial is quarantined and refused elsewhere until a supervisor releases it;
genealogy (JSON, CSV, PDF) and recall say removed; FPY and reconcile follow. The demo
plant on SQLite and PostgreSQL, through the station service and the quality services."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, col, select

from server.db import dispose_engine, get_engine, write_session
from server.models import (
    ComponentChange,
    Consumption,
    NonConformance,
    OutboxEvent,
    Part,
    StockLot,
    UnitOperation,
)
from server.quality import figures, ncr, rework
from server.trace import export, genealogy, recall
from server.trace.reconcile import reconcile
from station.workflow import CompleteStep, DeviceEvent, ReportDefect, Scan, SignIn, StartUnit
from tests.support.building import act, build_step, place_and_release, scans_for
from tests.support.pdf_text import pdf_text

OPTIONS = ["i5", "mem16", "ssd512", "mt"]


def torque(value: float) -> DeviceEvent:
    return DeviceEvent("torque", {"value": value, "unit": "Nm", "ok": True}, source="torque1")


@pytest.fixture
def engine(any_demo_db_url: str) -> Iterator[Any]:
    yield get_engine(any_demo_db_url)
    dispose_engine(any_demo_db_url)


def start_board(engine: Any, serial: str) -> Any:
    assert act(engine, "BRD-1", SignIn("OP1001")).accepted
    started = act(engine, "BRD-1", StartUnit(serial))
    assert started.accepted, started.message
    state = started.state
    for pick in state.picks:
        for data in scans_for(
            engine,
            unit_id=state.unit.id,
            part_id=pick.part_id,
            substitutes=pick.substitutes,
            qty=pick.remaining,
        ):
            assert act(engine, "BRD-1", Scan(data)).accepted
    return state


def test_failed_check_ncr_rework_replacement_quarantine_and_records(engine: Any) -> None:
    serial, other = place_and_release(
        engine, number="SO-NCR", product="PC", quantity=2, options=OPTIONS
    )
    build_step(engine, "KIT-1", serial, badge="OP1001")
    state = start_board(engine, serial)
    uop_id = state.operation.unit_operation_id
    assert act(engine, "BRD-1", torque(0.61)).code == "measured"
    # Out of limits three times (two retries): the third blocks the step, opens the NCR.
    first = act(engine, "BRD-1", torque(0.82))
    assert (first.result, first.code) == ("rejected", "out_of_limits")
    assert act(engine, "BRD-1", torque(0.41)).code == "out_of_limits"
    blocked = act(engine, "BRD-1", torque(0.90))
    assert blocked.code == "out_of_limits_ncr", blocked.message
    assert blocked.state is not None and blocked.state.unit is None  # the step is closed
    with Session(engine) as db:
        [opened] = db.exec(select(NonConformance)).all()
        assert (opened.origin, opened.cause, opened.value, opened.status) == (
            "check",
            "TQ-MB",
            0.90,
            "open",
        )
        assert (opened.lower, opened.upper, opened.unit) == (0.5, 0.7, "Nm")
        assert db.get(UnitOperation, uop_id).status == "held"  # type: ignore[union-attr]
        board = next(p for p in state.picks if p.sku.startswith("MB-"))
        old_serial = db.exec(
            select(Consumption.serial).where(
                Consumption.unit_id == state.unit.id, Consumption.part_id == board.part_id
            )
        ).one()

    with write_session(engine) as db:
        n = db.get(NonConformance, opened.id)
        with pytest.raises(ncr.QualityError, match="reason"):
            ncr.decide(db, ncr=n, disposition="scrap", reason=" ", by="Sam")
        ncr.decide(db, ncr=n, disposition="rework", reason="", by="Sam")
    assert [s for (s,) in [(x[1],) for x in _queue(engine)]] == [serial]

    gtin = "09506000001142"  # MB-B760
    with write_session(engine) as db:
        station = rework.rework_station(db, "RWK-1")
        n = db.get(NonConformance, opened.id)
        with pytest.raises(ncr.QualityError, match="Remove the faulty component first"):
            rework.install(db, ncr=n, data=f"(01){gtin}(21)MBBX00020", station=station, by="Ray")
        with pytest.raises(ncr.QualityError, match="not built into unit"):
            rework.remove(db, ncr=n, data=f"(01){gtin}(21)MBBX00019", station=station, by="Ray")
        rework.remove(db, ncr=n, data=f"(01){gtin}(21){old_serial}", station=station, by="Ray")
    # The removed serial is in quarantine: refused at another unit's board step.
    build_step(engine, "KIT-1", other, badge="OP1001")
    with write_session(engine) as db:
        station = rework.rework_station(db, "RWK-1")
        n = db.get(NonConformance, opened.id)
        with pytest.raises(ncr.QualityError, match="in quarantine"):
            rework.install(db, ncr=n, data=f"(01){gtin}(21){old_serial}", station=station, by="Ray")
        rework.install(db, ncr=n, data=f"(01){gtin}(21)MBBX00020", station=station, by="Ray")
        with pytest.raises(ncr.QualityError, match="Re-run Motherboard screw torque"):
            rework.finish(db, ncr=n, by="Ray")
        assert not rework.measure(db, ncr=n, value=0.75, passed=None, station=station, by="Ray")
        for value in (0.6, 0.61, 0.59, 0.62):
            assert rework.measure(db, ncr=n, value=value, passed=None, station=station, by="Ray")
        rework.finish(db, ncr=n, by="Ray")

    # Back at the board station: picks and checks are done, the step completes.
    again = act(engine, "BRD-1", StartUnit(serial))
    assert again.accepted, again.message
    assert again.state is not None and again.state.complete
    assert act(engine, "BRD-1", CompleteStep()).accepted
    for station, badge in (("FIN-1", "OP1003"), ("TST-1", "OP1003")):
        build_step(engine, station, serial, badge=badge)

    outcome = _scan_at_board(engine, other, f"(01){gtin}(21){old_serial}")
    assert (outcome.code, outcome.params["serial"]) == ("serial_quarantined", old_serial)

    with Session(engine) as db:
        g = genealogy.genealogy(db, serial=serial)
        assert g is not None
        doc = genealogy.to_dict(g)
        removed = [c for c in doc["components"] if c["removed_at"]]
        assert [c["serial"] for c in removed] == [old_serial]
        assert [(c["action"], c["serial"], c["station"]) for c in doc["component_changes"]] == [
            ("removed", old_serial, "RWK-1"),
            ("installed", "MBBX00020", "RWK-1"),
        ]
        assert doc["non_conformances"][0]["disposition"] == "rework"
        values = [(c["value"], c["passed"]) for c in doc["checks"] if c["check"] == "TQ-MB"]
        assert values[:4] == [(0.61, True), (0.82, False), (0.41, False), (0.90, False)]
        pdf = pdf_text(export.genealogy_pdf(g, printed_by="t", printed_at=g.created_at))
        assert "Components removed and installed in rework" in pdf
        assert old_serial in pdf and "MBBX00020" in pdf and "0.9 Nm" in pdf
        csv = export.genealogy_csv(g)
        assert f"removed {g.quality['component_changes'][0]['at'][:10]}" in csv
        hits = recall.recall_serial(db, serial=old_serial)
        assert [(h.serial, recall.hit_dict(h)["removed"]) for h in hits.hits] == [(serial, True)]
        fpy = figures.first_pass_yield(db, day=g.created_at.date())
        board_fpy = {r.station: r for r in fpy}["BRD-1"]
        assert (board_fpy.units, board_fpy.first_pass) == (1, 0)  # reworked: not first pass
        assert {r.station: r for r in fpy}["KIT-1"].first_pass == 2

    report = reconcile(engine, allow_open_steps=True)
    assert report.checks["completed units consumed exactly their BOM"] == []
    assert report.checks["completed units passed every check"] == []
    assert report.checks["quarantine holds the removals not yet released"] == []
    assert report.figures["components removed in rework"] == 1

    # A supervisor releases it: it may be built into a unit again.
    with write_session(engine) as db:
        [waiting] = rework.quarantined(db)
        rework.release(db, change_id=waiting.change.id, by="Sam")
        assert rework.quarantined(db) == []
    assert reconcile(engine, allow_open_steps=True).clean
    with Session(engine) as db:
        change = db.exec(select(ComponentChange).where(ComponentChange.action == "removed")).one()
        assert change.released_by == "Sam"
        part = db.exec(select(Part).where(Part.sku == "MB-B760")).one()
        lots = db.exec(
            select(StockLot).where(StockLot.part_id == part.id, StockLot.serial == old_serial)
        ).all()
        assert sorted(lot.on_hand for lot in lots) == [0, 1]
    # The other unit's board step (still open at BRD-1) may now take the released board.
    taken = act(engine, "BRD-1", Scan(f"(01){gtin}(21){old_serial}"))
    assert (taken.code, taken.params["sku"]) == ("picked", "MB-B760"), taken.message
    assert reconcile(engine, allow_open_steps=True).clean


def _queue(engine: Any) -> list[Any]:
    with Session(engine) as db:
        return rework.queue(db)


def _scan_at_board(engine: Any, serial: str, data: str) -> Any:
    act(engine, "BRD-1", SignIn("OP1001"))
    started = act(engine, "BRD-1", StartUnit(serial))
    assert started.accepted, started.message
    return act(engine, "BRD-1", Scan(data))


def test_a_defect_that_holds_the_unit_opens_an_ncr_used_as_is_the_step_resumes(
    engine: Any,
) -> None:
    [serial] = place_and_release(engine, number="SO-DEF", product="PC", quantity=1, options=OPTIONS)
    assert act(engine, "KIT-1", SignIn("OP1001")).accepted
    started = act(engine, "KIT-1", StartUnit(serial))
    held = act(
        engine, "KIT-1", ReportDefect("damaged", note="dent on the side", disposition="hold")
    )
    assert held.code == "unit_held", held.message
    with write_session(engine) as db:
        [opened] = db.exec(select(NonConformance)).all()
        assert (opened.origin, opened.cause, opened.note) == (
            "defect",
            "damaged",
            "dent on the side",
        )
        ncr.decide(db, ncr=opened, disposition="use_as_is", reason="cosmetic only", by="Sam")
    with Session(engine) as db:
        uop = db.get(UnitOperation, started.state.operation.unit_operation_id)
        assert uop is not None and uop.status == "ready"  # back in KIT-1's queue
        assert db.get(NonConformance, opened.id).status == "closed"  # type: ignore[union-attr]
    # Taken again, held again: scrapped this time, and the ERP hears of it.
    assert act(engine, "KIT-1", StartUnit(serial)).accepted
    act(engine, "KIT-1", ReportDefect("function", note="no power", disposition="hold"))
    with write_session(engine) as db:
        again = db.exec(select(NonConformance).where(NonConformance.status == "open")).one()
        ncr.decide(db, ncr=again, disposition="scrap", reason="board burnt", by="Sam")
    with Session(engine) as db:
        scrapped = db.exec(
            select(OutboxEvent).where(col(OutboxEvent.type).endswith("unit.scrapped"))
        ).all()
        assert [json.loads(e.data)["ncr"] for e in scrapped] == [f"NCR-{again.id:05d}"]


def test_a_supervisors_ncr_swaps_a_memory_lot_and_lot_recall_says_removed(engine: Any) -> None:
    [serial] = place_and_release(engine, number="SO-LOT", product="PC", quantity=1, options=OPTIONS)
    build_step(engine, "KIT-1", serial, badge="OP1001")
    build_step(engine, "BRD-1", serial, badge="OP1001")
    with Session(engine) as db:
        memory = db.exec(select(Part).where(Part.sku == "MEM-16")).one()
        lot = db.exec(
            select(StockLot.lot_code)
            .join(Consumption, Consumption.lot_id == StockLot.id)
            .where(Consumption.part_id == memory.id)
        ).one()
    other = "M16-2610B" if lot != "M16-2610B" else "M16-2609A"
    with write_session(engine) as db:
        opened = ncr.open_ncr(db, unit_serial=serial, cause="MEM-ERR", note="memtest", by="Sam")
        with pytest.raises(ncr.QualityError, match="not known"):
            ncr.open_ncr(db, unit_serial="PC-NOPE", cause="x", note="", by="Sam")
        ncr.decide(db, ncr=opened, disposition="rework", reason="", by="Sam")
        station = rework.rework_station(db, "RWK-1")
        rework.remove(
            db, ncr=opened, data=f"(01)09506000001036(10){lot}", station=station, by="Ray"
        )
        cooler = "(01)09506000001173(10)CS-2607"  # COOL-STD: out and in again, first
        rework.remove(db, ncr=opened, data=cooler, station=station, by="Ray")
        rework.install(db, ncr=opened, data=cooler, station=station, by="Ray")
        with pytest.raises(ncr.QualityError, match="no replacement yet"):
            rework.finish(db, ncr=opened, by="Ray")
        rework.install(
            db, ncr=opened, data=f"(01)09506000001036(10){other}", station=station, by="Ray"
        )
        rework.finish(db, ncr=opened, by="Ray")
    with Session(engine) as db:
        [hit] = recall.recall_lot(db, part_sku="MEM-16", lot_code=lot).hits
        assert (hit.serial, recall.hit_dict(hit)["removed"]) == (serial, True)
        [kept] = recall.recall_lot(db, part_sku="MEM-16", lot_code=other).hits
        assert (kept.serial, recall.hit_dict(kept)["removed"]) == (serial, False)
        assert db.get(NonConformance, opened.id).status == "closed"  # type: ignore[union-attr]
    report = reconcile(engine, allow_open_steps=True)
    assert report.checks["quarantine holds the removals not yet released"] == []
    assert report.checks["on-hand equals the ledger for every lot"] == []
