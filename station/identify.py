"""What a scanned barcode is: which part, which lot, which serial number.

Two steps. ``parse_scan(data)`` is pure: it reads GS1 element strings (with biip),
GTINs and plain text, and reports check-digit and format errors instead of guessing.
``identify(session, code)`` looks the result up in the catalog and the stock:

1. a GTIN (AI 01, EAN/UPC, or a bare 8/12/13/14-digit number) -> ``PartIdentifier``
   of kind ``gtin``; the lot (AI 10), serial (AI 21) and expiry date (AI 17) come from
   the same scan;
2. the text exactly equal to a ``code`` identifier (e.g. ``SCRM3``);
3. the text exactly equal to a serial number in stock (a bare serial label);
4. the text matching a ``pattern`` identifier (``re.fullmatch``; named groups
   ``serial`` and ``lot`` fill in those fields).

A scan that looks like GS1 but has a bad check digit or a malformed element is
rejected (``bad_check_digit``) unless step 2 or 3 matches it exactly: the data, not
the bridge's ``gs1`` hint, is the truth (docs/bridge.md).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

import biip
import sqlalchemy as sa
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from sqlmodel import Session

from server.models import StockLot
from station.cache import Cache, PartInfo

log = logging.getLogger(__name__)

GS = "\x1d"
# Symbology identifiers that carry GS1 element strings (GS1-128, DataMatrix, QR, DataBar,
# DotCode, composite) and those that carry a bare GTIN (EAN/UPC, ITF-14).
_GS1_IDS = ("]C1", "]d2", "]Q3", "]e0", "]e1", "]e2", "]J1")
_GTIN_IDS = ("]E0", "]E1", "]E3", "]E4", "]I1")
_MAX_PATTERN_INPUT = 200
lot_table: sa.Table = StockLot.__table__  # type: ignore[attr-defined]
_SERIAL_PART = (
    sa.select(lot_table.c.part_id).where(lot_table.c.serial == sa.bindparam("serial")).limit(1)
)


@dataclass(frozen=True)
class ScanCode:
    """A parsed scan. ``error`` says why a GS1-looking scan cannot be trusted."""

    data: str
    text: str
    gtin: str | None = None
    lot: str | None = None
    serial: str | None = None
    expiry: str | None = None  # AI 17 as printed, YYMMDD
    expiry_date: date | None = None  # AI 17 as a date (century and day 00 resolved)
    error: str | None = None


@dataclass(frozen=True)
class Identified:
    part_id: int
    sku: str
    description: str
    tracking: str
    lot: str | None = None
    serial: str | None = None
    expiry: date | None = None  # the label's own expiry (GS1 AI 17)


def parse_scan(data: str) -> ScanCode:
    symbology, text = (
        (data[:3], data[3:]) if data.startswith("]") and len(data) >= 3 else ("", data)
    )
    text = text.strip()
    try:
        if text.startswith("(") and symbology == "":
            return _from_elements(data, text, GS1Message.parse_hri(text))
        looks_gs1 = (
            symbology in _GS1_IDS
            or GS in text
            or (text[:2] in ("00", "01") and len(text) > 16 and text[:16].isdigit())
        )
        if looks_gs1:
            result = biip.parse(symbology + text if symbology in _GS1_IDS else text)
            if result.gs1_message is None:
                return ScanCode(data, text, error=str(result.gs1_message_error or "not GS1"))
            return _from_elements(data, text, result.gs1_message)
        if symbology in _GTIN_IDS or (text.isdigit() and len(text) in (8, 12, 13, 14)):
            return ScanCode(data, text, gtin=Gtin.parse(text).as_gtin_14())
    except biip.ParseError as exc:
        return ScanCode(data, text, error=str(exc))
    return ScanCode(data, text)


def _from_elements(data: str, text: str, message: GS1Message) -> ScanCode:
    fields: dict[str, str] = {}
    expiry: date | None = None
    for element in message.element_strings:
        if element.gtin_error:
            return ScanCode(data, text, error=str(element.gtin_error))
        if element.sscc_error:
            return ScanCode(data, text, error=str(element.sscc_error))
        fields[element.ai.ai] = element.value
        if element.ai.ai == "17":
            expiry = element.date
    gtin = fields.get("01")
    return ScanCode(
        data,
        text,
        gtin=gtin.zfill(14) if gtin else None,
        lot=fields.get("10"),
        serial=fields.get("21"),
        expiry=fields.get("17"),
        expiry_date=expiry,
    )


def identify(session: Session, code: ScanCode, *, cache: Cache | None = None) -> Identified | None:
    """The part (and lot / serial) ``code`` names, or ``None`` when nothing matches.

    ``cache`` (``station.cache.Cache``) keeps the catalog lookups of one transaction."""
    if cache is None:
        cache = Cache()
    if code.gtin and not code.error:
        part = _part(session, cache, cache.identifier(session, "gtin", code.gtin))
        if part is not None:
            return _found(part, lot=code.lot, serial=code.serial, expiry=code.expiry_date)
    if not code.text:
        return None
    part = _part(session, cache, cache.identifier(session, "code", code.text))
    if part is not None:
        return _found(part)
    # Stock changes: a bare serial label is looked up every time.
    part = _part(
        session, cache, session.connection().execute(_SERIAL_PART, {"serial": code.text}).scalar()
    )
    if part is not None:
        return _found(part, serial=code.text)
    if code.error or len(code.text) > _MAX_PATTERN_INPUT:
        return None
    for value, part_id in cache.pattern_identifiers(session):
        try:
            match = re.fullmatch(value, code.text)
        except re.error:
            part = cache.part(session, part_id)
            log.warning(
                "pattern identifier %s of %s is not a regex", value, part.sku if part else part_id
            )
            continue
        if match and (part := cache.part(session, part_id)) is not None:
            groups = match.groupdict()
            return _found(part, lot=groups.get("lot"), serial=groups.get("serial"))
    return None


def _part(session: Session, cache: Cache, part_id: int | None) -> PartInfo | None:
    return None if part_id is None else cache.part(session, part_id)


def _found(
    part: PartInfo,
    *,
    lot: str | None = None,
    serial: str | None = None,
    expiry: date | None = None,
) -> Identified:
    return Identified(
        part_id=part.id,
        sku=part.sku,
        description=part.description,
        tracking=part.tracking,
        lot=lot,
        serial=serial,
        expiry=expiry,
    )
