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
from server.models import Site
from server.orders import intake

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
    """The demo's open orders, through the same intake as the web form and the API."""
    today = datetime.now(UTC).date()
    for doc in _order_docs():
        order = intake.from_mapping(
            {
                "number": doc["number"],
                "customer": doc["customer"],
                "due_date": today + timedelta(days=int(str(doc["due_in_days"]))),
                "priority": doc.get("priority", 0),
                "lines": [
                    {
                        "product": line["product"],
                        "quantity": line["qty"],
                        "options": line["options"],
                    }
                    for line in doc["lines"]  # type: ignore[attr-defined]
                ],
            }
        )
        intake.create_order(session, order=order, by=by, channel="seed")
