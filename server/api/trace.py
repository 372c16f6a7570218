"""``/api/v1`` traceability: a unit with its genealogy, and recall both ways.

``GET /units/<serial>``: the unit (options, order, operations with picks, as the
orders API always served) plus its genealogy: components with the scan that confirmed
each, steps with times against standard, defects, nested sub-assemblies.
``GET /trace?part=&lot=`` / ``?serial=`` / ``?order=``: see ``server.trace.recall``.
``GET /orders/<number>/b2mml?document=performance|material``: a completed order as
ISA-95 B2MML V0600 XML, see ``server.trace.b2mml``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from sqlmodel import col, select

from server.api import bp, problem
from server.api import openapi as oa
from server.api.orders import unit_operation_json
from server.db import get_session
from server.models import Unit, UnitOperation
from server.security import auth
from server.trace import b2mml
from server.trace.genealogy import genealogy, to_dict
from server.trace.recall import component_dict, hit_dict
from server.trace.views import run_search, unit_reservations


@bp.get("/units/<serial>")
@auth.require("operator")
def read_unit(serial: str) -> Any:
    session = get_session()
    g = genealogy(session, serial=serial)
    if g is None:
        return problem(404, f"no unit {serial}")
    ops = session.exec(
        select(UnitOperation)
        .join(Unit, col(Unit.id) == UnitOperation.unit_id)
        .where(Unit.serial == serial)
        .order_by(col(UnitOperation.sequence))
    ).all()
    return jsonify(
        to_dict(g)
        | {
            "operations": [unit_operation_json(session, op) for op in ops],
            "reservations": unit_reservations(session, serial=serial),
        }
    )


@bp.get("/trace")
@auth.require("supervisor")
def trace() -> Any:
    try:
        kind, query, result = run_search(request.args)
    except ValueError as exc:
        return problem(400, str(exc))
    except LookupError as exc:
        return problem(404, str(exc))
    if kind == "order":
        return jsonify(query=query, components=[component_dict(c) for c in result])
    return jsonify(
        query=query,
        units=result.units,
        orders=result.orders,
        hits=[hit_dict(h) for h in result.hits],
    )


@bp.get("/orders/<number>/b2mml")
@auth.require("supervisor", scope="orders:read")
def order_b2mml(number: str) -> Any:
    document = request.args.get("document", "performance")
    if document not in b2mml.DOCUMENTS:
        return problem(400, f"document must be one of {', '.join(b2mml.DOCUMENTS)}")
    try:
        xml = b2mml.export_order(get_session(), number=number, document=document)
    except LookupError as exc:
        return problem(404, str(exc))
    except b2mml.NotCompleted as exc:
        return problem(409, str(exc))
    return Response(
        xml,
        mimetype="application/xml",
        headers={"Content-Disposition": f'inline; filename="{number}-{document}.b2mml.xml"'},
    )


_HIT = {
    "type": "object",
    "properties": {
        "serial": {"type": "string"},
        "product": {"type": "string"},
        "status": {"type": "string"},
        "order": {"type": "string", "nullable": True},
        "customer": {"type": "string"},
        "due_date": {"type": "string", "format": "date"},
        "component": {"type": "string"},
        "lot": {"type": "string", "nullable": True},
        "component_serial": {"type": "string", "nullable": True},
        "level": {
            "type": "integer",
            "description": "0: built in directly; n: inside n sub-assemblies",
        },
        "via": {
            "type": "string",
            "nullable": True,
            "description": "serial of the sub-assembly the component came in",
        },
    },
}
oa.add_schema("RecallHit", _HIT)
oa.add_schema(
    "Genealogy",
    {
        "type": "object",
        "properties": {
            "serial": {"type": "string"},
            "product": {"type": "string"},
            "options": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string"},
            "order": {"type": "string"},
            "built_into": {"type": "string", "nullable": True},
            "assembly_seconds": {"type": "number", "description": "worked time, pauses excluded"},
            "standard_seconds": {"type": "integer"},
            "components": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string"},
                        "lot": {"type": "string", "nullable": True},
                        "serial": {"type": "string", "nullable": True},
                        "for_sku": {"type": "string"},
                        "substituted": {"type": "boolean"},
                        "scan": {"type": "object", "nullable": True},
                        "sub_assembly": {"$ref": "#/components/schemas/Genealogy"},
                    },
                },
            },
            "steps": {"type": "array", "items": {"type": "object"}},
            "defects": {"type": "array", "items": {"type": "object"}},
            "operations": {"type": "array", "items": oa.ref("UnitOperation")},
            "reservations": {
                "type": "array",
                "description": "lots and serials reserved for this unit now (the stock "
                "ledger by unit); empty once consumed or for nested sub-assemblies",
                "items": oa.ref("UnitReservation"),
            },
        },
    },
)
oa.add_schema(
    "UnitReservation",
    {
        "type": "object",
        "required": ["sku", "location", "quantity"],
        "properties": {
            "sku": {"type": "string"},
            "description": {"type": "string"},
            "lot": {"type": "string", "nullable": True},
            "serial": {"type": "string", "nullable": True},
            "location": {"type": "string"},
            "expires_on": {"type": "string", "format": "date", "nullable": True},
            "quantity": {"type": "integer", "description": "reserved, not yet consumed"},
        },
    },
)
oa.add_path(
    "/units/{serial}",
    {
        "get": {
            "summary": "A unit and its genealogy: components and the scans that confirmed them, "
            "steps against standard time, defects, nested sub-assemblies",
            "tags": ["units"],
            "parameters": [
                {"name": "serial", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": oa.json_body(oa.ref("Genealogy")),
                "404": oa.error("No such unit"),
            },
        }
    },
)
oa.add_path(
    "/trace",
    {
        "get": {
            "summary": "Recall: the units that hold a lot (part + lot) or a serial, nested through "
            "sub-assemblies; or, with order, everything an order's units were built from",
            "tags": ["trace"],
            "parameters": [
                {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                for n in ("part", "lot", "serial", "order")
            ],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {
                            "units": {"type": "integer"},
                            "orders": {"type": "array", "items": {"type": "string"}},
                            "hits": {"type": "array", "items": oa.ref("RecallHit")},
                            "components": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                ),
                "400": oa.error("Missing or contradictory query"),
                "404": oa.error("No such order"),
            },
        }
    },
)
oa.add_path(
    "/orders/{number}/b2mml",
    {
        "get": {
            "summary": "A completed order as ISA-95 B2MML V0600: its ProductionPerformance "
            "(a ProductionResponse per unit, a SegmentResponse per step with times, operator, "
            "station, parts consumed and the serial produced) or, with document=material, "
            "the MaterialInformation of the lots and serials it consumed",
            "tags": ["orders", "trace"],
            "parameters": [
                {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "document",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "enum": list(b2mml.DOCUMENTS),
                        "default": "performance",
                    },
                },
            ],
            "responses": {
                "200": {
                    "description": "B2MML V0600 XML (namespace http://www.mesa.org/xml/B2MML-V0600)",
                    "content": {"application/xml": {"schema": {"type": "string"}}},
                },
                "400": oa.error("Unknown document"),
                "404": oa.error("No such order"),
                "409": oa.error("The order is not completed"),
            },
        }
    },
)
