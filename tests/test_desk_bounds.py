"""Desk forms with numbers from outside answer a refusal, never a 500, and a search
field takes ``%`` and ``_`` literally (issue 14 leftovers: order priority, stock
adjustment, the stock search)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.models import CustomerOrder, Part, StockLot
from server.orders import intake
from tests.support.apps import login

HUGE = str(2**100)


@pytest.fixture
def sup(demo_app: Flask) -> FlaskClient:
    client = demo_app.test_client()
    login(client, "supervisor")
    return client


def priority_of(app: Flask, number: str) -> int:
    with Session(app.extensions["taktline.engine"]) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == number)).one()
        return order.priority


def test_a_huge_priority_is_refused_with_a_message(sup: FlaskClient, demo_app: Flask) -> None:
    before = priority_of(demo_app, "SO-1001")
    response = sup.post("/orders/SO-1001/priority", data={"priority": HUGE}, follow_redirects=True)
    assert response.status_code == 200
    assert "Priority must be a whole number." in response.text
    assert priority_of(demo_app, "SO-1001") == before


def test_an_order_with_a_huge_priority_is_refused_at_intake() -> None:
    doc = {
        "number": "SO-9",
        "customer": "X",
        "due_date": "2026-12-24",
        "priority": HUGE,
        "lines": [{"product": "PC", "quantity": 1, "options": []}],
    }
    with pytest.raises(intake.InvalidOrder) as refused:
        intake.from_mapping(doc)
    assert any("priority: must be between" in str(p) for p in refused.value.problems)


def test_a_huge_stock_adjustment_is_refused(sup: FlaskClient, demo_app: Flask) -> None:
    with Session(demo_app.extensions["taktline.engine"]) as db:
        lot = db.exec(select(StockLot).join(Part).where(Part.sku == "GPU-4080")).first()
        assert lot is not None
    response = sup.post(
        f"/stock/lots/{lot.id}/adjust",
        data={"quantity": HUGE, "reason": "x"},
        follow_redirects=True,
    )
    assert response.status_code == 200 and "Adjustment refused" in response.text


def test_the_stock_search_takes_percent_and_underscore_literally(sup: FlaskClient) -> None:
    every = sup.get("/stock/?q=%25").text  # "%": no part has it in its name
    assert "GPU-4080" not in every
    assert "GPU-4080" in sup.get("/stock/?q=gpu-4080").text
    assert "GPU-4080" not in sup.get("/stock/?q=GPU_4080").text
