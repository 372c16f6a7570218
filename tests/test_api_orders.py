"""/api/v1: orders, release, cancel, stations and queues, units, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.models import CustomerOrder, StockLot
from tests.support.apps import login

NEW_ORDER: dict[str, Any] = {
    "number": "SO-2001",
    "customer": "API Corp",
    "due_date": "2030-05-01",
    "priority": 2,
    "lines": [{"product": "PC", "quantity": 2, "options": ["i7", "mem32", "ssd1t", "mt"]}],
}


@pytest.fixture
def api(any_demo_app: Flask) -> FlaskClient:
    client = any_demo_app.test_client()
    login(client, "supervisor")
    return client


def test_create_read_and_list_orders(api: FlaskClient) -> None:
    created = api.post("/api/v1/orders", json=NEW_ORDER)
    assert created.status_code == 201, created.json
    assert created.headers["Location"].endswith("/api/v1/orders/SO-2001")
    body = api.get("/api/v1/orders/SO-2001").json
    assert body["status"] == "received" and body["priority"] == 2
    assert body["lines"] == [
        {"line_no": 1, "product": "PC", "quantity": 2, "options": ["i7", "mem32", "ssd1t", "mt"]}
    ]
    assert body["lead_time"]["received_at"].endswith("Z")
    assert body["lead_time"]["released_at"] is None
    mem = next(a for a in body["atp"] if a["sku"] == "MEM-32")
    assert (mem["required"], mem["available"], mem["short"]) == (2, 4, 0)
    listed = api.get("/api/v1/orders?status=received").json["orders"]
    assert [o["number"] for o in listed] == [
        "SO-1001",
        "SO-1002",
        "SO-1003",
        "SO-1004",
        "SO-1005",
        "SO-2001",
    ]


def test_invalid_order_is_refused_with_reasons_and_nothing_written(
    api: FlaskClient, any_demo_app: Flask
) -> None:
    bad = {
        **NEW_ORDER,
        "lines": [
            {"product": "PC", "quantity": 1, "options": ["i9", "mem16", "ssd512", "sff"]},
            {"product": "PC", "quantity": 0, "options": ["i5", "mem16", "ssd512", "mt"]},
        ],
    }
    response = api.post("/api/v1/orders", json=bad)
    assert response.status_code == 422
    assert response.json["problems"] == [
        "line 1 (PC): The Core i9 needs the mid-tower case for cooling.",
        "line 2: quantity must be between 1 and 1000.",
    ]
    assert (
        api.post("/api/v1/orders", data="{nope", content_type="application/json").status_code == 422
    )
    with Session(any_demo_app.extensions["taktline.engine"]) as s:
        assert (
            s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-2001")).first() is None
        )


def test_release_puts_units_in_station_queues_and_cancel_gives_stock_back(
    api: FlaskClient, any_demo_app: Flask
) -> None:
    released = api.post("/api/v1/orders/SO-1001/release", json={})
    assert released.status_code == 200, released.json
    assert released.json["status"] == "released"
    serials = [u["serial"] for u in released.json["units"]]
    assert serials == ["PC-000001", "PC-000002"]
    queue = api.get("/api/v1/stations/KIT-1/queue").json["queue"]
    assert [q["unit"] for q in queue] == serials
    assert queue[0]["operation"] == "KIT" and queue[0]["status"] == "ready"
    stations = {s["code"]: s["queue_length"] for s in api.get("/api/v1/stations").json["stations"]}
    assert stations == {"KIT-1": 2, "BRD-1": 0, "BRD-2": 0, "FIN-1": 0, "TST-1": 0, "RWK-1": 0}
    unit = api.get(f"/api/v1/units/{serials[0]}").json
    assert unit["order"] == "SO-1001" and unit["options"] == ["i5", "mem16", "ssd512", "mt"]
    assert [o["station_kind"] for o in unit["operations"]] == ["kitting", "board", "final", "test"]
    again = api.post("/api/v1/orders/SO-1001/release", json={})
    assert again.status_code == 409 and "only a received order" in again.json["error"]
    cancelled = api.post("/api/v1/orders/SO-1001/cancel", json={"reason": "customer"})
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert api.get("/api/v1/stations/KIT-1/queue").json["queue"] == []
    with Session(any_demo_app.extensions["taktline.engine"]) as s:
        assert all(lot.reserved == 0 for lot in s.exec(select(StockLot)).all())


def test_release_short_is_refused_then_overridden(api: FlaskClient) -> None:
    order = {
        **NEW_ORDER,
        "lines": [
            {"product": "PC", "quantity": 4, "options": ["i7", "mem16", "ssd1t", "mt", "gpu4080"]}
        ],
    }
    assert api.post("/api/v1/orders", json=order).status_code == 201
    short = api.post("/api/v1/orders/SO-2001/release", json={})
    assert short.status_code == 409
    assert short.json["problems"] == ["GPU-4080: short 1"]
    forced = api.post(
        "/api/v1/orders/SO-2001/release", json={"override_reason": "GPU arrives tomorrow"}
    )
    assert forced.status_code == 200 and len(forced.json["units"]) == 4


def test_every_demo_open_order_releases_through_the_api(api: FlaskClient) -> None:
    for number in ("SO-1001", "SO-1002", "SO-1003", "SO-1004", "SO-1005"):
        response = api.post(f"/api/v1/orders/{number}/release", json={})
        assert response.status_code == 200, (number, response.json)
    queue = api.get("/api/v1/stations/KIT-1/queue").json["queue"]
    assert len(queue) == 15
    assert queue[0]["unit"] == "PC-000003"  # SO-1002 has the highest priority


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/orders"),
        ("post", "/api/v1/orders"),
        ("post", "/api/v1/orders/SO-1001/release"),
        ("get", "/api/v1/stations/KIT-1/queue"),
        ("get", "/api/v1/units/PC-000001"),
    ],
)
def test_api_needs_a_sign_in(demo_client: FlaskClient, method: str, path: str) -> None:
    response = getattr(demo_client, method)(path, json={})
    assert response.status_code == 401 and "error" in response.json


def test_missing_things_are_json_404s(api: FlaskClient) -> None:
    assert api.get("/api/v1/orders/NOPE").status_code == 404
    assert api.get("/api/v1/orders/NOPE").json["error"] == "no order NOPE"
    assert api.get("/api/v1/units/NOPE").status_code == 404
    assert api.get("/api/v1/stations/NOPE/queue").status_code == 404


def test_openapi_document_lists_every_route(demo_app: Flask) -> None:
    doc = demo_app.test_client().get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    for rule in demo_app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_json":
            path = rule.rule.removeprefix("/api/v1").replace("<", "{").replace(">", "}")
            for method in rule.methods - {"HEAD", "OPTIONS"}:  # type: ignore[operator]
                assert (path, method.lower()) in documented, (path, method)
    assert doc["components"]["schemas"]["OrderInput"]["required"] == [
        "number",
        "customer",
        "due_date",
        "lines",
    ]
