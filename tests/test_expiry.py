"""Expired material is never reserved, promised nor built in (issue 13, item 4).

On the demo plant, SQLite and PostgreSQL: an expired FAN-120 lot beside the good one
(FN-2605, no expiry): release reserves the good lot, the station refuses the expired
lot's label (and any label whose GS1 AI 17 is past) with the date in the reason, in
English and French, and accepts the good one; ATP, the stock page and the board count
expired stock apart.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_babel import force_locale
from sqlmodel import Session, col, select

from server.board.shortages import shortages
from server.db import write_session
from server.inventory import expiry, ledger
from server.models import CustomerOrder, Event, Location, Part, StockLot
from server.orders import reservations
from server.orders import service as orders
from station import service, texts
from station.workflow import Scan, SignIn, StartNext, StationEvent
from tests.support.apps import login
from tests.support.units import release

KIT_OPTIONS = ["i7", "mem32", "ssd1t", "mt"]  # KIT picks FAN-120 x2 (lot-tracked)
FAN_GTIN = "09506000001210"
GOOD = f"(01){FAN_GTIN}(10)FN-2605"
OLD = f"(01){FAN_GTIN}(10)FN-OLD"


def _engine(app: Flask) -> sa.Engine:
    engine: sa.Engine = app.extensions["taktline.engine"]
    return engine


def act(app: Flask, event: StationEvent) -> service.Outcome:
    with write_session(_engine(app)) as session:
        return service.handle(session, station_code="KIT-1", event=event, channel="mqtt")


def receive(app: Flask, *, sku: str, lot_code: str, qty: int, expires: date | None) -> None:
    with write_session(_engine(app)) as s:
        part = s.exec(select(Part).where(Part.sku == sku)).one()
        lineside = s.exec(select(Location).where(Location.code == "LS-PC1")).one()
        ledger.receive(
            s,
            part=part,
            location_id=lineside.id or 0,
            quantity=qty,
            by="test",
            lot_code=lot_code,
            expires_on=expires,
        )


def set_expiry(app: Flask, lot_code: str, expires: date | None) -> None:
    """A lot's date as if it had passed since (the date on the lot, not the ledger)."""
    with write_session(_engine(app)) as s:
        lot = s.exec(select(StockLot).where(StockLot.lot_code == lot_code)).one()
        lot.expires_on = expires
        s.add(lot)


def lot_balance(app: Flask, lot_code: str) -> tuple[int, int]:
    with Session(_engine(app)) as s:
        lot = s.exec(select(StockLot).where(StockLot.lot_code == lot_code)).one()
        return lot.on_hand, lot.reserved


def days(n: int) -> date:
    return expiry.today() + timedelta(days=n)


def test_the_good_lot_is_reserved_and_the_expired_one_refused(any_demo_app: Flask) -> None:
    app = any_demo_app
    expired_on = days(-3)
    # First-expiring first would take this lot (it has a date, FN-2605 has none).
    receive(app, sku="FAN-120", lot_code="FN-OLD", qty=10, expires=expired_on)
    release(_engine(app), options=KIT_OPTIONS, serial="PC-X1")
    assert lot_balance(app, "FN-OLD") == (10, 0)
    assert lot_balance(app, "FN-2605") == (80, 2)

    assert act(app, SignIn("OP1001")).accepted
    assert act(app, StartNext()).accepted
    refused = act(app, Scan(OLD))
    assert (refused.accepted, refused.code) == (False, "lot_expired")
    assert refused.params == {"sku": "FAN-120", "lot": "FN-OLD", "date": expired_on.isoformat()}
    assert refused.message == (
        f"FAN-120 lot FN-OLD expired on {expired_on.isoformat()}: do not use it; take another one."
    )
    with app.test_request_context(), force_locale("fr"):
        french = texts.translated(refused.code, refused.params)
    assert expired_on.isoformat() in french and "FN-OLD" in french
    assert french != refused.message and "%(" not in french
    # The label's own expiry (GS1 AI 17) is refused although FN-2605 has no date.
    labelled = act(app, Scan(f"{GOOD}(17){days(-1).strftime('%y%m%d')}"))
    assert (labelled.code, labelled.params["date"]) == ("lot_expired", days(-1).isoformat())
    # Usable on its expiry day; a bare GTIN takes the kitted good lot, never FN-OLD.
    assert act(app, Scan(f"{GOOD}(17){days(0).strftime('%y%m%d')}")).code == "picked"
    assert act(app, Scan(FAN_GTIN)).code == "picked"
    assert lot_balance(app, "FN-OLD") == (10, 0)
    assert lot_balance(app, "FN-2605") == (78, 0)
    with Session(_engine(app)) as s:
        event = s.exec(
            select(Event).where(Event.code == "lot_expired").order_by(col(Event.id))
        ).first()
        assert event is not None and event.params["date"] == expired_on.isoformat()


