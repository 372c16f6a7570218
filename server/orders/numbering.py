"""Order numbers from a pattern (the ``ORDER_NUMBER_PATTERN`` setting) when none is given:
``{seq}`` is the next free number, ``{year}`` the year (UTC)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from server.models import CustomerOrder
from server.models.types import utcnow


def next_number(session: Session, *, pattern: str) -> str:
    """The first number of ``pattern`` not taken, counting on from the number of orders
    (read in the caller's write transaction, so two saves never get the same one)."""
    year = utcnow().year
    seq = (
        session.exec(select(sa.func.count()).select_from(CustomerOrder)).one()  # type: ignore[call-overload]
        + 1
    )
    while True:
        number = pattern.format(seq=seq, year=year)[:32]
        if (
            session.exec(select(CustomerOrder.id).where(CustomerOrder.number == number)).first()
            is None
        ):
            return number
        seq += 1
