"""The integrator's holes closed from the command line: `taktline tokens create|list|
revoke` and `taktline tablets bind`, each usable at once by the API or a tablet."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlmodel import Session, select

from server.models import ApiToken, AuditEntry, DeviceToken
from tests.support.apps import CliRunner


def test_token_from_the_cli_reads_the_stock_api(demo_app: Flask) -> None:
    runner = CliRunner(demo_app)
    created = runner.invoke(["tokens", "create", "ERP stock sync", "--scopes", "stock:read"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("tla_") and "\n" not in token

    client = demo_app.test_client()
    r = client.get("/api/v1/stock", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    lots = r.get_json()["lots"]
    assert lots and {"sku", "lot", "on_hand", "reserved", "expires_on", "location"} <= set(lots[0])
    # The scope is what was asked: stock only.
    assert (
        client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code
        == 403
    )

    listed = runner.invoke(["tokens", "list"])
    assert listed.exit_code == 0 and "ERP stock sync" in listed.output
    assert token not in listed.output  # never shown again
    engine = demo_app.extensions["taktline.engine"]
    with Session(engine) as db:
        row = db.exec(select(ApiToken).where(ApiToken.name == "ERP stock sync")).one()
        assert db.exec(
            select(AuditEntry).where(
                AuditEntry.action == "api_token.issue", AuditEntry.entity_id == str(row.id)
            )
        ).first()

    revoked = runner.invoke(["tokens", "revoke", str(row.id)])
    assert revoked.exit_code == 0, revoked.output
    after = client.get("/api/v1/stock", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401
    assert "ERP stock sync" not in runner.invoke(["tokens", "list"]).output
    assert "revoked" in runner.invoke(["tokens", "list", "--all"]).output
    assert runner.invoke(["tokens", "revoke", "987654"]).exit_code != 0


def test_token_create_refuses_bad_scopes(demo_app: Flask) -> None:
    r = CliRunner(demo_app).invoke(["tokens", "create", "x", "--scopes", "DROP TABLE"])
    assert r.exit_code != 0 and "bad scope" in r.output


def test_tablet_bound_from_the_cli_opens_its_station(demo_app: Flask) -> None:
    runner = CliRunner(demo_app)
    r = runner.invoke(
        ["tablets", "bind", "KIT-1", "--label", "left", "--base-url", "https://mes.example/"]
    )
    assert r.exit_code == 0, r.output
    link = r.stdout.strip()
    assert link.startswith("https://mes.example/station/bind?token=")
    client = demo_app.test_client()
    bound = client.get(link.removeprefix("https://mes.example"))
    assert bound.status_code in (302, 303)
    assert client.get("/station/KIT-1").status_code == 200
    assert client.get("/station/BRD-1").status_code == 403
    with Session(demo_app.extensions["taktline.engine"]) as db:
        assert db.exec(select(DeviceToken).where(DeviceToken.label == "left")).one()
    assert runner.invoke(["tablets", "bind", "NOPE-9"]).exit_code != 0


def test_admin_api_issues_lists_and_revokes_tokens_and_bindings(demo_app: Flask) -> None:
    runner = CliRunner(demo_app)
    admin = runner.invoke(["tokens", "create", "provisioning", "--scopes", "admin:write"])
    headers = {"Authorization": f"Bearer {admin.stdout.strip()}"}
    client = demo_app.test_client()

    r = client.post(
        "/api/v1/admin/api-tokens",
        json={"name": "MES bridge", "scopes": ["stock:read"]},
        headers=headers,
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    issued = r.get_json()
    assert issued["scopes"] == ["stock:read"] and r.headers["Cache-Control"] == "no-store"
    stock = client.get("/api/v1/stock", headers={"Authorization": f"Bearer {issued['token']}"})
    assert stock.status_code == 200
    listed = client.get("/api/v1/admin/api-tokens", headers=headers).get_json()["tokens"]
    assert {t["name"] for t in listed} >= {"provisioning", "MES bridge"}
    assert all("token" not in t for t in listed)
    bad = client.post(
        "/api/v1/admin/api-tokens", json={"name": "x", "scopes": ["DROP TABLE"]}, headers=headers
    )
    assert bad.status_code == 400
    revoked = client.post(f"/api/v1/admin/api-tokens/{issued['id']}/revoke", headers=headers)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert (
        client.get(
            "/api/v1/stock", headers={"Authorization": f"Bearer {issued['token']}"}
        ).status_code
        == 401
    )
    assert client.post("/api/v1/admin/api-tokens/987654/revoke", headers=headers).status_code == 404

    r = client.post(
        "/api/v1/admin/devices", json={"station": "FIN-1", "label": "pack"}, headers=headers
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    device = r.get_json()
    tablet = demo_app.test_client()
    tablet.get(device["bind_path"])
    assert tablet.get("/station/FIN-1").status_code == 200
    devices = client.get("/api/v1/admin/devices", headers=headers).get_json()["devices"]
    assert any(d["id"] == device["id"] and d["station"] == "FIN-1" for d in devices)
    revoke = f"/api/v1/admin/devices/{device['id']}/revoke"
    assert client.post(revoke, headers=headers).status_code == 200
    assert tablet.get("/station/FIN-1").status_code != 200
    assert (
        client.post("/api/v1/admin/devices", json={"station": "NOPE"}, headers=headers).status_code
        == 404
    )
    # A token without the admin scope cannot mint tokens.
    reader = runner.invoke(["tokens", "create", "reader", "--scopes", "stock:read"]).stdout.strip()
    refused = client.post(
        "/api/v1/admin/api-tokens",
        json={"name": "escalate", "scopes": ["*"]},
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert refused.status_code == 403


def test_the_bridge_logs_each_port_it_opens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented signal (docs/bridge.md, "Started"): `port <path> opened (<name>,
    <type>)` at INFO, once the port is held."""
    from firmware_bridge.config import DeviceConfig
    from firmware_bridge.devices import PortReader, make_device
    from firmware_bridge.simulate import PtyPort

    pty = PtyPort(tmp_path / "scanner0")
    stop = threading.Event()
    device = make_device(
        DeviceConfig(name="scanner1", type="scanner", port=str(pty.link), baudrate=9600)
    )
    reader = PortReader(device, lambda _device, _event: None, stop)
    caplog.set_level(logging.INFO, logger="firmware_bridge.devices")
    reader.start()
    try:
        deadline = time.monotonic() + 5
        wanted = f"port {pty.link} opened (scanner1, scanner)"
        while wanted not in caplog.messages:
            assert time.monotonic() < deadline, caplog.messages
            time.sleep(0.05)
    finally:
        stop.set()
        pty.unplug()
        reader.join(5)
