"""The integrator's holes closed from the command line: `taktline tokens create|list|
revoke` and `taktline tablets bind`, each usable at once by the API or a tablet."""

from __future__ import annotations

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
