"""``/api/v1``: promise dates, re-promise flags, on-time delivery, scheduled receipts.

- ``POST /promise``: the promise an order with these lines would get now (nothing is
  written): ship date, completion, the binding constraint in words and as data;
- ``GET /promise/orders``: every open order's plan and booked promise, flagged ones
  marked (``?flagged=1`` for those only); ``POST /orders/{number}/promise`` books one;
- ``GET /promise/on-time``: orders shipped in a window against their promise and
  their due date;
- ``/receipts``: list, create, receive against, reschedule (re-promises and returns
  the flags it raised), close.

Scopes by path: ``promise:read`` / ``promise:write``, ``receipts:read`` /
``receipts:write``, ``orders:write`` for booking. docs/promise.md.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from flask import current_app, jsonify, request
from sqlmodel import Session, col, select

from server.api import bp, path_id, problem, read_json
from server.api import openapi as oa
from server.catalog.configure import ConfigurationError
from server.db import get_session, write_session
from server.inventory import receipts
from server.models import CustomerOrder, Part, ScheduledReceipt
from server.models.types import INT32_MAX, INT32_MIN, fits_int32, rfc3339, utcnow
from server.orders.intake import MAX_QUANTITY
from server.plant_time import zone
from server.promise import publish as promise_publish
from server.promise import service
from server.promise.engine import Promise
from server.security import auth

log = logging.getLogger(__name__)
MAX_LINES = 50


def _engine() -> Any:
    return current_app.extensions["taktline.engine"]


def promise_json(p: Promise) -> dict[str, Any]:
    return {
        "ship_on": p.ship_on.isoformat() if p.ship_on else None,
        "completion": rfc3339(p.completion),
        "material_on": p.material_on.isoformat() if p.material_on else None,
        "reason": p.reason.as_dict(),
        "also": [r.as_dict() for r in p.also],
    }


def _lines(body: dict[str, Any]) -> tuple[list[service.LineWanted], list[str]]:
    problems: list[str] = []
    raw = body.get("lines")
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_LINES:
        return [], [f"lines: between 1 and {MAX_LINES} lines are required."]
    lines = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            problems.append(f"line {n}: must be an object with product, quantity, options.")
            continue
        product, qty, opts = item.get("product"), item.get("quantity"), item.get("options", [])
        if not isinstance(product, str) or not product.strip() or len(product) > 32:
            problems.append(f"line {n}: product is required (a product code).")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 0 < qty <= MAX_QUANTITY:
            problems.append(f"line {n}: quantity must be between 1 and {MAX_QUANTITY}.")
        if not isinstance(opts, list) or not all(isinstance(o, str) and len(o) <= 32 for o in opts):
            problems.append(f"line {n}: options must be a list of option codes.")
            opts = []
        if not problems:
            lines.append(service.LineWanted(str(product).strip(), int(qty or 0), tuple(opts)))
    return lines, problems


@bp.post("/promise")
@auth.require("supervisor", scope="promise:read")
def promise_for_lines() -> Any:
    body = read_json()
    if not isinstance(body, dict):
        return problem(400, "the body must be a JSON object with lines")
    lines, problems = _lines(body)
    priority = body.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not fits_int32(priority):
        problems.append(f"priority: a whole number between {INT32_MIN} and {INT32_MAX}.")
    due = None
    if body.get("due_date") is not None:
        try:
            due = date.fromisoformat(str(body["due_date"]))
        except ValueError:
            problems.append("due_date: a date YYYY-MM-DD.")
    if problems:
        return problem(422, "promise refused", problems)
    try:
        p = service.what_if(
            get_session(),
            lines=lines,
            priority=int(priority),
            due=due,
            options=promise_publish.options(),
        )
    except (ConfigurationError, LookupError) as exc:
        return problem(422, "promise refused", [str(exc)])
    return jsonify({**promise_json(p), "lead_days": current_app.config["PROMISE_LEAD_DAYS"]})


@bp.get("/promise/orders")
@auth.require("operator", scope="promise:read")
def promise_orders() -> Any:
    session = get_session()
    promise_publish.sweep(session)
    plan = service.plan_for(session, options=promise_publish.options()).plan
    only_flagged = request.args.get("flagged") in ("1", "true", "yes")
    ids = [o.id for o in plan.orders]
    rows = service.rows_by_order(session, ids)
    orders = {
        o.id: o
        for o in session.exec(select(CustomerOrder).where(col(CustomerOrder.id).in_(ids))).all()
    }
    out = []
    for spec in plan.orders:
        row, order, p = rows.get(spec.id), orders.get(spec.id), plan.promises.get(spec.id)
        if order is None or p is None:
            continue
        flagged = bool(row and row.flagged)
        if only_flagged and not flagged:
            continue
        out.append(
            {
                "order": order.number,
                "status": order.status,
                "priority": order.priority,
                "due_date": order.due_date.isoformat(),
                "promised_on": row.promised_on.isoformat() if row and row.promised_on else None,
                **promise_json(p),
                "flagged": flagged,
                "flag": dict(row.flag_reason) if row and row.flagged else None,
            }
        )
    return jsonify(orders=out)


@bp.post("/orders/<number>/promise")
@auth.require("supervisor", scope="orders:write")
def book_order_promise(number: str) -> Any:
    body = read_json()
    if body is not None and not isinstance(body, dict):
        return problem(400, "the body must be a JSON object")
    day = None
    if body and body.get("day") is not None:
        try:
            day = date.fromisoformat(str(body["day"]))
        except ValueError:
            return problem(422, "promise refused", ["day: a date YYYY-MM-DD."])
        today = utcnow().astimezone(zone()).date()
        if not service.bookable(day, today):
            return problem(
                422, "promise refused", [f"day: from today ({today}) to ten years ahead."]
            )
    with write_session(_engine()) as session:
        order = session.exec(select(CustomerOrder).where(CustomerOrder.number == number)).first()
        if order is None:
            return problem(404, f"no order {number}")
        p = service.promise_of(session, order=order, options=promise_publish.options())
        try:
            row = service.book(
                session, order=order, promise=p, day=day, by=auth.actor(), address=auth.address()
            )
        except ValueError as exc:
            session.rollback()
            return problem(409, str(exc))
        body_out = {
            "order": order.number,
            "promised_on": row.promised_on.isoformat() if row.promised_on else None,
            "plan": promise_json(p) if p is not None else None,
        }
    return jsonify(body_out)


def _day_arg(name: str, default: date) -> date:
    raw = request.args.get(name, "")
    if not raw:
        return default
    return date.fromisoformat(raw)


@bp.get("/promise/on-time")
@auth.require("operator", scope="promise:read")
def on_time() -> Any:
    today = utcnow().astimezone(zone()).date()
    try:
        end = _day_arg("to", today)
        start = _day_arg("from", end - timedelta(days=29))
    except (ValueError, OverflowError):  # OverflowError: no day 29 days before 0001-01-10
        return problem(400, "from and to are dates YYYY-MM-DD")
    if start > end or (end - start).days > 3660:
        return problem(400, "from must be on or before to, at most ten years apart")
    if start < date(2, 1, 1) or end > date(9998, 12, 31):  # plant days must exist in UTC
        return problem(400, "from and to are dates between the years 2 and 9998")
    return jsonify(service.on_time(get_session(), start=start, end=end, zone=zone()).as_dict())


# -- scheduled receipts ----------------------------------------------------------------


def _receipt_or_none(session: Session, text: str) -> ScheduledReceipt | None:
    rid = path_id(text)
    return session.get(ScheduledReceipt, rid) if rid is not None else None


def _receipt_json(session: Session, row: ScheduledReceipt) -> dict[str, Any]:
    part = session.get(Part, row.part_id)
    assert part is not None
    return receipts.receipt_dict(row, part)


@bp.get("/receipts")
@auth.require("operator", scope="receipts:read")
def list_receipts() -> Any:
    status = request.args.get("status", "open")
    if status not in ("open", "closed", "all"):
        return problem(400, "status is open, closed or all")
    rows = receipts.listing(get_session(), status=None if status == "all" else status)
    return jsonify(receipts=[receipts.receipt_dict(r, p) for r, p in rows])


@bp.post("/receipts")
@auth.require("supervisor", scope="receipts:write")
def create_receipt() -> Any:
    try:
        wanted = receipts.from_mapping(read_json())
        with write_session(_engine()) as session:
            row = receipts.create(session, receipt=wanted, by=auth.actor(), address=auth.address())
            body = _receipt_json(session, row)
    except receipts.ReceiptError as exc:
        return problem(422, "receipt refused", exc.problems)
    promise_publish.sweep(
        get_session(), trigger=f"receipt {body['supplier_ref'] or body['id']} added"
    )
    response = jsonify(body)
    response.status_code = 201
    return response


@bp.post("/receipts/<receipt_id>/receive")
@auth.require("supervisor", scope="receipts:write")
def receive_receipt(receipt_id: str) -> Any:
    try:
        delivery = receipts.delivery_from_mapping(read_json())
        with write_session(_engine()) as session:
            row = _receipt_or_none(session, receipt_id)
            if row is None:
                return problem(404, f"no receipt {receipt_id}")
            receipts.receive(
                session, receipt=row, delivery=delivery, by=auth.actor(), address=auth.address()
            )
            body = _receipt_json(session, row)
    except receipts.ReceiptError as exc:
        return problem(422, "delivery refused", exc.problems)
    promise_publish.sweep(
        get_session(), trigger=f"receipt {body['supplier_ref'] or body['id']} received"
    )
    return jsonify(body)


@bp.post("/receipts/<receipt_id>/reschedule")
@auth.require("supervisor", scope="receipts:write")
def reschedule_receipt(receipt_id: str) -> Any:
    body = read_json()
    if not isinstance(body, dict):
        return problem(400, "the body must be a JSON object with expected_on")
    try:
        expected = date.fromisoformat(str(body.get("expected_on")))
    except ValueError:
        return problem(422, "reschedule refused", ["expected_on: a date YYYY-MM-DD."])
    if not receipts.plausible(expected):
        return problem(
            422,
            "reschedule refused",
            [f"expected_on: {expected} is not within ten years of today."],
        )
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 500:
        return problem(422, "reschedule refused", ["note: text of at most 500 characters."])
    with write_session(_engine()) as session:
        row = _receipt_or_none(session, receipt_id)
        if row is None:
            return problem(404, f"no receipt {receipt_id}")
        if row.status != "open":
            session.rollback()
            return problem(409, f"receipt {receipt_id} is {row.status}")
        changes = service.reschedule_receipt(
            session,
            receipt=row,
            expected_on=expected,
            note=note,
            by=auth.actor(),
            address=auth.address(),
            options=promise_publish.options(),
        )
        out = _receipt_json(session, row)
    promise_publish.publish(changes)
    return jsonify(receipt=out, flags=[c.as_dict() for c in changes])


@bp.post("/receipts/<receipt_id>/close")
@auth.require("supervisor", scope="receipts:write")
def close_receipt(receipt_id: str) -> Any:
    body = read_json()
    reason = body.get("reason", "") if isinstance(body, dict) else ""
    if not isinstance(reason, str) or len(reason) > 500:  # not {"a": 1} written as text
        return problem(422, "close refused", ["reason: text of at most 500 characters."])
    try:
        with write_session(_engine()) as session:
            row = _receipt_or_none(session, receipt_id)
            if row is None:
                return problem(404, f"no receipt {receipt_id}")
            receipts.close(
                session, receipt=row, by=auth.actor(), reason=str(reason), address=auth.address()
            )
            out = _receipt_json(session, row)
    except receipts.ReceiptError as exc:
        return problem(422, "close refused", exc.problems)
    promise_publish.sweep(
        get_session(), trigger=f"receipt {out['supplier_ref'] or out['id']} closed"
    )
    return jsonify(out)


# -- OpenAPI description -----------------------------------------------------------------

_REASON = {
    "type": "object",
    "required": ["kind", "params", "text"],
    "properties": {
        "kind": {
            "type": "string",
            "enum": [
                "part",
                "short",
                "capacity",
                "calendar",
                "assembly",
                "no_station",
                "horizon",
            ],
        },
        "params": {"type": "object"},
        "text": {"type": "string", "example": "BAT-L: 2 arrive on 2026-12-03"},
    },
}
oa.add_schema("PromiseReason", _REASON)
_PROMISE_PROPS = {
    "ship_on": {"type": "string", "format": "date", "nullable": True},
    "completion": {"type": "string", "format": "date-time", "nullable": True},
    "material_on": {"type": "string", "format": "date", "nullable": True},
    "reason": oa.ref("PromiseReason"),
    "also": {"type": "array", "items": oa.ref("PromiseReason")},
}
oa.add_schema(
    "Promise",
    {
        "type": "object",
        "required": ["ship_on", "completion", "reason"],
        "properties": {**_PROMISE_PROPS, "lead_days": {"type": "integer"}},
    },
)
oa.add_schema(
    "PromiseRequest",
    {
        "type": "object",
        "required": ["lines"],
        "properties": {
            "lines": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_LINES,
                "items": oa.ref("OrderLineInput"),
            },
            "priority": {"type": "integer", "minimum": INT32_MIN, "maximum": INT32_MAX},
            "due_date": {"type": "string", "format": "date"},
        },
    },
)
oa.add_schema(
    "Receipt",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "part": {"type": "string"},
            "quantity": {"type": "integer"},
            "received": {"type": "integer"},
            "open": {"type": "integer"},
            "expected_on": {"type": "string", "format": "date"},
            "first_expected_on": {"type": "string", "format": "date"},
            "supplier": {"type": "string"},
            "supplier_ref": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "note": {"type": "string"},
        },
    },
)
oa.add_schema(
    "PromiseFlag",
    {
        "type": "object",
        "properties": {
            "order": {"type": "string"},
            "customer": {"type": "string"},
            "due_date": {"type": "string", "format": "date"},
            "promised_on": {"type": "string", "format": "date"},
            "projected_on": {"type": "string", "format": "date", "nullable": True},
            "flagged": {"type": "boolean"},
            "reason": {"type": "object"},
            "trigger": {"type": "string"},
        },
    },
)
_ID = {"name": "receipt_id", "in": "path", "required": True, "schema": {"type": "string"}}
_BAD = {
    "400": oa.error("The body is not JSON"),
    "413": oa.error("The body is larger than MAX_CONTENT_LENGTH"),
}
oa.add_path(
    "/promise",
    {
        "post": {
            "summary": "The promise date an order with these lines would get now (nothing "
            "is written): the earliest completion components and capacity allow, plus the "
            "shipping lead, and the binding constraint in words",
            "tags": ["promise"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": oa.ref("PromiseRequest")}},
            },
            "responses": {
                "200": oa.json_body(oa.ref("Promise")),
                **_BAD,
                "422": oa.error("Refused: a line, a product or its options"),
            },
        }
    },
)
oa.add_path(
    "/promise/orders",
    {
        "get": {
            "summary": "Every open order's plan date and booked promise; flagged: the "
            "booked promise no longer holds",
            "tags": ["promise"],
            "parameters": [
                {
                    "name": "flagged",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["1", "0"]},
                    "description": "1: flagged orders only",
                }
            ],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {
                            "orders": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "order": {"type": "string"},
                                        "status": {"type": "string"},
                                        "priority": {"type": "integer"},
                                        "due_date": {"type": "string", "format": "date"},
                                        "promised_on": {
                                            "type": "string",
                                            "format": "date",
                                            "nullable": True,
                                        },
                                        **_PROMISE_PROPS,
                                        "flagged": {"type": "boolean"},
                                        "flag": {"type": "object", "nullable": True},
                                    },
                                },
                            }
                        },
                    }
                )
            },
        }
    },
)
oa.add_path(
    "/orders/{number}/promise",
    {
        "post": {
            "summary": "Book the plan's date (or `day`) as the date promised to the customer",
            "tags": ["promise"],
            "parameters": [
                {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"day": {"type": "string", "format": "date"}},
                        }
                    }
                }
            },
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {
                            "order": {"type": "string"},
                            "promised_on": {"type": "string", "format": "date"},
                            "plan": {**oa.ref("Promise"), "nullable": True},
                        },
                    }
                ),
                **_BAD,
                "404": oa.error("No such order"),
                "409": oa.error("The order has no plan date to book (closed, or no date)"),
                "422": oa.error("day is not a date, is in the past or over ten years ahead"),
            },
        }
    },
)
oa.add_path(
    "/promise/on-time",
    {
        "get": {
            "summary": "On-time delivery: orders shipped from `from` to `to` (plant days) "
            "against the date promised and the customer's due date",
            "tags": ["promise"],
            "parameters": [
                {"name": n, "in": "query", "schema": {"type": "string", "format": "date"}}
                for n in ("from", "to")
            ],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {
                            "from": {"type": "string", "format": "date"},
                            "to": {"type": "string", "format": "date"},
                            "shipped": {"type": "integer"},
                            "with_promise": {"type": "integer"},
                            "on_time_to_promise": {"type": "integer"},
                            "on_time_to_due": {"type": "integer"},
                            "promise_rate": {"type": "number", "nullable": True},
                            "due_rate": {"type": "number", "nullable": True},
                            "late": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                ),
                "400": oa.error("A bad date or window"),
            },
        }
    },
)
oa.add_path(
    "/receipts",
    {
        "get": {
            "summary": "Scheduled receipts (open by default)",
            "tags": ["receipts"],
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["open", "closed", "all"]},
                }
            ],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {"receipts": {"type": "array", "items": oa.ref("Receipt")}},
                    }
                ),
                "400": oa.error("Unknown status"),
            },
        },
        "post": {
            "summary": "Schedule a receipt: part, quantity, expected_on, supplier, supplier_ref",
            "tags": ["receipts"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["part", "quantity", "expected_on"],
                            "properties": {
                                "part": {"type": "string", "example": "MEM-32"},
                                "quantity": {"type": "integer", "minimum": 1},
                                "expected_on": {"type": "string", "format": "date"},
                                "supplier": {"type": "string", "maxLength": 200},
                                "supplier_ref": {"type": "string", "maxLength": 64},
                                "note": {"type": "string", "maxLength": 500},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": oa.json_body(oa.ref("Receipt"), "Created"),
                **_BAD,
                "422": oa.error("Refused; problems name each field"),
            },
        },
    },
)
_ACTIONS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "receive": (
        "Receive a delivery against the receipt (ledger receipts; closes it when all is in)",
        {
            "type": "object",
            "required": ["quantity", "location"],
            "properties": {
                "quantity": {"type": "integer", "minimum": 1},
                "location": {"type": "string", "example": "WH"},
                "lot": {"type": "string"},
                "serials": {"type": "array", "items": {"type": "string"}},
                "expires_on": {"type": "string", "format": "date"},
            },
        },
        oa.ref("Receipt"),
    ),
    "reschedule": (
        "Move the expected date; re-promises and answers the flags it raised or cleared",
        {
            "type": "object",
            "required": ["expected_on"],
            "properties": {
                "expected_on": {"type": "string", "format": "date"},
                "note": {"type": "string", "maxLength": 500},
            },
        },
        {
            "type": "object",
            "properties": {
                "receipt": oa.ref("Receipt"),
                "flags": {"type": "array", "items": oa.ref("PromiseFlag")},
            },
        },
    ),
    "close": (
        "Close the receipt: what is left will not come",
        {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}},
        oa.ref("Receipt"),
    ),
}
for _action, (_summary, _body, _answer) in _ACTIONS.items():
    oa.add_path(
        f"/receipts/{{receipt_id}}/{_action}",
        {
            "post": {
                "summary": _summary,
                "tags": ["receipts"],
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _body}},
                },
                "responses": {
                    "200": oa.json_body(_answer),
                    **_BAD,
                    "404": oa.error("No such receipt"),
                    "409": oa.error("The receipt is closed"),
                    "422": oa.error("Refused; problems name each field"),
                },
            }
        },
    )
