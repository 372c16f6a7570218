"""Recall both ways through the real paths, with a sub-assembly built into another unit.

The demo plant gets a fan module FM (its own product, built at kitting from two
FAN-120 of lot FN-2605) that is the serial-tracked part FANMOD of a workstation WS.
"""

from __future__ import annotations

import pytest
import yaml
from flask import Flask
from sqlmodel import Session, select

from server.catalog import importer
from server.db import get_engine, write_session
from server.models import Part, StockLot
from server.trace.genealogy import genealogy
from server.trace.recall import order_components, recall_lot, recall_serial
from tests.support.apps import login
from tests.support.building import build, place_and_release

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
def nested(demo_app: Flask) -> dict[str, str]:
    engine = demo_app.extensions["taktline.engine"]
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
    (pc,) = place_and_release(
        engine, number="SO-PC", product="PC", quantity=1, options=["i5", "mem16", "ssd512", "mt"]
    )
    build(engine, pc)
    return {"module": fan_module, "workstation": workstation, "pc": pc}


def test_genealogy_and_recall_both_ways_through_a_sub_assembly(
    demo_app: Flask, nested: dict[str, str]
) -> None:
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


def test_trace_api_and_page_both_ways(demo_app: Flask, nested: dict[str, str]) -> None:
    client = demo_app.test_client()
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
