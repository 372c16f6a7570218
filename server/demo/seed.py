"""Seed the demo plant: plant, catalog, people and stock through the importer, then orders."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from server.catalog import importer
from server.db import write_session
from server.models import CustomerOrder, OrderLine, Product, Site

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def is_empty(engine: Engine) -> bool:
    with Session(engine) as session:
        return session.exec(select(Site)).first() is None


def seed(engine: Engine, *, by: str = "seed-demo") -> importer.ImportReport:
    """Load the demo plant into an empty database (one transaction)."""
    doc = importer.load_file(HERE / "plant.yaml")
    with write_session(engine) as session:
        report = importer.import_document(session, doc, source="demo/plant.yaml", by=by)
        _orders(session, by=by)
        report.add("orders", len(_order_docs()))
    return report


def _order_docs() -> list[dict[str, object]]:
    docs: list[dict[str, object]] = yaml.safe_load((HERE / "orders.yaml").read_text())
    return docs


def _orders(session: Session, *, by: str) -> None:
    today = datetime.now(UTC).date()
    for doc in _order_docs():
        order = CustomerOrder(number=str(doc["number"]), customer=str(doc["customer"]),
                              due_date=today + timedelta(days=int(str(doc["due_in_days"]))),
                              priority=int(str(doc.get("priority", 0))), created_by=by)
        session.add(order)
        session.flush()
        for n, line in enumerate(doc["lines"], start=1):  # type: ignore[attr-defined]
            product = session.exec(select(Product).where(Product.code == line["product"])).one()
            session.add(OrderLine(order_id=order.id, line_no=n, product_id=product.id,
                                  quantity=int(line["qty"]), options=list(line["options"])))
