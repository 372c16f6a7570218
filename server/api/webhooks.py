"""``/api/v1/webhooks``: webhook subscriptions for outbound events, their failed and
dead deliveries, and replay (admins; API tokens with ``webhooks:read`` /
``webhooks:write``). docs/integration.md."""

from __future__ import annotations

from typing import Any

from flask import jsonify, url_for
from sqlmodel import col, select

from server.api import bp, path_id, problem, read_json
from server.api import openapi as oa
from server.db import get_session, write_session
from server.integration import subscriptions
from server.integration.outbox import TYPES
from server.models import WebhookSubscription
from server.models.types import rfc3339
from server.security import auth


def _engine() -> Any:
    from flask import current_app

    return current_app.extensions["taktline.engine"]


def _json(sub: WebhookSubscription, **extra: Any) -> dict[str, Any]:
    body = subscriptions.as_json(sub, **extra)
    body["created_at"] = rfc3339(sub.created_at)
    return body


@bp.get("/webhooks")
@auth.require("admin")
def list_webhooks() -> Any:
    session = get_session()
    subs = session.exec(select(WebhookSubscription).order_by(col(WebhookSubscription.id))).all()
    counts = subscriptions.counts(session)
    return jsonify(
        {
            "webhooks": [
                {
                    **_json(s),
                    "deliveries": {
                        status: counts.get((subscriptions.channel_of(s), status), 0)
                        for status in (
                            subscriptions.PENDING,
                            subscriptions.DELIVERED,
                            subscriptions.DEAD,
                        )
                    },
                }
                for s in subs
            ],
            "event_types": list(TYPES),
        }
    )


@bp.post("/webhooks")
@auth.require("admin")
def create_webhook() -> Any:
    data = read_json()
    if not isinstance(data, dict):
        return problem(400, "expected a JSON object with name, url and event_types")
    name, url, types = data.get("name", ""), data.get("url", ""), data.get("event_types", [])
    if (
        not isinstance(name, str)
        or not isinstance(url, str)
        or not isinstance(types, list)
        or not all(isinstance(t, str) for t in types)
    ):
        return problem(400, "name and url are text, event_types a list of text")
    try:
        with write_session(_engine()) as session:
            sub = subscriptions.create(
                session,
                name=name,
                url=url,
                event_types=types,
                by=auth.actor(),
                address=auth.address(),
            )
            body = _json(sub, with_secret=True)
    except subscriptions.InvalidSubscription as exc:
        return problem(422, "webhook refused", exc.problems)
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = url_for("api.read_webhook", sub_id=body["id"])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/webhooks/<sub_id>")
@auth.require("admin")
def read_webhook(sub_id: str) -> Any:
    sub = _subscription(get_session(), sub_id)
    if sub is None:
        return problem(404, f"no webhook {sub_id}")
    failing = [
        {
            "id": d.id,
            "event_id": e.event_id,
            "type": e.type,
            "order": e.subject,
            "sequence": e.order_seq,
            "status": d.status,
            "attempts": d.attempts,
            "last_status": d.last_status,
            "last_error": d.last_error,
            "next_attempt_at": rfc3339(d.next_attempt_at),
        }
        for d, e in subscriptions.troubled(get_session(), channel=subscriptions.channel_of(sub))
    ]
    return jsonify({**_json(sub), "failing": failing})


@bp.delete("/webhooks/<sub_id>")
@auth.require("admin")
def delete_webhook(sub_id: str) -> Any:
    with write_session(_engine()) as session:
        sub = _subscription(session, sub_id)
        if sub is None:
            return problem(404, f"no webhook {sub_id}")
        subscriptions.delete(session, subscription=sub, by=auth.actor(), address=auth.address())
    return "", 204


@bp.post("/webhooks/<sub_id>/replay")
@auth.require("admin")
def replay_webhook(sub_id: str) -> Any:
    with write_session(_engine()) as session:
        sub = _subscription(session, sub_id)
        if sub is None:
            return problem(404, f"no webhook {sub_id}")
        count = subscriptions.replay(
            session,
            channel=subscriptions.channel_of(sub),
            by=auth.actor(),
            address=auth.address(),
        )
    return jsonify({"replayed": count})


def _subscription(session: Any, sub_id: str) -> WebhookSubscription | None:
    """The subscription a path names, ``None`` for anything else (``path_id``)."""
    row_id = path_id(sub_id)
    found = None if row_id is None else session.get(WebhookSubscription, row_id)
    return found


_ID = {"name": "sub_id", "in": "path", "required": True, "schema": {"type": "integer"}}
oa.add_schema(
    "Webhook",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "url": {"type": "string"},
            "event_types": {"type": "array", "items": {"type": "string", "enum": list(TYPES)}},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": "string"},
            "secret": {"type": "string", "description": "only in the answer to the POST"},
        },
    },
)
oa.add_path(
    "/webhooks",
    {
        "get": {
            "summary": "List webhook subscriptions with their delivery counts",
            "tags": ["webhooks"],
            "responses": {"200": oa.json_body({"type": "object"})},
        },
        "post": {
            "summary": "Subscribe a URL to outbound events (the answer holds its secret)",
            "tags": ["webhooks"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["name", "url"],
                            "properties": {
                                "name": {"type": "string", "maxLength": 100},
                                "url": {"type": "string", "maxLength": 500},
                                "event_types": {
                                    "type": "array",
                                    "items": {"type": "string", "enum": list(TYPES)},
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": oa.json_body(oa.ref("Webhook")),
                "400": oa.error("Not a JSON object"),
                "422": oa.error("Refused"),
            },
        },
    },
)
oa.add_path(
    "/webhooks/{sub_id}",
    {
        "get": {
            "summary": "A subscription and its failed or dead deliveries",
            "tags": ["webhooks"],
            "parameters": [_ID],
            "responses": {"200": oa.json_body(oa.ref("Webhook")), "404": oa.error("Not found")},
        },
        "delete": {
            "summary": "Delete a subscription and its deliveries",
            "tags": ["webhooks"],
            "parameters": [_ID],
            "responses": {"204": {"description": "Deleted"}, "404": oa.error("Not found")},
        },
    },
)
oa.add_path(
    "/webhooks/{sub_id}/replay",
    {
        "post": {
            "summary": "Send the subscription's dead deliveries again",
            "tags": ["webhooks"],
            "parameters": [_ID],
            "responses": {
                "200": oa.json_body(
                    {"type": "object", "properties": {"replayed": {"type": "integer"}}}
                ),
                "404": oa.error("Not found"),
            },
        }
    },
)
