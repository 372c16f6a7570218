"""The app factory on the demo plant: the plant's data, the home page, desktop sign-in."""

from __future__ import annotations

import re

from flask import Flask
from sqlmodel import Session, func, select

from server.models import CustomerOrder, Operator, Part, PartIdentifier, Station, StockLot
from tests.support.apps import login


def test_demo_plant_is_believable(any_demo_app: Flask) -> None:
    with Session(any_demo_app.extensions["taktline.engine"]) as db:
        kinds = {s.kind for s in db.exec(select(Station))}
        assert {"kitting", "board", "final", "test"} <= kinds
        assert db.exec(select(func.count()).select_from(Part)).one() >= 30
        tracking = {p.tracking for p in db.exec(select(Part))}
        assert {"none", "lot", "serial"} <= tracking
        assert len({tuple(o.skills) for o in db.exec(select(Operator))}) >= 3
        assert db.exec(select(func.count()).select_from(CustomerOrder)).one() >= 3
        serial_lots = db.exec(select(StockLot).where(StockLot.serial != "")).all()
        assert serial_lots and all(lot.on_hand == 1 for lot in serial_lots)
        gtins = db.exec(select(PartIdentifier).where(PartIdentifier.kind == "gtin")).all()
    import biip

    for ident in gtins:
        assert biip.parse(ident.value).gtin is not None, ident.value


def test_home_page_lists_the_stations(demo_client: object) -> None:
    html = demo_client.get("/").get_data(as_text=True)  # type: ignore[attr-defined]
    assert re.search(r"BRD-2\s*·\s*Board assembly 2", html)


def test_desktop_sign_in(demo_client: object) -> None:
    bad = demo_client.post("/login", data={"username": "supervisor", "password": "x"})  # type: ignore[attr-defined]
    assert bad.status_code == 401
    assert "wrong password" in bad.get_data(as_text=True)
    login(demo_client, "supervisor")  # type: ignore[arg-type]
    assert demo_client.get("/healthz").json["user"] == "Sam Sutherland"  # type: ignore[attr-defined]


def test_open_redirect_refused(demo_client: object) -> None:
    r = demo_client.post(
        "/login?next=//evil.example/x",  # type: ignore[attr-defined]
        data={"username": "admin", "password": "admin"},
    )
    assert r.status_code == 303 and r.headers["Location"] == "/"
