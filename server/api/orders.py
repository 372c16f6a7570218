"""``/api/v1`` orders, release, cancel, stations and their queues, units."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, jsonify, request, url_for
from sqlmodel import Session, col, select

from server import dispatch
from server.api import bp, problem, read_json
from server.api import openapi as oa
from server.catalog.configure import ConfigurationError
from server.db import get_session, write_session
from server.models import (
    CustomerOrder,
    Operation,
    OrderLine,
    OrderStatus,
    Product,
    Station,
    Unit,
    UnitOperation,
    UnitOperationStatus,
)
from server.models.types import INT32_MAX, INT32_MIN, rfc3339
from server.orders import service
from server.orders.atp import AtpLine
from server.security import auth

log = logging.getLogger(__name__)
STAMPS = ("received_at", "released_at", "first_started_at", "completed_at", "shipped_at")
# The priority column is a 32-bit INTEGER on PostgreSQL: beyond it the insert would fail.


def order_json(session: Session, order: CustomerOrder, *, detail: bool = False) -> dict[str, Any]:
    lines = session.exec(
        select(OrderLine, Product)
        .join(Product, col(OrderLine.product_id) == Product.id)
        .where(OrderLine.order_id == order.id)
        .order_by(col(OrderLine.line_no))
    ).all()
    body: dict[str, Any] = {
        "number": order.number,
        "customer": order.customer,
        "due_date": order.due_date.isoformat(),
        "priority": order.priority,
        "status": order.status,
        "created_by": order.created_by,
        "lead_time": {s: rfc3339(getattr(order, s)) for s in STAMPS},
        "lines": [
            {
                "line_no": li.line_no,
                "product": p.code,
                "quantity": li.quantity,
                "options": li.options,
            }
            for li, p in lines
        ],
    }
    if detail:
        if order.status == OrderStatus.RECEIVED:
            body["atp"] = [atp_json(a) for a in service.order_atp(session, order=order)]
        body["units"] = [
            {"serial": u.serial, "status": u.status}
            for u in service.order_units(session, order=order)
        ]
    return body


def atp_json(line: AtpLine) -> dict[str, Any]:
    return {
        "sku": line.sku,
        "required": line.required,
        "on_hand": line.on_hand,
        "reserved_by_others": line.reserved_by_others,
        "available": line.available,
        "short": line.short,
        "substituted": line.substituted,
        "substitutes": list(line.substitutes),
    }


def unit_operation_json(session: Session, op: UnitOperation) -> dict[str, Any]:
    unit = session.get(Unit, op.unit_id)
    operation = session.get(Operation, op.operation_id)
    station = session.get(Station, op.station_id) if op.station_id else None
    return {
        "id": op.id,
        "unit": unit.serial if unit else None,
        "sequence": op.sequence,
        "operation": operation.code if operation else None,
        "name": operation.name if operation else None,
        "station_kind": op.station_kind,
        "status": op.status,
        "priority": op.priority,
        "due_date": op.due_date.isoformat() if op.due_date else None,
        "released_at": rfc3339(op.released_at),
        "station": station.code if station else None,
        "claimed_at": rfc3339(op.claimed_at),
        "held_reason": op.held_reason,
        "picks": op.picks,
    }


def _order_or_404(session: Session, number: str) -> CustomerOrder:
    order = session.exec(select(CustomerOrder).where(CustomerOrder.number == number)).first()
    if order is None:
        from flask import abort

        abort(404, f"no order {number}")
    return order


def _engine() -> Any:
    return current_app.extensions["taktline.engine"]


def _json_body() -> dict[str, Any]:
    data = read_json()
    if data is None and request.get_data():
        from flask import abort

        abort(400, "the body is not valid JSON")
    return data if isinstance(data, dict) else {}


@bp.get("/orders")
@auth.require("operator")
def list_orders() -> Any:
    session = get_session()
    stmt = select(CustomerOrder).order_by(col(CustomerOrder.due_date), col(CustomerOrder.id))
    status = request.args.get("status")
    if status:
        stmt = stmt.where(CustomerOrder.status == status)
    return jsonify(orders=[order_json(session, o) for o in session.exec(stmt).all()])


@bp.post("/orders")
@auth.require("supervisor")
def create_order() -> Any:
    data = read_json()
    try:
        order_input = service.from_mapping(data)  # bounds the priority too (every path)
        with write_session(_engine()) as session:
            order = service.create_order(
                session, order=order_input, by=auth.actor(), address=auth.address(), channel="api"
            )
            body = order_json(session, order)
    except service.InvalidOrder as exc:
        log.info("API order refused: %s", exc)
        return problem(422, "order refused", exc.problems)
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = url_for("api.read_order", number=body["number"])
    return response


@bp.get("/orders/<number>")
@auth.require("operator")
def read_order(number: str) -> Any:
    session = get_session()
    return jsonify(order_json(session, _order_or_404(session, number), detail=True))


@bp.post("/orders/<number>/release")
@auth.require("supervisor")
def release_order(number: str) -> Any:
    override = _json_body().get("override_reason")
    if override is not None and not isinstance(override, str):
        return problem(400, "override_reason must be text")
    try:
        with write_session(_engine()) as session:
            order = _order_or_404(session, number)
            service.release(
                session,
                order=order,
                by=auth.actor(),
                override_reason=override,
                address=auth.address(),
            )
            body = order_json(session, order, detail=True)
    except service.Shortage as exc:
        response = problem(
            409, str(exc), [f"{a.sku}: short {a.short}" for a in exc.lines if a.short]
        )
        return response
    except (service.OrderStateError, ConfigurationError) as exc:
        return problem(409, str(exc))
    return jsonify(body)


@bp.post("/orders/<number>/cancel")
@auth.require("supervisor")
def cancel_order(number: str) -> Any:
    reason = _json_body().get("reason", "")
    try:
        with write_session(_engine()) as session:
            order = _order_or_404(session, number)
            service.cancel(
                session, order=order, by=auth.actor(), reason=str(reason), address=auth.address()
            )
            body = order_json(session, order, detail=True)
    except service.OrderStateError as exc:
        return problem(409, str(exc))
    return jsonify(body)


@bp.get("/stations")
@auth.require("operator")
def list_stations() -> Any:
    session = get_session()
    stations = session.exec(
        select(Station).order_by(col(Station.line_id), col(Station.position))
    ).all()
    return jsonify(
        stations=[
            {
                "code": s.code,
                "name": s.name,
                "kind": s.kind,
                "active": s.active,
                "queue_length": len(dispatch.queue_for(session, station=s)),
            }
            for s in stations
        ]
    )


@bp.get("/stations/<code>/queue")
@auth.require("operator")
def station_queue(code: str) -> Any:
    session = get_session()
    station = session.exec(select(Station).where(Station.code == code)).first()
    if station is None:
        return problem(404, f"no station {code}")
    active = session.exec(
        select(UnitOperation).where(
            UnitOperation.station_id == station.id,
            UnitOperation.status == UnitOperationStatus.ACTIVE,
        )
    ).all()
    return jsonify(
        station=code,
        kind=station.kind,
        active=[unit_operation_json(session, op) for op in active],
        queue=[
            unit_operation_json(session, op) for op in dispatch.queue_for(session, station=station)
        ],
    )


# GET /units/<serial> (the unit with its genealogy) lives in server.api.trace.


# -- OpenAPI description -----------------------------------------------------------------

_NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}
oa.add_schema(
    "OrderLineInput",
    {
        "type": "object",
        "required": ["product", "quantity"],
        "properties": {
            "product": {"type": "string", "example": "PC"},
            "quantity": {"type": "integer", "minimum": 1},
            "options": {
                "type": "array",
                "items": {"type": "string"},
                "example": ["i5", "mem16", "ssd512", "mt"],
            },
        },
    },
)
oa.add_schema(
    "OrderInput",
    {
        "type": "object",
        "required": ["number", "customer", "due_date", "lines"],
        "properties": {
            "number": {"type": "string", "maxLength": 32},
            "customer": {"type": "string", "maxLength": 200},
            "due_date": {"type": "string", "format": "date"},
            "priority": {
                "type": "integer",
                "default": 0,
                "minimum": INT32_MIN,
                "maximum": INT32_MAX,
            },
            "lines": {"type": "array", "minItems": 1, "items": oa.ref("OrderLineInput")},
        },
    },
)
oa.add_schema(
    "AtpLine",
    {
        "type": "object",
        "properties": {
            k: {"type": "integer"}
            for k in (
                "required",
                "on_hand",
                "reserved_by_others",
                "available",
                "short",
                "substituted",
            )
        }
        | {
            "sku": {"type": "string"},
            "substitutes": {"type": "array", "items": {"type": "string"}},
        },
    },
)
oa.add_schema(
    "Order",
    {
        "type": "object",
        "properties": {
            "number": {"type": "string"},
            "customer": {"type": "string"},
            "due_date": {"type": "string", "format": "date"},
            "priority": {"type": "integer"},
            "status": {"type": "string", "enum": [s.value for s in OrderStatus]},
            "lead_time": {
                "type": "object",
                "properties": {
                    s: {"type": "string", "format": "date-time", "nullable": True} for s in STAMPS
                },
            },
            "lines": {"type": "array", "items": oa.ref("OrderLineInput")},
            "atp": {
                "type": "array",
                "items": oa.ref("AtpLine"),
                "description": "received orders only",
            },
            "units": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"serial": {"type": "string"}, "status": {"type": "string"}},
                },
            },
        },
    },
)
oa.add_schema(
    "UnitOperation",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "unit": {"type": "string"},
            "sequence": {"type": "integer"},
            "operation": {"type": "string"},
            "station_kind": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in UnitOperationStatus]},
            "priority": {"type": "integer"},
            "due_date": {"type": "string", "format": "date"},
            "station": {"type": "string", "nullable": True},
            "picks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "part_id": {"type": "integer"},
                        "sku": {"type": "string"},
                        "qty": {"type": "integer"},
                        "reserved_part_id": {"type": "integer"},
                    },
                },
            },
        },
    },
)
oa.add_path(
    "/orders",
    {
        "get": {
            "summary": "List orders",
            "tags": ["orders"],
            "parameters": [{"name": "status", "in": "query", "schema": {"type": "string"}}],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {"orders": {"type": "array", "items": oa.ref("Order")}},
                    }
                )
            },
        },
        "post": {
            "summary": "Create an order (checked whole: nothing is written when refused)",
            "tags": ["orders"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": oa.ref("OrderInput")}},
            },
            "responses": {
                "201": oa.json_body(oa.ref("Order"), "Created"),
                "400": oa.error("The body is nested too deeply to read"),
                "413": oa.error("The body is larger than MAX_CONTENT_LENGTH"),
                "422": oa.error("Refused; `problems` names each line and option"),
            },
        },
    },
)
oa.add_path(
    "/orders/{number}",
    {
        "get": {
            "summary": "Read an order with its lead-time stamps, ATP and units",
            "tags": ["orders"],
            "parameters": [_NUMBER],
            "responses": {"200": oa.json_body(oa.ref("Order")), "404": oa.error("No such order")},
        }
    },
)
oa.add_path(
    "/orders/{number}/release",
    {
        "post": {
            "summary": "Release: reserve stock per unit, create work order, units and operations",
            "tags": ["orders"],
            "parameters": [_NUMBER],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "override_reason": {
                                    "type": "string",
                                    "description": "supervisor override: release despite "
                                    "shortages; recorded",
                                }
                            },
                        }
                    }
                }
            },
            "responses": {
                "200": oa.json_body(oa.ref("Order")),
                "400": oa.error("The body is not JSON, or override_reason is not text"),
                "404": oa.error("No such order"),
                "409": oa.error("Short (problems list each part) or not received"),
                "413": oa.error("The body is larger than MAX_CONTENT_LENGTH"),
            },
        }
    },
)
oa.add_path(
    "/orders/{number}/cancel",
    {
        "post": {
            "summary": "Cancel an order that has not started; reservations are given back",
            "tags": ["orders"],
            "parameters": [_NUMBER],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": {"reason": {"type": "string"}}}
                    }
                }
            },
            "responses": {
                "200": oa.json_body(oa.ref("Order")),
                "400": oa.error("The body is not JSON"),
                "404": oa.error("No such order"),
                "409": oa.error("Started, shipped or already cancelled"),
                "413": oa.error("The body is larger than MAX_CONTENT_LENGTH"),
            },
        }
    },
)
oa.add_path(
    "/stations",
    {
        "get": {
            "summary": "List stations with the length of their queue",
            "tags": ["stations"],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {
                            "stations": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "code": {"type": "string"},
                                        "name": {"type": "string"},
                                        "kind": {"type": "string"},
                                        "queue_length": {"type": "integer"},
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
    "/stations/{code}/queue",
    {
        "get": {
            "summary": "A station's active work and its queue in dispatch order",
            "tags": ["stations"],
            "parameters": [
                {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {
                            "active": {"type": "array", "items": oa.ref("UnitOperation")},
                            "queue": {"type": "array", "items": oa.ref("UnitOperation")},
                        },
                    }
                ),
                "404": oa.error("No such station"),
            },
        }
    },
)
