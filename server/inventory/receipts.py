"""Scheduled receipts: what suppliers are expected to deliver, and receiving against it.

A scheduled receipt is ``quantity`` of a part expected on ``expected_on`` (supplier,
their reference: a PO or ASN number). Receiving against it writes ``receipt`` lines
to the stock ledger (``server.inventory.ledger.receive``: a lot code, serials for a
serial-tracked part, an expiry date) and adds to ``received``; it closes once all is
in. Late and partial deliveries are normal: a receipt stays open with what is left,
on its (possibly past) date, until received, moved (``server.promise.service.
reschedule_receipt``, which re-promises) or closed short by hand.

Functions take keyword arguments and leave the commit to the caller; ``ReceiptError``
lists every problem, each naming its field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from server import audit
from server.inventory import ledger
from server.models import Location, Part, ScheduledReceipt, StockLot
from server.models.types import Tracking, fits_int32, utcnow

MAX_QUANTITY = 1_000_000
MAX_DAYS_AWAY = 3660  # an expected date further from today is a typo (year 0026, 9999)


def plausible(day: date) -> bool:
    """Whether ``day`` can be a receipt's expected date: within ten years of today (a
    date far in the past would count as a late receipt, available from today)."""
    return abs((day - date.today()).days) <= MAX_DAYS_AWAY


class ReceiptError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("Receipt refused: " + " ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ReceiptInput:
    part: str  # SKU
    quantity: int
    expected_on: date
    supplier: str = ""
    supplier_ref: str = ""
    note: str = ""


def _date(value: Any, name: str, problems: list[str]) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.append(f"{name}: {str(value)[:40]!r} is not a date (YYYY-MM-DD).")
        return date.min


def _quantity(value: Any, name: str, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        problems.append(f"{name}: must be a whole number.")
        return 0
    try:
        number = int(value)
    except ValueError:
        problems.append(f"{name}: {str(value)[:40]!r} is not a whole number.")
        return 0
    if not 0 < number <= MAX_QUANTITY:
        problems.append(f"{name}: must be between 1 and {MAX_QUANTITY}.")
        return 0
    return number


def _text(data: Mapping[str, Any], key: str, max_len: int, problems: list[str]) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str | int):
        problems.append(f"{key}: must be text.")
        return ""
    text = str(value).strip()
    if len(text) > max_len:
        problems.append(f"{key}: at most {max_len} characters.")
    return text


def from_mapping(data: Any) -> ReceiptInput:
    """A receipt from a JSON-like mapping (API body, import item, form)."""
    if not isinstance(data, Mapping):
        raise ReceiptError(["The receipt must be an object."])
    problems: list[str] = []
    part = _text(data, "part", 64, problems)
    if not part:
        problems.append("part: is required (a SKU).")
    quantity = _quantity(data.get("quantity", data.get("qty")), "quantity", problems)
    unreadable = len(problems)
    expected = _date(data.get("expected_on", data.get("expected")), "expected_on", problems)
    if len(problems) == unreadable and not plausible(expected):
        problems.append(f"expected_on: {expected} is not within ten years of today.")
    receipt = ReceiptInput(
        part,
        quantity,
        expected,
        _text(data, "supplier", 200, problems),
        _text(data, "supplier_ref", 64, problems) or _text(data, "ref", 64, problems),
        _text(data, "note", 500, problems),
    )
    if problems:
        raise ReceiptError(problems)
    return receipt


def create(
    session: Session, *, receipt: ReceiptInput, by: str, address: str = ""
) -> ScheduledReceipt:
    part = session.exec(select(Part).where(Part.sku == receipt.part)).first()
    if part is None:
        raise ReceiptError([f"part: unknown part {receipt.part!r}."])
    row = ScheduledReceipt(
        part_id=part.id or 0,
        quantity=receipt.quantity,
        expected_on=receipt.expected_on,
        first_expected_on=receipt.expected_on,
        supplier=receipt.supplier,
        supplier_ref=receipt.supplier_ref,
        note=receipt.note,
        created_by=by,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="receipt.create",
        entity="receipt",
        entity_id=label(row),
        address=address,
        detail={
            "part": part.sku,
            "quantity": row.quantity,
            "expected_on": row.expected_on.isoformat(),
            "supplier": row.supplier,
            "supplier_ref": row.supplier_ref,
        },
    )
    return row


@dataclass(frozen=True)
class Delivery:
    """What arrived against a receipt: ``quantity`` into ``location`` (a code), one lot
    code, the serial numbers of a serial-tracked part (one per piece), an expiry."""

    quantity: int
    location: str
    lot_code: str = ""
    serials: Sequence[str] = field(default_factory=tuple)
    expires_on: date | None = None


def delivery_from_mapping(data: Any) -> Delivery:
    if not isinstance(data, Mapping):
        raise ReceiptError(["The delivery must be an object."])
    problems: list[str] = []
    quantity = _quantity(data.get("quantity"), "quantity", problems)
    location = _text(data, "location", 32, problems)
    lot = _text(data, "lot", 64, problems)
    raw = data.get("serials", [])
    if isinstance(raw, str):
        raw = [s for s in raw.replace(",", " ").replace(";", " ").split() if s]
    if not isinstance(raw, list) or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in raw):
        problems.append("serials: a list of serial numbers (at most 64 characters each).")
        raw = []
    expires = data.get("expires_on") or None
    expires_on = _date(expires, "expires_on", problems) if expires else None
    if problems:
        raise ReceiptError(problems)
    return Delivery(quantity, location, lot, tuple(raw), expires_on)


def receive(
    session: Session,
    *,
    receipt: ScheduledReceipt,
    delivery: Delivery,
    by: str,
    address: str = "",
) -> list[StockLot]:
    """Receive ``delivery`` against ``receipt``: ledger receipts, ``received`` raised,
    the receipt closed once all is in. More than is open is refused."""
    problems: list[str] = []
    # Row-locked and read again (PostgreSQL): a delivery sent twice at once counts once.
    session.refresh(receipt, with_for_update=True)
    if receipt.status != "open":
        raise ReceiptError([f"receipt {receipt.id} is {receipt.status}."])
    part = session.get(Part, receipt.part_id)
    assert part is not None  # foreign key
    left = receipt.quantity - receipt.received
    if delivery.quantity > left:
        problems.append(f"quantity: only {left} of {part.sku} are still expected on this receipt.")
    location = session.exec(select(Location).where(Location.code == delivery.location)).first()
    if location is None:
        problems.append(f"location: unknown location {delivery.location!r}.")
    serials = list(delivery.serials)
    if part.tracking == Tracking.SERIAL:
        if len(serials) != delivery.quantity or len(set(serials)) != len(serials):
            problems.append(
                f"serials: {part.sku} is serial-tracked: give {delivery.quantity} "
                "different serials."
            )
        taken = session.exec(
            select(StockLot.serial).where(
                StockLot.part_id == part.id, col(StockLot.serial).in_(serials)
            )
        ).all()
        if taken:
            problems.append(f"serials: already in stock: {', '.join(sorted(taken))}.")
    elif serials:
        problems.append(f"serials: {part.sku} is not serial-tracked.")
    if problems:
        raise ReceiptError(problems)
    assert location is not None
    reason = f"receipt {receipt.supplier_ref or receipt.id}"
    lots = []
    if part.tracking == Tracking.SERIAL:
        for serial in serials:
            lots.append(
                ledger.receive(
                    session,
                    part=part,
                    location_id=location.id or 0,
                    quantity=1,
                    by=by,
                    lot_code=delivery.lot_code,
                    serial=serial,
                    expires_on=delivery.expires_on,
                    reason=reason,
                )
            )
    else:
        lots.append(
            ledger.receive(
                session,
                part=part,
                location_id=location.id or 0,
                quantity=delivery.quantity,
                by=by,
                lot_code=delivery.lot_code,
                expires_on=delivery.expires_on,
                reason=reason,
            )
        )
    receipt.received += delivery.quantity
    if receipt.received >= receipt.quantity:
        receipt.status = "closed"
    receipt.updated_at = utcnow()
    session.add(receipt)
    audit.record(
        session,
        actor=by,
        action="receipt.receive",
        entity="receipt",
        entity_id=label(receipt),
        address=address,
        detail={
            "part": part.sku,
            "quantity": delivery.quantity,
            "location": delivery.location,
            "lot": delivery.lot_code,
            "serials": serials,
            "received": receipt.received,
            "of": receipt.quantity,
            "closed": receipt.status == "closed",
        },
    )
    session.flush()
    return lots


def close(
    session: Session, *, receipt: ScheduledReceipt, by: str, reason: str, address: str = ""
) -> None:
    """Close a receipt with what is left never to come (the supplier short-shipped)."""
    session.refresh(receipt, with_for_update=True)
    if receipt.status != "open":
        raise ReceiptError([f"receipt {receipt.id} is {receipt.status}."])
    if not reason.strip():
        raise ReceiptError(["reason: closing a receipt needs a reason."])
    receipt.status, receipt.updated_at = "closed", utcnow()
    receipt.note = (receipt.note + " " if receipt.note else "") + f"closed: {reason.strip()}"[:400]
    session.add(receipt)
    audit.record(
        session,
        actor=by,
        action="receipt.close",
        entity="receipt",
        entity_id=label(receipt),
        address=address,
        detail={"reason": reason, "received": receipt.received, "of": receipt.quantity},
    )
    session.flush()


def listing(
    session: Session, *, status: str | None = "open", limit: int = 500
) -> list[tuple[ScheduledReceipt, Part]]:
    stmt = select(ScheduledReceipt, Part).join(Part, col(Part.id) == col(ScheduledReceipt.part_id))
    if status:
        stmt = stmt.where(ScheduledReceipt.status == status)
    return list(
        session.exec(
            stmt.order_by(col(ScheduledReceipt.expected_on), col(ScheduledReceipt.id)).limit(limit)
        ).all()
    )


def receipt_dict(row: ScheduledReceipt, part: Part) -> dict[str, Any]:
    return {
        "id": row.id,
        "part": part.sku,
        "quantity": row.quantity,
        "received": row.received,
        "open": row.open_quantity,
        "expected_on": row.expected_on.isoformat(),
        "first_expected_on": row.first_expected_on.isoformat(),
        "supplier": row.supplier,
        "supplier_ref": row.supplier_ref,
        "status": row.status,
        "note": row.note,
    }


def label(row: ScheduledReceipt) -> str:
    """How the audit trail names a receipt: its supplier reference and id."""
    suffix = f" (#{row.id})"
    return f"{row.supplier_ref[: 64 - len(suffix)]}{suffix}" if row.supplier_ref else f"#{row.id}"


def valid_id(value: int) -> bool:
    return fits_int32(value) and value > 0
