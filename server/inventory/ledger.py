"""The stock ledger: every change of stock is one appended ``StockMovement``.

On-hand and reserved quantities of a lot follow from the ledger (database triggers,
see ``server.inventory.ddl``); this module is the one place that appends to it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from server.models import Part, StockLot, StockMovement
from server.models.types import pk, utcnow

# removal: a component taken out of a unit in a rework, into quarantine; release: a
# supervisor lets it out of quarantine (docs/quality.md).
KINDS = (
    "receipt",
    "reservation",
    "unreservation",
    "consumption",
    "scrap",
    "adjustment",
    "removal",
    "release",
)


class InsufficientStock(Exception):
    """A movement would take a lot's on-hand or available quantity below zero."""

    def __init__(
        self, lot: StockLot, part: Part | None, kind: str, quantity: int, reserved_delta: int
    ) -> None:
        what = part.sku if part is not None else f"part {lot.part_id}"
        label = (
            f"serial {lot.serial}"
            if lot.serial
            else (f"lot {lot.lot_code}" if lot.lot_code else "stock")
        )
        super().__init__(
            f"Not enough {what} ({label}): {kind} of {quantity:+d} on hand, "
            f"{reserved_delta:+d} reserved refused; on hand {lot.on_hand}, "
            f"reserved {lot.reserved}."
        )
        self.lot_id = lot.id
        self.part_sku = what


def post(
    session: Session,
    *,
    lot: StockLot,
    kind: str,
    by: str,
    quantity: int = 0,
    reserved_delta: int = 0,
    reason: str = "",
    work_order_id: int | None = None,
    unit_id: int | None = None,
    event_id: int | None = None,
) -> StockMovement:
    """Append one movement. Raises ``InsufficientStock`` and changes nothing when the
    lot would go negative (the database refuses it; a savepoint keeps the caller's
    transaction usable)."""
    if kind not in KINDS:
        raise ValueError(f"unknown movement kind {kind!r}; expected one of {', '.join(KINDS)}")
    if lot.id is None:
        session.flush()
    movement = StockMovement(
        lot_id=pk(lot),
        part_id=lot.part_id,
        kind=kind,
        quantity=quantity,
        reserved_delta=reserved_delta,
        by=by,
        reason=reason,
        work_order_id=work_order_id,
        unit_id=unit_id,
        event_id=event_id,
    )
    try:
        with session.begin_nested():
            session.add(movement)
            session.flush()
    except sa.exc.IntegrityError as exc:
        session.refresh(lot)
        raise InsufficientStock(
            lot, session.get(Part, lot.part_id), kind, quantity, reserved_delta
        ) from exc
    session.refresh(lot)  # the trigger changed on_hand / reserved
    return movement


_INSERT = sa.insert(StockMovement.__table__)  # type: ignore[attr-defined]


def movement(
    *,
    lot_id: int,
    part_id: int,
    kind: str,
    by: str,
    quantity: int = 0,
    reserved_delta: int = 0,
    reason: str = "",
    work_order_id: int | None = None,
    unit_id: int | None = None,
    event_id: int | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The values of one movement row, for ``append`` / ``append_many`` (an unknown
    ``kind`` raises ``ValueError``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown movement kind {kind!r}; expected one of {', '.join(KINDS)}")
    return {
        "lot_id": lot_id,
        "part_id": part_id,
        "kind": kind,
        "quantity": quantity,
        "reserved_delta": reserved_delta,
        "work_order_id": work_order_id,
        "unit_id": unit_id,
        "event_id": event_id,
        "reason": reason[:500],
        "by": by[:200],
        "at": at or utcnow(),
    }


def append(session: Session, row: dict[str, Any]) -> None:
    """Append one movement (``movement``) in one statement: no savepoint, no reload of
    the lot.

    For a hot path that has just read the lot's balances. When the lot would go
    negative the database refuses the statement (``sa.exc.IntegrityError``); on
    PostgreSQL the whole transaction is then unusable, so call this inside a
    savepoint of your own or in a transaction you retry (the ingest retries a
    refused batch event by event, with ``post``'s checks). Objects of the lot already
    in the session are not refreshed.
    """
    session.connection().execute(_INSERT, row)


def append_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append movements (``movement`` rows) in their order with one executemany.

    The triggers run for every row as for ``append`` (on-hand and reserved follow,
    the lot's CHECK refuses a negative balance): a refusal raises
    ``sa.exc.IntegrityError`` for the whole statement, with the same caveats."""
    if rows:
        session.connection().execute(_INSERT, rows)


def find_or_create_lot(
    session: Session,
    *,
    part: Part,
    location_id: int,
    lot_code: str = "",
    serial: str = "",
    expires_on: date | None = None,
) -> StockLot:
    lot = session.exec(
        select(StockLot).where(
            StockLot.part_id == part.id,
            StockLot.lot_code == lot_code,
            StockLot.serial == serial,
            StockLot.location_id == location_id,
        )
    ).first()
    if lot is None:
        lot = StockLot(
            part_id=pk(part),
            lot_code=lot_code,
            serial=serial,
            location_id=location_id,
            expires_on=expires_on,
        )
        session.add(lot)
        session.flush()
    return lot


def receive(
    session: Session,
    *,
    part: Part,
    location_id: int,
    quantity: int,
    by: str,
    lot_code: str = "",
    serial: str = "",
    expires_on: date | None = None,
    reason: str = "receipt",
) -> StockLot:
    if quantity <= 0:
        raise ValueError("a receipt needs a positive quantity")
    if serial and quantity != 1:
        raise ValueError(f"serial {serial} is one piece; quantity must be 1")
    lot = find_or_create_lot(
        session,
        part=part,
        location_id=location_id,
        lot_code=lot_code,
        serial=serial,
        expires_on=expires_on,
    )
    post(session, lot=lot, kind="receipt", quantity=quantity, by=by, reason=reason)
    return lot


def on_hand_from_ledger(session: Session, lot_id: int) -> tuple[int, int]:
    """(on hand, reserved) summed from the ledger itself, for reconciliation."""
    on_hand, reserved = session.exec(
        select(  # type: ignore[call-overload]
            sa.func.coalesce(sa.func.sum(StockMovement.quantity), 0),
            sa.func.coalesce(sa.func.sum(StockMovement.reserved_delta), 0),
        ).where(StockMovement.lot_id == lot_id)
    ).one()
    return int(on_hand), int(reserved)
