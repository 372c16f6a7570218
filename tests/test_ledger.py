"""The stock ledger cannot go negative and cannot be edited in place, on every database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, select

from server.db import write_session
from server.inventory import ledger
from server.models import Location, Part, StockLot, StockMovement


def _setup(engine: sa.Engine) -> tuple[int, int]:
    with write_session(engine) as db:
        part = Part(sku="MEM-16", description="16 GB", tracking="lot")
        loc = Location(code="WH", name="Warehouse")
        db.add(part)
        db.add(loc)
        db.flush()
        lot = ledger.receive(
            db, part=part, location_id=loc.id, quantity=5, by="test", lot_code="L1"
        )
        return int(part.id), int(lot.id)  # type: ignore[arg-type]


def test_balance_follows_the_ledger(any_app: Flask) -> None:
    engine = any_app.extensions["taktline.engine"]
    _, lot_id = _setup(engine)
    with write_session(engine) as db:
        lot = db.get(StockLot, lot_id)
        ledger.post(db, lot=lot, kind="reservation", reserved_delta=3, by="planner")
        ledger.post(db, lot=lot, kind="consumption", quantity=-1, reserved_delta=-1, by="op")
    with Session(engine) as db:
        lot = db.get(StockLot, lot_id)
        assert (lot.on_hand, lot.reserved) == (4, 2)
        assert ledger.on_hand_from_ledger(db, lot_id) == (4, 2)
        kinds = [m.kind for m in db.exec(select(StockMovement).order_by(StockMovement.id))]
        assert kinds == ["receipt", "reservation", "consumption"]


@pytest.mark.parametrize("quantity,reserved", [(-6, 0), (0, 6), (-3, 3)])
def test_ledger_refuses_to_go_negative(any_app: Flask, quantity: int, reserved: int) -> None:
    engine = any_app.extensions["taktline.engine"]
    _, lot_id = _setup(engine)
    with write_session(engine) as db:
        lot = db.get(StockLot, lot_id)
        with pytest.raises(ledger.InsufficientStock, match="Not enough MEM-16 \\(lot L1\\)"):
            ledger.post(
                db,
                lot=lot,
                kind="adjustment",
                quantity=quantity,
                reserved_delta=reserved,
                by="test",
            )
    with Session(engine) as db:
        lot = db.get(StockLot, lot_id)
        assert (lot.on_hand, lot.reserved) == (5, 0)
        assert len(db.exec(select(StockMovement)).all()) == 1


def test_ledger_refuses_negative_even_in_raw_sql(any_app: Flask) -> None:
    engine = any_app.extensions["taktline.engine"]
    part_id, lot_id = _setup(engine)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO stockmovement (lot_id, part_id, kind, quantity, reserved_delta,"
                " reason, by, at)"
                " VALUES (:lot, :part, 'scrap', -99, 0, '', 'sql', CURRENT_TIMESTAMP)"
            ),
            {"lot": lot_id, "part": part_id},
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE stockmovement SET quantity = 500",
        "DELETE FROM stockmovement",
    ],
)
def test_ledger_cannot_be_edited_in_place(any_app: Flask, statement: str) -> None:
    engine = any_app.extensions["taktline.engine"]
    _, lot_id = _setup(engine)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql(statement)
    with Session(engine) as db:
        assert [m.quantity for m in db.exec(select(StockMovement))] == [5]
        assert db.get(StockLot, lot_id).on_hand == 5
