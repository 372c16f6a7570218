"""Execution: what happened at the stations, per unit and per step."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import when


class StepRecord(SQLModel, table=True):
    """One operation done on one unit at one station by one operator.

    Duration excludes pauses: ``ended_at - started_at - paused_seconds``.
    """

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_operation_id: int = Field(foreign_key="unitoperation.id", index=True)
    operation_id: int = Field(foreign_key="operation.id")
    station_id: int = Field(foreign_key="station.id", index=True)
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    started_at: datetime = when(default_now=True, index=True)
    ended_at: datetime | None = when(nullable=True, index=True)
    paused_at: datetime | None = when(nullable=True)
    paused_seconds: float = Field(default=0.0)


class Consumption(SQLModel, table=True):
    """A component built into a unit, and the scan that confirmed it."""

    __table_args__ = (
        # A serial number is in at most one unit at a time (NULLs are distinct); one
        # removed in a rework (``removed_at``) may be built in again once released.
        sa.Index(
            "uq_consumption_serial",
            "part_id",
            "serial",
            unique=True,
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    lot_id: int | None = Field(default=None, foreign_key="stocklot.id", index=True)
    # Indexed alone too: a recall by serial does not always know the part.
    serial: str | None = Field(default=None, max_length=64, index=True)
    quantity: int = Field(default=1)
    # The BOM part this pick satisfies (differs from part_id for a substitute).
    for_part_id: int = Field(foreign_key="part.id")
    unit_operation_id: int = Field(foreign_key="unitoperation.id")
    station_id: int | None = Field(default=None, foreign_key="station.id")
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    event_id: int | None = Field(default=None, foreign_key="event.id")
    at: datetime = when(default_now=True)
    removed_at: datetime | None = when(nullable=True)  # taken out in a rework


class Defect(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    station_id: int | None = Field(default=None, foreign_key="station.id")
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    unit_operation_id: int | None = Field(default=None, foreign_key="unitoperation.id")
    reason_code: str = Field(max_length=32)
    note: str = Field(default="", max_length=1000)
    disposition: str = Field(default="rework", max_length=16, description="rework | hold | scrap")
    part_id: int | None = Field(default=None, foreign_key="part.id")  # the affected part
    at: datetime = when(default_now=True, index=True)
    resolved_at: datetime | None = when(nullable=True)
    resolved_by_id: int | None = Field(default=None, foreign_key="operator.id")


class DefectPhoto(SQLModel, table=True):
    """A photo of a defect from the tablet's camera (bounded: DEFECT_PHOTO_MAX_BYTES)."""

    id: int | None = Field(default=None, primary_key=True)
    defect_id: int = Field(foreign_key="defect.id", unique=True)
    content_type: str = Field(max_length=32)
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    at: datetime = when(default_now=True)


class AndonCall(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    station_id: int = Field(foreign_key="station.id", index=True)
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    reason: str = Field(default="help", max_length=200)
    raised_at: datetime = when(default_now=True, index=True)
    acknowledged_at: datetime | None = when(nullable=True)
    acknowledged_by_id: int | None = Field(default=None, foreign_key="operator.id")
    resolved_at: datetime | None = when(nullable=True)
    # When the escalation went out on MQTT (ANDON_ESCALATE_MINUTES unacknowledged).
    escalated_at: datetime | None = when(nullable=True)
