"""The audit trail as a supervisor sees it: an overridden release and a stock adjustment
show who, from where and why; filters; CSV / JSON export; append-only."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.models import AuditEntry, Part, StockLot, StockMovement
from tests.support.apps import CliRunner, login

ROOT = Path(__file__).parent.parent


def _lot(app: Flask, sku: str) -> StockLot:
    with Session(app.extensions["taktline.engine"]) as db:
        return db.exec(
            select(StockLot)
            .join(Part, StockLot.part_id == Part.id)  # type: ignore[arg-type]
            .where(Part.sku == sku)
            .order_by(StockLot.id)
        ).first()  # type: ignore[return-value]


@pytest.fixture
def supervisor(demo_app: Flask) -> FlaskClient:
    client = demo_app.test_client()
    login(client, "supervisor")
    return client


def _lots(app: Flask, sku: str) -> list[StockLot]:
    with Session(app.extensions["taktline.engine"]) as db:
        return list(
            db.exec(
                select(StockLot)
                .join(Part, StockLot.part_id == Part.id)  # type: ignore[arg-type]
                .where(Part.sku == sku, StockLot.on_hand > 0)
            )
        )


def test_override_and_adjustment_show_who_and_why(demo_app: Flask, supervisor: FlaskClient) -> None:
    # A cycle count finds the RTX 4080s missing, so SO-1002 can only go with an override.
    lots = _lots(demo_app, "GPU-4080")
    for lot in lots:
        r = supervisor.post(
            f"/stock/lots/{lot.id}/adjust",
            data={"quantity": str(-lot.on_hand), "reason": "cycle count: not on the shelf"},
        )
        assert r.status_code == 303
    assert _lots(demo_app, "GPU-4080") == []
    refused = supervisor.post("/orders/SO-1002/release", follow_redirects=True)
    assert "GPU-4080" in refused.get_data(as_text=True)
    r = supervisor.post(
        "/orders/SO-1002/release",
        data={"override": "on", "override_reason": "customer accepts a late GPU"},
    )
    assert r.status_code == 303
    with Session(demo_app.extensions["taktline.engine"]) as db:
        moves = db.exec(select(StockMovement).where(StockMovement.kind == "adjustment")).all()
        assert {(m.by, m.reason) for m in moves} == {
            ("Sam Sutherland (supervisor)", "cycle count: not on the shelf")
        }

    page = supervisor.get("/audit/").get_data(as_text=True)
    rows = re.findall(r"<tr><td>.*?</tr>", page, re.S)
    release = next(r for r in rows if "order.release" in r)
    adjust = next(r for r in rows if "stock.adjust" in r)
    for row in (release, adjust):
        assert "Sam Sutherland (supervisor)" in row and "127.0.0.1" in row
    assert "customer accepts a late GPU" in release and "SO-1002" in release
    assert "cycle count: not on the shelf" in adjust and "GPU-4080" in adjust

    exported = supervisor.get("/audit/export.csv?action=stock")
    assert exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    records = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [r["action"] for r in records] == ["stock.adjust"] * len(lots)
    assert records[0]["actor"] == "Sam Sutherland (supervisor)"
    assert "not on the shelf" in records[0]["detail"] and records[0]["at"].endswith("Z")
    data = supervisor.get("/audit/export.json?entity=order&entity_id=SO-1002").json
    release = [e for e in data if e["action"] == "order.release"]  # type: ignore[union-attr]
    assert [e["detail"]["override_reason"] for e in release] == ["customer accepts a late GPU"]


def test_adjustment_without_reason_or_below_zero_changes_nothing(
    demo_app: Flask, supervisor: FlaskClient
) -> None:
    lot = _lot(demo_app, "GPU-4080")
    for data in (
        {"quantity": "-1", "reason": " "},
        {"quantity": "0", "reason": "count"},
        {"quantity": "lots", "reason": "count"},
        {"quantity": str(-lot.on_hand - 1), "reason": "count"},
    ):
        r = supervisor.post(f"/stock/lots/{lot.id}/adjust", data=data, follow_redirects=True)
        assert "Adjustment refused" in r.get_data(as_text=True), data
    assert _lot(demo_app, "GPU-4080").on_hand == lot.on_hand
    assert supervisor.get("/audit/export.json?action=stock").json == []


def test_filters_and_bad_dates(demo_app: Flask, supervisor: FlaskClient) -> None:
    lot = _lot(demo_app, "GPU-4080")
    supervisor.post(f"/stock/lots/{lot.id}/adjust", data={"quantity": "2", "reason": "found"})
    assert len(supervisor.get("/audit/export.json?actor=sutherland&since=2000-01-01").json) == 1  # type: ignore[arg-type]
    assert supervisor.get("/audit/export.json?actor=nobody").json == []
    assert supervisor.get("/audit/export.json?until=2000-01-01").json == []
    bad = supervisor.get("/audit/?since=yesterday")
    assert bad.status_code == 400 and "Not a date" in bad.get_data(as_text=True)


def test_operators_cannot_read_the_trail_and_it_is_append_only(demo_app: Flask) -> None:
    with demo_app.extensions["taktline.engine"].begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO auditentry (at, actor, address, action, entity, "
                "entity_id, detail) VALUES (CURRENT_TIMESTAMP, 'x', '', 'a', "
                "'e', '1', '{}')"
            )
        )
    with (
        pytest.raises(sa.exc.DatabaseError, match="append-only"),
        demo_app.extensions["taktline.engine"].begin() as conn,
    ):
        conn.execute(sa.text("UPDATE auditentry SET actor = 'someone else'"))
    assert demo_app.test_client().get("/audit/").status_code == 302


def test_a_catalog_import_is_on_the_trail(app: Flask, runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text((ROOT / "server" / "tools" / "demo" / "plant.yaml").read_text())
    assert runner.invoke(["import", str(path)]).exit_code == 0
    with Session(app.extensions["taktline.engine"]) as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "catalog.import")).one()
    assert entry.actor.startswith("cli:") and entry.entity_id == "plant.yaml"
    assert entry.detail["counts"]["parts"] >= 30
