"""POST /api/v1/stations/<code>/scans: the MQTT scan payload over HTTP, same workflow."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from server.db import write_session
from server.messaging import live
from station import service
from station.workflow import SignIn, StartNext
from tests.support.apps import login
from tests.support.units import release


def _ready(app: Flask) -> None:
    release(
        app.extensions["taktline.engine"], options=["i7", "mem32", "ssd1t", "mt"], serial="PC-H1"
    )
    with write_session(app.extensions["taktline.engine"]) as session:
        service.handle(session, station_code="KIT-1", event=SignIn("OP1001"))
    with write_session(app.extensions["taktline.engine"]) as session:
        service.handle(session, station_code="KIT-1", event=StartNext())


def test_scan_over_http(demo_app: Flask, demo_client: FlaskClient) -> None:
    _ready(demo_app)
    login(demo_client, "supervisor")
    body = {
        "msg_id": "h-1",
        "ts": "2026-03-02T08:00:00.123Z",
        "seq": 1,
        "source": "erp",
        "data": "SCRM3",
    }
    with live.subscribe("KIT-1") as sub:
        first = demo_client.post("/api/v1/stations/KIT-1/scans", json=body)
        assert first.status_code == 200, first.json
        assert first.json["result"] == "accepted" and first.json["ref"] == "h-1"
        assert first.json["reason"] == "SCR-M3 picked (1 of 1)."
        pushed = sub.get(timeout=1)
    assert pushed is not None and pushed["unit"]["serial"] == "PC-H1"
    screws = next(p for p in first.json["state"]["picks"] if p["sku"] == "SCR-M3")
    assert screws["done"] == 1
    again = demo_client.post("/api/v1/stations/KIT-1/scans", json=body)
    assert again.status_code == 200 and again.json["result"] == "duplicate"
    wrong = demo_client.post(
        "/api/v1/stations/KIT-1/scans", json={**body, "msg_id": "h-2", "data": "9506000001036"}
    )
    assert wrong.status_code == 422 and wrong.json["code"] == "wrong_part"
    bad = demo_client.post("/api/v1/stations/KIT-1/scans", json={"msg_id": "h-3", "data": 5})
    assert (
        bad.status_code == 400
        and bad.json["reason"] == "Message refused: data is missing or not a string."
    )
    nowhere = demo_client.post("/api/v1/stations/NOPE/scans", json={**body, "msg_id": "h-4"})
    assert nowhere.status_code == 404


def test_scan_over_http_needs_a_sign_in(demo_client: FlaskClient) -> None:
    response = demo_client.post(
        "/api/v1/stations/KIT-1/scans", json={"msg_id": "x", "data": "SCRM3"}
    )
    assert response.status_code == 401
