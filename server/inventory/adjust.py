"""Stock adjustments: a counted correction of one lot, with a reason, on the ledger and
in the audit trail (who, when, from where, why)."""

from __future__ import annotations

from sqlmodel import Session

from server import audit
from server.inventory import ledger
from server.models import Part, StockLot, StockMovement


def adjust(
    session: Session, *, lot: StockLot, quantity: int, reason: str, by: str, address: str = ""
) -> StockMovement:
    """Add ``quantity`` (negative: remove) to ``lot``'s on-hand. The caller commits.

    Raises ``ValueError`` for a zero quantity or an empty reason, and
    ``ledger.InsufficientStock`` when on-hand would drop below zero or below what is
    reserved; either way nothing is written.
    """
    reason = reason.strip()
    if quantity == 0:
        raise ValueError("an adjustment changes the quantity: give a non-zero number")
    if not reason:
        raise ValueError("an adjustment needs a reason")
    before = lot.on_hand
    movement = ledger.post(
        session, lot=lot, kind="adjustment", quantity=quantity, by=by, reason=reason
    )
    part = session.get(Part, lot.part_id)
    audit.record(
        session,
        actor=by,
        action="stock.adjust",
        entity="stock_lot",
        entity_id=lot.id,
        address=address,
        detail={
            "sku": part.sku if part else "",
            "lot": lot.lot_code,
            "serial": lot.serial,
            "quantity": quantity,
            "reason": reason,
            "on_hand": [before, lot.on_hand],
            "movement": movement.id,
        },
    )
    return movement
