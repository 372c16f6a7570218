"""Column types and small helpers shared by the model modules."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database.

    SQLite has no time zones and hands back naive values; this puts UTC back on them
    so comparisons and RFC 3339 output never mix naive and aware datetimes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Taktline stores UTC-aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def when(*, nullable: bool = False, index: bool = False, default_now: bool = False) -> Any:
    """A UTC timestamp field."""
    kwargs: dict[str, Any] = {}
    if default_now:
        kwargs["default_factory"] = utcnow
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index), **kwargs)


def json_list() -> Any:
    return Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))


def translations() -> Any:
    """Per-locale texts of a catalog row, ``{"fr": {"name": "...", ...}}`` (the import's
    ``translations`` field); a text without one shows in the default language."""
    return Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False, server_default=sa.text("'{}'")),
    )


def json_dict() -> Any:
    return Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Tracking(StrEnum):
    NONE = "none"
    LOT = "lot"
    SERIAL = "serial"


# Statuses. The columns stay strings (no migration): a StrEnum member is its string, so
# it compares equal to what is stored and is stored as that text.


class OrderStatus(StrEnum):
    """``CustomerOrder.status``: received -> released -> in_progress -> completed ->
    shipped, or cancelled (before anything started)."""

    RECEIVED = "received"
    RELEASED = "released"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class WorkOrderStatus(StrEnum):
    """``WorkOrder.status``: released -> in_progress -> completed, or cancelled."""

    RELEASED = "released"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class UnitStatus(StrEnum):
    """``Unit.status``: queued -> in_progress -> completed, or cancelled. HELD is read
    (work in progress; a start or resume moves it on) but nothing sets it today."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    HELD = "held"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class UnitOperationStatus(StrEnum):
    """``UnitOperation.status``: pending -> ready -> active -> done, or held (by a
    supervisor or a defect), or cancelled with its order."""

    PENDING = "pending"
    READY = "ready"
    ACTIVE = "active"
    DONE = "done"
    HELD = "held"
    CANCELLED = "cancelled"


class EventResult(StrEnum):
    """The verdict on an event. ``Event.result`` holds only ACCEPTED or REJECTED
    (``EventResult.stored()``); DUPLICATE is the answer to a message already stored,
    never stored itself."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"

    @classmethod
    def stored(cls) -> tuple[EventResult, ...]:
        """The values ``Event.result`` holds."""
        return (cls.ACCEPTED, cls.REJECTED)


# INTEGER columns are 32-bit on PostgreSQL: a number from outside is checked against
# this before it reaches one (a larger one was a driver error, a 500).
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def fits_int32(value: int) -> bool:
    return INT32_MIN <= value <= INT32_MAX


def has_nul(value: Any) -> bool:
    """Whether a text in ``value`` (nested lists and dicts, keys too) holds a NUL
    character, which PostgreSQL's text and JSON columns refuse (a database error)."""
    stack = [value]
    while stack:  # a loop, not recursion: JSON may nest deeper than the stack
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def pk(row: Any) -> int:
    """The primary key of a flushed row (``id`` is ``None`` only before the flush)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush the session first")
    return int(row.id)


def rfc3339(value: datetime | None) -> str | None:
    """A UTC timestamp as RFC 3339 with ``Z`` (the MQTT contract's and the API's format)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
