"""Recall both ways through the real paths, with a sub-assembly built into another unit,
on SQLite and on PostgreSQL (whose lot recall is a statement of its own).

The demo plant gets a fan module FM (its own product, built at kitting from two
FAN-120 of lot FN-2605) that is the serial-tracked part FANMOD of a workstation WS.
"""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
import yaml
from flask import Flask
from sqlmodel import Session, col, select

from server.catalog import importer
from server.db import get_engine, write_session
from server.models import Part, StockLot, Unit
from server.quality import ncr, rework
from server.trace.genealogy import genealogy
from server.trace.recall import hit_dict, order_components, recall_lot, recall_serial
from tests.support.apps import login
from tests.support.building import build, build_step, place_and_release

PC = ["i5", "mem16", "ssd512", "mt"]  # a mid-tower: two case fans (FAN-120)
SUB_ASSEMBLY = """
parts:
  - {sku: FANMOD, description: "Fan module (built here)", tracking: serial}
products:
  - code: FM
    name: Fan module
    line: PC1
    part: FANMOD
    serial_pattern: "FM-{seq:06d}"
    operations:
      - {code: FMA, sequence: 10, name: Assemble the fan module, station_kind: kitting,
         standard_seconds: 120}
    bom:
      - {part: FAN-120, qty: 2, operation: FMA}
  - code: WS
    name: Workstation
    line: PC1
    serial_pattern: "WS-{seq:06d}"
    operations:
      - {code: WSK, sequence: 10, name: Kit the workstation, station_kind: kitting,
         standard_seconds: 300}
    bom:
      - {part: CASE-MT, operation: WSK}
      - {part: FANMOD, operation: WSK}
"""


@pytest.fixture
def nested(any_demo_app: Flask) -> dict[str, str]:
    engine = any_demo_app.extensions["taktline.engine"]
    with write_session(engine) as session:
        importer.import_document(session, yaml.safe_load(SUB_ASSEMBLY), source="test", by="test")
    (fan_module,) = place_and_release(engine, number="SO-FM", product="FM", quantity=1, options=[])
    build(engine, fan_module)
    # Completing the module booked it into line-side stock, where the workstation picks it.
    with Session(engine) as session:
        part = session.exec(select(Part).where(Part.sku == "FANMOD")).one()
        lots = session.exec(select(StockLot).where(StockLot.part_id == part.id)).all()
        assert [(lot.serial, lot.on_hand) for lot in lots] == [(fan_module, 1)]
    (workstation,) = place_and_release(engine, number="SO-WS", product="WS", quantity=1, options=[])
    build(engine, workstation)
    (pc,) = place_and_release(engine, number="SO-PC", product="PC", quantity=1, options=PC)
    build(engine, pc)
    return {"module": fan_module, "workstation": workstation, "pc": pc}


def test_genealogy_and_recall_both_ways_through_a_sub_assembly(
    any_demo_app: Flask, nested: dict[str, str]
) -> None:
    demo_app = any_demo_app
    with Session(demo_app.extensions["taktline.engine"]) as db:
        ws = genealogy(db, serial=nested["workstation"])
        module = genealogy(db, serial=nested["module"])
    assert ws is not None and module is not None
    pick = next(p for p in ws.picks if p.sku == "FANMOD")
    assert pick.serial == nested["module"] and pick.scan == nested["module"]
    assert pick.sub_unit is not None and pick.sub_unit.depth == 1
    assert [(p.sku, p.lot_code, p.quantity) for p in pick.sub_unit.picks] == [
        ("FAN-120", "FN-2605", 1),
        ("FAN-120", "FN-2605", 1),
    ]
    assert module.built_into == nested["workstation"]

    # Up from a lot: the module holds it, the workstation through the module.
    with Session(demo_app.extensions["taktline.engine"]) as db:
        r = recall_lot(db, part_sku="FAN-120", lot_code="FN-2605")
    by_serial = {(h.serial, h.level, h.via) for h in r.hits}
    assert (nested["module"], 0, None) in by_serial
    assert (nested["workstation"], 1, nested["module"]) in by_serial
    assert (nested["pc"], 0, None) in by_serial  # the mid-tower PC has two case fans
    ws_hit = next(h for h in r.hits if h.serial == nested["workstation"])
    assert ws_hit.order == "SO-WS" and ws_hit.status == "completed"
    pc_hits = [h for h in r.hits if h.serial == nested["pc"]]
    assert [hit_dict(h) for h in pc_hits] == 2 * [
        {
            "serial": nested["pc"],
            "product": "PC",
            "status": "completed",
            "order": "SO-PC",
            "customer": pc_hits[0].customer,
            "due_date": pc_hits[0].due_date,
            "component": "FAN-120",
            "lot": "FN-2605",
            "component_serial": None,
            "level": 0,
            "via": None,
            "removed": False,
            "removed_at": None,
        }
    ]
    assert pc_hits[0].customer and date.fromisoformat(pc_hits[0].due_date or "")
    assert r.units == 3 and r.orders == ["SO-FM", "SO-PC", "SO-WS"]

    # Up from a serial; an unknown lot is in nothing.
    with Session(demo_app.extensions["taktline.engine"]) as db:
        pc = genealogy(db, serial=nested["pc"])
        assert pc is not None
        cpu = next(p for p in pc.picks if p.sku == "CPU-I5")
        r = recall_serial(db, serial=cpu.serial or "")
        assert [(h.serial, h.order, h.component) for h in r.hits] == [
            (nested["pc"], "SO-PC", "CPU-I5")
        ]
        assert recall_lot(db, part_sku="FAN-120", lot_code="NO-SUCH-LOT").hits == []

    # Down from an order, the sub-assembly opened up.
    with Session(demo_app.extensions["taktline.engine"]) as db:
        components = order_components(db, order_number="SO-WS")
        assert order_components(db, order_number="NOPE") is None
    assert components is not None
    rows = {(c.sku, c.serial or c.lot, c.via) for c in components}
    assert ("FANMOD", nested["module"], None) in rows
    assert ("FAN-120", "FN-2605", nested["module"]) in rows
    assert any(c.sku == "CASE-MT" and c.via is None for c in components)


