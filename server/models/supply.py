"""Supply, capacity and promises: scheduled receipts, line calendars, station downtime,
and the promise date of each open order (docs/promise.md).

A ``ScheduledReceipt`` is what a supplier is expected to deliver: ``quantity`` of a
part on ``expected_on``; each delivery received against it is a ``receipt`` line in
the stock ledger and adds to ``received``; it closes when all is in (or by hand). A
line's calendar is its ``LineShift`` rows (weekdays, start and end as local ``HH:MM``,
breaks) less its ``LineClosure`` days; a ``StationDowntime`` takes one station out for a
while. ``OrderPromise`` is one per order: the date promised to the customer (booked),
the date the plan gives now, why, and whether the booked one no longer holds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import json_dict, json_list, when


class ScheduledReceipt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    quantity: int = Field(description="ordered from the supplier")
    received: int = Field(default=0, description="received against it so far")
    expected_on: date = Field(index=True)
    first_expected_on: date = Field(description="the date first given, to see slips")
    supplier: str = Field(default="", max_length=200)
    supplier_ref: str = Field(default="", max_length=64, description="PO or ASN number")
    status: str = Field(default="open", max_length=16, index=True, description="open | closed")
    note: str = Field(default="", max_length=500)
    created_at: datetime = when(default_now=True)
    created_by: str = Field(default="", max_length=200)
    updated_at: datetime = when(default_now=True)

    @property
    def open_quantity(self) -> int:
        return max(self.quantity - self.received, 0) if self.status == "open" else 0


class LineShift(SQLModel, table=True):
    """A shift of a line: on ``weekdays`` (0 Monday .. 6 Sunday) from ``start`` to ``end``
    (local ``HH:MM``; an end at or before the start runs past midnight), less
    ``breaks`` (``[["10:00", "10:15"], ...]``)."""

    id: int | None = Field(default=None, primary_key=True)
    line_id: int = Field(foreign_key="line.id", index=True)
    name: str = Field(default="", max_length=64)
    weekdays: list[int] = json_list()
    start: str = Field(max_length=5)
    end: str = Field(max_length=5)
    breaks: list[Any] = json_list()


class LineClosure(SQLModel, table=True):
    """A day the line does not work (holiday, shutdown)."""

    __table_args__ = (sa.UniqueConstraint("line_id", "day"),)
    id: int | None = Field(default=None, primary_key=True)
    line_id: int = Field(foreign_key="line.id", index=True)
    day: date
    reason: str = Field(default="", max_length=200)


class StationDowntime(SQLModel, table=True):
    """A station out of service from ``start_at`` until ``end_at`` (open: until it is
    ended)."""

    id: int | None = Field(default=None, primary_key=True)
    station_id: int = Field(foreign_key="station.id", index=True)
    start_at: datetime = when()
    end_at: datetime | None = when(nullable=True)
    reason: str = Field(default="", max_length=200)
    created_by: str = Field(default="", max_length=200)


class OrderPromise(SQLModel, table=True):
    """The promise of one order: ``promised_on`` (booked, told the customer),
    ``projected_on`` (what the plan gives now) and its ``reason``; ``flagged`` when the
    booked date no longer holds (``flag_reason``: why, and what changed)."""

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="customerorder.id", unique=True)
    promised_on: date | None = None
    booked_at: datetime | None = when(nullable=True)
    booked_by: str = Field(default="", max_length=200)
    projected_on: date | None = None
    completion_at: datetime | None = when(nullable=True)
    reason: dict[str, Any] = json_dict()
    computed_at: datetime | None = when(nullable=True)
    flagged: bool = Field(default=False, index=True)
    flagged_at: datetime | None = when(nullable=True)
    flag_reason: dict[str, Any] = json_dict()
