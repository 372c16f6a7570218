"""Planner pages, CSV import, travelers and the dispatch board, through real HTTP."""

from __future__ import annotations

import io
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.models import AuditEntry, CustomerOrder, UnitOperation
from tests.support.apps import login, make_app


@pytest.fixture
def sup(demo_app: Flask) -> FlaskClient:
    client = demo_app.test_client()
    login(client, "supervisor")
    return client


def test_order_list_shows_what_can_be_released(sup: FlaskClient) -> None:
    sup.post(
        "/api/v1/orders",
        json={
            "number": "SO-BIG",
            "customer": "X",
            "due_date": "2030-01-01",
            "lines": [
                {
                    "product": "PC",
                    "quantity": 4,
                    "options": ["i7", "mem16", "ssd1t", "mt", "gpu4080"],
                }
            ],
        },
    )
    html = sup.get("/orders/").get_data(as_text=True)
    big = html.split('data-order="SO-BIG"')[1].split("</tr>")[0]
    assert "Short: GPU-4080 −1" in big and "Release…" not in big
    ok = html.split('data-order="SO-1001"')[1].split("</tr>")[0]
    # Release asks for a confirmation first (the page that shows what it reserves).
    assert ">Yes<" in ok and 'href="/orders/SO-1001/release"' in ok


def test_live_configurator_disables_excluded_options_and_shows_the_bom(sup: FlaskClient) -> None:
    partial = sup.post(
        "/orders/new/configure",
        headers={"HX-Request": "true"},
        data={"product": "PC", "options": ["sff"]},
    ).get_data(as_text=True)
    assert partial.startswith('<div id="configurator"')
    gpu = partial.split('data-option="gpu4080"')[1].split("</label>")[0]
    assert "disabled" in gpu and "does not fit the small case" in gpu
    assert "Choose a Processor (cpu)." in partial and "Resolved BOM" not in partial
    full = sup.post(
        "/orders/new/configure", data={"product": "PC", "options": ["i7", "mem32", "ssd1t", "sff"]}
    ).get_data(as_text=True)
    assert "Resolved BOM" in full and 'data-sku="MB-ITX"' in full
    assert 'data-sku="MB-B760"' not in full


def test_order_form_creates_or_refuses_whole(sup: FlaskClient, demo_app: Flask) -> None:
    form = {
        "number": "SO-3001",
        "customer": "Form Ltd",
        "due_date": "2030-02-01",
        "priority": "0",
        "quantity": "1",
        "product": "PC",
        "options": ["i9", "mem64", "ssd2t", "sff"],
    }
    refused = sup.post("/orders/new", data=form)
    assert refused.status_code == 422
    assert "The Core i9 needs the mid-tower case" in refused.get_data(as_text=True)
    with Session(demo_app.extensions["taktline.engine"]) as s:
        assert (
            s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-3001")).first() is None
        )
    created = sup.post("/orders/new", data={**form, "options": ["i9", "mem64", "ssd2t", "mt"]})
    assert created.status_code == 303 and created.headers["Location"].endswith("/SO-3001")
    page = sup.get("/orders/SO-3001").get_data(as_text=True)
    assert 'data-stamp="received_at"' in page and "Form Ltd" in page


def test_release_from_the_ui_then_queues_stamps_and_traveler(sup: FlaskClient) -> None:
    for number in ("SO-1001", "SO-1002", "SO-1003", "SO-1004", "SO-1005"):
        assert sup.post(f"/orders/{number}/release").status_code == 303
    page = sup.get("/orders/SO-1002").get_data(as_text=True)
    released = page.split('data-stamp="released_at"')[1].split("</tr>")[0]
    assert "<time" in released and "PC-000003" in page
    board = sup.get("/dispatch/").get_data(as_text=True)
    kit = board.split('data-station="KIT-1"')[1].split("</section>")[0]
    assert kit.count("data-unit=") == 15 and kit.index("PC-000003") < kit.index("PC-000001")
    assert sup.get("/dispatch/stations/BRD-1").get_data(as_text=True).count("data-unit=") == 0
    traveler = sup.get("/units/PC-000003/traveler").get_data(as_text=True)
    assert "data:image/svg+xml;base64," in traveler and "gpu4080" in traveler
    assert "Board assembly" in traveler and "MB-Z790" in traveler
    pdf = sup.get("/units/PC-000003/traveler.pdf")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")


