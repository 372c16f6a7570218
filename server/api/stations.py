"""Station events over HTTP, for systems without MQTT: the same three ways in.

- ``POST /api/v1/stations/<code>/scans``: the MQTT ``evt/scan`` payload;
- ``POST /api/v1/stations/<code>/events``: any station event: an action (the
  ``evt/action`` payload: sign in, start, complete, pause, resume, andon, defect,
  sign out), or with ``"type": "scan"`` / ``"device"`` the other payloads.

Same validation (``server.ingest.payload``), same workflow, same dedupe on ``msg_id``
as the ingest and the tablet; after the commit the same publisher tells the devices
and every open screen (``station.publish``), accepted or rejected. The answer is the
``cmd/feedback`` payload plus the station's new ``state``. Status: 200 accepted or
duplicate, 422 rejected by the workflow, 400 a payload that does not validate, 404 an
unknown station. Auth: a signed-in person or an API token with ``stations:write``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, jsonify
from sqlmodel import select

from server.api import TooDeep, bp, openapi, read_json
from server.db import get_session, retry_deadlocked, write_session
from server.ingest.payload import ACTIONS, InvalidPayload, envelope
from server.messaging import live
from server.models import Station
from server.models.types import EventResult
from server.security import auth
from station import messages, publish, service

log = logging.getLogger(__name__)
EVENT_TYPES = ("action", "scan", "device")


@bp.post("/stations/<code>/scans")
@auth.require("operator", scope="stations:write")
def post_scan(code: str) -> Any:
    return _post(code, lambda doc: "scan")


@bp.post("/stations/<code>/events")
@auth.require("operator", scope="stations:write")
def post_event(code: str) -> Any:
    return _post(code, lambda doc: doc.get("type", "action"))


def _refused(detail: str, msg_id: str | None, status: int) -> Any:
    params = {"detail": detail}
    return jsonify(
        ref=msg_id,
        result=EventResult.REJECTED,
        code="bad_payload",
        params=params,
        reason=messages.english("bad_payload", params),
    ), status


def _post(code: str, kind_of: Any) -> Any:
    try:
        doc = read_json()
    except TooDeep:
        log.warning("event for %s from %s: body nested too deeply", code[:64], auth.address())
        return _refused("the body is nested too deeply", None, 400)
    if not isinstance(doc, dict):
        log.warning("event for %s from %s: body is not a JSON object", code[:64], auth.address())
        return _refused("the body must be a JSON object", None, 400)
    kind = kind_of(doc)
    if kind not in EVENT_TYPES:
        return _refused(f"type must be one of {', '.join(EVENT_TYPES)}", None, 400)
    try:
        env = envelope(doc, kind=kind)
    except InvalidPayload as exc:
        log.warning("%s for %s from %s refused: %s", kind, code[:64], auth.address(), exc.detail)
        return _refused(exc.detail, exc.msg_id, 400)
    if get_session().exec(select(Station.id).where(Station.code == code)).first() is None:
        params = {"station": code[:64]}
        return jsonify(
            ref=env.msg_id,
            result=EventResult.REJECTED,
            code="unknown_station",
            params=params,
            reason=messages.english("unknown_station", params),
        ), 404
    engine = current_app.extensions["taktline.engine"]

    def decide() -> service.Outcome:
        # A write transaction of its own: the request session has been reading already.
        with write_session(engine) as session:
            return service.handle(
                session,
                station_code=code,
                event=env.event,
                msg_id=env.msg_id,
                channel="http",
                source=env.source,
                seq=env.seq,
                ts=env.ts,
                payload=env.payload,
                actor=auth.actor(),
                address=auth.address(),
            )

    outcome = retry_deadlocked(decide)
    answer = publish.answer(outcome)
    publish.after_commit(live.sink(), [answer])
    body = outcome.feedback()
    body["params"] = outcome.params
    if outcome.state is not None:
        body["state"] = service.snapshot(outcome.state)
    return jsonify(body), 422 if outcome.result == EventResult.REJECTED else 200


_ENVELOPE = {
    "msg_id": {"type": "string", "maxLength": 64},
    "ts": {"type": "string", "format": "date-time"},
    "seq": {"type": "integer", "minimum": 0},
    "source": {"type": "string", "maxLength": 64},
}
openapi.add_schema(
    "ScanEvent",
    {
        "type": "object",
        "required": ["msg_id", "data"],
        "properties": {
            **_ENVELOPE,
            "data": {"type": "string", "maxLength": 4096},
            "error": {"type": "string"},
        },
    },
)
openapi.add_schema(
    "StationEvent",
    {
        "type": "object",
        "required": ["msg_id"],
        "description": "An action (the MQTT evt/action payload), or with type scan or device "
        "the evt/scan or evt/device payload.",
        "properties": {
            **_ENVELOPE,
            "type": {"type": "string", "enum": list(EVENT_TYPES), "default": "action"},
            "action": {"type": "string", "enum": list(ACTIONS)},
            "badge": {"type": "string", "maxLength": 64},
            "pin": {"type": "string", "maxLength": 32},
            "unit": {
                "type": "string",
                "maxLength": 64,
                "description": "start: this unit (its serial) instead of the next",
            },
            "reason": {
                "type": "string",
                "maxLength": 200,
                "description": "andon: why; defect: the reason code",
            },
            "note": {"type": "string", "maxLength": 1000},
            "disposition": {"type": "string", "enum": ["rework", "hold", "scrap"]},
            "part": {
                "type": "string",
                "maxLength": 64,
                "description": "defect: the affected part (SKU of one of the step's picks)",
            },
            "data": {"type": "string", "maxLength": 4096},
            "kind": {"type": "string", "maxLength": 16},
        },
    },
)
openapi.add_schema(
    "StationFeedback",
    {
        "type": "object",
        "required": ["ref", "result", "code", "reason"],
        "properties": {
            "ref": {"type": "string", "nullable": True, "description": "the msg_id answered"},
            "result": {"type": "string", "enum": [r.value for r in EventResult]},
            "code": {"type": "string"},
            "params": {"type": "object", "description": "the message's parameters"},
            "reason": {"type": "string", "description": "the message in English"},
            "source": {"type": "string"},
            "original": {"type": "string"},
            "state": {"type": "object"},
        },
    },
)
_RESPONSES = {
    "200": openapi.json_body(
        openapi.ref("StationFeedback"), "accepted, or duplicate (nothing changed)"
    ),
    "422": openapi.json_body(openapi.ref("StationFeedback"), "rejected by the station workflow"),
    "400": openapi.json_body(openapi.ref("StationFeedback"), "invalid payload"),
    "404": openapi.json_body(openapi.ref("StationFeedback"), "unknown station"),
    "413": openapi.error("The body is larger than MAX_CONTENT_LENGTH"),
}
_CODE = [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}]
openapi.add_path(
    "/stations/{code}/scans",
    {
        "post": {
            "summary": "A scan at a station (the MQTT evt/scan payload), for systems without MQTT",
            "parameters": _CODE,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": openapi.ref("ScanEvent")}},
            },
            "responses": _RESPONSES,
        }
    },
)
openapi.add_path(
    "/stations/{code}/events",
    {
        "post": {
            "summary": "Any station event: an action (sign in, start, complete, pause, resume, "
            "andon, defect, sign out), a scan or a device event",
            "parameters": _CODE,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": openapi.ref("StationEvent")}},
            },
            "responses": _RESPONSES,
        }
    },
)
