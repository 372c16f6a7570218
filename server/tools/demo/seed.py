"""Seed the demo plant: plant, catalog (with the line's calendar), people and stock
through the importer, scheduled receipts, then orders, each with its promise booked."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from server.catalog import importer
from server.db import write_session
from server.models import CustomerOrder, Site
from server.orders import intake
from server.promise import service as promises

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
        receipts = importer.import_document(
            session, {"receipts": _receipt_docs()}, source="demo/receipts.yaml", by=by
        )
        report.add("receipts", receipts.counts.get("receipts", 0))
        _orders(session, by=by)
        report.add("orders", len(_order_docs()))
        _book_promises(session, by=by)
    return report


def _receipt_docs() -> list[dict[str, object]]:
    """The demo's receipts, dated from today (``in_days``)."""
    today = datetime.now(UTC).date()
    docs: list[dict[str, object]] = yaml.safe_load((HERE / "receipts.yaml").read_text())
    return [
        {k: v for k, v in d.items() if k != "in_days"}
        | {"expected": (today + timedelta(days=int(str(d["in_days"])))).isoformat()}
        for d in docs
    ]


def _book_promises(session: Session, *, by: str) -> None:
    """Each demo order is promised what the plan gives it (in UTC, the default plant
    time zone), so a receipt that slips flags the orders it breaks."""
    options = promises.Options(zone=UTC)
    plan = promises.plan_for(session, options=options, cached=False).plan
    for order in session.exec(select(CustomerOrder)).all():
        promise = plan.promises.get(order.id or 0)
        if promise is not None and promise.ship_on is not None:
            promises.book(session, order=order, promise=promise, by=by)


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