def test_override_needs_a_reason_and_is_recorded(sup: FlaskClient, demo_app: Flask) -> None:
    sup.post(
        "/api/v1/orders",
        json={
            "number": "SO-BIG",
            "customer": "X",
            "due_date": "2030-01-01",
            "lines": [
                {
                    "product": "PC",
                    "quantity": 4,
                    "options": ["i7", "mem16", "ssd1t", "mt", "gpu4080"],
                }
            ],
        },
    )
    sup.post("/orders/SO-BIG/release")
    assert "GPU-4080 short 1" in sup.get("/orders/SO-BIG").get_data(as_text=True)
    sup.post("/orders/SO-BIG/release", data={"override": "1", "override_reason": ""})
    assert "An override needs a reason." in sup.get("/orders/SO-BIG").get_data(as_text=True)
    sup.post("/orders/SO-BIG/release", data={"override": "1", "override_reason": "late GPU"})
    page = sup.get("/orders/SO-BIG").get_data(as_text=True)
    assert "late GPU" in page and "released" in page


def test_dispatch_board_hold_resume(sup: FlaskClient, demo_app: Flask) -> None:
    sup.post("/orders/SO-1001/release")
    with Session(demo_app.extensions["taktline.engine"]) as s:
        op = s.exec(select(UnitOperation).where(UnitOperation.status == "ready")).first()
        assert op is not None
    sup.post(f"/dispatch/ops/{op.id}/hold", data={"reason": "damaged case"})
    held = sup.get("/dispatch/").get_data(as_text=True).split('data-station="held"')[1]
    assert "damaged case" in held
    sup.post(f"/dispatch/ops/{op.id}/resume")
    with Session(demo_app.extensions["taktline.engine"]) as s:
        assert s.get(UnitOperation, op.id).status == "ready"  # type: ignore[union-attr]
        assert (
            len(s.exec(select(AuditEntry).where(AuditEntry.entity == "unit_operation")).all()) == 2
        )


def test_csv_import_all_or_nothing(sup: FlaskClient, demo_app: Flask) -> None:
    good = (
        "number,customer,due_date,priority,product,quantity,options\n"
        "SO-4001,Alpha,2030-03-01,1,PC,2,i5 mem16 ssd512 mt\n"
        "SO-4001,Alpha,2030-03-01,1,PC,1,i7;mem32;ssd1t;sff\n"
        "SO-4002,Beta,2030-03-02,0,PC,1,i5 mem16 ssd512 mt wifi\n"
    )
    bad = good + "SO-4003,Gamma,2030-03-03,0,PC,1,i5 mem16 ssd512 sff hdd4t\n"
    refused = sup.post("/orders/import", data={"file": (io.BytesIO(bad.encode()), "o.csv")})
    assert refused.status_code == 422
    assert "CSV line 5: line 1 (PC): The small case has no 3.5-inch bay." in refused.get_data(
        as_text=True
    )
    with Session(demo_app.extensions["taktline.engine"]) as s:
        assert (
            s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-4001")).first() is None
        )
    done = sup.post("/orders/import", data={"file": (io.BytesIO(good.encode()), "o.csv")})
    assert done.status_code == 303
    order = sup.get("/api/v1/orders/SO-4001").json
    assert [(li["quantity"], li["options"]) for li in order["lines"]] == [
        (2, ["i5", "mem16", "ssd512", "mt"]),
        (1, ["i7", "mem32", "ssd1t", "sff"]),
    ]
    assert order["priority"] == 1


def test_planner_pages_need_a_supervisor(demo_client: FlaskClient) -> None:
    assert demo_client.get("/orders/").status_code == 302
    assert demo_client.post("/orders/SO-1001/release").status_code == 302


def test_order_stamps_read_in_plant_time(demo_db_url: str, tmp_path: Path) -> None:
    app = make_app(demo_db_url, tmp_path, PLANT_TIMEZONE="Pacific/Auckland")
    client = app.test_client()
    login(client, "supervisor")
    assert client.post("/orders/SO-1002/release").status_code == 303
    with Session(app.extensions["taktline.engine"]) as s:
        order = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1002")).one()
        released = order.released_at
    assert released is not None
    page = client.get("/orders/SO-1002").get_data(as_text=True)
    cell = page.split('data-stamp="released_at"')[1].split("</tr>")[0]
    utc = released.replace(tzinfo=UTC)
    local = utc.astimezone(ZoneInfo("Pacific/Auckland")).strftime("%Y-%m-%d %H:%M:%S")
    assert local in cell and "UTC" not in cell
