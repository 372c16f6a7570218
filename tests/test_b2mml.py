"""ISA-95 B2MML export of a completed order, validated against the official B2MML V0600
schemas of MESA International (shipped in tests/b2mml/schemas, see its README).

The demo order SO-1001 is released and every unit built through the real paths
(``station.service.handle`` at KIT-1, BRD-1, FIN-1, TST-1), which completes the order;
its export over the API and the command line must be valid and say what was built.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import xmlschema
from flask import Flask
from sqlmodel import Session, select

from server.db import write_session
from server.models import CustomerOrder
from server.orders import service as orders
from server.security import auth
from server.trace import b2mml
from server.trace.genealogy import genealogy
from tests.support.apps import CliRunner, login
from tests.support.building import build

SCHEMAS = Path(__file__).parent / "b2mml" / "schemas"
NS = {"b": "http://www.mesa.org/xml/B2MML-V0600"}


@pytest.fixture(scope="module")
def performance_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "B2MML-V0600-ProductionPerformance.xsd"))


@pytest.fixture(scope="module")
def material_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "B2MML-V0600-Material.xsd"))


@pytest.fixture
def completed(demo_app: Flask) -> list[str]:
    """SO-1001 released and every one of its units built: the order is completed."""
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="test")
        serials = [u.serial for u in orders.order_units(db, order=order)]
    for serial in serials:
        build(engine, serial)
    with Session(engine) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        assert order.status == "completed"
    return serials


def _time(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_demo_order_exports_valid_b2mml_that_says_what_was_built(
    demo_app: Flask,
    completed: list[str],
    performance_schema: xmlschema.XMLSchema,
    material_schema: xmlschema.XMLSchema,
) -> None:
    client = demo_app.test_client()
    login(client, "supervisor")
    response = client.get("/api/v1/orders/SO-1001/b2mml")
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "application/xml"
    xml = response.data
    performance_schema.validate(xml.decode())  # raises with the reason when it is not
    assert performance_schema.is_valid(xml.decode())

    root = ET.fromstring(xml)
    assert root.tag == "{http://www.mesa.org/xml/B2MML-V0600}ProductionPerformance"
    assert root.findtext("b:ID", namespaces=NS) == "SO-1001"
    assert root.findtext("b:PerformanceState", namespaces=NS) == "Completed"
    responses = root.findall("b:ProductionResponse", NS)
    assert [r.findtext("b:ID", namespaces=NS) for r in responses] == completed

    engine = demo_app.extensions["taktline.engine"]
    lots_in_db: set[tuple[str, str]] = set()
    for response_el, serial in zip(responses, completed, strict=True):
        with Session(engine) as db:
            g = genealogy(db, serial=serial)
        assert g is not None and g.status == "completed"
        assert response_el.findtext("b:ProductionRequestID", namespaces=NS) == g.work_order
        assert response_el.findtext("b:ResponseState", namespaces=NS) == "Completed"
        segments = response_el.findall("b:SegmentResponse", NS)
        # One segment per step: operation, station, operator's badge, the step's times.
        assert [
            (
                s.findtext("b:ProcessSegmentID", namespaces=NS),
                s.findtext("b:EquipmentActual/b:EquipmentID", namespaces=NS),
                s.findtext("b:PersonnelActual/b:PersonID", namespaces=NS),
            )
            for s in segments
        ] == [
            ("KIT", "KIT-1", "OP1001"),
            ("BRD", "BRD-1", "OP1001"),
            ("FIN", "FIN-1", "OP1003"),
            ("TST", "TST-1", "OP1003"),
        ]
        for s, step in zip(segments, g.steps, strict=True):
            assert _time(s.findtext("b:ActualStartTime", namespaces=NS)) == step.started_at
            assert _time(s.findtext("b:ActualEndTime", namespaces=NS)) == step.ended_at
            assert s.findtext("b:SegmentState", namespaces=NS) == "Completed"
        # Every component picked is consumed, with its lot or serial; the unit is produced.
        consumed = [
            (
                m.findtext("b:MaterialDefinitionID", namespaces=NS),
                m.findtext("b:MaterialLotID", namespaces=NS),
                m.findtext("b:Quantity/b:QuantityString", namespaces=NS),
            )
            for s in segments
            for m in s.findall("b:MaterialActual", NS)
            if m.findtext("b:MaterialUse", namespaces=NS) == "Consumed"
        ]
        assert (
            consumed == [(p.sku, p.lot_code or p.serial, str(p.quantity)) for p in g.picks]
            and len(consumed) >= 7
        )
        produced = [
            m
            for s in segments
            for m in s.findall("b:MaterialActual", NS)
            if m.findtext("b:MaterialUse", namespaces=NS) == "Produced"
        ]
        assert [
            (
                m.findtext("b:MaterialDefinitionID", namespaces=NS),
                m.findtext("b:MaterialLotID", namespaces=NS),
            )
            for m in produced
        ] == [("PC", serial)]
        assert _time(response_el.findtext("b:EndTime", namespaces=NS)) == g.completed_at
        lots_in_db |= {(p.sku, p.lot_code or p.serial or "") for p in g.picks}
    cpu = [lot for lot in lots_in_db if lot[0] == "CPU-I5"]
    assert cpu and all(re.match(r"\w", lot[1]) for lot in cpu)

    # The material document: every lot and serial the order consumed, with its part.
    material = client.get("/api/v1/orders/SO-1001/b2mml?document=material")
    assert material.status_code == 200 and material.mimetype == "application/xml"
    assert material_schema.is_valid(material.data.decode())
    mroot = ET.fromstring(material.data)
    assert mroot.tag == "{http://www.mesa.org/xml/B2MML-V0600}MaterialInformation"
    listed = {
        (
            lot.findtext("b:MaterialDefinitionID", namespaces=NS),
            lot.findtext("b:ID", namespaces=NS),
        )
        for lot in mroot.findall("b:MaterialLot", NS)
    }
    assert listed == {lot for lot in lots_in_db if lot[1]}
    fan = [
        lot
        for lot in mroot.findall("b:MaterialLot", NS)
        if lot.findtext("b:MaterialDefinitionID", namespaces=NS) == "FAN-120"
    ]
    assert fan and int(fan[0].findtext("b:Quantity/b:QuantityString", namespaces=NS) or 0) >= 2


def test_the_command_writes_the_same_valid_documents(
    demo_app: Flask,
    completed: list[str],
    tmp_path: Path,
    performance_schema: xmlschema.XMLSchema,
    material_schema: xmlschema.XMLSchema,
) -> None:
    runner = CliRunner(demo_app)
    out = tmp_path / "so-1001.xml"
    result = runner.invoke(["export", "b2mml", "--order", "SO-1001", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert performance_schema.is_valid(out.read_text())
    serials = [
        r.findtext("b:ID", namespaces=NS)
        for r in ET.parse(out).getroot().findall("b:ProductionResponse", NS)
    ]
    assert serials == completed

    printed = runner.invoke(["export", "b2mml", "--order", "SO-1001", "--document", "material"])
    assert printed.exit_code == 0, printed.output
    assert material_schema.is_valid(printed.output)
    assert "<MaterialLot>" in printed.output

    unknown = runner.invoke(["export", "b2mml", "--order", "SO-NOPE"])
    assert unknown.exit_code == 1 and "no order SO-NOPE" in unknown.output
    open_order = runner.invoke(["export", "b2mml", "--order", "SO-1002"])
    assert open_order.exit_code == 1 and "completed order only" in open_order.output


def test_unknown_and_unfinished_orders_are_refused(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "supervisor")
    assert client.get("/api/v1/orders/SO-NOPE/b2mml").status_code == 404
    refused = client.get("/api/v1/orders/SO-1001/b2mml")
    assert refused.status_code == 409
    assert "completed order only" in refused.json["error"]
    assert client.get("/api/v1/orders/SO-1001/b2mml?document=recipe").status_code == 400


def test_access_needs_a_supervisor_or_an_orders_read_token(
    demo_app: Flask, completed: list[str]
) -> None:
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:
        reader = auth.issue_api_token(db, name="erp", scopes=["orders:read"], by=None)
        other = auth.issue_api_token(db, name="stock", scopes=["stock:read"], by=None)
    client = demo_app.test_client()
    assert client.get("/api/v1/orders/SO-1001/b2mml").status_code == 401
    ok = client.get("/api/v1/orders/SO-1001/b2mml", headers={"Authorization": f"Bearer {reader}"})
    assert ok.status_code == 200 and ok.mimetype == "application/xml"
    denied = client.get(
        "/api/v1/orders/SO-1001/b2mml", headers={"Authorization": f"Bearer {other}"}
    )
    assert denied.status_code == 403


def test_the_validator_rejects_a_broken_document(
    demo_app: Flask,
    completed: list[str],
    performance_schema: xmlschema.XMLSchema,
    material_schema: xmlschema.XMLSchema,
) -> None:
    """The schemas do check: a document with an element out of place, a state outside
    the code list or a lot without its ID is refused."""
    with Session(demo_app.extensions["taktline.engine"]) as db:
        xml = b2mml.export_order(
            db, number="SO-1001", published_at=datetime(2026, 1, 1, tzinfo=UTC)
        ).decode()
        material = b2mml.export_order(db, number="SO-1001", document="material").decode()
    assert "<PublishedDate>2026-01-01T00:00:00Z</PublishedDate>" in xml
    assert performance_schema.is_valid(xml)
    swapped = xml.replace("<PerformanceState>Completed</PerformanceState>", "").replace(
        "<ID>SO-1001</ID>", "<ID>SO-1001</ID><PerformanceState>Completed</PerformanceState>", 1
    )
    assert not performance_schema.is_valid(swapped)
    assert not performance_schema.is_valid(
        xml.replace("<SegmentState>Completed</SegmentState>", "<SegmentState>Done</SegmentState>")
    )
    assert not performance_schema.is_valid(
        xml.replace("<ActualEndTime>", "<ActualEndTime>yesterday ", 1)
    )
    assert material_schema.is_valid(material)
    without_id = re.sub(r"(<MaterialLot>\s*)<ID>[^<]*</ID>", r"\1", material, count=1)
    assert without_id != material and not material_schema.is_valid(without_id)


def test_odd_text_stays_well_formed_and_valid(
    demo_app: Flask, completed: list[str], performance_schema: xmlschema.XMLSchema
) -> None:
    """Markup and control characters in the data: escaped or dropped, never a broken
    document."""
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        order.customer = "Dupont\x01 & <Fils>"
    with Session(engine) as db:
        xml = b2mml.export_order(db, number="SO-1001").decode()
    assert performance_schema.is_valid(xml)
    assert "<Description>Customer: Dupont &amp; &lt;Fils&gt;</Description>" in xml


def test_the_shipped_schemas_carry_their_licence() -> None:
    licence = (SCHEMAS.parent / "LICENSE").read_text()
    assert "courtesy of MESA International" in licence
    readme: Any = (SCHEMAS.parent / "README.md").read_text()
    assert "B2MML-BatchML" in readme
