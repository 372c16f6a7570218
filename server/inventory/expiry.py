"""When stock is expired: one rule for allocation, ATP, the stock page and the board.

A lot is expired when its ``expires_on`` is before the day in UTC; it is usable on its
expiry day itself. Expired stock stays on hand (the ledger does not move by itself)
but is never reserved, promised or built in (the station refuses it, ``lot_expired``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from server.models.types import utcnow


def today() -> date:
    """The day in UTC that expiry dates are compared with."""
    return utcnow().date()


def expired(expires_on: date | None, on: date | None = None) -> bool:
    """``expires_on`` is before ``on`` (today in UTC by default)."""
    return expires_on is not None and expires_on < (on or today())


def expired_clause(column: Any, on: Any) -> sa.ColumnElement[bool]:
    """The same rule in SQL: ``column`` (an expiry date column) before ``on`` (a date
    expression); NULL, no expiry, is never expired."""
    return sa.and_(column.is_not(None), column < on)
