"""``/api/v1/stock``: lots with on hand, reserved, available, expiry and location.

The same listing as the stock page and ``/stock.csv`` (``server.inventory.views``);
scope ``stock:read``. ``q`` (a substring of SKU, description, lot or serial), ``part``
(an exact SKU), ``location`` (an exact location code); ``limit`` and ``offset`` page it.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from server.api import bp, problem
from server.api import openapi as oa
from server.db import get_session
from server.inventory import expiry
from server.inventory.views import stock_dict, stock_rows
from server.models.types import rfc3339
from server.security import auth

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_OFFSET = 2**31 - 1
MAX_TEXT = 200


def _bounded(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


@bp.get("/stock")
@auth.require("supervisor")
def list_stock() -> Any:
    try:
        limit = _bounded("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _bounded("offset", 0, 0, MAX_OFFSET)
        text = {k: request.args.get(k, "").strip() for k in ("q", "part", "location")}
        too_long = [k for k, v in text.items() if len(v) > MAX_TEXT]
        if too_long:
            raise ValueError(f"{too_long[0]} is longer than {MAX_TEXT} characters")
    except ValueError as exc:
        return problem(400, str(exc))
    today = expiry.today()
    rows = stock_rows(get_session(), limit=limit, offset=offset, **text)
    lots = []
    for lot, part, loc in rows:
        row = stock_dict(lot, part, loc, today)
        row["received_at"] = rfc3339(row["received_at"])
        lots.append(row)
    return jsonify(lots=lots, limit=limit, offset=offset, today=today.isoformat())


oa.add_schema(
    "StockLot",
    {
        "type": "object",
        "required": ["lot_id", "sku", "location", "on_hand", "reserved", "available", "expired"],
        "properties": {
            "lot_id": {"type": "integer"},
            "sku": {"type": "string"},
            "description": {"type": "string"},
            "lot": {"type": "string", "nullable": True, "description": "lot code"},
            "serial": {"type": "string", "nullable": True, "description": "serial number"},
            "location": {"type": "string", "description": "location code"},
            "on_hand": {"type": "integer"},
            "reserved": {"type": "integer", "description": "reserved for released orders"},
            "available": {"type": "integer", "description": "on hand minus reserved"},
            "expires_on": {"type": "string", "format": "date", "nullable": True},
            "expired": {
                "type": "boolean",
                "description": "expires_on is before today (UTC): on hand, never reserved "
                "nor built in",
            },
            "received_at": {"type": "string", "format": "date-time", "nullable": True},
        },
    },
)
oa.add_path(
    "/stock",
    {
        "get": {
            "summary": "Stock by lot: on hand, reserved, available, expiry and location "
            "(also as CSV at /stock.csv for a signed-in supervisor)",
            "tags": ["stock"],
            "parameters": [
                {
                    "name": "q",
                    "in": "query",
                    "required": False,
                    "description": "substring of SKU, description, lot or serial",
                    "schema": {"type": "string", "maxLength": MAX_TEXT},
                },
                {
                    "name": "part",
                    "in": "query",
                    "required": False,
                    "description": "exact SKU",
                    "schema": {"type": "string", "maxLength": MAX_TEXT},
                },
                {
                    "name": "location",
                    "in": "query",
                    "required": False,
                    "description": "exact location code",
                    "schema": {"type": "string", "maxLength": MAX_TEXT},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                },
                {
                    "name": "offset",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                },
            ],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "required": ["lots"],
                        "properties": {
                            "lots": {"type": "array", "items": oa.ref("StockLot")},
                            "limit": {"type": "integer"},
                            "offset": {"type": "integer"},
                            "today": {"type": "string", "format": "date"},
                        },
                    }
                ),
                "400": oa.error("A bad query parameter"),
            },
        }
    },
)
