"""The dispatch policy, pure: in which order a station's ready work is offered.

Supervisor priority first (higher first), then the due date (earliest first, none
last), then the release time (earliest first), then the id so the order is total and
two stations always agree on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Protocol, TypeVar

from server.models.types import UnitOperationStatus


class Dispatchable(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def priority(self) -> int: ...
    @property
    def due_date(self) -> date | None: ...
    @property
    def released_at(self) -> datetime: ...


T = TypeVar("T", bound=Dispatchable)


def sort_key(op: Dispatchable) -> tuple[object, ...]:
    return (-op.priority, op.due_date is None, op.due_date or date.max, op.released_at, op.id or 0)


def in_queue_order(ops: Iterable[T]) -> list[T]:
    return sorted(ops, key=sort_key)


def may_take(
    *, status: str, station_kind: str, assigned_station_id: int | None, station_id: int, kind: str
) -> bool:
    """Whether a station (``station_id`` of ``kind``) may take an operation: it is
    ready, of the station's kind, and not assigned to another station."""
    return (
        status == UnitOperationStatus.READY
        and station_kind == kind
        and assigned_station_id in (None, station_id)
    )
