"""GS1 fields of a scan, parsed with biip, for the ``gs1`` member of ``evt/scan``.

The raw ``data`` is always published as read; ``gs1`` is an aid for the server and
is present only when the whole scan parses as GS1 without errors. To avoid reading
an arbitrary serial number such as ``1012345`` as "AI 10, lot 12345", a scan is
treated as GS1 only when its symbology identifier says so (``]C1``, ``]d2``,
``]Q3``, ``]e0``, ...), or, without an identifier, when it contains the GS separator
or starts with AI 00 (SSCC) or AI 01 (GTIN). EAN/UPC symbologies give a ``gtin``.
"""

from __future__ import annotations

import logging
from typing import Any

import biip
from biip.symbology import GS1Symbology

log = logging.getLogger(__name__)

GS = "\x1d"
_ELEMENT_SYMBOLOGIES = {
    GS1Symbology.GS1_128,
    GS1Symbology.GS1_DATAMATRIX,
    GS1Symbology.GS1_QR_CODE,
    GS1Symbology.GS1_DATABAR,
    GS1Symbology.GS1_DOTCODE,
    GS1Symbology.GS1_COMPOSITE_WITH_SEPARATOR_CHAR,
    GS1Symbology.GS1_COMPOSITE_WITH_ESCAPE_CHAR,
}
_GTIN_SYMBOLOGIES = {
    GS1Symbology.EAN_13,
    GS1Symbology.EAN_8,
    GS1Symbology.ITF_14,
    GS1Symbology.EAN_13_WITH_ADD_ON,
}
# Named fields for the AIs a line cares about; every AI is also under "ais".
_NAMES = {
    "00": "sscc",
    "01": "gtin",
    "10": "lot",
    "21": "serial",
    "17": "expiry",
    "11": "production_date",
    "15": "best_before",
    "30": "count",
}


def parse(text: str) -> dict[str, Any] | None:
    """``{"gtin", "lot", "serial", "expiry", ..., "ais": {ai: value}}`` or ``None``."""
    if not text:
        return None
    has_id = text.startswith("]") and len(text) >= 3
    if not has_id and not (GS in text or text[:2] in ("00", "01")):
        return None
    try:
        result = biip.parse(text)
    except biip.ParseError as exc:  # raised when nothing at all could be parsed
        log.debug("not GS1: %r (%s)", text, exc)
        return None
    symbology = result.symbology_identifier.gs1_symbology if result.symbology_identifier else None
    if symbology in _GTIN_SYMBOLOGIES and result.gtin is not None:
        return {"gtin": result.gtin.value, "ais": {"01": result.gtin.value}}
    if has_id and symbology not in _ELEMENT_SYMBOLOGIES:
        return None
    message = result.gs1_message
    if message is None or result.gs1_message_error:
        return None
    fields: dict[str, Any] = {}
    ais: dict[str, str] = {}
    for element in message.element_strings:
        if element.gtin_error or element.sscc_error:
            return None
        ai = element.ai.ai
        ais[ai] = element.value
        name = _NAMES.get(ai)
        if name is None:
            continue
        fields[name] = element.date.isoformat() if element.date else element.value
    fields["ais"] = ais
    return fields