def test_trace_api_and_page_both_ways(any_demo_app: Flask, nested: dict[str, str]) -> None:
    client = any_demo_app.test_client()
    login(client, "supervisor")
    up = client.get("/api/v1/trace?part=FAN-120&lot=FN-2605")
    assert up.status_code == 200 and up.json["units"] == 3
    assert {h["serial"]: h["level"] for h in up.json["hits"]}[nested["workstation"]] == 1
    down = client.get("/api/v1/trace?order=SO-WS").json["components"]
    assert {(c["sku"], c["via"]) for c in down} >= {("FANMOD", None), ("FAN-120", nested["module"])}
    assert client.get("/api/v1/trace?lot=FN-2605").status_code == 400
    assert client.get("/api/v1/trace?order=NOPE").status_code == 404
    page = client.get("/trace?part=FAN-120&lot=FN-2605").get_data(as_text=True)
    assert nested["workstation"] in page and f"inside {nested['module']}" in page
    csv_text = client.get("/trace?part=FAN-120&lot=FN-2605&format=csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("serial,product,status,order")
    # One row per pick: the PC and the module hold two fans each, the workstation one module.
    assert len(csv_text.splitlines()) == 1 + 2 + 2 + 1
    assert client.get("/trace?serial=").status_code == 200  # the empty search form
    assert client.get("/trace?lot=X").status_code == 400


@pytest.mark.postgres
def test_postgresql_connections_run_without_jit() -> None:
    """A lot recall over a large history was costed high enough to be JIT-compiled on
    every call (bench/README.md): the app's connections turn JIT off."""
    from tests.support.databases import PG_URL

    if not PG_URL:
        pytest.skip("TAKTLINE_TEST_DATABASE_URL is not set")
    engine = get_engine(PG_URL)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"


def test_a_lot_recall_says_removed_only_when_every_pick_of_the_lot_came_out(
    any_demo_app: Flask,
) -> None:
    """A PC holds two fans of FN-2605; one is taken out in a rework and another of the
    same lot put in: the PC still holds the lot, so no hit of it says removed, though
    its genealogy says which pick came out."""
    engine = any_demo_app.extensions["taktline.engine"]
    fans = "(01)09506000001210(10)FN-2605"
    [pc] = place_and_release(engine, number="SO-FAN", product="PC", quantity=1, options=PC)
    build_step(engine, "KIT-1", pc, badge="OP1001")
    with write_session(engine) as db:
        opened = ncr.open_ncr(db, unit_serial=pc, cause="NOISE", note="fan rattles", by="Sam")
        ncr.decide(db, ncr=opened, disposition="rework", reason="", by="Sam")
        station = rework.rework_station(db, "RWK-1")
        rework.remove(db, ncr=opened, data=fans, station=station, by="Ray")
        rework.install(db, ncr=opened, data=fans, station=station, by="Ray")
    with Session(engine) as db:
        hits = recall_lot(db, part_sku="FAN-120", lot_code="FN-2605").hits
        g = genealogy(db, serial=pc)
    assert [(h.serial, hit_dict(h)["removed"], h.removed_at) for h in hits] == 3 * [
        (pc, False, None)
    ]
    assert g is not None
    assert sorted(p.removed_at is not None for p in g.picks if p.sku == "FAN-120") == [
        False,
        False,
        True,
    ]


@pytest.mark.postgres
def test_genealogy_statements_are_prepared_once_whatever_the_unit_id(
    any_demo_app: Flask,
) -> None:
    """psycopg sends an int below 32,768 as smallint and a larger one as integer, and
    PostgreSQL prepares and plans each as a statement of its own: a genealogy's
    statements take the serial, so a unit with a small id and one with a large id run
    the same prepared statements (bench/bench_trace.py: the small ids were the slow
    tail)."""
    engine = any_demo_app.extensions["taktline.engine"]
    if engine.dialect.name != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    [small] = place_and_release(engine, number="SO-S", product="PC", quantity=1, options=PC)
    with engine.begin() as conn:
        conn.exec_driver_sql("SELECT setval('unit_id_seq', 40000)")
    [large] = place_and_release(engine, number="SO-L", product="PC", quantity=1, options=PC)
    with Session(engine) as db:
        ids = sorted(
            i or 0 for i in db.exec(select(Unit.id).where(col(Unit.serial).in_([small, large])))
        )
        assert ids[0] < 32768 <= ids[1]
        for _ in range(8):  # past psycopg's threshold of five runs before it prepares
            assert genealogy(db, serial=small) is not None
            assert genealogy(db, serial=large) is not None
        prepared = db.connection().execute(
            sa.text(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE :steps "
                "OR statement LIKE :defects OR statement LIKE :picks"
            ),
            {
                "steps": "%FROM steprecord %",
                "defects": "%FROM defect %",
                "picks": "%FROM consumption JOIN part %",
            },
        )
        statements = prepared.scalars().all()
    assert len(statements) == 3 == len(set(statements))
