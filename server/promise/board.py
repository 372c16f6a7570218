"""The promise figures of the line board (DB): orders whose booked promise no longer
holds, on-time delivery over the last 30 plant days against the promise and the due
date, and the receipts due in the next days (late ones first)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from sqlmodel import Session

from server.inventory import receipts
from server.models import CustomerOrder, OrderPromise, Part, ScheduledReceipt
from server.promise import service

WINDOW_DAYS = 30
RECEIPT_DAYS = 7


@dataclass
class PromiseBoard:
    today: date
    flagged: list[tuple[CustomerOrder, OrderPromise]] = field(default_factory=list)
    on_time: service.OnTime | None = None
    receipts: list[tuple[ScheduledReceipt, Part]] = field(default_factory=list)


def figures(session: Session, *, now: datetime, zone: tzinfo) -> PromiseBoard:
    today = now.astimezone(zone).date()
    soon = today + timedelta(days=RECEIPT_DAYS)
    board = PromiseBoard(today)
    board.flagged = service.flagged(session)
    board.on_time = service.on_time(
        session, start=today - timedelta(days=WINDOW_DAYS - 1), end=today, zone=zone
    )
    board.receipts = [
        (r, p)
        for r, p in receipts.listing(session, status="open", limit=200)
        if r.expected_on <= soon
    ]
    return board
