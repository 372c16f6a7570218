"""Inventory: locations, lots and the append-only stock ledger.

``StockLot.on_hand`` and ``StockLot.reserved`` are derived from the ledger: database
triggers (``server.inventory.ddl``) add every inserted movement to them, refuse any
UPDATE or DELETE of a movement, and CHECK constraints refuse a balance below zero or
more reserved than on hand. So the ledger cannot be edited in place and cannot go
negative, whatever code writes to it.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import when


class Location(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=200)
    kind: str = Field(default="warehouse", max_length=16, description="warehouse | lineside")


class StockLot(SQLModel, table=True):
    """A quantity of one part that shares a lot code (or one serial number).

    Untracked parts keep one lot per location with an empty ``lot_code``.
    """

    __table_args__ = (
        sa.UniqueConstraint("part_id", "lot_code", "serial", "location_id"),
        sa.CheckConstraint("on_hand >= 0", name="ck_stocklot_on_hand"),
        sa.CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="ck_stocklot_reserved"),
    )
    id: int | None = Field(default=None, primary_key=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    lot_code: str = Field(default="", max_length=64)
    serial: str = Field(default="", max_length=64, index=True)
    location_id: int = Field(foreign_key="location.id")
    received_at: datetime = when(default_now=True)
    expires_on: date | None = None
    on_hand: int = Field(default=0)
    reserved: int = Field(default=0)


class StockMovement(SQLModel, table=True):
    """One line of the ledger. ``quantity`` changes on-hand, ``reserved_delta`` reservations.

    kind: receipt | reservation | unreservation | consumption | scrap | adjustment.
    """

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = Field(foreign_key="stocklot.id", index=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    kind: str = Field(max_length=16)
    quantity: int = Field(default=0)
    reserved_delta: int = Field(default=0)
    work_order_id: int | None = Field(default=None, foreign_key="workorder.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="event.id")
    reason: str = Field(default="", max_length=500)
    by: str = Field(default="", max_length=200, description="who: operator, user or system")
    at: datetime = when(default_now=True)
