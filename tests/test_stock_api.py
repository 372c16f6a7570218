"""Stock for integrators: ``GET /api/v1/stock`` and ``/stock.csv``, the same lots the
stock page lists, with on hand, reserved, available, expiry and location."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from flask import Flask
from sqlmodel import select

from server.db import write_session
from server.inventory import expiry
from server.models import Location, Part, StockLot
from server.security import auth
from tests.support.apps import login


def _token(app: Flask, scopes: list[str]) -> dict[str, str]:
    with write_session(app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="t", scopes=scopes, by=None)
    return {"Authorization": f"Bearer {token}"}


def _hostile_lot(app: Flask) -> tuple[str, str]:
    with write_session(app.extensions["taktline.engine"]) as db:
        part = db.exec(select(Part).order_by(Part.id)).first()
        loc = db.exec(select(Location).order_by(Location.id)).first()
        assert part and loc and loc.id and part.id
        db.add(
            StockLot(
                part_id=part.id,
                location_id=loc.id,
                lot_code="=1+cmd|'/c calc'!A1",
                on_hand=7,
                reserved=2,
                expires_on=expiry.today() - timedelta(days=1),
            )
        )
        return part.sku, loc.code


def test_stock_api_lists_lots(demo_app: Flask) -> None:
    sku, loc = _hostile_lot(demo_app)
    client = demo_app.test_client()
    headers = _token(demo_app, ["stock:read"])
    r = client.get("/api/v1/stock", query_string={"part": sku}, headers=headers)
    assert r.status_code == 200
    lots = r.get_json()["lots"]
    assert lots and all(row["sku"] == sku for row in lots)
    hostile = next(row for row in lots if row["lot"] == "=1+cmd|'/c calc'!A1")
    assert hostile["on_hand"] == 7 and hostile["reserved"] == 2 and hostile["available"] == 5
    assert hostile["expired"] is True and hostile["location"] == loc
    assert hostile["expires_on"] == (expiry.today() - timedelta(days=1)).isoformat()

    assert (
        client.get("/api/v1/stock", query_string={"limit": 0}, headers=headers).status_code == 400
    )
    assert (
        client.get("/api/v1/stock", query_string={"offset": "x"}, headers=headers).status_code
        == 400
    )
    one = client.get("/api/v1/stock", query_string={"limit": 1}, headers=headers).get_json()
    assert len(one["lots"]) == 1
    none = client.get("/api/v1/stock", query_string={"location": "NOWHERE"}, headers=headers)
    assert none.get_json()["lots"] == []
    # Writing scope of another area: refused.
    assert (
        client.get("/api/v1/stock", headers=_token(demo_app, ["orders:write"])).status_code == 403
    )


def test_stock_csv_neutralises_formulas(demo_app: Flask) -> None:
    _hostile_lot(demo_app)
    client = demo_app.test_client()
    assert client.get("/stock.csv").status_code in (302, 303)  # sign in first
    login(client, "supervisor")
    r = client.get("/stock.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="stock-')
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    hostile = next(row for row in rows if "cmd" in row["lot"])
    assert hostile["lot"] == "'=1+cmd|'/c calc'!A1"
    assert hostile["on_hand"] == "7" and hostile["reserved"] == "2" and hostile["expired"] == "True"
    filtered = client.get("/stock.csv", query_string={"q": "cmd|"}).get_data(as_text=True)
    assert len(list(csv.DictReader(io.StringIO(filtered)))) == 1
