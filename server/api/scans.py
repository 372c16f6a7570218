"""``POST /api/v1/stations/<code>/scans``: a scan over HTTP, for systems without MQTT.

The body is the MQTT ``evt/scan`` payload (docs/mqtt.md); the answer is the
``cmd/feedback`` payload plus the station's new ``state``. Same validation, same
workflow, same dedupe on ``msg_id`` as the ingest. Status: 200 accepted or
duplicate, 422 rejected by the workflow, 400 a payload that does not validate,
404 an unknown station. Auth: a signed-in person or an API token with
``stations:write``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, jsonify, request
from sqlmodel import select

from server.api import bp, openapi
from server.db import get_session, write_session
from server.ingest.payload import InvalidPayload, envelope
from server.messaging import live
from server.models import Station
from server.security import auth
from station import service

log = logging.getLogger(__name__)


@bp.post("/stations/<code>/scans")
@auth.require("operator", scope="stations:write")
def post_scan(code: str) -> Any:
    doc = request.get_json(silent=True)
    if not isinstance(doc, dict):
        log.warning("scan for %s from %s: body is not a JSON object", code, auth.address())
        return jsonify(result="rejected", code="bad_payload",
                       reason="Message refused: the body must be a JSON object."), 400
    try:
        env = envelope(doc, kind="scan")
    except InvalidPayload as exc:
        log.warning("scan for %s from %s refused: %s", code, auth.address(), exc.detail)
        return jsonify(ref=exc.msg_id, result="rejected", code="bad_payload",
                       reason=f"Message refused: {exc.detail}."), 400
    if get_session().exec(select(Station.id).where(Station.code == code)).first() is None:
        return jsonify(ref=env.msg_id, result="rejected", code="unknown_station",
                       reason=f"Unknown station {code}."), 404
    # A write transaction of its own: the request session has been reading already.
    with write_session(current_app.extensions["taktline.engine"]) as session:
        outcome = service.handle(session, station_code=code, event=env.event,
                                 msg_id=env.msg_id, channel="http", source=env.source,
                                 seq=env.seq, ts=env.ts, payload=env.payload,
                                 actor=auth.actor(), address=auth.address())
    body = outcome.feedback()
    if outcome.state is not None:
        snap = service.snapshot(outcome.state)
        body["state"] = snap
        if outcome.accepted:
            live.publish_station(code, snap)
    return jsonify(body), 422 if outcome.result == "rejected" else 200


openapi.add_schema("ScanEvent", {
    "type": "object", "required": ["msg_id", "data"],
    "properties": {"msg_id": {"type": "string", "maxLength": 64},
                   "ts": {"type": "string", "format": "date-time"},
                   "seq": {"type": "integer", "minimum": 0},
                   "source": {"type": "string", "maxLength": 64},
                   "data": {"type": "string", "maxLength": 4096},
                   "error": {"type": "string"}}})
openapi.add_schema("ScanFeedback", {
    "type": "object", "required": ["ref", "result", "code", "reason"],
    "properties": {"ref": {"type": "string"},
                   "result": {"type": "string", "enum": ["accepted", "rejected", "duplicate"]},
                   "code": {"type": "string"}, "reason": {"type": "string"},
                   "source": {"type": "string"}, "state": {"type": "object"}}})
openapi.add_path("/stations/{code}/scans", {"post": {
    "summary": "A scan at a station (the MQTT evt/scan payload), for systems without MQTT",
    "parameters": [{"name": "code", "in": "path", "required": True,
                    "schema": {"type": "string"}}],
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": openapi.ref("ScanEvent")}}},
    "responses": {"200": openapi.json_body(openapi.ref("ScanFeedback"),
                                           "accepted, or duplicate (nothing changed)"),
                  "422": openapi.json_body(openapi.ref("ScanFeedback"),
                                           "rejected by the station workflow"),
                  "400": openapi.json_body(openapi.ref("ScanFeedback"), "invalid payload"),
                  "404": openapi.json_body(openapi.ref("ScanFeedback"), "unknown station")}}})
