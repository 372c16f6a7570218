"""Orders: what customers asked for, the work orders released for it and their units."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import (
    OrderStatus,
    UnitOperationStatus,
    UnitStatus,
    WorkOrderStatus,
    json_list,
    when,
)


class CustomerOrder(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    customer: str = Field(max_length=200)
    due_date: date
    status: str = Field(default=OrderStatus.RECEIVED, max_length=16, index=True)
    priority: int = Field(default=0, description="higher goes first in the queues")
    # Lead-time stamps.
    received_at: datetime = when(default_now=True)
    released_at: datetime | None = when(nullable=True)
    first_started_at: datetime | None = when(nullable=True)
    completed_at: datetime | None = when(nullable=True, index=True)
    shipped_at: datetime | None = when(nullable=True)
    created_by: str = Field(default="", max_length=200)


class OrderLine(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("order_id", "line_no"),)
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="customerorder.id", index=True)
    line_no: int
    product_id: int = Field(foreign_key="product.id")
    quantity: int = Field(gt=0)
    options: list[str] = json_list()


class WorkOrder(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    order_line_id: int = Field(foreign_key="orderline.id", index=True)
    quantity: int
    status: str = Field(default=WorkOrderStatus.RELEASED, max_length=16)
    released_at: datetime = when(default_now=True)
    released_by: str = Field(default="", max_length=200)
    override_reason: str | None = Field(default=None, max_length=500)


class Unit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(max_length=64, unique=True)
    work_order_id: int = Field(foreign_key="workorder.id", index=True)
    product_id: int = Field(foreign_key="product.id", index=True)
    options: list[str] = json_list()
    status: str = Field(default=UnitStatus.QUEUED, max_length=16, index=True)
    created_at: datetime = when(default_now=True)
    completed_at: datetime | None = when(nullable=True, index=True)


class UnitOperation(SQLModel, table=True):
    """One operation of one unit's resolved routing: the unit of dispatch.

    ``status`` runs pending -> ready -> active -> done (or held). ``station_id`` is set
    when a station claims it, so parallel stations never take the same unit.
    """

    __table_args__ = (
        sa.UniqueConstraint("unit_id", "sequence"),
        sa.Index("ix_unitop_queue", "station_kind", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    operation_id: int = Field(foreign_key="operation.id")
    sequence: int
    station_kind: str = Field(max_length=32)
    status: str = Field(default=UnitOperationStatus.PENDING, max_length=16)
    priority: int = Field(default=0)
    due_date: date | None = None
    released_at: datetime = when(default_now=True)
    station_id: int | None = Field(default=None, foreign_key="station.id", index=True)
    claimed_at: datetime | None = when(nullable=True)
    held_reason: str | None = Field(default=None, max_length=300)
    # Resolved picks of this operation: [{"part_id": int, "sku": str, "qty": int}].
    picks: list[dict[str, Any]] = json_list()
