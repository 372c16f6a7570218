"""``/api/v1/admin``: API tokens and station tablet bindings, for admins and integrators
(the same as the admin pages and ``taktline tokens`` / ``taktline tablets``).

A new token is in the response that issued it, once; only its hash is stored. Scopes
``admin:read`` (lists) and ``admin:write`` (issue, revoke): a token allowed
``admin:write`` can issue tokens of any scope, so give it only to what administers.
Every issue and revoke is audited (``server.security.auth``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import g, jsonify
from sqlmodel import col, select

from server.api import bp, path_id, problem, read_json
from server.api import openapi as oa
from server.db import begin_write, get_session
from server.models import ApiToken, DeviceToken, Station
from server.models.types import INT32_MAX, rfc3339
from server.security import auth

log = logging.getLogger(__name__)
MAX_NAME = 200


def _token_json(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "scopes": list(row.scopes),
        "issued_at": rfc3339(row.issued_at),
        "revoked_at": rfc3339(row.revoked_at),
    }


def _device_json(row: DeviceToken, station: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "station": station,
        "label": row.label,
        "issued_at": rfc3339(row.issued_at),
        "revoked_at": rfc3339(row.revoked_at),
    }


@bp.get("/admin/api-tokens")
@auth.require("admin")
def list_api_tokens() -> Any:
    rows = get_session().exec(select(ApiToken).order_by(col(ApiToken.id))).all()
    return jsonify(tokens=[_token_json(r) for r in rows])


@bp.post("/admin/api-tokens")
@auth.require("admin")
def create_api_token() -> Any:
    doc = read_json()
    if not isinstance(doc, dict):
        return problem(400, "the body must be a JSON object")
    name, scopes = doc.get("name"), doc.get("scopes")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        return problem(400, f"name: give the integration a name (at most {MAX_NAME} characters)")
    if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
        scopes = " ".join(scopes)
    if not isinstance(scopes, str):
        return problem(400, "scopes: a list of scopes such as ['stock:read']")
    try:
        granted = auth.parse_scopes(scopes)
    except ValueError as exc:
        return problem(400, f"scopes: {exc}")
    db = get_session()
    begin_write(db)
    token = auth.issue_api_token(db, name=name.strip(), scopes=granted, by=g.get("user"))
    row = db.exec(select(ApiToken).where(ApiToken.token_hash == auth.token_digest(token))).one()
    body = _token_json(row) | {"token": token}
    db.commit()
    log.info("API token %r issued over the API by %s", row.name, auth.actor())
    response = jsonify(body)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/admin/api-tokens/<token_id>/revoke")
@auth.require("admin")
def revoke_api_token(token_id: str) -> Any:
    row_id = path_id(token_id)
    if row_id is None:
        return problem(404, "no such API token")
    db = get_session()
    begin_write(db)
    row = db.get(ApiToken, row_id)
    if row is None:
        db.rollback()
        return problem(404, f"no API token {row_id}")
    auth.revoke_api_token(db, token=row, by=g.get("user"))
    body = _token_json(row)
    db.commit()
    return jsonify(body)


@bp.get("/admin/devices")
@auth.require("admin")
def list_devices() -> Any:
    rows = (
        get_session()
        .exec(
            select(DeviceToken, Station.code)  # type: ignore[call-overload]
            .join(Station, col(Station.id) == DeviceToken.station_id)
            .order_by(col(DeviceToken.id))
        )
        .all()
    )
    return jsonify(devices=[_device_json(row, code) for row, code in rows])


@bp.post("/admin/devices")
@auth.require("admin")
def bind_device() -> Any:
    """A binding link for a tablet at ``station``: open it once on the tablet."""
    doc = read_json()
    if not isinstance(doc, dict):
        return problem(400, "the body must be a JSON object")
    code, label = doc.get("station"), doc.get("label", "")
    if not isinstance(code, str) or not isinstance(label, str) or len(label) > MAX_NAME:
        return problem(400, f"station: a station code; label: text (at most {MAX_NAME})")
    db = get_session()
    begin_write(db)
    station = db.exec(select(Station).where(Station.code == code)).first()
    if station is None or not station.active:
        db.rollback()
        return problem(404, f"no active station {code[:64]}")
    token = auth.issue_device_token(db, station=station, by=g.get("user"), label=label)
    row = db.exec(
        select(DeviceToken).where(DeviceToken.token_hash == auth.token_digest(token))
    ).one()
    body = _device_json(row, station.code) | {
        "token": token,
        "bind_path": "/station/bind?" + urlencode({"token": token}),
    }
    db.commit()
    response = jsonify(body)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/admin/devices/<token_id>/revoke")
@auth.require("admin")
def revoke_device(token_id: str) -> Any:
    row_id = path_id(token_id)
    if row_id is None:
        return problem(404, "no such device token")
    db = get_session()
    begin_write(db)
    row = db.get(DeviceToken, row_id)
    if row is None:
        db.rollback()
        return problem(404, f"no device token {row_id}")
    station = db.get(Station, row.station_id)
    auth.revoke_device_token(db, token=row, by=g.get("user"))
    body = _device_json(row, station.code if station else "")
    db.commit()
    return jsonify(body)


_WHEN = {"type": "string", "format": "date-time", "nullable": True}
oa.add_schema(
    "ApiToken",
    {
        "type": "object",
        "required": ["id", "name", "scopes"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "issued_at": _WHEN,
            "revoked_at": _WHEN,
            "token": {"type": "string", "description": "only in the answer that issued it"},
        },
    },
)
oa.add_schema(
    "DeviceToken",
    {
        "type": "object",
        "required": ["id", "station"],
        "properties": {
            "id": {"type": "integer"},
            "station": {"type": "string"},
            "label": {"type": "string"},
            "issued_at": _WHEN,
            "revoked_at": _WHEN,
            "token": {"type": "string", "description": "only in the answer that issued it"},
            "bind_path": {
                "type": "string",
                "description": "only in the answer that issued it: open it once on the tablet",
            },
        },
    },
)
_ID = [
    {
        "name": "token_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": INT32_MAX},
    }
]
oa.add_path(
    "/admin/api-tokens",
    {
        "get": {
            "summary": "API tokens (never the tokens themselves)",
            "tags": ["admin"],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {"tokens": {"type": "array", "items": oa.ref("ApiToken")}},
                    }
                )
            },
        },
        "post": {
            "summary": "Issue an API token; the token is in this answer only",
            "tags": ["admin"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["name", "scopes"],
                            "properties": {
                                "name": {"type": "string", "maxLength": MAX_NAME},
                                "scopes": {"type": "array", "items": {"type": "string"}},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": oa.json_body(oa.ref("ApiToken"), "Issued"),
                "400": oa.error("Bad name or scopes"),
            },
        },
    },
)
oa.add_path(
    "/admin/api-tokens/{token_id}/revoke",
    {
        "post": {
            "summary": "Revoke an API token (its next request gets 401)",
            "tags": ["admin"],
            "parameters": _ID,
            "responses": {
                "200": oa.json_body(oa.ref("ApiToken")),
                "401": oa.error("The calling token is revoked (it may have revoked itself)"),
                "404": oa.error("No such token"),
            },
        }
    },
)
oa.add_path(
    "/admin/devices",
    {
        "get": {
            "summary": "Station tablet bindings (device tokens; never the tokens themselves)",
            "tags": ["admin"],
            "responses": {
                "200": oa.json_body(
                    {
                        "type": "object",
                        "properties": {
                            "devices": {"type": "array", "items": oa.ref("DeviceToken")}
                        },
                    }
                )
            },
        },
        "post": {
            "summary": "Bind a tablet to a station: a device token and its binding link, "
            "in this answer only",
            "tags": ["admin"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["station"],
                            "properties": {
                                "station": {"type": "string"},
                                "label": {"type": "string", "maxLength": MAX_NAME},
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": oa.json_body(oa.ref("DeviceToken"), "Issued"),
                "400": oa.error("Bad body"),
                "404": oa.error("No such active station"),
            },
        },
    },
)
oa.add_path(
    "/admin/devices/{token_id}/revoke",
    {
        "post": {
            "summary": "Revoke a tablet binding (the tablet is unbound at its next request)",
            "tags": ["admin"],
            "parameters": _ID,
            "responses": {
                "200": oa.json_body(oa.ref("DeviceToken")),
                "404": oa.error("No such device token"),
            },
        }
    },
)
