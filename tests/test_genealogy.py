"""A unit's genealogy, built through the real paths (release, station.service.handle)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from server.trace.genealogy import genealogy, to_dict
from tests.support.apps import login
from tests.support.building import build, place_and_release

OPTIONS = ["i5", "mem32", "ssd512", "mt"]


@pytest.fixture
def built(demo_app: Flask) -> dict[str, str]:
    """Five mem32 PCs released: the demo holds four MEM-32, so release reserves the
    second-source MEM-32B for the fifth, which is built at every station."""
    engine = demo_app.extensions["taktline.engine"]
    serials = place_and_release(engine, number="SO-T1", product="PC", quantity=5, options=OPTIONS)
    build(engine, serials[4])
    return {"first": serials[0], "fifth": serials[4], "queued": serials[2]}


def test_genealogy_lists_every_pick_step_and_the_substitute(
    demo_app: Flask, built: dict[str, str]
) -> None:
    with Session(demo_app.extensions["taktline.engine"]) as db:
        g = genealogy(db, serial=built["fifth"])
    assert g is not None
    assert g.status == "completed" and g.completed_at is not None
    assert g.order == "SO-T1" and g.customer == "Customer of SO-T1"
    mem = [p for p in g.picks if p.for_sku == "MEM-32"]
    assert [(p.sku, p.lot_code, p.substituted) for p in mem] == [("MEM-32B", "M32B-2611C", True)]
    assert not any(p.substituted for p in g.picks if p.for_sku != "MEM-32")
    # Every pick names the scan that confirmed it, where and by whom.
    assert all(p.scan and p.scan_msg_id and p.station and p.operator for p in g.picks)
    cpu = next(p for p in g.picks if p.sku == "CPU-I5")
    assert cpu.serial and cpu.scan.endswith(cpu.serial) and cpu.station == "BRD-1"
    assert {p.sku for p in g.picks} >= {
        "CASE-MT",
        "PSU-450",
        "MB-B760",
        "CPU-I5",
        "TP-1",
        "SSD-512",
        "BOX-MT",
    }
    assert [(s.operation, s.station, s.operator) for s in g.steps] == [
        ("KIT", "KIT-1", "Alice Martin"),
        ("BRD", "BRD-1", "Alice Martin"),
        ("FIN", "FIN-1", "Chen Wei"),
        ("TST", "TST-1", "Chen Wei"),
    ]
    assert all(s.duration_seconds is not None and s.duration_seconds >= 0 for s in g.steps)
    assert g.standard_seconds == 240 + 420 + 480 + 360
    assert g.assembly_seconds == pytest.approx(sum(s.duration_seconds or 0 for s in g.steps))
    assert g.defects == [] and g.built_into is None


def test_queued_unit_api_page_and_exports(demo_app: Flask, built: dict[str, str]) -> None:
    with Session(demo_app.extensions["taktline.engine"]) as db:
        queued = genealogy(db, serial=built["queued"])
        assert genealogy(db, serial="NO-SUCH-UNIT") is None
    assert queued is not None and queued.picks == [] and queued.steps == []
    assert queued.status == "queued"

    client: FlaskClient = demo_app.test_client()
    login(client, "supervisor")
    serial = built["fifth"]
    body = client.get(f"/api/v1/units/{serial}").json
    assert body["order"] == "SO-T1" and len(body["operations"]) == 4
    mem = [c for c in body["components"] if c["for_sku"] == "MEM-32"][0]
    assert mem["sku"] == "MEM-32B" and mem["substituted"] is True
    assert mem["lot"] == "M32B-2611C" and mem["scan"]["data"].endswith("M32B-2611C")
    assert [s["station"] for s in body["steps"]] == ["KIT-1", "BRD-1", "FIN-1", "TST-1"]
    assert body["assembly_seconds"] >= 0 and body["standard_seconds"] == 1500
    assert client.get("/api/v1/units/NOPE").status_code == 404

    page = client.get(f"/units/{serial}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert serial in html and "MEM-32B" in html and "M32B-2611C" in html and "KIT-1" in html
    as_json = client.get(f"/units/{serial}.json")
    assert as_json.status_code == 200 and as_json.json == to_dict_via(demo_app, serial)
    assert "attachment" in as_json.headers["Content-Disposition"]
    csv_text = client.get(f"/units/{serial}.csv").get_data(as_text=True)
    header, *rows = csv_text.splitlines()
    assert header.startswith("unit,level,kind,")
    assert any("MEM-32B" in r and "M32B-2611C" in r for r in rows)
    assert any(r.split(",")[2] == "step" and "TST-1" in r for r in rows)
    pdf = client.get(f"/units/{serial}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF") and len(pdf.data) > 2000
    assert client.get("/units/NOPE.json").status_code == 404


def to_dict_via(app: Flask, serial: str) -> dict[str, object]:
    with Session(app.extensions["taktline.engine"]) as db:
        g = genealogy(db, serial=serial)
    assert g is not None
    return to_dict(g)
