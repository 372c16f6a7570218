"""Quality: checks per operation (catalog), their results per unit, non-conformances
and the component changes of a rework.

A ``Check`` belongs to an operation of the catalog and applies to a unit when its
``when_options`` do (the same rule as BOM lines, ``server.catalog.configure.applies``).
Every judged input (a typed value, a torque or weight reading, a confirmation, a
photo) is one ``CheckResult``; a check is done when ``count`` results passed. A failed
result that used up the check's retries opens a ``NonConformance``; its failed results
carry its id so the retries start again once it is dealt with.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import json_list, translations, when


class Check(SQLModel, table=True):
    """A check of one operation: confirm | pass_fail | measure | count | photo."""

    __tablename__ = "qualitycheck"  # type: ignore[assignment]  # CHECK is an SQL keyword
    __table_args__ = (sa.UniqueConstraint("operation_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    operation_id: int = Field(foreign_key="operation.id", index=True)
    code: str = Field(max_length=32)
    position: int = Field(default=0)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200, description="instruction or characteristic")
    instructions: str = Field(default="", max_length=1000)
    nominal: float | None = None
    lower: float | None = None
    upper: float | None = None
    unit: str = Field(default="", max_length=16)
    source: str = Field(default="typed", max_length=16, description="typed | torque | weight")
    tool: str = Field(default="", max_length=64, description="the device source, when one")
    count: int = Field(default=1, description="results within limits needed")
    retries: int = Field(default=2, description="failed results allowed before an NCR")
    when_options: list[str] = json_list()
    translations: dict[str, dict[str, str]] = translations()  # name, instructions


class CheckResult(SQLModel, table=True):
    """One judged input of a check for one unit (limits copied: the catalog may change)."""

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_operation_id: int = Field(foreign_key="unitoperation.id", index=True)
    check_id: int = Field(foreign_key="qualitycheck.id", index=True)
    station_id: int | None = Field(default=None, foreign_key="station.id")
    operator_id: int | None = Field(default=None, foreign_key="operator.id")
    event_id: int | None = Field(default=None, foreign_key="event.id")
    ncr_id: int | None = Field(default=None, foreign_key="nonconformance.id", index=True)
    passed: bool
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    unit: str = Field(default="", max_length=16)
    source: str = Field(default="typed", max_length=16)
    tool: str = Field(default="", max_length=64)
    photo: str = Field(default="", max_length=300)
    at: datetime = when(default_now=True, index=True)


class NonConformance(SQLModel, table=True):
    """A non-conformance: status open -> rework -> closed (or closed at once by
    use_as_is or scrap, decided by a supervisor)."""

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_operation_id: int | None = Field(default=None, foreign_key="unitoperation.id")
    station_id: int | None = Field(default=None, foreign_key="station.id", index=True)
    check_id: int | None = Field(default=None, foreign_key="qualitycheck.id")
    origin: str = Field(max_length=16, description="check | defect | supervisor")
    cause: str = Field(max_length=64, description="check code or defect reason")
    characteristic: str = Field(default="", max_length=200)
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    unit: str = Field(default="", max_length=16)
    note: str = Field(default="", max_length=1000)
    status: str = Field(default="open", max_length=16, index=True)
    disposition: str | None = Field(default=None, max_length=16)
    disposition_reason: str = Field(default="", max_length=500)
    opened_by: str = Field(default="", max_length=200)
    opened_at: datetime = when(default_now=True, index=True)
    decided_by: str = Field(default="", max_length=200)
    decided_at: datetime | None = when(nullable=True)
    closed_by: str = Field(default="", max_length=200)
    closed_at: datetime | None = when(nullable=True)


class ComponentChange(SQLModel, table=True):
    """A component removed from or installed in a unit during a rework."""

    id: int | None = Field(default=None, primary_key=True)
    ncr_id: int = Field(foreign_key="nonconformance.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    consumption_id: int = Field(foreign_key="consumption.id", index=True)
    action: str = Field(max_length=16, description="removed | installed")
    part_id: int = Field(foreign_key="part.id")
    serial: str | None = Field(default=None, max_length=64)
    lot_id: int | None = Field(default=None, foreign_key="stocklot.id")
    quarantine_lot_id: int | None = Field(default=None, foreign_key="stocklot.id")
    station_id: int | None = Field(default=None, foreign_key="station.id")
    by: str = Field(default="", max_length=200)
    at: datetime = when(default_now=True)
    released_at: datetime | None = when(nullable=True)
    released_by: str = Field(default="", max_length=200)