def test_a_lot_expired_since_the_release_is_replaced_by_a_good_one(any_demo_app: Flask) -> None:
    app = any_demo_app
    release(_engine(app), options=KIT_OPTIONS, serial="PC-X1")
    set_expiry(app, "FN-2605", days(-1))  # the kitted lot expired after the release
    with Session(_engine(app)) as s:
        assert ("FAN-120", 2, "released") in shortages(s)  # nothing good covers it
        assert ("FAN-120", 80, "expired") in shortages(s)
    receive(app, sku="FAN-120", lot_code="FN-NEW", qty=5, expires=days(300))
    with Session(_engine(app)) as s:
        fan = [x for x in shortages(s) if x[0] == "FAN-120"]
        # The 5 good ones cover the unit, not SO-1005 (12 fans; each order is counted alone).
        assert [x for x in fan if x[2] != "received"] == [("FAN-120", 80, "expired")]
        assert ("FAN-120", 7, "received") in fan

    act(app, SignIn("OP1001"))
    act(app, StartNext())
    assert act(app, Scan(GOOD)).code == "lot_expired"
    # Without a lot on the label the good lot is the candidate, but it was not kitted.
    assert act(app, Scan(FAN_GTIN)).code == "lot_needed"
    for _ in range(2):
        picked = act(app, Scan(f"(01){FAN_GTIN}(10)FN-NEW"))
        assert picked.code == "picked", picked.message
    # The reservation on the expired lot was given back as the good lot was used.
    assert lot_balance(app, "FN-2605") == (80, 0)
    assert lot_balance(app, "FN-NEW") == (3, 0)


def test_only_expired_stock_is_refused_naming_its_lot(any_demo_app: Flask) -> None:
    app = any_demo_app
    release(_engine(app), options=KIT_OPTIONS, serial="PC-X1")
    set_expiry(app, "FN-2605", days(-1))
    act(app, SignIn("OP1001"))
    act(app, StartNext())
    # The bare GTIN finds only the (kitted) expired lot: refused, naming it.
    bare = act(app, Scan(FAN_GTIN))
    assert (bare.code, bare.params["lot"]) == ("lot_expired", "FN-2605")
    assert lot_balance(app, "FN-2605") == (80, 2)


def test_atp_and_release_count_only_unexpired_stock(any_demo_app: Flask) -> None:
    app = any_demo_app
    receive(app, sku="FAN-120", lot_code="FN-OLD", qty=10, expires=days(-1))
    set_expiry(app, "M64-2608A", days(-1))  # the only MEM-64 (6 on hand)
    with Session(_engine(app)) as s:
        so1 = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        fan = next(a for a in orders.order_atp(s, order=so1) if a.sku == "FAN-120")
        assert (fan.on_hand, fan.available, fan.expired, fan.short) == (80, 80, 10, 0)
        so2 = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1002")).one()
        mem = next(a for a in orders.order_atp(s, order=so2) if a.sku == "MEM-64")
        assert (mem.on_hand, mem.available, mem.expired, mem.short) == (0, 0, 6, 1)
    with pytest.raises(orders.Shortage, match="MEM-64 short 1"), write_session(_engine(app)) as s:
        order = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1002")).one()
        orders.release(s, order=order, by="test")
    with write_session(_engine(app)) as s:
        order = s.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(s, order=order, by="test")
    assert lot_balance(app, "FN-OLD") == (10, 0)
    assert lot_balance(app, "FN-2605") == (80, 4)


def test_the_stock_page_and_the_board_show_expired_stock(any_demo_app: Flask) -> None:
    app = any_demo_app
    receive(app, sku="FAN-120", lot_code="FN-OLD", qty=10, expires=days(-2))
    client = app.test_client()
    login(client, "supervisor")
    html = client.get("/stock/?q=FN-").get_data(as_text=True)
    row = html[html.index("FN-OLD") - 300 : html.index("FN-OLD") + 400]
    assert 'class="expired"' in row and f'data-expired="{days(-2).isoformat()}"' in row
    assert "<strong>expired</strong>" in row
    assert "Expired stock on hand: 10 (expired lots: 1)" in html
    good = html[html.index("FN-2605") - 300 : html.index("FN-2605")]
    assert 'class="expired"' not in good.rsplit("<tr", 1)[1]
    board = client.get("/board").get_data(as_text=True)
    assert 'data-testid="expired-stock"' in board
    assert '<tr data-sku="FAN-120" class="expired"><td>FAN-120</td><td>10</td>' in board
    data = client.get("/board/data.json").json
    assert data is not None
    assert {"sku": "FAN-120", "short": 10, "source": "expired"} in data["shortages"]


def test_reservation_helpers_never_move_onto_expired_stock(any_demo_app: Flask) -> None:
    app = any_demo_app
    unit_id = release(_engine(app), options=KIT_OPTIONS, serial="PC-X1")
    receive(app, sku="FAN-120", lot_code="FN-NEW", qty=5, expires=days(300))
    receive(app, sku="FAN-120", lot_code="FN-OLD", qty=5, expires=days(-1))
    with write_session(_engine(app)) as s:
        fan = s.exec(select(Part).where(Part.sku == "FAN-120")).one()
        lots = {lot.lot_code: lot for lot in s.exec(select(StockLot)).all()}
        with pytest.raises(reservations.LotExpired, match="FN-OLD expired on"):
            orders.move_reservation(
                s, unit_id=unit_id, from_lot=lots["FN-2605"], to_lot=lots["FN-OLD"], qty=1, by="t"
            )
        orders.move_reservation(
            s, unit_id=unit_id, from_lot=lots["FN-2605"], to_lot=lots["FN-NEW"], qty=1, by="t"
        )
        lots["FN-2605"].expires_on = days(-1)  # expires while the unit holds it
        s.add(lots["FN-2605"])
        s.flush()
        # Given back: the expired lot's reservation first, not the latest-expiring one.
        assert orders.release_reservation(s, unit_id=unit_id, part_id=fan.id or 0, qty=1, by="t")
    assert lot_balance(app, "FN-2605") == (80, 0)
    assert lot_balance(app, "FN-NEW") == (5, 1)
    assert lot_balance(app, "FN-OLD") == (5, 0)
